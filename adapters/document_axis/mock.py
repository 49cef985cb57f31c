"""A mock national document-exchange axis: one mailbox per account, on loopback.

It speaks the protocol as VNPT's Java SDK (``JAVA_SDK_VXP``) does, with its own
copy of the constants and its own signature check, so that the adapter and
the mock cannot agree on a wrong detail unnoticed:

- every call is a POST whose parameters are ``XroadVnpt-`` headers, signed:
  ``XroadVnpt-sign-header`` (compact JSON of the signed headers),
  ``XroadVnpt-sign-header-key`` (their names, ``;``-joined),
  ``XroadVnpt-hash-header`` (hex HMAC-SHA256 of the sign-header keyed with
  the account's secret). An unsigned or wrongly signed call, or one whose
  headers differ from what was signed, gets the axis's FAIL answer;
- ``/sendEdoc``: ``from``, ``servicetype: eDoc``, ``messagetype`` ``edoc`` or
  ``status``, ``hash-file`` (SHA-256 hex, the SDK's unpadded form or padded);
  body the raw edXML (a trailing CRLF, as the SDK adds, is not part of it);
  the receivers are the edXML's To (a status: its ResponseFor); answers the
  top-level ``DocId``;
- ``/getReceivedEdocList``, ``/getSentEdocList``: ``servicetype`` and
  ``messagetype`` required; ``data`` = one item per receiver
  ``{docId, serviceType, messageType, created_time, updated_time, from, to,
  status, status_desc}``, every agency of the account (callers filter by ``to``);
- ``/getEdoc``: ``docId``; ``data`` = the edXML in base64;
- ``/updateStatus``: ``docid`` and ``status`` (``processing``, ``done``,
  ``fail``), and ``status_desc`` if sent; for the account's receivers;
- ``/countReceiveEdoc``, ``/countReceiveStatus``: ``count``.

Every answer has ``status`` (``OK``/``FAIL``), ``ErrorCode`` (``"0"`` for
success) and ``ErrorDesc``. An account's agencies are OrganId patterns
(``agencies``): the demo account has the province's (``*.H53``), and a
second account, ``vpcp-demo``, is Văn phòng Chính phủ on the other side.
Bodies are kept in a temp directory, not in memory.

Control, besides ``mockkit``'s (``/__mock/stats``, ``/__mock/faults``,
``/__mock/reset``)::

    POST /__mock/inbox/{organ_id}[,{organ_id}...][?docId=X]  edXML body: drop it into those
                                      mailboxes as if another province sent it
                                      (?type=status, ?from=<OrganId>)
    GET  /__mock/documents/{docId}    one message: who, hash, per-receiver status, replies
    GET  /__mock/documents/{docId}/content   its bytes
    GET  /__mock/mailbox/{organ_id}   every message received by that agency, any status
"""

from __future__ import annotations

import base64
import fnmatch
import hashlib
import hmac
import itertools
import json
import os
import re
import shutil
import tempfile
import time
from typing import Any

import msgspec
from litestar import Litestar, Request, Response, get, post, route
from litestar.params import FromPath
from litestar.types import ASGIApp, Scope

import schemas.edxml as edxml
from adapters.mockkit import CONTROL_PREFIX, MockKit

DEFAULT_PORT = 9103
DEMO_CREDENTIALS = {"lgsp-demo": "axis-demo-secret", "vpcp-demo": "vpcp-demo-secret"}
"""systemid -> secret; the demo config's is ``lgsp-demo`` (``LGSP_AXIS_SYSTEM_ID`` /
``LGSP_AXIS_SECRET``)."""
DEMO_AGENCIES = {"lgsp-demo": ["*.H53"], "vpcp-demo": ["000.00.00.G22"]}
"""systemid -> the OrganId patterns of the agencies registered under it."""
PREFIX = "xroadvnpt-"
SIGN_HEADER = PREFIX + "sign-header"
SIGN_KEYS = PREFIX + "sign-header-key"
SIGN_HASH = PREFIX + "hash-header"
TIMESTAMP = re.compile(r"^\d{8}T\d{6}\+\d{4}$")
"""``ddMMyyyy'T'HHmmss+SSSS``."""
SERVICE_TYPE = "eDoc"
DOCUMENT, STATUS = "edoc", "status"
WAITING = ("initial", "processing")
STATES = ("processing", "done", "fail")
DEFAULT_SENDER = "000.00.00.G22"
MAX_BODY = 256 * 2**20
"""Like the edXML parser's own limit: documents with large scanned attachments pass."""


class AxisFailure(Exception):
    """A FAIL answer: HTTP status = ErrorCode (400 data, 401 signature, 403 agency, 404 none)."""

    def __init__(self, status: int, description: str) -> None:
        super().__init__(description)
        self.status = status
        self.description = description


