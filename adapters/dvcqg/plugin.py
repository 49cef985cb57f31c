"""What the portal package brings to the gateway besides its adapter."""

from adapters.dvcqg.errors import ChecksumInvalid, DossierStatusRegression
from adapters.plugin import MockSystem, Plugin

PLUGIN = Plugin(
    name="dvcqg",
    description="the national public-service portal (Cổng Dịch vụ công Quốc gia)",
    mock=MockSystem(app="adapters.dvcqg.mock:create_app", default_port=9101),
    errors=(ChecksumInvalid, DossierStatusRegression),
    personal_fields=(
        "ChuHoSo",
        "SoDienThoai",
        "Email",
        # payers, askers, officers
        "HoTenNguoiNop",
        "SoCMNDNguoiNop",
        "DiaChiNguoiNop",
        "SoDienThoaiNguoiNop",
        "EmailNguoiNop",
        "NguoiHoi",
        "NguoiXuLy",
    ),
    usage={"DongBoHoSoMC": "dossiers_synced"},
)
