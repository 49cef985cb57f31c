"""A mock of the national public-service portal (DVCQG) and its PayGov payments.

It speaks the protocol as the public client OpenCPS shows it
(``DVCQGIntegrationActionImpl.java``) on its own: its constants, record
shapes and key names are its own copy, never the adapter's (``portal``,
``wire``), so that a wrong detail on one side (a path, a key, a string sent
as a number, a checksum field order) fails a test rather than passing on
both sides:

- ``POST /api/auth`` with ``{username, password}`` and a ``dstcode`` header
  opens a session (expiring after ``session_ttl``);
- ``POST /api/integration`` (dossiers, progress, lookup, ``LayThuTuc``,
  questions) and ``POST /api/share`` (catalogues) take ``{session, madonvi,
  service, ...}`` with the service's keys at the top level, and the
  ``dstcode`` header on every call; they answer ``{error_code, message,
  result}``;
- synced records must hold strings (``TrangThaiHoSo: "4"``, ``""`` for an
  empty date), ``DongBoHoSoMC`` an ``isUpdating`` of ``"True"``/``"False"``;
- ``TraCuuHoSo`` takes a top-level ``mahoso`` and answers ``result: []`` for
  an unknown dossier; ``LayThuTuc`` takes ``maTTHC``; catalogues and
  questions answer upper-case keys (``MATTHC``, ``MADONVI``, ``HOIDAPID``);
- ``POST /api/paygov/payments`` takes a signed payment request and answers a
  payment URL.

Dossiers are kept in memory with the portal's rule that a status only moves
forward. Catalogues and the questions citizens sent are fixed, real-looking
and about no real person. Control endpoints besides ``adapters.mockkit``'s:

    POST /__mock/sessions/expire             expire every session now
    POST /__mock/payments/{id}/pay           the citizen pays: the portal calls
         {"forge": false, "fail": false}     the callback URL, signed (or forged)

Error codes: ``-1`` login or agency refused, ``-2`` session invalid or
expired (or ``dstcode`` missing), ``01`` invalid data, ``02`` status moved
backwards, ``03`` progress of an unknown dossier, ``98`` bad payment checksum,
``99`` unknown service.
"""

from __future__ import annotations

import datetime as dt
import hmac
import itertools
import time
from collections.abc import Callable
from typing import Annotated, Any, Literal, TypeVar
from zoneinfo import ZoneInfo

import httpx
import msgspec
from litestar import Litestar, Request, Response, get, post
from litestar.types import ASGIApp, Scope

from adapters.mockkit import MockKit
from schemas.dvcqg import paygov

DEFAULT_PORT = 9101
AUTH_PATH = "/api/auth"
INTEGRATION_PATH = "/api/integration"
SHARE_PATH = "/api/share"
PAYMENT_PATH = "/api/paygov/payments"

DEFAULT_CALLBACK_URL = "http://127.0.0.1:8080/v1/dvcqg/payments/callback"
"""The gateway's PayGov callback route in the default configuration."""

DEMO_USERNAME = "lgsp-demo"
DEMO_PASSWORD = "demo"
DEMO_DSTCODE = "H53"
DEMO_MADONVI = "000.00.11.H53"
DEMO_CLIENT_ID = "LGSP-H53-DEMO"
DEMO_PAYMENT_SECRET = "demo-paygov-secret"

# The portal's own checksum field orders (the adapter's are settings).
REQUEST_FIELDS = (
    "client_id",
    "transaction_id",
    "trans_amount",
    "command",
    "version",
    "locale",
    "country_code",
    "currency_code",
    "bill_info",
)
CALLBACK_FIELDS = (
    "client_id",
    "transaction_id",
    "paygate_trans_id",
    "trans_amount",
    "error_code",
    "paid_at",
)
OK = "00"
T = TypeVar("T", bound=msgspec.Struct)
ZONE = ZoneInfo("Asia/Ho_Chi_Minh")
PRIVATE_DOSSIER_FIELDS = ("ChuHoSo", "Email", "SoDienThoai", "Fax", "MaDoiTuong")
"""Owner details the lookup does not give back."""
Text = Annotated[str, msgspec.Meta(max_length=4000)]
Required = Annotated[str, msgspec.Meta(min_length=1, max_length=4000)]
Digits = Annotated[str, msgspec.Meta(pattern=r"^[0-9]{1,2}$")]
Time = Annotated[str, msgspec.Meta(pattern=r"^([0-9]{14})?$")]
"""yyyyMMddHHmmss, or "" for none (as OpenCPS writes an empty date)."""