class Caller(msgspec.Struct, frozen=True):
    """A verified call: its account and the header map it signed (names lowercased)."""

    system_id: str
    signed: dict[str, str]

    def get(self, name: str, *, required: bool = True) -> str:
        value = self.signed.get(name.lower(), "")
        if required and not value:
            raise AxisFailure(400, f"header {name} is required")
        return value


class Message(msgspec.Struct, kw_only=True):
    docId: str
    messageType: str
    sender: str = msgspec.field(name="from")
    receivers: list[str] = msgspec.field(name="to")
    created_time: str
    sha256: str
    size: int
    document_id: str | None
    """The edXML DocumentId (a status: the DocumentId it answers)."""
    statuses: dict[str, str]
    """Receiver OrganId -> initial | processing | done | fail."""
    status_desc: dict[str, str] = {}
    updated_time: str = ""
    replies: list[dict[str, str]] = []
    """Status messages received for this document: their docId, sender and StatusCode."""

    def item(self, organ_id: str) -> dict[str, str]:
        """The public list item for receiver ``organ_id``."""
        return {
            "docId": self.docId,
            "serviceType": SERVICE_TYPE,
            "messageType": self.messageType,
            "created_time": self.created_time,
            "updated_time": self.updated_time or self.created_time,
            "from": self.sender,
            "to": organ_id,
            "status": self.statuses.get(organ_id, ""),
            "status_desc": self.status_desc.get(organ_id, ""),
        }


class Axis:
    """The mailboxes: message metadata in memory, bodies in ``directory``."""

    def __init__(
        self,
        credentials: dict[str, str],
        agencies: dict[str, list[str]],
        directory: str | None = None,
    ) -> None:
        self.credentials = credentials
        self.agencies = agencies
        self.directory = directory or tempfile.mkdtemp(prefix="lgsp-mock-axis-")
        self.messages: dict[str, Message] = {}
        self._ids = itertools.count(1)

    def reset(self) -> None:
        for message in self.messages.values():
            os.unlink(self.path(message.docId))
        self.messages.clear()

    def path(self, doc_id: str) -> str:
        return os.path.join(self.directory, f"{doc_id}.edxml")

    def content(self, doc_id: str) -> bytes:
        """A message's bytes, read for one answer.

        Not streamed (litestar's ``File``): a streaming answer waits for the
        client's disconnect, which ``mockkit``'s replayed ``receive`` never
        delivers, so every download would leave a task behind.
        """
        with open(self.path(doc_id), "rb") as stored:
            return stored.read()

    def caller(self, request: Request[Any, Any, Any]) -> Caller:
        """The account of a call whose signature checks out, and what it signed."""
        headers = request.headers
        sign_header, keys, claimed = (
            headers.get(h, "") for h in (SIGN_HEADER, SIGN_KEYS, SIGN_HASH)
        )
        if not sign_header or not keys or not claimed:
            raise AxisFailure(401, "the call is not signed (XroadVnpt-sign-header, -hash-header)")
        try:
            signed = json.loads(sign_header)
        except ValueError:
            raise AxisFailure(401, "XroadVnpt-sign-header is not JSON") from None
        if not isinstance(signed, dict) or not all(isinstance(v, str) for v in signed.values()):
            raise AxisFailure(401, "XroadVnpt-sign-header is not a JSON object of strings")
        values = {name.lower().removeprefix(PREFIX): value for name, value in signed.items()}
        system_id = values.get("systemid", "")
        secret = self.credentials.get(system_id)
        if secret is None:
            raise AxisFailure(401, f"unknown systemid {system_id!r}")
        expected = hmac.new(secret.encode(), sign_header.encode(), hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected, claimed.lower()):
            raise AxisFailure(401, "XroadVnpt-hash-header does not match: wrong secret or altered")
        names = [name.lower() for name in keys.split(";")]
        if names != [name.lower().removeprefix(PREFIX) for name in signed]:
            raise AxisFailure(401, "XroadVnpt-sign-header-key does not list the signed headers")
        for name, value in values.items():
            if headers.get(PREFIX + name) != value:
                raise AxisFailure(401, f"header XroadVnpt-{name} differs from the signed value")
        if not TIMESTAMP.match(values.get("timestamp", "")):
            raise AxisFailure(400, "timestamp must be ddMMyyyy'T'HHmmss+SSSS")
        return Caller(system_id=system_id, signed=values)

    def owns(self, system_id: str, organ_id: str) -> bool:
        return any(fnmatch.fnmatchcase(organ_id, p) for p in self.agencies.get(system_id, []))

    def store(
        self,
        body: bytes,
        message_type: str,
        sender: str,
        *,
        receivers: list[str] | None = None,
        doc_id: str | None = None,
    ) -> Message:
        """Put a message in its receivers' mailboxes, once checked to be what the headers say.

        With ``receivers`` (a drop from the control API) nothing is checked, so
        that tests can see what the gateway does with a broken message.
        """
        doc_id = doc_id or f"{int(time.time()):08x}{next(self._ids):016x}"
        path = self.path(doc_id)
        with open(path, "wb") as out:
            out.write(body)
        try:
            document_id, addressed = self._check(path, message_type, sender)
        except AxisFailure:
            if receivers is None:
                os.unlink(path)
                raise
            document_id, addressed = None, []
        receivers = receivers or addressed
        message = Message(
            docId=doc_id,
            messageType=message_type,
            sender=sender,
            receivers=receivers,
            created_time=time.strftime("%Y-%m-%d %H:%M:%S"),
            sha256=hashlib.sha256(body).hexdigest(),
            size=len(body),
            document_id=document_id,
            statuses=dict.fromkeys(receivers, "initial"),
        )
        self.messages[doc_id] = message
        return message

    def _check(self, path: str, message_type: str, sender: str) -> tuple[str | None, list[str]]:
        """(DocumentId, receivers) of a valid message from ``sender``."""
        try:
            if message_type == STATUS:
                status = edxml.parse_status(path).header
                answered = status.ResponseFor
                if status.From.OrganId != sender:
                    raise AxisFailure(400, "from differs from the status message's From")
                self._record_reply(answered.DocumentId, answered.OrganId, sender, status)
                return answered.DocumentId, [answered.OrganId]
            with edxml.parse(path) as document:
                header = document.header
            if header.From.OrganId != sender:
                raise AxisFailure(400, "from differs from the document's From")
            return header.DocumentId, [to.OrganId for to in header.To]
        except edxml.EdxmlError as exc:
            raise AxisFailure(400, f"not a valid edXML message: {exc}"[:300]) from None

    def _record_reply(
        self, document_id: str | None, owner: str, sender: str, status: edxml.StatusHeader
    ) -> None:
        for message in self.messages.values():
            if message.document_id == document_id and message.sender == owner:
                message.replies.append({"from": sender, "StatusCode": status.StatusCode})

    def received(self, system_id: str, message_type: str) -> list[dict[str, str]]:
        """The waiting items of every agency of the account."""
        return [
            m.item(organ_id)
            for m in self.messages.values()
            if m.messageType == message_type
            for organ_id, state in m.statuses.items()
            if state in WAITING and self.owns(system_id, organ_id)
        ]

    def mailbox(self, organ_id: str) -> list[Message]:
        return [m for m in self.messages.values() if organ_id in m.statuses]

    def addressed(self, doc_id: str, system_id: str) -> Message:
        """A message sent or received by an agency of the account."""
        message = self.messages.get(doc_id)
        if message is None or not any(
            self.owns(system_id, organ_id) for organ_id in (message.sender, *message.receivers)
        ):
            raise AxisFailure(404, f"no document {doc_id} for {system_id}")
        return message


