"""What the document axis package brings to the gateway besides its adapter."""

from adapters.document_axis.errors import AgencyNotServed, DocumentNotFound, NotTheSender
from adapters.plugin import MockSystem, Plugin

PLUGIN = Plugin(
    name="document-axis",
    description="the national document-exchange axis (Trục liên thông văn bản quốc gia)",
    mock=MockSystem(app="adapters.document_axis.mock:create_app", default_port=9103),
    errors=(AgencyNotServed, DocumentNotFound, NotTheSender),
    body_schemas={"edxml": "adapters.document_axis.schema:EdxmlBody"},
    usage={"sendEdoc": "documents_sent"},
)
