"""The portal package's own error codes (declared in its plugin, known to the gateway)."""

from __future__ import annotations

from adapters.errors import RequestRejected


class ChecksumInvalid(RequestRejected):
    """A PayGov callback whose checksum is missing or does not verify: nobody we trust sent it."""

    code = "checksum_invalid"
    status = 403
    title = "Message checksum does not verify"


class DossierStatusRegression(RequestRejected):
    """A dossier status older than the one last synced: the portal would show it going back."""

    code = "dossier_status_regression"
    status = 409
    title = "Dossier status cannot move backwards"
