"""Records of the national public-service portal (DVCQG), with the portal's field names.

Routes name them as ``dvcqg.<Struct>`` (e.g. ``request: {schema: dvcqg.DongBoHoSoMC}``).
``records`` holds dossiers, catalogues and questions; ``paygov`` the online
payment records and their checksum.
"""

from schemas.dvcqg.paygov import (
    HoaDon,
    PayGovAnswer,
    PayGovCallback,
    PayGovRequest,
    PhiLePhi,
    ThanhToanHoSo,
    checksum,
)
from schemas.dvcqg.records import (
    STATUS_NAMES,
    CapNhatTienDoHoSoMC,
    CauHoiDVCQG,
    CoQuan,
    DongBoHoiDap,
    DongBoHoiDapKetQua,
    DongBoHoSoMC,
    DongBoKetQua,
    GiayToKetQua,
    HoSo,
    LayThuTuc,
    LePhi,
    LinhVuc,
    LocCoQuan,
    LocHoiDap,
    LocLinhVuc,
    LocThuTuc,
    TepDinhKem,
    ThuTucChiTiet,
    ThuTucHanhChinh,
    TraCuuHoSo,
    portal_time,
    status_name,
)

__all__ = [
    "STATUS_NAMES",
    "CapNhatTienDoHoSoMC",
    "CauHoiDVCQG",
    "CoQuan",
    "DongBoHoSoMC",
    "DongBoHoiDap",
    "DongBoHoiDapKetQua",
    "DongBoKetQua",
    "GiayToKetQua",
    "HoSo",
    "HoaDon",
    "LayThuTuc",
    "LePhi",
    "LinhVuc",
    "LocCoQuan",
    "LocHoiDap",
    "LocLinhVuc",
    "LocThuTuc",
    "PayGovAnswer",
    "PayGovCallback",
    "PayGovRequest",
    "PhiLePhi",
    "TepDinhKem",
    "ThanhToanHoSo",
    "ThuTucChiTiet",
    "ThuTucHanhChinh",
    "TraCuuHoSo",
    "checksum",
    "portal_time",
    "status_name",
]
