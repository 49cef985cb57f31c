"""Between the gateway's JSON face and the national SOAP service: requests out, answers back.

The SOAP side's names and shapes are those of ``schemas/population/population.wsdl``
(from public samples); the JSON side is ``schemas.population``. Nothing else
in the adapter knows either.
"""

from __future__ import annotations

from typing import Any

from schemas.population import PROVINCES, CitizenLookupRequest, CitizenVerifyRequest
from schemas.population.answers import ChuHo, CongDan, DiaChi, HoVaTen, NguoiLienQuan
from schemas.population.ids import Gender

Query = CitizenLookupRequest | CitizenVerifyRequest


def soap_birth(birth: str) -> dict[str, str]:
    """``YYYY-MM-DD`` -> ``{NgayThangNam: yyyyMMdd}``; ``YYYY`` -> ``{Nam: yyyy}``."""
    if len(birth) == 4:
        return {"Nam": birth}
    return {"NgayThangNam": birth.replace("-", "")}


def compared_fields(query: Query) -> list[str]:
    """The declared fields that go upstream, in request order."""
    sent = {"so_dinh_danh": True, "ho_va_ten": query.ho_va_ten, "ngay_sinh": query.ngay_sinh}
    return [name for name, value in sent.items() if value]


def soap_query(query: Query) -> dict[str, Any]:
    """The search key part of a request: what the caller declared."""
    fields: dict[str, Any] = {"SoDinhDanh": query.so_dinh_danh, "HoVaTen": query.ho_va_ten}
    if query.ngay_sinh is not None:
        fields["NgayThangNamSinh"] = soap_birth(query.ngay_sinh)
    return {k: v for k, v in fields.items() if v is not None}


def citizen(data: dict[str, Any]) -> CongDan:
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


# GioiTinh: "1"/"2" is our guess at the code table; the words are seen in samples too.
_GENDERS: dict[str, Gender] = {"1": "nam", "2": "nu", "nam": "nam", "nữ": "nu", "nu": "nu"}


def gender(value: str | None) -> Gender | None:
    """``nam``/``nu``; None for a value we cannot read (never guessed)."""
    return None if value is None else _GENDERS.get(value.strip().casefold())


def birth_date(value: dict[str, Any] | None) -> str | None:
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


def _name(value: dict[str, Any] | None) -> HoVaTen | None:
    if value is None:
        return None
    parts = [value.get("Ho"), value.get("ChuDem"), value.get("Ten")]
    full = " ".join(p for p in parts if p)
    return HoVaTen(ho=parts[0], chu_dem=parts[1], ten=parts[2], day_du=full or None)


def _address(value: dict[str, Any] | None) -> DiaChi | None:
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


def _relative(value: dict[str, Any] | None) -> NguoiLienQuan | None:
    if value is None:
        return None
    return NguoiLienQuan(
        ho_va_ten=value.get("HoVaTen"),
        so_dinh_danh=value.get("SoDinhDanh"),
        so_cmnd=value.get("SoCMND"),
        quoc_tich=value.get("QuocTich"),
    )


def _head(value: dict[str, Any] | None) -> ChuHo | None:
    if value is None:
        return None
    return ChuHo(
        quan_he=value.get("QuanHe"),
        ho_va_ten=value.get("HoVaTen"),
        so_dinh_danh=value.get("SoDinhDanh"),
        so_cmnd=value.get("SoCMND"),
    )
