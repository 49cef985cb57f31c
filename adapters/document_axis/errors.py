"""The document axis package's own error codes (declared in its plugin)."""

from __future__ import annotations

from adapters.errors import RequestRejected


class AgencyNotServed(RequestRejected):
    """The agency named is not one this LGSP serves: nobody may act for another province's."""

    code = "forbidden"
    status = 403
    title = "Not allowed for this client"


class DocumentNotFound(RequestRejected):
    """No document of that id was sent through this gateway (its receivers are unknown)."""

    code = "not_found"
    status = 404
    title = "Not found"


class NotTheSender(RequestRejected):
    """A recall, update or replace of a document another agency sent: only its sender may."""

    code = "not_the_sender"
    status = 403
    title = "Only the sender may recall or change a document"
