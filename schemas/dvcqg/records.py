"""Dossier, catalogue and question records of the portal (DVCQG), with its field names.

Shapes from the portal's public descriptions and OpenCPS. Records the gateway sends on an
agency's behalf forbid unknown fields (a typo must not vanish silently);
records the portal sends back are read leniently, keeping only the fields
named here (the portal is the source of truth and may add fields).
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal
from zoneinfo import ZoneInfo

import msgspec

PORTAL_ZONE = ZoneInfo("Asia/Ho_Chi_Minh")
PORTAL_TIME_FORMAT = "%Y%m%d%H%M%S"

PortalTime = Annotated[
    str,
    msgspec.Meta(
        pattern=r"^[0-9]{4}(0[1-9]|1[0-2])(0[1-9]|[12][0-9]|3[01])([01][0-9]|2[0-3])[0-5][0-9][0-5][0-9]$",
        description="a time yyyyMMddHHmmss (Asia/Ho_Chi_Minh), e.g. 20261122083000",
        examples=["20261122083000"],
    ),
]
STATUS_NAMES: dict[int, str] = {
    1: "newly registered",
    2: "accepted",
    3: "not accepted",
    4: "in progress",
    5: "more documents requested",
    6: "payment of fees requested",
    7: "withdrawn by the citizen",
    8: "processing stopped",
    9: "processing finished",
    10: "result returned",
}
DossierStatus = Annotated[
    int,
    msgspec.Meta(
        ge=1,
        le=10,
        description="TrangThaiHoSo: "
        + ", ".join(f"{code} {name}" for code, name in STATUS_NAMES.items()),
    ),
]
Code = Annotated[str, msgspec.Meta(min_length=1, max_length=100)]
Text = Annotated[str, msgspec.Meta(max_length=4000)]
Name = Annotated[str, msgspec.Meta(min_length=1, max_length=250)]
EmailAddress = Annotated[str, msgspec.Meta(pattern=r"^[^@\s]+@[^@\s]+$")]
PhoneNumber = Annotated[str, msgspec.Meta(pattern=r"^\+?[0-9 .-]{8,15}$")]


def portal_time(moment: dt.datetime) -> str:
    """``moment`` as the portal writes times: yyyyMMddHHmmss on Vietnam's clock."""
    return moment.astimezone(PORTAL_ZONE).strftime(PORTAL_TIME_FORMAT)


def status_name(code: int) -> str:
    return f"{code} ({STATUS_NAMES.get(code, 'unknown')})"