class MockUser(msgspec.Struct, frozen=True):
    password: str
    dstcode: str
    madonvi: str


# The portal's own reading of what clients send: every value a string, as OpenCPS
# writes it. A number where the client sends a string is refused ("01").


class WireFile(msgspec.Struct, kw_only=True):
    TenTepDinhKem: Required
    TepDinhKemId: Text = ""
    MaThanhPhanHoSo: Text = ""
    DuongDanTaiTepTin: Text = ""
    IsDeleted: Literal["", "True", "False"] = ""


class WireFee(msgspec.Struct, kw_only=True):
    TenPhiLePhi: Required
    MaPhiLePhi: Text = ""
    HinhThucThu: Text = ""
    Gia: Annotated[str, msgspec.Meta(pattern=r"^[0-9]+$")]
    LoaiPhiLePhi: Text = ""


class WireDossier(msgspec.Struct, kw_only=True):
    MaHoSo: Required
    SoBienNhan: Text = ""
    MaTTHC: Required
    TenTTHC: Required
    MaLinhVuc: Text = ""
    TenLinhVuc: Text = ""
    ChuHoSo: Required
    LoaiDoiTuong: Literal["1", "2"]
    MaDoiTuong: Text
    ThongTinKhac: Text
    Email: Text
    Fax: Text
    SoDienThoai: Text
    TrichYeuHoSo: Text
    NgayTiepNhan: Annotated[str, msgspec.Meta(pattern=r"^[0-9]{14}$")]
    NgayHenTra: Time
    TrangThaiHoSo: Digits
    NgayTra: Time
    ThongTinTra: Text
    HinhThuc: Literal["", "0", "1"]
    NgayKetThucXuLy: Time
    DonViXuLy: Text
    GhiChu: Text
    TaiLieuNop: list[WireFile]
    DanhSachLePhi: list[WireFee]
    DanhSachTepDinhKemKhac: list[WireFile]
    DanhSachHoSoBoSung: list[dict[str, str]]
    DanhSachGiayToKetQua: list[dict[str, str]]


class WireProgress(msgspec.Struct, kw_only=True):
    MaHoSo: Required
    NguoiXuLy: Required
    ChucDanh: Text
    ThoiDiemXuLy: Annotated[str, msgspec.Meta(pattern=r"^[0-9]{14}$")]
    PhongBanXuLy: Text
    NoiDungXuLy: Required
    TrangThai: Digits
    NgayBatDau: Time
    NgayKetThucTheoQuyDinh: Time


class WireQuestion(msgspec.Struct, kw_only=True):
    MaCauHoi: Required
    TieuDe: Required
    NoiDungCauHoi: Required
    NgayGui: Time
    MaLinhVuc: Text = ""
    MaCoQuan: Text = ""
    NguoiHoi: Text = ""
    Email: Text = ""
    NoiDungTraLoi: Text = ""
    NgayTraLoi: Time = ""
    DonViTraLoi: Text = ""


