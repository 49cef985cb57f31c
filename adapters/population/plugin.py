"""What the population database package brings to the gateway besides its adapter."""

from adapters.plugin import MockSystem, Plugin

PLUGIN = Plugin(
    name="population",
    description="the national population database (CSDL quốc gia về dân cư)",
    mock=MockSystem(app="adapters.population.mock:create_app", default_port=9102),
    personal_fields=(
        # the gateway's JSON face
        "so_dinh_danh",
        "so_cmnd",
        "ho_va_ten",
        "ngay_sinh",
        "cong_dan",
        "chi_tiet",
        # the national system's own names
        "SoDinhDanh",
        "SoCMND",
        "HoVaTen",
        "NgayThangNamSinh",
    ),
)
