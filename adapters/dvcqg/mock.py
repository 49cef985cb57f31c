"""A mock of the national public-service portal (DVCQG) and its PayGov payments.

It speaks the protocol of ``../shared/domain/dvcqg.md`` on its own, written
apart from the adapter's ``portal`` module so that a mismatch (a path, the
envelope, a checksum field order or key) fails a test rather than passing
on both sides:

- ``POST /api/auth`` with ``{username, password}`` and a ``dstcode`` header
  opens a session (expiring after ``session_ttl``);
- ``POST /api/integration`` (dossiers, questions) and ``POST /api/share``
  (catalogues) take the envelope ``{session, madonvi, service, isUpdating,
  data}`` and answer ``{error_code, message, result}``;
- ``POST /api/paygov/payments`` takes a signed payment request and answers a
  payment URL.

Dossiers are kept in memory with the portal's rule that a status only moves
forward. Catalogues and the questions citizens sent are fixed, real-looking
and about no real person. Control endpoints besides ``adapters.mockkit``'s:

    POST /__mock/sessions/expire             expire every session now
    POST /__mock/payments/{id}/pay           the citizen pays: the portal calls
         {"forge": false, "fail": false}     the callback URL, signed (or forged)

Error codes: ``-1`` login or agency refused, ``-2`` session invalid or
expired, ``01`` invalid data, ``02`` status moved backwards, ``03`` no such
dossier, ``98`` bad payment checksum, ``99`` unknown service.
"""

from __future__ import annotations

import datetime as dt
import hmac
import itertools
import time
from collections.abc import Callable
from typing import Any, TypeVar

import httpx
import msgspec
from litestar import Litestar, Request, Response, get, post
from litestar.types import ASGIApp, Scope

from adapters.mockkit import MockKit
from schemas.dvcqg import paygov
from schemas.dvcqg import records as r

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


class MockUser(msgspec.Struct, frozen=True):
    password: str
    dstcode: str
    madonvi: str


class Envelope(msgspec.Struct, forbid_unknown_fields=True):
    session: str
    madonvi: str
    service: str
    isUpdating: str
    data: list[Any]