class _Record(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Sent by the gateway on an agency's behalf: every field must be one the portal knows."""


class _PortalRecord(msgspec.Struct, kw_only=True, omit_defaults=True):
    """Received from the portal: fields not named here are dropped, empty ones not passed on."""


# --- dossiers (DongBoHoSoMC, CapNhatTienDoHoSoMC, TraCuuHoSo) ---


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
    SoBienNhan: Code | None = None
    """The receipt number given to the citizen, when it differs from MaHoSo."""
    MaTTHC: Code
    TenTTHC: Text
    MaLinhVuc: Code | None = None
    TenLinhVuc: Text | None = None
    ChuHoSo: Name
    LoaiDoiTuong: Literal[1, 2] = 1
    """1 citizen, 2 business."""
    MaDoiTuong: Code | None = None
    ThongTinKhac: Text | None = None
    Email: EmailAddress | None = None
    SoDienThoai: PhoneNumber | None = None
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


class CapNhatTienDoHoSoMC(_Record, kw_only=True):
    """One processing step of a dossier; ``TrangThai`` is the dossier's status after it."""

    MaHoSo: Code
    NguoiXuLy: Name
    ChucDanh: Text | None = None
    ThoiDiemXuLy: PortalTime
    PhongBanXuLy: Text | None = None
    NoiDungXuLy: Text
    TrangThai: DossierStatus
    NgayBatDau: PortalTime | None = None
    NgayKetThucTheoQuyDinh: PortalTime | None = None


class TraCuuHoSo(_Record, kw_only=True):
    MaHoSo: Code


class DongBoKetQua(_PortalRecord, kw_only=True):
    """The portal's receipt for a synced dossier or progress step."""

    MaHoSo: str
    TrangThaiHoSo: int | None = None
    ThoiGianDongBo: str | None = None


class HoSo(_PortalRecord, kw_only=True):
    """A dossier as the portal knows it (TraCuuHoSo's answer); times as the portal wrote them."""

    MaHoSo: str
    SoBienNhan: str | None = None
    MaTTHC: str
    TenTTHC: str
    MaLinhVuc: str | None = None
    TenLinhVuc: str | None = None
    TrangThaiHoSo: DossierStatus
    NgayTiepNhan: str | None = None
    NgayHenTra: str | None = None
    NgayTra: str | None = None
    NgayKetThucXuLy: str | None = None
    DonViXuLy: str | None = None


# --- catalogues (LayDanhSachTTHC, LayDanhMucCoQuan, LayDanhMucLinhVuc) ---


class LocThuTuc(_Record, kw_only=True):
    """Query filters of LayDanhSachTTHC."""

    MaLinhVuc: Code | None = None
    MaCoQuan: Code | None = None


class LocCoQuan(_Record, kw_only=True):
    MaCoQuanCha: Code | None = None


class LocLinhVuc(_Record, kw_only=True):
    MaNganh: Code | None = None


class LayThuTuc(_Record, kw_only=True):
    """The procedure LayThuTuc asks for."""

    MaTTHC: Code


class ThuTucHanhChinh(_PortalRecord, kw_only=True):
    MaTTHC: str
    TenTTHC: str
    MaLinhVuc: str | None = None
    TenLinhVuc: str | None = None
    MaCoQuan: str | None = None
    CapThucHien: str | None = None
    MucDo: int | None = None
    """Online service level (2, 3 or 4)."""
    ThoiHanGiaiQuyet: str | None = None


class ThuTucChiTiet(ThuTucHanhChinh, kw_only=True):
    """One procedure (the answer of LayThuTuc), with every field it belongs to."""

    LinhVucThucHien: list[LinhVuc] = []


class CoQuan(_PortalRecord, kw_only=True):
    MaCoQuan: str
    TenCoQuan: str
    MaCoQuanCha: str | None = None
    CapCoQuan: str | None = None


class LinhVuc(_PortalRecord, kw_only=True):
    MaLinhVuc: str
    TenLinhVuc: str
    MaNganh: str | None = None


# --- questions (DongBoHoiDap, LayDanhSachHoiDapGuiTuDVCQG) ---


class DongBoHoiDap(_Record, kw_only=True):
    """A citizen's question received by the province, with its answer once there is one."""

    MaCauHoi: Code
    TieuDe: Text
    NoiDungCauHoi: Text
    NgayGui: PortalTime
    MaLinhVuc: Code | None = None
    MaCoQuan: Code | None = None
    NguoiHoi: Name | None = None
    Email: EmailAddress | None = None
    NoiDungTraLoi: Text | None = None
    NgayTraLoi: PortalTime | None = None
    DonViTraLoi: Text | None = None


class DongBoHoiDapKetQua(_PortalRecord, kw_only=True):
    """The portal's receipt for a synced question."""

    MaCauHoi: str
    ThoiGianDongBo: str | None = None


class LocHoiDap(_Record, kw_only=True):
    """Query filters of LayDanhSachHoiDapGuiTuDVCQG."""

    TuNgay: PortalTime | None = None
    DenNgay: PortalTime | None = None
    MaCoQuan: Code | None = None


class CauHoiDVCQG(_PortalRecord, kw_only=True):
    """A question a citizen sent through the portal, for the province to answer.

    The portal's list (HOIDAPID, NOIDUNG, MALINHVUC, MADONVI, ...) has no title
    or date: ``TieuDe`` and ``NgayGui`` are there only when the portal gives them.
    """

    MaCauHoi: str
    TieuDe: str | None = None
    NoiDungCauHoi: str
    NgayGui: str | None = None
    MaLinhVuc: str | None = None
    MaCoQuan: str | None = None
