"""The console's words in Vietnamese (the default) and English.

One table, key -> (vi, en): a missing translation is a KeyError in the tests
that render every page, not a blank in front of an operator.
"""

from __future__ import annotations

from collections.abc import Callable

LANGUAGES = ("vi", "en")
LANG_COOKIE = "lgsp_console_lang"

WORDS: dict[str, tuple[str, str]] = {
    "title": ("Bảng điều khiển cổng LGSP", "LGSP gateway console"),
    "sign_in": ("Đăng nhập", "Sign in"),
    "sign_out": ("Đăng xuất", "Sign out"),
    "admin_key": ("Khóa quản trị (admin key)", "Admin key"),
    "bad_key": ("Khóa quản trị không đúng.", "That admin key is not valid."),
    "expired": (
        "Phiên làm việc đã hết hạn, vui lòng đăng nhập lại.",
        "Your session expired; please sign in again.",
    ),
    "csrf_failed": (
        "Biểu mẫu đã cũ hoặc không hợp lệ; hãy tải lại trang và thử lại.",
        "The form was stale or forged; reload the page and try again.",
    ),
    "dashboard": ("Tổng quan", "Dashboard"),
    "messages": ("Nhật ký thông điệp", "Message log"),
    "deliveries": ("Chuyển phát", "Deliveries"),
    "config": ("Cấu hình", "Configuration"),
    "signatures": ("Kiểm tra chữ ký số", "Verify a signature"),
    "usage": ("Báo cáo sử dụng", "Usage report"),
    "traffic_24h": ("Lưu lượng 24 giờ qua", "Traffic, last 24 hours"),
    "client": ("Đơn vị (client)", "Client"),
    "route": ("Tuyến (route)", "Route"),
    "requests": ("Yêu cầu", "Requests"),
    "errors_4xx": ("Lỗi 4xx", "4xx"),
    "errors_5xx": ("Lỗi 5xx", "5xx"),
    "error_rate": ("Tỷ lệ lỗi", "Error rate"),
    "no_traffic": ("Chưa có lưu lượng.", "No traffic yet."),
    "upstreams": ("Hệ thống kết nối (upstream)", "Upstreams"),
    "upstream": ("Upstream", "Upstream"),
    "type": ("Loại", "Type"),
    "state": ("Trạng thái", "State"),
    "detail": ("Chi tiết", "Detail"),
    "queue": ("Hàng đợi chuyển phát", "Delivery queue"),
    "queue_empty": ("Hàng đợi trống.", "The queue is empty."),
    "dead_letters": ("Thông điệp không chuyển được (dead letters)", "Dead letters"),
    "none": ("Không có.", "None."),
    "search": ("Tìm", "Search"),
    "since": ("Từ", "Since"),
    "until": ("Đến", "Until"),
    "status": ("Mã HTTP", "Status"),
    "message_id": ("Mã thông điệp", "Message id"),
    "time": ("Thời điểm", "Time"),
    "kind": ("Loại bản ghi", "Kind"),
    "error_code": ("Mã lỗi", "Error code"),
    "next_page": ("Trang sau", "Next page"),
    "no_records": ("Không có bản ghi phù hợp.", "No matching record."),
    "record": ("Bản ghi", "Record"),
    "request_body": ("Nội dung yêu cầu (đã che dữ liệu cá nhân)", "Request body (masked)"),
    "response_body": ("Nội dung trả lời (đã che dữ liệu cá nhân)", "Response body (masked)"),
    "not_kept": (
        "Không lưu (tuyến không bật message_log.bodies).",
        "Not kept (the route has no message_log.bodies).",
    ),
    "verify_chains": ("Kiểm tra chuỗi băm", "Verify the chains"),
    "chains_ok": ("Mọi chuỗi nhật ký đều nguyên vẹn.", "Every log chain verifies."),
    "chains_broken": ("Có chuỗi nhật ký bị sửa đổi!", "A log chain is broken!"),
    "chain": ("Chuỗi", "Chain"),
    "records": ("Số bản ghi", "Records"),
    "broken_at": ("Hỏng tại", "Broken at"),
    "attempts": ("Số lần thử", "Attempts"),
    "last_error": ("Lỗi gần nhất", "Last error"),
    "updated": ("Cập nhật", "Updated"),
    "retry": ("Gửi lại", "Retry"),
    "retry_all": ("Gửi lại tất cả", "Retry all dead letters"),
    "discard": ("Hủy bỏ", "Discard"),
    "reason": ("Lý do", "Reason"),
    "requeued": ("Đã đưa lại vào hàng đợi: {n}", "Requeued: {n}"),
    "discarded": ("Đã hủy bỏ {id}.", "Discarded {id}."),
    "all_states": ("Mọi trạng thái", "Every state"),
    "attempt_history": ("Lịch sử các lần gửi", "Attempts"),
    "attempt": ("Lần", "Attempt"),
    "outcome": ("Kết quả", "Outcome"),
    "worker": ("Tiến trình", "Worker"),
    "config_file": ("Tệp cấu hình", "Config file"),
    "digest": ("Mã băm", "Digest"),
    "loaded_at": ("Nạp lúc", "Loaded at"),
    "routes": ("Tuyến", "Routes"),
    "clients": ("Đơn vị kết nối", "Clients"),
    "name": ("Tên", "Name"),
    "enabled": ("Hoạt động", "Enabled"),
    "keys": ("Số khóa", "Keys"),
    "settings": ("Thiết lập (đã ẩn bí mật)", "Settings (secrets hidden)"),
    "method_path": ("Phương thức và đường dẫn", "Method and path"),
    "operation": ("Thao tác", "Operation"),
    "delivery": ("Chuyển phát", "Delivery"),
    "validate": ("Kiểm tra cấu hình trên đĩa", "Validate the files on disk"),
    "reload": ("Nạp lại cấu hình", "Reload"),
    "config_valid": ("Cấu hình hợp lệ ({digest}).", "The configuration is valid ({digest})."),
    "config_invalid": (
        "Cấu hình có lỗi; cấu hình đang chạy được giữ nguyên.",
        "The configuration has errors; the running one is kept.",
    ),
    "reloaded": ("Đã nạp lại cấu hình ({digest}).", "Reloaded ({digest})."),
    "where": ("Vị trí", "Where"),
    "message": ("Nội dung", "Message"),
    "file": ("Tệp (edXML, XML hoặc PDF)", "File (edXML, XML or PDF)"),
    "verify": ("Kiểm tra", "Verify"),
    "no_trust": (
        "Chưa cấu hình mục trust (chứng thư gốc tin cậy): không thể kiểm tra chữ ký.",
        "No trust section is configured (trusted roots): signatures cannot be verified.",
    ),
    "no_file": ("Hãy chọn một tệp.", "Choose a file."),
    "verdict": ("Kết luận", "Verdict"),
    "signer": ("Người ký", "Signer"),
    "time_used": ("Thời điểm dùng để kiểm tra", "Time used"),
    "reasons": ("Lý do", "Reasons"),
    "month": ("Tháng", "Month"),
    "show": ("Xem", "Show"),
    "download_csv": ("Tải CSV", "Download CSV"),
    "agency": ("Cơ quan", "Agency"),
    "exchanges": ("Lượt trao đổi", "Exchanges"),
    "failed": ("Thất bại", "Failed"),
    "documents_sent": ("Văn bản gửi", "Documents sent"),
    "documents_received": ("Văn bản nhận", "Documents received"),
    "dossiers_synced": ("Hồ sơ đồng bộ", "Dossiers synced"),
    "total": ("Tổng", "Total"),
    "usage_note": (
        "Theo giờ Việt Nam (UTC+7). Cơ quan là đơn vị gọi; với văn bản đến, là hệ thống nhận.",
        "Vietnam time (UTC+7). The agency is the caller; for documents received, the system "
        "they were accepted for.",
    ),
    "error": ("Lỗi", "Error"),
    "language": ("English", "Tiếng Việt"),
    "yes": ("có", "yes"),
    "no": ("không", "no"),
}


def translator(lang: str) -> Callable[..., str]:
    index = LANGUAGES.index(lang) if lang in LANGUAGES else 0

    def t(key: str, **values: object) -> str:
        text = WORDS[key][index]
        return text.format(**values) if values else text

    return t
