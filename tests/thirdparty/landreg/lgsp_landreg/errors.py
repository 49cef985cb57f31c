"""This package's own error code, declared in its plugin so the gateway knows it."""

from adapters.errors import RequestRejected


class ParcelDisputed(RequestRejected):
    code = "parcel_disputed"
    status = 409
    title = "The land parcel is under dispute"
