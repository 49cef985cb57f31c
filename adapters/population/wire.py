"""The national population service's SOAP, as its public clients write and read it.

Requests are written as the C06 client (``Module.Common.C06.CallApi037``)
writes ``TraCuuThongTinCongDan``: ``soapenv``/``dan`` prefixes, an empty
``soapenv:Header``, the fields in its order, each in ``http://dancuquocgia.bca``.
``XacMinhThongTinNhanThan`` follows ``anhnbt/lgsp`` (``XacMinhThongTinNhanThan``
in ``http://gtel.vn/qldc``, a plain ``NgayThangNamSinh``), and
``XacThucThongTinCongDan`` one of the two public variants (``VERIFY_PROFILES``).

Answers are read by local name, in any order and any namespace, never with a
schema: a ``CongdanCollection`` (anhnbt's ``CongdanCollection.xsd``: its
attributes, ``Cha``/``Me`` as ``SoDinhDanh, QuocTich, HoVaTen{Ho, ChuDem,
Ten}``) or a ``TonTai``. An element we do not know is reported, not fatal:
zeep's lenient mode would not do (it matches a sequence in order and drops
every known element after an unexpected one).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal

import msgspec
from lxml import etree

from schemas import xmlsafe

SOAP_ENV = "http://schemas.xmlsoap.org/soap/envelope/"
DAN = "http://dancuquocgia.bca"
QLDC = "http://gtel.vn/qldc"

LOOKUP = "TraCuuThongTinCongDan"
RELATIVES = "XacMinhThongTinNhanThan"

LOOKUP_FIELDS = (
    "MaYeuCau",
    "MaDVC",
    "MaTichHop",
    "MaCanBo",
    "MaDonVi",
    "TaiKhoan",
    "SoDienThoai",
    "SoDinhDanh",
    "SoCMND",
    "HoVaTen",
    "NgayThangNamSinh",
)
"""C06's order (it sends SoDinhDanh; SoCMND, the old ID, takes its place when given)."""
RELATIVES_FIELDS = (
    "MaYeuCau",
    "MaDVC",
    "MaTichHop",
    "MaDonVi",
    "MaCanBo",
    "SoDinhDanh",
    "SoCMND",
    "HoVaTen",
    "NgayThangNamSinh",
)
"""anhnbt's ``XacMinhThongTinNhanThan``: the fields in its order; the birth date one string."""


class VerifyProfile(msgspec.Struct, frozen=True):
    """How one public variant names ``XacThucThongTinCongDan``'s elements."""

    request: str
    service_code: str
    """The element that carries our ``MaDVC``."""
    fields: tuple[str, ...]
    answer: str


VerifyProfileName = Literal["plain", "suffixed"]
VERIFY_PROFILES: Mapping[VerifyProfileName, VerifyProfile] = {
    # Named like the lookup, with its fields; answer KetQuaXacThuc{TonTai}.
    "plain": VerifyProfile(
        request="XacThucThongTinCongDan",
        service_code="MaDVC",
        fields=LOOKUP_FIELDS,
        answer="KetQuaXacThuc",
    ),
    # anhnbt (Spring-WS, request/response suffixes): XacThucThongTinCongDan.xsd, input-output.xml.
    "suffixed": VerifyProfile(
        request="XacThucThongTinCongDanRequest",
        service_code="MaDichVu",
        fields=("MaYeuCau", "MaDichVu", "MaCanBo", "SoDinhDanh", "SoCMND", "HoVaTen"),
        answer="KetQuaXacThucResponse",
    ),
}

Known = Mapping[str, "Known | None"]
"""Element names we read below an element; a name mapped to None holds text."""
_NAME: Known = {"Ho": None, "ChuDem": None, "Ten": None}
_ADDRESS: Known = dict.fromkeys(
    ("MaTinhThanh", "MaQuanHuyen", "MaPhuongXa", "ChiTiet", "QuocGia"), None
)
_RELATIVE: Known = {"SoDinhDanh": None, "SoCMND": None, "QuocTich": None, "HoVaTen": _NAME}
CITIZEN: Known = {
    "SoDinhDanh": None,
    "SoCMND": None,
    "HoVaTen": _NAME,
    "GioiTinh": None,
    "DanToc": None,
    "TonGiao": None,
    "TinhTrangHonNhan": None,
    "NhomMau": None,
    "NgayThangNamSinh": {"Nam": None, "NgayThangNam": None},
    "NoiDangKyKhaiSinh": _ADDRESS,
    "QueQuan": _ADDRESS,
    "ThuongTru": _ADDRESS,
    "NoiOHienTai": _ADDRESS,
    "QuocTich": None,
    "Cha": _RELATIVE,
    "Me": _RELATIVE,
    "VoChong": _RELATIVE,
    "NguoiDaiDien": _RELATIVE,
    "ChuHo": {"QuanHe": None, "SoDinhDanh": None, "SoCMND": None, "HoVaTen": _NAME},
    "SoSoHoKhau": None,
}
COLLECTION_ATTRIBUTES = ("SoCongDan", "GhiChu", "ThoiDiemDuLieu", "id")