class PayOrder(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """What the control API's ``pay`` accepts."""

    forge: bool = False
    """Sign the callback with a wrong key."""
    fail: bool = False
    """Report a failed payment (error_code 24) instead of a paid one."""


PROCEDURES = [
    r.ThuTucHanhChinh(
        MaTTHC="1.001612",
        TenTTHC="Đăng ký khai sinh",
        MaLinhVuc="G09-TP02",
        TenLinhVuc="Hộ tịch",
        MaCoQuan="000.20.21.H53",
        CapThucHien="Cấp xã",
        MucDo=4,
        ThoiHanGiaiQuyet="Trong ngày",
    ),
    r.ThuTucHanhChinh(
        MaTTHC="1.001193",
        TenTTHC="Đăng ký khai tử",
        MaLinhVuc="G09-TP02",
        TenLinhVuc="Hộ tịch",
        MaCoQuan="000.20.21.H53",
        CapThucHien="Cấp xã",
        MucDo=4,
        ThoiHanGiaiQuyet="Trong ngày",
    ),
    r.ThuTucHanhChinh(
        MaTTHC="2.000815",
        TenTTHC="Chứng thực bản sao từ bản chính giấy tờ, văn bản",
        MaLinhVuc="G09-TP05",
        TenLinhVuc="Chứng thực",
        MaCoQuan="000.20.21.H53",
        CapThucHien="Cấp xã",
        MucDo=2,
        ThoiHanGiaiQuyet="Trong ngày",
    ),
    r.ThuTucHanhChinh(
        MaTTHC="1.009994",
        TenTTHC="Cấp giấy phép xây dựng mới đối với nhà ở riêng lẻ",
        MaLinhVuc="G09-XD01",
        TenLinhVuc="Hoạt động xây dựng",
        MaCoQuan="000.11.35.H53",
        CapThucHien="Cấp huyện",
        MucDo=3,
        ThoiHanGiaiQuyet="15 ngày",
    ),
]
AGENCIES = [
    r.CoQuan(MaCoQuan="000.00.11.H53", TenCoQuan="UBND tỉnh (demo)", CapCoQuan="Tỉnh"),
    r.CoQuan(
        MaCoQuan="000.11.30.H53",
        TenCoQuan="Sở Tư pháp (demo)",
        MaCoQuanCha="000.00.11.H53",
        CapCoQuan="Sở",
    ),
    r.CoQuan(
        MaCoQuan="000.11.35.H53",
        TenCoQuan="Sở Xây dựng (demo)",
        MaCoQuanCha="000.00.11.H53",
        CapCoQuan="Sở",
    ),
    r.CoQuan(
        MaCoQuan="000.20.21.H53",
        TenCoQuan="UBND xã An Bình (demo)",
        MaCoQuanCha="000.00.11.H53",
        CapCoQuan="Xã",
    ),
]
FIELDS = [
    r.LinhVuc(MaLinhVuc="G09-TP02", TenLinhVuc="Hộ tịch", MaNganh="TP"),
    r.LinhVuc(MaLinhVuc="G09-TP05", TenLinhVuc="Chứng thực", MaNganh="TP"),
    r.LinhVuc(MaLinhVuc="G09-XD01", TenLinhVuc="Hoạt động xây dựng", MaNganh="XD"),
]
CITIZEN_QUESTIONS = [
    r.CauHoiDVCQG(
        MaCauHoi="HD-DVCQG-000101",
        TieuDe="Thời hạn đăng ký khai sinh cho con",
        NoiDungCauHoi="Con tôi sinh được 70 ngày, nay đăng ký khai sinh có bị xử phạt không?",
        NgayGui="20261118091500",
        MaLinhVuc="G09-TP02",
        MaCoQuan="000.11.30.H53",
    ),
    r.CauHoiDVCQG(
        MaCauHoi="HD-DVCQG-000102",
        TieuDe="Hồ sơ xin giấy phép xây dựng nhà ở",
        NoiDungCauHoi="Hồ sơ cấp giấy phép xây dựng nhà ở riêng lẻ gồm những giấy tờ gì?",
        NgayGui="20261120143000",
        MaLinhVuc="G09-XD01",
        MaCoQuan="000.11.35.H53",
    ),
]


def _error(code: str, message: str) -> dict[str, Any]:
    return {"error_code": code, "message": message}


def _ok(message: str, result: list[Any]) -> dict[str, Any]:
    return {"error_code": OK, "message": message, "result": msgspec.to_builtins(result)}


def _now() -> str:
    return r.portal_time(dt.datetime.now(dt.UTC))


class PortalState:
    """Sessions, dossiers, questions and payments the mock portal holds."""

    def __init__(self, session_ttl: float) -> None:
        self.session_ttl = session_ttl
        self.reset()

    def reset(self) -> None:
        self.sessions: dict[str, tuple[str, float]] = {}
        """Session -> (agency code, expiry on ``time.monotonic()``)."""
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
        state.sessions[session] = (user.madonvi, time.monotonic() + state.session_ttl)
        return {"session": session, "error_code": 0}

    def envelope(body: bytes, services: dict[str, Callable[[Envelope], dict[str, Any]]]) -> Any:
        try:
            call = msgspec.json.decode(body, type=Envelope)
        except msgspec.DecodeError as exc:
            return _error("01", f"Gói tin không hợp lệ: {exc}")
        opened = state.sessions.get(call.session)
        if opened is None or opened[1] < time.monotonic():
            state.sessions.pop(call.session, None)
            return _error("-2", "Phiên làm việc không hợp lệ hoặc đã hết hạn")
        if call.madonvi != opened[0]:
            return _error("-1", f"Mã đơn vị {call.madonvi} không khớp với tài khoản")
        if call.isUpdating not in ("True", "False"):
            return _error("01", "isUpdating phải là True hoặc False")
        service = services.get(call.service)
        if service is None:
            return _error("99", f"Dịch vụ {call.service} không có tại địa chỉ này")
        return service(call)

    def records(call: Envelope, kind: type[T]) -> list[T] | dict[str, Any]:
        """The envelope's data as ``kind`` records, or the portal's error answer."""
        if not call.data:
            return _error("01", "Không có dữ liệu")
        try:
            return [msgspec.convert(item, kind) for item in call.data]
        except msgspec.ValidationError as exc:
            return _error("01", f"Dữ liệu không hợp lệ: {exc}")

    def moves_back(ma_ho_so: str, status: int) -> dict[str, Any] | None:
        known = state.dossiers.get(ma_ho_so)
        if known is not None and status < known["TrangThaiHoSo"]:
            return _error(
                "02",
                f"Trạng thái hồ sơ {ma_ho_so} không hợp lệ: không thể chuyển từ "
                f"{known['TrangThaiHoSo']} về {status}",
            )
        return None

    def sync_dossiers(call: Envelope) -> dict[str, Any]:
        dossiers = records(call, r.DongBoHoSoMC)
        if isinstance(dossiers, dict):
            return dossiers
        receipts = []
        for dossier in dossiers:
            refused = moves_back(dossier.MaHoSo, dossier.TrangThaiHoSo)
            if refused is not None:
                return refused
            state.dossiers[dossier.MaHoSo] = msgspec.to_builtins(dossier)
            receipts.append(
                r.DongBoKetQua(
                    MaHoSo=dossier.MaHoSo,
                    TrangThaiHoSo=dossier.TrangThaiHoSo,
                    ThoiGianDongBo=_now(),
                )
            )
        return _ok("Đồng bộ hồ sơ thành công", receipts)

    def sync_progress(call: Envelope) -> dict[str, Any]:
        steps = records(call, r.CapNhatTienDoHoSoMC)
        if isinstance(steps, dict):
            return steps
        receipts = []
        for step in steps:
            if step.MaHoSo not in state.dossiers:
                return _error("03", f"Không tìm thấy hồ sơ {step.MaHoSo}")
            refused = moves_back(step.MaHoSo, step.TrangThai)
            if refused is not None:
                return refused
            state.dossiers[step.MaHoSo]["TrangThaiHoSo"] = step.TrangThai
            state.progress.setdefault(step.MaHoSo, []).append(msgspec.to_builtins(step))
            receipts.append(
                r.DongBoKetQua(
                    MaHoSo=step.MaHoSo, TrangThaiHoSo=step.TrangThai, ThoiGianDongBo=_now()
                )
            )
        return _ok("Cập nhật tiến độ hồ sơ thành công", receipts)

    def look_up(call: Envelope) -> dict[str, Any]:
        wanted = records(call, r.TraCuuHoSo)
        if isinstance(wanted, dict):
            return wanted
        found = []
        for query in wanted:
            dossier = state.dossiers.get(query.MaHoSo)
            if dossier is None:
                return _error("03", f"Không tìm thấy hồ sơ {query.MaHoSo}")
            found.append(msgspec.convert(dossier, r.HoSo))  # drops the owner's details
        return _ok("Tra cứu hồ sơ thành công", found)

    def sync_questions(call: Envelope) -> dict[str, Any]:
        questions = records(call, r.DongBoHoiDap)
        if isinstance(questions, dict):
            return questions
        receipts = []
        for question in questions:
            state.questions[question.MaCauHoi] = msgspec.to_builtins(question)
            receipts.append(r.DongBoHoiDapKetQua(MaCauHoi=question.MaCauHoi, ThoiGianDongBo=_now()))
        return _ok("Đồng bộ hỏi đáp thành công", receipts)

    def listing(items: list[Any], filters: type[Any]) -> Callable[[Envelope], dict[str, Any]]:
        """A catalogue service: the items that match every filter given."""

        def serve(call: Envelope) -> dict[str, Any]:
            try:
                given = [msgspec.convert(f, filters) for f in call.data]
            except msgspec.ValidationError as exc:
                return _error("01", f"Điều kiện lọc không hợp lệ: {exc}")
            chosen = [item for item in items if all(_matches(item, f) for f in given)]
            return _ok("Thành công", chosen)

        return serve

    integration = {
        "DongBoHoSoMC": sync_dossiers,
        "CapNhatTienDoHoSoMC": sync_progress,
        "TraCuuHoSo": look_up,
        "DongBoHoiDap": sync_questions,
        "LayDanhSachHoiDapGuiTuDVCQG": listing(CITIZEN_QUESTIONS, r.LocHoiDap),
    }
    share = {
        "LayDanhSachTTHC": listing(PROCEDURES, r.LocThuTuc),
        "LayDanhMucCoQuan": listing(AGENCIES, r.LocCoQuan),
        "LayDanhMucLinhVuc": listing(FIELDS, r.LocLinhVuc),
    }

    @post(INTEGRATION_PATH, status_code=200)
    async def integrate(request: Request[Any, Any, Any]) -> Any:
        return envelope(await request.body(), integration)

    @post(SHARE_PATH, status_code=200)
    async def shared(request: Request[Any, Any, Any]) -> Any:
        return envelope(await request.body(), share)

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


def _matches(item: Any, given: Any) -> bool:
    """Equal on every field given; ``TuNgay``/``DenNgay`` bound ``NgayGui``."""
    for name, value in msgspec.structs.asdict(given).items():
        if value is None:
            continue
        if name == "TuNgay":
            fits = item.NgayGui >= value
        elif name == "DenNgay":
            fits = item.NgayGui <= value
        else:
            fits = getattr(item, name, None) == value
        if not fits:
            return False
    return True


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
