"""Records of the national public-service portal (DVCQG), with the portal's field names.

Shapes from ``../shared/domain/dvcqg.md``. Dates are ``yyyyMMddHHmmss`` in
Asia/Ho_Chi_Minh time; dossier status is 1-10.
"""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec

PortalTime = Annotated[
    str,
    msgspec.Meta(
        pattern=r"^[0-9]{4}(0[1-9]|1[0-2])(0[1-9]|[12][0-9]|3[01])([01][0-9]|2[0-3])[0-5][0-9][0-5][0-9]$",
        description="a time yyyyMMddHHmmss (Asia/Ho_Chi_Minh), e.g. 20261122083000",
        examples=["20261122083000"],
    ),
]
DossierStatus = Annotated[
    int,
    msgspec.Meta(
        ge=1,
        le=10,
        description="TrangThaiHoSo: 1 new, 2 accepted, 3 not accepted, 4 in progress, "
        "5 more documents requested, 6 fees requested, 7 withdrawn, 8 stopped, "
        "9 finished, 10 result returned",
    ),
]
Code = Annotated[str, msgspec.Meta(min_length=1, max_length=100)]
Text = Annotated[str, msgspec.Meta(max_length=4000)]


class _Record(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    pass


class LePhi(_Record, kw_only=True):
    TenPhiLePhi: Text
    MaPhiLePhi: Code | None = None
    HinhThucThu: str | None = None
    Gia: Annotated[int, msgspec.Meta(ge=0)]
    LoaiPhiLePhi: str | None = None


class TepDinhKem(_Record, kw_only=True):
    """A file submitted with the dossier (TaiLieuNop) or another attachment."""

    TenTepDinhKem: Text
    TepDinhKemId: Code | None = None
    MaThanhPhanHoSo: Code | None = None
    DuongDanTaiTepTin: Text | None = None
    IsDeleted: bool = False


class GiayToKetQua(_Record, kw_only=True):
    TenGiayTo: Text
    MaThanhPhanHoSo: Code | None = None
    GiayToId: Code | None = None
    DuongDanTepTinKetQua: Text | None = None


class DongBoHoSoMC(_Record, kw_only=True):
    """One dossier received at a one-stop shop, as pushed to the portal."""

    MaHoSo: Code
    MaTTHC: Code
    TenTTHC: Text
    MaLinhVuc: Code | None = None
    TenLinhVuc: Text | None = None
    ChuHoSo: Annotated[str, msgspec.Meta(min_length=1, max_length=250)]
    LoaiDoiTuong: Literal[1, 2] = 1
    """1 citizen, 2 business."""
    MaDoiTuong: Code | None = None
    Email: Annotated[str, msgspec.Meta(pattern=r"^[^@\s]+@[^@\s]+$")] | None = None
    SoDienThoai: Annotated[str, msgspec.Meta(pattern=r"^\+?[0-9 .-]{8,15}$")] | None = None
    Fax: str | None = None
    TrichYeuHoSo: Text | None = None
    NgayTiepNhan: PortalTime
    NgayHenTra: PortalTime | None = None
    TrangThaiHoSo: DossierStatus
    NgayTra: PortalTime | None = None
    ThongTinTra: Text | None = None
    HinhThuc: Literal[0, 1] | None = None
    NgayKetThucXuLy: PortalTime | None = None
    DonViXuLy: Text | None = None
    GhiChu: Text | None = None
    DanhSachLePhi: list[LePhi] = []
    DanhSachTepDinhKemKhac: list[TepDinhKem] = []
    DanhSachHoSoBoSung: list[dict[str, str | int | None]] = []
    DanhSachGiayToKetQua: list[GiayToKetQua] = []
    TaiLieuNop: list[TepDinhKem] = []