class Fault(msgspec.Struct, frozen=True):
    code: str
    """``Client`` (the sender's fault) or ``Server``, without its prefix."""
    message: str


class Collection(msgspec.Struct, kw_only=True):
    """A ``CongdanCollection``: its attributes, its citizens, what we did not know in it."""

    attributes: dict[str, str]
    citizens: list[dict[str, Any]]
    unknown: list[str]
    """Paths of elements we do not read, e.g. ``CongDan/SoDinhDanhCu``."""


def envelope(
    operation: str, namespace: str, fields: Sequence[str], values: Mapping[str, Any]
) -> bytes:
    """A request as C06 writes one: ``fields`` in order, each value given and not empty."""
    root = etree.Element(f"{{{SOAP_ENV}}}Envelope", nsmap={"soapenv": SOAP_ENV, "dan": namespace})
    etree.SubElement(root, f"{{{SOAP_ENV}}}Header")
    body = etree.SubElement(root, f"{{{SOAP_ENV}}}Body")
    _children(etree.SubElement(body, f"{{{namespace}}}{operation}"), namespace, fields, values)
    return etree.tostring(root, encoding="utf-8", xml_declaration=False)


def _children(
    parent: etree._Element, namespace: str, fields: Sequence[str], values: Mapping[str, Any]
) -> None:
    for name in fields:
        value = values.get(name)
        if value is None or value == "":
            continue
        child = etree.SubElement(parent, f"{{{namespace}}}{name}")
        if isinstance(value, Mapping):
            _children(child, namespace, list(value), value)
        else:
            child.text = str(value)


def answer(content: bytes) -> etree._Element | Fault:
    """The Body's answer element, or the fault it holds.

    Raises ``ValueError`` (unsafe, or not an envelope with an answer) or
    ``etree.XMLSyntaxError`` (not XML).
    """
    root = xmlsafe.parse(content).getroot()
    if etree.QName(root).localname != "Envelope":
        raise ValueError(f"not a SOAP envelope: <{etree.QName(root).localname}>")
    body = next((e for e in root if _local(e) == "Body"), None)
    element = None if body is None else next(iter(_elements(body)), None)
    if element is None:
        raise ValueError("the SOAP Body is empty")
    if _local(element) == "Fault":
        code = (_text(element, "faultcode") or "").rpartition(":")[2]
        return Fault(code=code, message=_text(element, "faultstring") or "(no faultstring)")
    return element


def collection(element: etree._Element) -> Collection | None:
    """The ``CongdanCollection`` at or below ``element``; None when there is none."""
    found = element if _local(element) == "CongdanCollection" else None
    if found is None:
        found = next((e for e in element.iter() if _local(e) == "CongdanCollection"), None)
    if found is None:
        return None
    unknown: list[str] = []
    citizens = []
    for child in _elements(found):
        if _local(child) == "CongDan":
            citizens.append(_read(child, CITIZEN, "CongDan", unknown))
        else:
            unknown.append(_local(child))
    attributes = {name: found.get(name) or "" for name in COLLECTION_ATTRIBUTES if found.get(name)}
    return Collection(attributes=attributes, citizens=citizens, unknown=unknown)


def ton_tai(element: etree._Element) -> bool | None:
    """The ``TonTai`` at or below ``element`` (``true``/``1``); None when there is none."""
    found = next((e for e in element.iter() if _local(e) == "TonTai"), None)
    if found is None:
        return None
    return (found.text or "").strip().casefold() in ("true", "1")


def _read(element: etree._Element, known: Known, path: str, unknown: list[str]) -> dict[str, Any]:
    data: dict[str, Any] = {}
    for child in _elements(element):
        name = _local(child)
        if name not in known:
            unknown.append(f"{path}/{name}")
            continue
        inner = known[name]
        if inner is not None and len(child):
            data[name] = _read(child, inner, f"{path}/{name}", unknown)
        elif inner is None or (child.text or "").strip():
            data[name] = (child.text or "").strip() or None  # an older writer's plain text
    return data


def _elements(parent: etree._Element) -> list[etree._Element]:
    return [child for child in parent if isinstance(child.tag, str)]


def _local(element: etree._Element) -> str:
    return etree.QName(element).localname


def _text(parent: etree._Element, name: str) -> str | None:
    found = next((e for e in _elements(parent) if _local(e) == name), None)
    return None if found is None or found.text is None else found.text.strip()
