"""What the package brings besides its adapter: a mock, an error code, a personal field."""

from adapters.plugin import MockSystem, Plugin
from lgsp_landreg.errors import ParcelDisputed

PLUGIN = Plugin(
    name="landreg",
    description="a provincial land registry (sample third-party package)",
    mock=MockSystem(app="lgsp_landreg.mock:create_app", default_port=9199),
    errors=(ParcelDisputed,),
    personal_fields=("chu_su_dung",),
)
