"""The document axis package's own error codes (declared in its plugin)."""

from __future__ import annotations

from adapters.errors import RequestRejected


class AgencyNotServed(RequestRejected):
    """The agency named is not one this LGSP serves: nobody may act for another province's."""

    code = "forbidden"
    status = 403
    title = "Not allowed for this client"
