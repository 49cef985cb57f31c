"""Between the gateway's JSON face and the national service's fields: requests out, answers back.

The SOAP side's names are those ``wire`` writes and reads (from public
clients); the JSON side is ``schemas.population``. Nothing else in the
adapter knows either.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Mapping
from typing import Any

from schemas.population import (
    PROVINCES,
    CitizenLookupRequest,
    CitizenRelativesRequest,
    CitizenVerifyRequest,
    DeclaredRelative,
)
from schemas.population.answers import (
    ChuHo,
    CongDan,
    DiaChi,
    HoVaTen,
    NguoiLienQuan,
    RelativeCheck,
)
from schemas.population.ids import Gender

Query = CitizenLookupRequest | CitizenVerifyRequest | CitizenRelativesRequest

COMPARED = {"SoDinhDanh": "so_dinh_danh", "HoVaTen": "ho_va_ten", "NgayThangNamSinh": "ngay_sinh"}
"""The search key's elements, by the JSON field a caller declared them in."""
RELATIVES = {"cha": "Cha", "me": "Me", "vo_chong": "VoChong", "nguoi_dai_dien": "NguoiDaiDien"}


def soap_birth(birth: str) -> dict[str, str]:
    """``YYYY-MM-DD`` -> ``{NgayThangNam: yyyyMMdd}``; ``YYYY`` -> ``{Nam: yyyy}`` (as C06)."""
    if len(birth) == 4:
        return {"Nam": birth}
    return {"NgayThangNam": birth.replace("-", "")}


def search_key(query: Query, *, plain_birth: bool = False) -> dict[str, Any]:
    """What the caller declared, by element name; ``plain_birth``: the date as one string."""
    fields: dict[str, Any] = {"SoDinhDanh": query.so_dinh_danh, "HoVaTen": query.ho_va_ten}
    if query.ngay_sinh is not None:
        birth = soap_birth(query.ngay_sinh)
        fields["NgayThangNamSinh"] = next(iter(birth.values())) if plain_birth else birth
    return {k: v for k, v in fields.items() if v is not None}


def compared_fields(sent: Mapping[str, Any]) -> list[str]:
    """The declared JSON fields that went upstream, in request order."""
    return [field for element, field in COMPARED.items() if sent.get(element)]


def citizen(data: Mapping[str, Any]) -> CongDan:
    return CongDan(
        so_dinh_danh=data.get("SoDinhDanh"),
        so_cmnd=data.get("SoCMND"),
        ho_va_ten=_name(data.get("HoVaTen")),
        gioi_tinh=gender(data.get("GioiTinh")),
        ngay_sinh=birth_date(data.get("NgayThangNamSinh")),
        dan_toc=data.get("DanToc"),
        ton_giao=data.get("TonGiao"),
        tinh_trang_hon_nhan=data.get("TinhTrangHonNhan"),
        nhom_mau=data.get("NhomMau"),
        quoc_tich=data.get("QuocTich"),
        noi_dang_ky_khai_sinh=_address(data.get("NoiDangKyKhaiSinh")),
        que_quan=_address(data.get("QueQuan")),
        thuong_tru=_address(data.get("ThuongTru")),
        noi_o_hien_tai=_address(data.get("NoiOHienTai")),
        cha=_relative(data.get("Cha")),
        me=_relative(data.get("Me")),
        vo_chong=_relative(data.get("VoChong")),
        nguoi_dai_dien=_relative(data.get("NguoiDaiDien")),
        chu_ho=_head(data.get("ChuHo")),
        so_so_ho_khau=data.get("SoSoHoKhau"),
    )


def check_relatives(
    declared: list[DeclaredRelative], data: Mapping[str, Any]
) -> list[RelativeCheck]:
    """Each declared relative against the one on record (by ID and name, as declared)."""
    checks = []
    for relative in declared:
        on_record = _relative(data.get(RELATIVES[relative.quan_he]))
        compared = [
            field for field in ("so_dinh_danh", "ho_va_ten") if getattr(relative, field) is not None
        ]
        matches = on_record is not None and all(
            _same(getattr(relative, field), getattr(on_record, field)) for field in compared
        )
        checks.append(RelativeCheck(quan_he=relative.quan_he, khop=matches, da_doi_chieu=compared))
    return checks


def _same(declared: str | None, recorded: str | None) -> bool:
    def norm(text: str) -> str:
        return " ".join(unicodedata.normalize("NFC", text).casefold().split())

    return declared is not None and recorded is not None and norm(declared) == norm(recorded)


# GioiTinh: "1"/"2" is our guess at the code table; the words are seen in samples too.
_GENDERS: dict[str, Gender] = {"1": "nam", "2": "nu", "nam": "nam", "nữ": "nu", "nu": "nu"}


def gender(value: str | None) -> Gender | None:
    """``nam``/``nu``; None for a value we cannot read (never guessed)."""
    return None if value is None else _GENDERS.get(value.strip().casefold())


def birth_date(value: Mapping[str, Any] | None) -> str | None:
    """``YYYY-MM-DD`` from NgayThangNam (yyyyMMdd), else ``YYYY`` from Nam; odd values as given."""
    if not value:
        return None
    full = value.get("NgayThangNam")
    if full:
        digits = str(full)
        if len(digits) == 8 and digits.isdigit():
            return f"{digits[:4]}-{digits[4:6]}-{digits[6:]}"
        return digits
    year = value.get("Nam")
    return None if year is None else str(year)


def _name(value: Mapping[str, Any] | None) -> HoVaTen | None:
    if value is None:
        return None
    parts = [value.get("Ho"), value.get("ChuDem"), value.get("Ten")]
    full = " ".join(p for p in parts if p)
    return HoVaTen(ho=parts[0], chu_dem=parts[1], ten=parts[2], day_du=full or None)


def _full_name(value: Mapping[str, Any] | str | None) -> str | None:
    """A relative's name written out: ``HoVaTen{Ho, ChuDem, Ten}``, or an older plain text."""
    if value is None or isinstance(value, str):
        return value
    name = _name(value)
    return None if name is None else name.day_du


def _address(value: Mapping[str, Any] | None) -> DiaChi | None:
    if value is None:
        return None
    province = value.get("MaTinhThanh")
    return DiaChi(
        ma_tinh=province,
        ten_tinh=PROVINCES.get(province.zfill(3)) if province and province.isdigit() else None,
        ma_quan_huyen=value.get("MaQuanHuyen"),
        ma_phuong_xa=value.get("MaPhuongXa"),
        chi_tiet=value.get("ChiTiet"),
        quoc_gia=value.get("QuocGia"),
    )


def _relative(value: Mapping[str, Any] | None) -> NguoiLienQuan | None:
    if value is None:
        return None
    return NguoiLienQuan(
        ho_va_ten=_full_name(value.get("HoVaTen")),
        so_dinh_danh=value.get("SoDinhDanh"),
        so_cmnd=value.get("SoCMND"),
        quoc_tich=value.get("QuocTich"),
    )


def _head(value: Mapping[str, Any] | None) -> ChuHo | None:
    if value is None:
        return None
    return ChuHo(
        quan_he=value.get("QuanHe"),
        ho_va_ten=_full_name(value.get("HoVaTen")),
        so_dinh_danh=value.get("SoDinhDanh"),
        so_cmnd=value.get("SoCMND"),
    )