def _ok(**members: Any) -> Response[Any]:
    return Response({"status": "OK", "ErrorCode": "0", "ErrorDesc": "", **members})


def _fail(_: Request[Any, Any, Any], exc: AxisFailure) -> Response[Any]:
    body = {"status": "FAIL", "ErrorCode": str(exc.status), "ErrorDesc": exc.description}
    return Response(body, status_code=exc.status)


def _hash_matches(claimed: str, body: bytes) -> bool:
    """``hash-file`` of ``body``, padded hex or the SDK's unpadded ``Integer.toHexString``."""
    digest = hashlib.sha256(body).digest()
    forms = (digest.hex(), "".join(format(byte, "x") for byte in digest))
    return claimed.strip().lower() in forms


def _message_type(caller: Caller) -> str:
    if caller.get("servicetype") != SERVICE_TYPE:
        raise AxisFailure(400, f"servicetype must be {SERVICE_TYPE}")
    message_type = caller.get("messagetype")
    if message_type not in (DOCUMENT, STATUS):
        raise AxisFailure(400, f"messagetype: value in ({DOCUMENT},{STATUS})")
    return message_type


def create_app(
    credentials: dict[str, str] | None = None,
    directory: str | None = None,
    agencies: dict[str, list[str]] | None = None,
) -> ASGIApp:
    """The mock axis; ``credentials``: systemid -> secret, ``agencies``: systemid -> patterns."""
    axis = Axis(credentials or DEMO_CREDENTIALS, agencies or DEMO_AGENCIES, directory)
    cleanup = [] if directory else [lambda: shutil.rmtree(axis.directory, ignore_errors=True)]

    @post("/sendEdoc", status_code=200)
    async def send_edoc(request: Request[Any, Any, Any]) -> Response[Any]:
        caller = axis.caller(request)
        message_type = _message_type(caller)
        sender = caller.get("from")
        if not axis.owns(caller.system_id, sender):
            raise AxisFailure(403, f"agency {sender} is not registered to {caller.system_id}")
        body = await request.body()
        claimed = caller.get("hash-file")
        if body.endswith(b"\r\n") and _hash_matches(claimed, body[:-2]):
            body = body[:-2]  # the SDK's CRLF after the file
        elif not _hash_matches(claimed, body):
            raise AxisFailure(400, "hash-file does not match the body")
        message = axis.store(body, message_type, sender)
        return _ok(DocId=message.docId)

    @post("/getReceivedEdocList", status_code=200)
    async def received(request: Request[Any, Any, Any]) -> Response[Any]:
        caller = axis.caller(request)
        return _ok(data=axis.received(caller.system_id, _message_type(caller)))

    @post("/getSentEdocList", status_code=200)
    async def sent(request: Request[Any, Any, Any]) -> Response[Any]:
        caller = axis.caller(request)
        message_type = _message_type(caller)
        items = [
            m.item(organ_id)
            for m in axis.messages.values()
            if m.messageType == message_type and axis.owns(caller.system_id, m.sender)
            for organ_id in m.receivers
        ]
        return _ok(data=items)

    @route(["/countReceiveEdoc", "/countReceiveStatus"], http_method=["GET", "POST"])
    async def count(request: Request[Any, Any, Any]) -> Response[Any]:
        caller = axis.caller(request)
        kind = STATUS if request.url.path.endswith("Status") else DOCUMENT
        return _ok(count=len(axis.received(caller.system_id, kind)))

    @post("/getEdoc", status_code=200)
    async def get_edoc(request: Request[Any, Any, Any]) -> Response[bytes]:
        caller = axis.caller(request)
        message = axis.addressed(caller.get("docId"), caller.system_id)
        data = base64.b64encode(axis.content(message.docId))
        answer = b'{"status":"OK","ErrorCode":"0","ErrorDesc":"","data":"' + data + b'"}'
        return Response(answer, media_type="application/json")

    @post("/updateStatus", status_code=200)
    async def update_status(request: Request[Any, Any, Any]) -> Response[Any]:
        caller = axis.caller(request)
        message = axis.addressed(caller.get("docid"), caller.system_id)
        status = caller.get("status")
        mine = [r for r in message.receivers if axis.owns(caller.system_id, r)]
        if status not in STATES or not mine:
            raise AxisFailure(400, f"status must be one of {', '.join(STATES)}, by a receiver")
        for organ_id in mine:
            message.statuses[organ_id] = status
            message.status_desc[organ_id] = caller.get("status_desc", required=False)[:500]
        message.updated_time = time.strftime("%Y-%m-%d %H:%M:%S")
        return _ok()

    @post(CONTROL_PREFIX + "inbox/{organ_id:str}", status_code=201)
    async def drop(request: Request[Any, Any, Any], organ_id: FromPath[str]) -> dict[str, Any]:
        kind = STATUS if request.query_params.get("type") == "status" else DOCUMENT
        sender = request.query_params.get("from", DEFAULT_SENDER)
        doc_id = request.query_params.get("docId")  # a fixed id, for walkthroughs (replaces)
        body = await request.body()
        receivers = organ_id.split(",")
        message = axis.store(body, kind, sender, receivers=receivers, doc_id=doc_id)
        return message.item(receivers[0])

    @get(CONTROL_PREFIX + "documents/{doc_id:str}")
    async def document(doc_id: FromPath[str]) -> Message:
        message = axis.messages.get(doc_id)
        if message is None:
            raise AxisFailure(404, f"no document {doc_id}")
        return message

    @get(CONTROL_PREFIX + "documents/{doc_id:str}/content", media_type="application/xml")
    async def content(doc_id: FromPath[str]) -> bytes:
        if doc_id not in axis.messages:
            raise AxisFailure(404, f"no document {doc_id}")
        return axis.content(doc_id)

    @get(CONTROL_PREFIX + "mailbox/{organ_id:str}")
    async def mailbox(organ_id: FromPath[str]) -> list[dict[str, str]]:
        return [m.item(organ_id) for m in axis.mailbox(organ_id)]

    app = Litestar(
        [
            send_edoc,
            received,
            sent,
            count,
            get_edoc,
            update_status,
            drop,
            document,
            content,
            mailbox,
        ],
        exception_handlers={AxisFailure: _fail},
        on_shutdown=cleanup,
        request_max_body_size=MAX_BODY,
        openapi_config=None,
        debug=False,
    )
    return MockKit(operation_of=_operation, reset=axis.reset).wrap(app)


def _operation(scope: Scope, _: bytes) -> str:
    """The axis operation: the path's last segment (``sendEdoc``); control paths as they are."""
    path: str = scope["path"]
    return path.removeprefix("/") if path.startswith(CONTROL_PREFIX) else path.rsplit("/", 1)[-1]