class PayOrder(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """What the control API's ``pay`` accepts."""

    forge: bool = False
    """Sign the callback with a wrong key."""
    fail: bool = False
    """Report a failed payment (error_code 24) instead of a paid one."""


# Catalogues as the portal answers them: upper-case keys (wire-evidence.md).


def _procedure(
    code: str, name: str, field: tuple[str, str], agency: str, level: str, online: int, due: str
) -> dict[str, Any]:
    return {
        "MATTHC": code,
        "TENTTHC": name,
        "MACOQUAN": agency,
        "CAPTHUCHIEN": level,
        "MUCDO": str(online),
        "THOIHANGIAIQUYET": due,
        "LINHVUCTHUCHIEN": [{"MALINHVUC": field[0], "TENLINHVUC": field[1]}],
    }


CIVIL, CERTIFY, BUILD = (
    ("G09-TP02", "Hộ tịch"),
    ("G09-TP05", "Chứng thực"),
    (
        "G09-XD01",
        "Hoạt động xây dựng",
    ),
)
PROCEDURES = [
    _procedure("1.001612", "Đăng ký khai sinh", CIVIL, "000.20.21.H53", "Cấp xã", 4, "Trong ngày"),
    _procedure("1.001193", "Đăng ký khai tử", CIVIL, "000.20.21.H53", "Cấp xã", 4, "Trong ngày"),
    _procedure(
        "2.000815",
        "Chứng thực bản sao từ bản chính giấy tờ, văn bản",
        CERTIFY,
        "000.20.21.H53",
        "Cấp xã",
        2,
        "Trong ngày",
    ),
    _procedure(
        "1.009994",
        "Cấp giấy phép xây dựng mới đối với nhà ở riêng lẻ",
        BUILD,
        "000.11.35.H53",
        "Cấp huyện",
        3,
        "15 ngày",
    ),
]
AGENCIES: list[tuple[str | None, dict[str, Any]]] = [
    (None, {"MADONVI": "000.00.11.H53", "TENDONVI": "UBND tỉnh (demo)", "CAPDONVI": "Tỉnh"}),
    (
        "000.00.11.H53",
        {"MADONVI": "000.11.30.H53", "TENDONVI": "Sở Tư pháp (demo)", "CAPDONVI": "Sở"},
    ),
    (
        "000.00.11.H53",
        {"MADONVI": "000.11.35.H53", "TENDONVI": "Sở Xây dựng (demo)", "CAPDONVI": "Sở"},
    ),
    (
        "000.00.11.H53",
        {"MADONVI": "000.20.21.H53", "TENDONVI": "UBND xã An Bình (demo)", "CAPDONVI": "Xã"},
    ),
]
"""(parent agency, the portal's record): the parent is the mock's own, for the filter."""
FIELDS = [
    {"MALINHVUC": "G09-TP02", "TENLINHVUC": "Hộ tịch", "MANGANH": "TP"},
    {"MALINHVUC": "G09-TP05", "TENLINHVUC": "Chứng thực", "MANGANH": "TP"},
    {"MALINHVUC": "G09-XD01", "TENLINHVUC": "Hoạt động xây dựng", "MANGANH": "XD"},
]
CITIZEN_QUESTIONS: list[tuple[str, dict[str, Any]]] = [
    (
        "20261118091500",
        {
            "HOIDAPID": "HD-DVCQG-000101",
            "NOIDUNG": "Con tôi sinh được 70 ngày, nay đăng ký khai sinh có bị xử phạt không?",
            "NOIDUNGTRALOI": "",
            "TRALOIID": "",
            "MALINHVUC": "G09-TP02",
            "MADONVI": "000.11.30.H53",
            "TENDONVI": "Sở Tư pháp (demo)",
            "HOVATEN": "Người hỏi (demo)",
            "TRANGTHAI": "0",
        },
    ),
    (
        "20261120143000",
        {
            "HOIDAPID": "HD-DVCQG-000102",
            "NOIDUNG": "Hồ sơ cấp giấy phép xây dựng nhà ở riêng lẻ gồm những giấy tờ gì?",
            "NOIDUNGTRALOI": "",
            "TRALOIID": "",
            "MALINHVUC": "G09-XD01",
            "MADONVI": "000.11.35.H53",
            "TENDONVI": "Sở Xây dựng (demo)",
            "HOVATEN": "Người hỏi (demo)",
            "TRANGTHAI": "0",
        },
    ),
]
"""(the day it was sent, the portal's record): the date is the mock's own, for the filter."""


def _error(code: str, message: str) -> dict[str, Any]:
    return {"error_code": code, "message": message}


def _ok(message: str, result: list[Any]) -> dict[str, Any]:
    return {"error_code": OK, "message": message, "result": msgspec.to_builtins(result)}


def _now() -> str:
    return dt.datetime.now(ZONE).strftime("%Y%m%d%H%M%S")


class PortalState:
    """Sessions, dossiers, questions and payments the mock portal holds."""

    def __init__(self, session_ttl: float) -> None:
        self.session_ttl = session_ttl
        self.reset()

    def reset(self) -> None:
        self.sessions: dict[str, tuple[MockUser, float]] = {}
        """Session -> (its account, expiry on ``time.monotonic()``)."""
        self.dossiers: dict[str, dict[str, Any]] = {}
        self.progress: dict[str, list[dict[str, Any]]] = {}
        self.questions: dict[str, dict[str, Any]] = {}
        self.payments: dict[str, dict[str, Any]] = {}
        self._numbers = itertools.count(1)

    def number(self) -> int:
        return next(self._numbers)


def create_app(
    *,
    users: dict[str, MockUser] | None = None,
    session_ttl: float = 1800.0,
    client_id: str = DEMO_CLIENT_ID,
    payment_secret: str = DEMO_PAYMENT_SECRET,
    algorithm: paygov.ChecksumAlgorithm = "hmac-sha1",
    callback_url: str | None = DEFAULT_CALLBACK_URL,
) -> ASGIApp:
    """The mock portal; ``callback_url`` is where PayGov reports payments (the gateway's route)."""
    accounts = users or {
        DEMO_USERNAME: MockUser(password=DEMO_PASSWORD, dstcode=DEMO_DSTCODE, madonvi=DEMO_MADONVI)
    }
    state = PortalState(session_ttl)

    @post(AUTH_PATH, status_code=200)
    async def login(request: Request[Any, Any, Any]) -> dict[str, Any]:
        try:
            credentials = msgspec.json.decode(await request.body(), type=dict[str, str])
        except msgspec.DecodeError:
            return _error("-1", "Yêu cầu đăng nhập không hợp lệ")
        user = accounts.get(credentials.get("username", ""))
        if (
            user is None
            or not hmac.compare_digest(credentials.get("password", ""), user.password)
            or request.headers.get("dstcode") != user.dstcode
        ):
            return _error("-1", "Sai tên đăng nhập, mật khẩu hoặc mã dstcode")
        session = f"mock-session-{state.number():06d}"
        state.sessions[session] = (user, time.monotonic() + state.session_ttl)
        return {"session": session, "error_code": 0}

    Service = Callable[[dict[str, Any]], dict[str, Any]]

    def envelope(request: Request[Any, Any, Any], body: bytes, services: dict[str, Service]) -> Any:
        try:
            call = msgspec.json.decode(body)
        except msgspec.DecodeError as exc:
            return _error("01", f"Gói tin không hợp lệ: {exc}")
        if not isinstance(call, dict) or not all(
            isinstance(call.get(key), str) for key in ("session", "madonvi", "service")
        ):
            return _error("01", "Gói tin phải có session, madonvi và service (chuỗi)")
        opened = state.sessions.get(call["session"])
        if opened is None or opened[1] < time.monotonic():
            state.sessions.pop(call["session"], None)
            return _error("-2", "Phiên làm việc không hợp lệ hoặc đã hết hạn")
        user = opened[0]
        if request.headers.get("dstcode") != user.dstcode:
            return _error("-1", "Thiếu hoặc sai mã dstcode")  # checked on every call
        if call["madonvi"] != user.madonvi:
            return _error("-1", f"Mã đơn vị {call['madonvi']} không khớp với tài khoản")
        service = services.get(call["service"])
        if service is None:
            return _error("99", f"Dịch vụ {call['service']} không có tại địa chỉ này")
        return service(call)

    def records(call: dict[str, Any], kind: type[T]) -> list[T] | dict[str, Any]:
        """The call's ``data`` as ``kind`` records (strings only), or the portal's error."""
        data = call.get("data")
        if not isinstance(data, list) or not data:
            return _error("01", "Không có dữ liệu")
        try:
            return [msgspec.convert(item, kind) for item in data]
        except msgspec.ValidationError as exc:
            return _error("01", f"Dữ liệu không hợp lệ: {exc}")

    def moves_back(ma_ho_so: str, status: int) -> dict[str, Any] | None:
        known = state.dossiers.get(ma_ho_so)
        if known is not None and status < int(known["TrangThaiHoSo"]):
            return _error(
                "02",
                f"Trạng thái hồ sơ {ma_ho_so} không hợp lệ: không thể chuyển từ "
                f"{known['TrangThaiHoSo']} về {status}",
            )
        return None

    def sync_dossiers(call: dict[str, Any]) -> dict[str, Any]:
        if call.get("isUpdating") not in ("True", "False"):
            return _error("01", 'isUpdating phải là "True" hoặc "False"')
        dossiers = records(call, WireDossier)
        if isinstance(dossiers, dict):
            return dossiers
        receipts = []
        for dossier in dossiers:
            status = int(dossier.TrangThaiHoSo)
            if not 1 <= status <= 10:
                return _error("01", f"TrangThaiHoSo {status} không hợp lệ")
            refused = moves_back(dossier.MaHoSo, status)
            if refused is not None:
                return refused
            state.dossiers[dossier.MaHoSo] = msgspec.to_builtins(dossier)
            receipts.append(
                {"MaHoSo": dossier.MaHoSo, "TrangThaiHoSo": str(status), "ThoiGianDongBo": _now()}
            )
        return _ok("Đồng bộ hồ sơ thành công", receipts)

    def sync_progress(call: dict[str, Any]) -> dict[str, Any]:
        steps = records(call, WireProgress)
        if isinstance(steps, dict):
            return steps
        receipts = []
        for step in steps:
            if step.MaHoSo not in state.dossiers:
                return _error("03", f"Không tìm thấy hồ sơ {step.MaHoSo}")
            refused = moves_back(step.MaHoSo, int(step.TrangThai))
            if refused is not None:
                return refused
            state.dossiers[step.MaHoSo]["TrangThaiHoSo"] = step.TrangThai
            state.progress.setdefault(step.MaHoSo, []).append(msgspec.to_builtins(step))
            receipts.append(
                {"MaHoSo": step.MaHoSo, "TrangThaiHoSo": step.TrangThai, "ThoiGianDongBo": _now()}
            )
        return _ok("Cập nhật tiến độ hồ sơ thành công", receipts)

    def look_up(call: dict[str, Any]) -> dict[str, Any]:
        wanted = call.get("mahoso")  # top level, lower case: as OpenCPS asks
        if not isinstance(wanted, str) or not wanted:
            return _error("01", "Thiếu mahoso")
        dossier = state.dossiers.get(wanted)
        if dossier is None:
            return _ok("Không tìm thấy hồ sơ", [])
        public = {k: v for k, v in dossier.items() if k not in PRIVATE_DOSSIER_FIELDS}
        return _ok("Tra cứu hồ sơ thành công", [{**public, "NgayDongBo": _now()}])

    def procedure(call: dict[str, Any]) -> dict[str, Any]:
        wanted = call.get("maTTHC")
        if not isinstance(wanted, str) or not wanted:
            return _error("01", "Thiếu maTTHC")
        return _ok("Thành công", [p for p in PROCEDURES if p["MATTHC"] == wanted])

    def sync_questions(call: dict[str, Any]) -> dict[str, Any]:
        questions = records(call, WireQuestion)
        if isinstance(questions, dict):
            return questions
        receipts = []
        for question in questions:
            state.questions[question.MaCauHoi] = msgspec.to_builtins(question)
            receipts.append({"MaCauHoi": question.MaCauHoi, "ThoiGianDongBo": _now()})
        return _ok("Đồng bộ hỏi đáp thành công", receipts)

    def procedures(call: dict[str, Any]) -> dict[str, Any]:
        field, agency = call.get("MaLinhVuc"), call.get("MaCoQuan")
        chosen = [
            p
            for p in PROCEDURES
            if field in (None, p["LINHVUCTHUCHIEN"][0]["MALINHVUC"])
            and agency in (None, p["MACOQUAN"])
        ]
        return _ok("Thành công", chosen)

    def agencies(call: dict[str, Any]) -> dict[str, Any]:
        parent = call.get("MaCoQuanCha")
        return _ok("Thành công", [a for up, a in AGENCIES if parent in (None, up)])

    def fields(call: dict[str, Any]) -> dict[str, Any]:
        sector = call.get("MaNganh")
        return _ok("Thành công", [f for f in FIELDS if sector in (None, f["MANGANH"])])

    def citizen_questions(call: dict[str, Any]) -> dict[str, Any]:
        since, until = call.get("TuNgay") or "", call.get("DenNgay") or "99999999999999"
        agency = call.get("MaCoQuan")
        chosen = [
            q
            for sent, q in CITIZEN_QUESTIONS
            if since <= sent <= until and agency in (None, q["MADONVI"])
        ]
        return _ok("Thành công", chosen)

    integration: dict[str, Service] = {
        "DongBoHoSoMC": sync_dossiers,
        "CapNhatTienDoHoSoMC": sync_progress,
        "TraCuuHoSo": look_up,
        "LayThuTuc": procedure,
        "DongBoHoiDap": sync_questions,
        "LayDanhSachHoiDapGuiTuDVCQG": citizen_questions,
    }
    share: dict[str, Service] = {
        "LayDanhSachTTHC": procedures,
        "LayDanhMucCoQuan": agencies,
        "LayDanhMucLinhVuc": fields,
    }

    @post(INTEGRATION_PATH, status_code=200)
    async def integrate(request: Request[Any, Any, Any]) -> Any:
        return envelope(request, await request.body(), integration)

    @post(SHARE_PATH, status_code=200)
    async def shared(request: Request[Any, Any, Any]) -> Any:
        return envelope(request, await request.body(), share)

    @post(PAYMENT_PATH, status_code=200)
    async def pay_request(request: Request[Any, Any, Any]) -> dict[str, Any]:
        try:
            raw = msgspec.json.decode(await request.body())
            order = msgspec.convert(raw, paygov.PayGovRequest)
        except msgspec.DecodeError as exc:  # ValidationError is a DecodeError
            return _error("01", f"Yêu cầu thanh toán không hợp lệ: {exc}")
        expected = paygov.checksum(raw, REQUEST_FIELDS, payment_secret, algorithm)
        if order.client_id != client_id or not hmac.compare_digest(order.checksum, expected):
            return _error("98", "Sai mã client hoặc checksum")
        if order.trans_amount != sum(line.SoTien for line in order.bill_info.PhiLePhi):
            return _error("01", "Số tiền không khớp tổng phí, lệ phí")
        state.payments[order.transaction_id] = {
            "trans_amount": order.trans_amount,
            "MaHoSo": order.bill_info.MaHoSo,
        }
        base = str(request.base_url).rstrip("/")
        return {
            "error_code": OK,
            "message": "Tạo giao dịch thành công",
            "transaction_id": order.transaction_id,
            "payment_url": f"{base}/paygov/checkout/{order.transaction_id}",
        }

    @get("/paygov/checkout/{transaction_id:str}", media_type="text/plain")
    async def checkout(request: Request[Any, Any, Any]) -> str:
        transaction_id = request.path_params["transaction_id"]
        return (
            f"Mock PayGov checkout for {transaction_id}: "
            f"POST /__mock/payments/{transaction_id}/pay to pay."
        )

    @post("/__mock/sessions/expire", status_code=200)
    async def expire_sessions() -> dict[str, int]:
        expired = len(state.sessions)
        state.sessions.clear()
        return {"expired": expired}

    @post("/__mock/payments/{transaction_id:str}/pay", status_code=200)
    async def citizen_pays(request: Request[Any, Any, Any]) -> Any:
        transaction_id: str = request.path_params["transaction_id"]
        body = await request.body()
        try:
            order = msgspec.json.decode(body or b"{}", type=PayOrder)
        except msgspec.DecodeError as exc:
            return Response({"error": str(exc)}, status_code=422)
        payment = state.payments.get(transaction_id)
        if payment is None or callback_url is None:
            missing = "payment" if payment is None else "callback URL"
            return Response({"error": f"no {missing} for {transaction_id}"}, status_code=404)
        report: dict[str, Any] = {
            "client_id": client_id,
            "transaction_id": transaction_id,
            "paygate_trans_id": f"PG{state.number():010d}",
            "trans_amount": payment["trans_amount"],
            "error_code": "24" if order.fail else OK,
            "message": "Giao dịch không thành công" if order.fail else "Giao dịch thành công",
            "paid_at": _now(),
        }
        key = "not-the-shared-secret" if order.forge else payment_secret
        report["checksum"] = paygov.checksum(report, CALLBACK_FIELDS, key, algorithm)
        async with httpx.AsyncClient(timeout=10) as client:
            answer = await client.post(callback_url, json=report)
        try:
            reply = answer.json()
        except ValueError:
            reply = answer.text
        acknowledged = isinstance(reply, dict) and reply.get("error_code") == OK
        return {
            "callback_status": answer.status_code,
            "callback_answer": reply,
            "acknowledged": acknowledged,
        }

    app = Litestar(
        [login, integrate, shared, pay_request, checkout, expire_sessions, citizen_pays],
        openapi_config=None,
        logging_config=None,
    )
    return MockKit(operation_of=_operation_of, reset=state.reset).wrap(app)


def _operation_of(scope: Scope, body: bytes) -> str:
    """``login``, ``paygov.create``, or the envelope's ``service``; else the path."""
    path: str = scope["path"]
    if path == AUTH_PATH:
        return "login"
    if path == PAYMENT_PATH:
        return "paygov.create"
    if path in (INTEGRATION_PATH, SHARE_PATH):
        try:
            document = msgspec.json.decode(body)
        except msgspec.DecodeError:
            return path
        service = document.get("service") if isinstance(document, dict) else None
        return service if isinstance(service, str) else path
    return path
