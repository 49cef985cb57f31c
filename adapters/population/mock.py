"""A mock national population database: SOAP 1.1 as public clients show it, synthetic citizens.

``create_app()`` answers ``TraCuuThongTinCongDan`` (as C06 asks), one variant
of ``XacThucThongTinCongDan`` (its ``verify_profile`` option: ``plain`` or
anhnbt's ``suffixed``) and anhnbt's ``XacMinhThongTinNhanThan``, at any path,
after checking the data-exchange platform's headers (a bad or stale
signature, a wrong ``ApiKey`` or ``X-Road-Client``: HTTP 401 with a SOAP
fault; no ``SOAPAction``: 400). It answers ``CongdanCollection`` as anhnbt's
``CongdanCollection.xsd`` has it (attributes ``SoCongDan, GhiChu,
ThoiDiemDuLieu, id``; ``Cha``/``Me``/``VoChong`` as ``SoDinhDanh, QuocTich,
HoVaTen{Ho, ChuDem, Ten}``). Nobody found is an empty ``CongdanCollection``
or ``TonTai`` false. Its element names, namespaces and the signature check
are its own copy, never the adapter's, so a wrong detail on one side fails a test.

The population is generated from a seed, so every run has the same citizens:
Vietnamese names, IDs whose province, century/gender digit and birth year
agree, addresses in real provinces. Nobody in it is a real person. The three
citizens of the README (``KNOWN``) are always there with the same details.

The app is wrapped by ``MockKit`` (counters per SOAP operation, faults on
demand, ``/__mock/`` control API).
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import itertools
import random
import time
import unicodedata
from collections.abc import Iterable
from typing import Any, Literal

import msgspec
from litestar import Litestar, Request, Response, post
from litestar.types import ASGIApp, Scope
from lxml import etree

from adapters.mockkit import MockKit
from schemas import xmlsafe
from schemas.population import PROVINCES
from schemas.population.answers import ChuHo, CongDan, DiaChi, HoVaTen, NguoiLienQuan
from schemas.population.ids import Gender, century_gender_digit

DEFAULT_PORT = 9102

# Demo credentials of the mock (public, local use only): the default config's too.
DEMO_USER = "lgsp-demo"
DEMO_SECRET = "demo-population-secret-2026"
DEMO_X_ROAD_CLIENT = "VN/GOV/000.00.11.H53/LGSP"
DEMO_API_KEY = "demo-population-apikey-2026"
MAX_CLOCK_SKEW_MS = 5 * 60 * 1000

SOAP_ENV = "http://schemas.xmlsoap.org/soap/envelope/"
BCA = "http://dancuquocgia.bca"
QLDC = "http://gtel.vn/qldc"
MIC = "http://www.mic.gov.vn/dancu/1.0"
XML = "text/xml; charset=utf-8"
LOOKUP = "TraCuuThongTinCongDan"
RELATIVES = "XacMinhThongTinNhanThan"
VerifyProfile = Literal["plain", "suffixed"]
VERIFY: dict[VerifyProfile, tuple[str, str]] = {
    "plain": ("XacThucThongTinCongDan", "KetQuaXacThuc"),
    "suffixed": ("XacThucThongTinCongDanRequest", "KetQuaXacThucResponse"),
}
"""(request element, answer element) of each public variant."""


def _place(code: str, detail: str) -> DiaChi:
    """An address in province ``code`` (the ID's three digits); answers carry two."""
    return DiaChi(
        ma_tinh=code[1:],
        ten_tinh=PROVINCES[code],
        ma_quan_huyen=None,
        ma_phuong_xa=None,
        chi_tiet=f"{detail}, {PROVINCES[code]}",
        quoc_gia="VN",
    )


def _name(ho: str, chu_dem: str, ten: str) -> HoVaTen:
    return HoVaTen(ho=ho, chu_dem=chu_dem, ten=ten, day_du=" ".join((ho, chu_dem, ten)))


def _known(
    so_dinh_danh: str,
    name: tuple[str, str, str],
    gioi_tinh: Gender,
    ngay_sinh: str,
    dan_toc: str,
    ton_giao: str,
    que_quan: str,
    thuong_tru: str,
    chu_ho: tuple[str, str],
    parents: tuple[NguoiLienQuan | None, NguoiLienQuan | None] = (None, None),
) -> CongDan:
    code = so_dinh_danh[:3]
    return CongDan(
        so_dinh_danh=so_dinh_danh,
        so_cmnd=None,
        ho_va_ten=_name(*name),
        gioi_tinh=gioi_tinh,
        ngay_sinh=ngay_sinh,
        dan_toc=dan_toc,
        ton_giao=ton_giao,
        tinh_trang_hon_nhan=None,
        nhom_mau=None,
        quoc_tich="Việt Nam",
        noi_dang_ky_khai_sinh=_place(code, que_quan),
        que_quan=_place(code, que_quan),
        thuong_tru=_place(code, thuong_tru),
        noi_o_hien_tai=_place(code, thuong_tru),
        cha=parents[0],
        me=parents[1],
        vo_chong=None,
        nguoi_dai_dien=None,
        chu_ho=ChuHo(quan_he=chu_ho[0], ho_va_ten=chu_ho[1], so_dinh_danh=None, so_cmnd=None),
        so_so_ho_khau=None,
    )


# The README's citizens (config/mocks/population/*.json had them first).
KNOWN: dict[str, CongDan] = {
    c.so_dinh_danh or "": c
    for c in (
        _known(
            "001203012345", ("Nguyễn", "Văn", "An"), "nam", "2003-05-17", "Kinh", "Không",
            "Phường Láng", "Số 12 ngõ 34 phố Chùa Láng, Phường Láng", ("Con", "Nguyễn Văn Bình"),
            (
                NguoiLienQuan(ho_va_ten="Nguyễn Văn Bình", so_dinh_danh="001075001111",
                              so_cmnd=None, quoc_tich="VN"),
                NguoiLienQuan(ho_va_ten="Lê Thị Hoa", so_dinh_danh="001177002222",
                              so_cmnd=None, quoc_tich="VN"),
            ),
        ),
        _known(
            "079195001234", ("Trần", "Thị Bích", "Ngọc"), "nu", "1995-11-02", "Kinh",
            "Phật giáo", "Phường Sài Gòn", "45 đường Lê Thánh Tôn, Phường Sài Gòn",
            ("Chủ hộ", "Trần Thị Bích Ngọc"),
        ),
        _known(
            "038088004567", ("Lê", "Văn", "Hùng"), "nam", "1988-02-29", "Mường", "Không",
            "Xã Cẩm Thủy", "Thôn Đông, Xã Cẩm Thủy", ("Chủ hộ", "Lê Văn Hùng"),
        ),
    )
}  # fmt: skip

_FAMILY = ("Nguyễn", "Trần", "Lê", "Phạm", "Hoàng", "Huỳnh", "Phan", "Vũ", "Võ", "Đặng",
           "Bùi", "Đỗ", "Hồ", "Ngô", "Dương", "Lý")  # fmt: skip
_FAMILY_WEIGHTS = (38, 11, 9, 7, 5, 4, 4, 4, 3, 2, 2, 2, 2, 2, 2, 1)
_MIDDLE: dict[Gender, tuple[str, ...]] = {
    "nam": ("Văn", "Hữu", "Đức", "Minh", "Quang", "Công", "Thanh", "Xuân"),
    "nu": ("Thị", "Ngọc", "Thu", "Thanh", "Thị Mai", "Kim", "Hồng", "Thị Thanh"),
}
_GIVEN: dict[Gender, tuple[str, ...]] = {
    "nam": ("An", "Bình", "Cường", "Dũng", "Hải", "Hiếu", "Hùng", "Khoa", "Long", "Nam",
            "Phong", "Quân", "Sơn", "Tuấn", "Việt"),
    "nu": ("Anh", "Chi", "Dung", "Giang", "Hà", "Hương", "Lan", "Linh", "Mai", "Ngọc",
           "Nhung", "Phương", "Thảo", "Trang", "Yến"),
}  # fmt: skip
_STREETS = ("Lê Lợi", "Trần Phú", "Nguyễn Trãi", "Hùng Vương", "Quang Trung", "Lý Thường Kiệt")
_ETHNIC = (("Kinh", 85), ("Tày", 2), ("Thái", 2), ("Mường", 2), ("Khmer", 1), ("Hoa", 1))
_RELIGION = (("Không", 80), ("Phật giáo", 10), ("Công giáo", 7), ("Cao Đài", 2))


def _pick(rng: random.Random, weighted: tuple[tuple[str, int], ...]) -> str:
    return rng.choices([v for v, _ in weighted], [w for _, w in weighted])[0]


def _person(rng: random.Random, gender: Gender, family: str | None = None) -> HoVaTen:
    ho = family or rng.choices(_FAMILY, _FAMILY_WEIGHTS)[0]
    return _name(ho, rng.choice(_MIDDLE[gender]), rng.choice(_GIVEN[gender]))


def _relative(name: HoVaTen) -> NguoiLienQuan:
    return NguoiLienQuan(ho_va_ten=name.day_du, so_dinh_danh=None, so_cmnd=None, quoc_tich="VN")


def _synthetic(rng: random.Random, so_dinh_danh: str, gender: Gender, birth: str) -> CongDan:
    name = _person(rng, gender)
    born_in = so_dinh_danh[:3]
    lives_in = born_in if rng.random() < 0.7 else rng.choice(list(PROVINCES))
    home = f"Số {rng.randint(1, 300)} đường {rng.choice(_STREETS)}"
    married = int(birth[:4]) < 1998 and rng.random() < 0.8
    spouse = _person(rng, "nu" if gender == "nam" else "nam") if married else None
    head = rng.random() < 0.4
    return CongDan(
        so_dinh_danh=so_dinh_danh,
        so_cmnd=f"{rng.randrange(10**9):09d}" if int(birth[:4]) < 2000 else None,
        ho_va_ten=name,
        gioi_tinh=gender,
        ngay_sinh=birth,
        dan_toc=_pick(rng, _ETHNIC),
        ton_giao=_pick(rng, _RELIGION),
        tinh_trang_hon_nhan="Đã kết hôn" if married else "Chưa kết hôn",
        nhom_mau=rng.choice(("O", "A", "B", "AB")),
        quoc_tich="Việt Nam",
        noi_dang_ky_khai_sinh=_place(born_in, "UBND cấp xã nơi sinh"),
        que_quan=_place(born_in, f"Thôn {rng.choice(('Đông', 'Tây', 'Nam', 'Bắc', 'Trung'))}"),
        thuong_tru=_place(lives_in, home),
        noi_o_hien_tai=_place(lives_in, home),
        cha=_relative(_person(rng, "nam", family=name.ho)),
        me=_relative(_person(rng, "nu")),
        vo_chong=None if spouse is None else _relative(spouse),
        nguoi_dai_dien=None,
        chu_ho=ChuHo(
            quan_he="Chủ hộ" if head else rng.choice(("Con", "Vợ", "Chồng", "Cháu")),
            ho_va_ten=name.day_du if head else _person(rng, "nam", family=name.ho).day_du,
            so_dinh_danh=so_dinh_danh if head else None,
            so_cmnd=None,
        ),
        so_so_ho_khau=None,  # paper household books ended in 2023
    )


def synthetic_population(seed: int = 2026, size: int = 500) -> dict[str, CongDan]:
    """``size`` generated citizens by ID, plus ``KNOWN``; the same for the same seed."""
    rng = random.Random(seed)
    people = dict(KNOWN)
    while len(people) < size + len(KNOWN):
        gender: Gender = rng.choice(("nam", "nu"))
        year = rng.randint(1940, 2020)
        birth = f"{year}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}"
        code = rng.choice(list(PROVINCES))
        digits = f"{century_gender_digit(year, gender)}{year % 100:02d}{rng.randrange(10**6):06d}"
        so_dinh_danh = code + digits
        if so_dinh_danh not in people:
            people[so_dinh_danh] = _synthetic(rng, so_dinh_danh, gender, birth)
    return people


# -- SOAP -----------------------------------------------------------------------------


class _Declared(msgspec.Struct, kw_only=True):
    """What a request declared about the citizen (the search key)."""

    so_dinh_danh: str | None
    ho_va_ten: str | None
    nam: str | None
    ngay_thang_nam: str | None

    def matches(self, person: CongDan) -> bool:
        born = (person.ngay_sinh or "").replace("-", "")
        return (
            self.so_dinh_danh == person.so_dinh_danh
            and (self.ho_va_ten is None or _same_name(self.ho_va_ten, person))
            and (self.nam is None or self.nam == born[:4])
            and (self.ngay_thang_nam is None or self.ngay_thang_nam == born)
        )


def _same_name(declared: str, person: CongDan) -> bool:
    def norm(text: str) -> str:
        return " ".join(unicodedata.normalize("NFC", text).casefold().split())

    return person.ho_va_ten is not None and norm(declared) == norm(person.ho_va_ten.day_du or "")


def _declared(operation: etree._Element, namespace: str) -> _Declared:
    def text(path: str) -> str | None:
        found = operation.findtext(path, namespaces={"b": namespace})
        return found.strip() if found else None

    birth = text("b:NgayThangNamSinh")  # XacMinhThongTinNhanThan: one string
    return _Declared(
        so_dinh_danh=text("b:SoDinhDanh"),
        ho_va_ten=text("b:HoVaTen"),
        nam=text("b:NgayThangNamSinh/b:Nam") or (birth if birth and len(birth) == 4 else None),
        ngay_thang_nam=text("b:NgayThangNamSinh/b:NgayThangNam")
        or (birth if birth and len(birth) == 8 else None),
    )


def _envelope(content: etree._Element) -> bytes:
    root = etree.Element(f"{{{SOAP_ENV}}}Envelope", nsmap={"soapenv": SOAP_ENV})
    etree.SubElement(root, f"{{{SOAP_ENV}}}Header")
    etree.SubElement(root, f"{{{SOAP_ENV}}}Body").append(content)
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")


def fault(code: str, message: str) -> bytes:
    """A SOAP 1.1 fault envelope; ``code`` is ``Client`` (the caller's fault) or ``Server``."""
    element = etree.Element(f"{{{SOAP_ENV}}}Fault")
    etree.SubElement(element, "faultcode").text = f"soapenv:{code}"
    etree.SubElement(element, "faultstring").text = message
    return _envelope(element)


def _children(parent: etree._Element, fields: Iterable[tuple[str, Any]]) -> None:
    """Elements in XSD order; a None value is left out, a dict nests."""
    for name, value in fields:
        if value is None:
            continue
        child = etree.SubElement(parent, f"{{{MIC}}}{name}")
        if isinstance(value, dict):
            _children(child, value.items())
        else:
            child.text = str(value)


def _address(place: DiaChi | None) -> dict[str, Any] | None:
    if place is None:
        return None
    return {
        "MaTinhThanh": place.ma_tinh,
        "MaQuanHuyen": place.ma_quan_huyen,
        "MaPhuongXa": place.ma_phuong_xa,
        "ChiTiet": place.chi_tiet,
        "QuocGia": place.quoc_gia,
    }


def _related(person: NguoiLienQuan | None) -> dict[str, Any] | None:
    """Cha, Me, VoChong, NguoiDaiDien as anhnbt's CongdanCollection.xsd orders them."""
    if person is None:
        return None
    words = (person.ho_va_ten or "").split()
    name = {"Ho": words[0], "ChuDem": " ".join(words[1:-1]) or None, "Ten": words[-1]}
    return {
        "SoDinhDanh": person.so_dinh_danh,
        "QuocTich": person.quoc_tich,
        "HoVaTen": name if len(words) > 1 else None,
    }


def citizen_xml(person: CongDan) -> etree._Element:
    """``CongDan`` as the national system would send it (the adapter reads it back)."""
    name, head, born = person.ho_va_ten, person.chu_ho, person.ngay_sinh or ""
    element = etree.Element(f"{{{MIC}}}CongDan", nsmap={"dc": MIC})
    _children(
        element,
        [
            ("SoDinhDanh", person.so_dinh_danh),
            ("SoCMND", person.so_cmnd),
            ("HoVaTen", name and {"Ho": name.ho, "ChuDem": name.chu_dem, "Ten": name.ten}),
            ("GioiTinh", {"nam": "1", "nu": "2", None: None}[person.gioi_tinh]),
            ("DanToc", person.dan_toc),
            ("TonGiao", person.ton_giao),
            ("TinhTrangHonNhan", person.tinh_trang_hon_nhan),
            ("NhomMau", person.nhom_mau),
            ("NgayThangNamSinh", born and {"Nam": born[:4], "NgayThangNam": born.replace("-", "")}),
            ("NoiDangKyKhaiSinh", _address(person.noi_dang_ky_khai_sinh)),
            ("QueQuan", _address(person.que_quan)),
            ("ThuongTru", _address(person.thuong_tru)),
            ("NoiOHienTai", _address(person.noi_o_hien_tai)),
            ("QuocTich", person.quoc_tich),
            ("Cha", _related(person.cha)),
            ("Me", _related(person.me)),
            ("VoChong", _related(person.vo_chong)),
            ("NguoiDaiDien", _related(person.nguoi_dai_dien)),
            (
                "ChuHo",
                head
                and {
                    "QuanHe": head.quan_he,
                    "SoDinhDanh": head.so_dinh_danh,
                    "SoCMND": head.so_cmnd,
                    "HoVaTen": head.ho_va_ten,
                },
            ),
            ("SoSoHoKhau", person.so_so_ho_khau),
        ],
    )
    return element


class Credentials(msgspec.Struct, frozen=True, kw_only=True):
    """What the mock accepts; the adapter's settings of the same names must agree."""

    user: str
    secret: str
    x_road_client: str
    api_key: str
    auth_url: str | None
    """The URL hashed with the secret; None: the URL called (as the adapter's default)."""


def refusal(request: Request[Any, Any, Any], credentials: Credentials) -> str | None:
    """Why the platform's headers are not acceptable; None if they are."""
    headers = request.headers
    if headers.get("apikey") != credentials.api_key:
        return "ApiKey không hợp lệ"
    if headers.get("x-road-client") != credentials.x_road_client:
        return "X-Road-Client không được phép"
    timestamp = headers.get("timestamp", "")
    if not timestamp.isdigit() or abs(time.time() * 1000 - int(timestamp)) > MAX_CLOCK_SKEW_MS:
        return "Timestamp thiếu hoặc lệch quá 5 phút"
    scheme, _, token = headers.get("authorization", "").partition(" ")
    try:
        user, _, hashed = base64.b64decode(token, validate=True).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        user = hashed = ""
    auth_url = (
        credentials.auth_url or f"{request.url.scheme}://{request.url.netloc}{request.url.path}"
    )
    signed = auth_url + credentials.user + timestamp + credentials.secret
    expected = hashlib.sha256(signed.encode()).hexdigest()  # lowercase hex, as C06 writes it
    if scheme != "Basic" or user != credentials.user or hashed != expected:
        return "Xác thực không thành công"
    return None


def operation_of(_: Scope, body: bytes) -> str:
    """The SOAP body's first element, for the kit's counters and faults."""
    try:
        element = xmlsafe.parse(body).find(f"{{{SOAP_ENV}}}Body/*")
    except (ValueError, etree.XMLSyntaxError):  # UnsafeXml is a ValueError
        return ""
    return "" if element is None else etree.QName(element).localname


def create_app(
    *,
    seed: int = 2026,
    size: int = 500,
    user: str = DEMO_USER,
    secret: str = DEMO_SECRET,
    x_road_client: str = DEMO_X_ROAD_CLIENT,
    api_key: str = DEMO_API_KEY,
    auth_url: str | None = None,
    verify_profile: VerifyProfile = "plain",
) -> ASGIApp:
    """The mock service behind ``MockKit`` (``/__mock/stats``, ``/__mock/faults``, ...).

    ``seed`` and ``size`` choose the synthetic population; ``verify_profile`` the
    ``XacThucThongTinCongDan`` variant it speaks; the others are the credentials
    it accepts (``auth_url`` None: the URL called, the adapter's default).
    """
    people = synthetic_population(seed, size)
    expected = Credentials(
        user=user, secret=secret, x_road_client=x_road_client, api_key=api_key, auth_url=auth_url
    )
    if verify_profile not in VERIFY:
        raise ValueError(f"verify_profile {verify_profile!r}: one of {', '.join(VERIFY)}")
    verify_request, verify_answer = VERIFY[verify_profile]
    namespaces = {LOOKUP: BCA, verify_request: BCA, RELATIVES: QLDC}
    answered = itertools.count(1)

    def answer(status: int, body: bytes) -> Response[bytes]:
        return Response(body, status_code=status, media_type=XML)

    def collection(person: CongDan | None) -> etree._Element:
        element = etree.Element(f"{{{MIC}}}CongdanCollection", nsmap={"dc": MIC})
        element.set("SoCongDan", "1" if person is not None else "0")
        element.set("GhiChu", "")
        element.set("ThoiDiemDuLieu", dt.datetime.now(dt.UTC).isoformat(timespec="seconds"))
        element.set("id", f"mock-{next(answered):08d}")
        if person is not None:
            element.append(citizen_xml(person))
        return element

    @post(["/", "/{path:path}"], status_code=200)
    async def soap(request: Request[Any, Any, Any]) -> Response[bytes]:
        refused = refusal(request, expected)
        if refused is not None:
            return answer(401, fault("Client", refused))
        if "soapaction" not in request.headers:  # SOAP 1.1 over HTTP: present, even if ""
            return answer(400, fault("Client", "Thiếu SOAPAction"))
        try:
            operation = xmlsafe.parse(await request.body()).find(f"{{{SOAP_ENV}}}Body/*")
        except (ValueError, etree.XMLSyntaxError) as exc:
            return answer(500, fault("Client", f"Yêu cầu không hợp lệ: {exc}"))
        qname = None if operation is None else etree.QName(operation)
        if operation is None or qname is None or namespaces.get(qname.localname) != qname.namespace:
            shown = None if qname is None else qname.text
            return answer(500, fault("Client", f"Không hỗ trợ thao tác {shown!r}"))
        declared = _declared(operation, qname.namespace or "")
        person = people.get(declared.so_dinh_danh or "")
        found = person if person is not None and declared.matches(person) else None
        if qname.localname == verify_request:
            result = etree.Element(f"{{{BCA}}}{verify_answer}", nsmap={"ns2": BCA})
            etree.SubElement(result, f"{{{BCA}}}TonTai").text = "true" if found else "false"
            return answer(200, _envelope(result))
        return answer(200, _envelope(collection(found)))

    app = Litestar(route_handlers=[soap], openapi_config=None, logging_config=None, debug=False)
    return MockKit(operation_of=operation_of).wrap(app)
