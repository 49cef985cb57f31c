"""A mock national document-exchange axis: per-agency mailboxes on loopback.

It speaks the shape ``document-axis.md`` describes, with the adapter's default
names: POST ``/sendEdoc`` (octet-stream, headers ``from``, ``to``,
``messagetype``, ``hash-file``), and JSON POSTs ``/getReceivedEdocList``,
``/getSentEdocList``, ``/getEdoc``, ``/updateStatus``, ``/countReceiveEdoc``,
``/countReceiveStatus``. Every call needs the ``systemId``/``secret`` of a
known account. ``sendEdoc`` refuses a body whose hash-file does not match or
that is not edXML addressed as its headers say; a status message goes to the
mailbox of the agency it answers and is recorded against that document.
Bodies are kept in a temp directory, not in memory.

Control, besides ``mockkit``'s (``/__mock/stats``, ``/__mock/faults``,
``/__mock/reset``)::

    POST /__mock/inbox/{organ_id}[?docId=X]  edXML body: drop it into that mailbox as if another
                                      province sent it (?type=status, ?from=<OrganId>)
    GET  /__mock/documents/{docId}    one message: who, hash, per-receiver status, replies
    GET  /__mock/documents/{docId}/content   its bytes
    GET  /__mock/mailbox/{organ_id}   every message received by that agency, any status
"""

from __future__ import annotations

import hashlib
import itertools
import os
import shutil
import tempfile
import time
from typing import Any

import msgspec
from litestar import Litestar, Request, Response, get, post
from litestar.params import FromPath
from litestar.types import ASGIApp, Scope

import schemas.edxml as edxml
from adapters.mockkit import CONTROL_PREFIX, MockKit

DEFAULT_PORT = 9103
DEMO_CREDENTIALS = {"lgsp-demo": "axis-demo-secret"}
"""The account the demo config uses (``LGSP_AXIS_SYSTEM_ID`` / ``LGSP_AXIS_SECRET``)."""
DOCUMENT = "ElectronicDocument"
STATUS = "StatusDocument"
WAITING = ("initial", "processing")
STATES = ("processing", "done", "fail")
DEFAULT_SENDER = "000.00.00.G22"
MAX_BODY = 256 * 2**20
"""Like the edXML parser's own limit: documents with large scanned attachments pass."""


class AxisFailure(Exception):
    """A FAIL answer: HTTP status = ErrorCode (400 data, 401 credentials, 404 no such document)."""

    def __init__(self, status: int, description: str) -> None:
        super().__init__(description)
        self.status = status
        self.description = description


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
    replies: list[dict[str, str]] = []
    """Status messages received for this document: their docId, sender and StatusCode."""

    def item(self, organ_id: str) -> dict[str, Any]:
        """As a list item for ``organ_id``'s mailbox."""
        return {
            "docId": self.docId,
            "serviceType": "eDoc",
            "messageType": self.messageType,
            "from": self.sender,
            "to": self.receivers,
            "status": self.statuses.get(organ_id, ""),
            "status_desc": self.status_desc.get(organ_id, ""),
            "created_time": self.created_time,
        }


class Axis:
    """The mailboxes: message metadata in memory, bodies in ``directory``."""

    def __init__(self, credentials: dict[str, str], directory: str | None = None) -> None:
        self.credentials = credentials
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

    def caller(self, request: Request[Any, Any, Any]) -> str:
        """The agency the call is made for, once the account is checked."""
        system = request.headers.get("systemid", "")
        if not system or self.credentials.get(system) != request.headers.get("secret"):
            raise AxisFailure(401, "unknown systemId or wrong secret")
        organ_id = request.headers.get("from", "")
        if not edxml.is_organ_id(organ_id):
            raise AxisFailure(400, "header from must be an agency id like 000.00.12.H53")
        return organ_id

    def store(
        self,
        body: bytes,
        message_type: str,
        sender: str,
        receivers: list[str],
        *,
        check: bool = True,
        doc_id: str | None = None,
    ) -> Message:
        """Put a message in the receivers' mailboxes, once checked to be what the headers say.

        Without ``check`` (a drop from the control API) anything is kept, so
        that tests can see what the gateway does with a broken message.
        """
        doc_id = doc_id or f"{time.strftime('%Y%m%d')}-{next(self._ids):06d}"
        path = self.path(doc_id)
        with open(path, "wb") as out:
            out.write(body)
        try:
            document_id = self._check(path, message_type, sender, receivers)
        except AxisFailure:
            if check:
                os.unlink(path)
                raise
            document_id = None
        message = Message(
            docId=doc_id,
            messageType=message_type,
            sender=sender,
            receivers=receivers,
            created_time=time.strftime("%Y/%m/%d %H:%M:%S"),
            sha256=hashlib.sha256(body).hexdigest(),
            size=len(body),
            document_id=document_id,
            statuses=dict.fromkeys(receivers, "initial"),
        )
        self.messages[doc_id] = message
        return message

    def _check(self, path: str, message_type: str, sender: str, receivers: list[str]) -> str | None:
        try:
            if message_type == STATUS:
                status = edxml.parse_status(path).header
                answered = status.ResponseFor
                if status.From.OrganId != sender or answered.OrganId not in receivers:
                    raise AxisFailure(400, "from/to differ from the status message")
                self._record_reply(answered.DocumentId, answered.OrganId, sender, status)
                return answered.DocumentId
            with edxml.parse(path) as document:
                header = document.header
            if header.From.OrganId != sender or {t.OrganId for t in header.To} != set(receivers):
                raise AxisFailure(400, "from/to differ from the document's From/To")
            return header.DocumentId
        except edxml.EdxmlError as exc:
            raise AxisFailure(400, f"not a valid edXML message: {exc}"[:300]) from None

    def _record_reply(
        self, document_id: str | None, owner: str, sender: str, status: edxml.StatusHeader
    ) -> None:
        for message in self.messages.values():
            if message.document_id == document_id and message.sender == owner:
                message.replies.append({"from": sender, "StatusCode": status.StatusCode})

    def received(self, organ_id: str, *, waiting: bool) -> list[Message]:
        return [
            m
            for m in self.messages.values()
            if organ_id in m.statuses and (not waiting or m.statuses[organ_id] in WAITING)
        ]

    def addressed(self, doc_id: str, organ_id: str) -> Message:
        message = self.messages.get(doc_id)
        if message is None or organ_id not in (message.sender, *message.receivers):
            raise AxisFailure(404, f"no document {doc_id} for {organ_id}")
        return message


def _ok(data: Any) -> Response[Any]:
    return Response({"status": "OK", "ErrorCode": "0", "ErrorDesc": "", "data": data})


def _fail(_: Request[Any, Any, Any], exc: AxisFailure) -> Response[Any]:
    body = {"status": "FAIL", "ErrorCode": str(exc.status), "ErrorDesc": exc.description}
    return Response(body, status_code=exc.status)


async def _json_body(request: Request[Any, Any, Any]) -> dict[str, Any]:
    try:
        data = msgspec.json.decode(await request.body())
    except msgspec.DecodeError:
        raise AxisFailure(400, "the body must be JSON") from None
    if not isinstance(data, dict):
        raise AxisFailure(400, "the body must be a JSON object")
    return data


def _limit(body: dict[str, Any]) -> int:
    limit = body.get("limit", 50)
    if not isinstance(limit, int) or limit < 1:
        raise AxisFailure(400, "limit must be a positive whole number")
    return limit


def create_app(credentials: dict[str, str] | None = None, directory: str | None = None) -> ASGIApp:
    """The mock axis; ``credentials``: systemId -> secret (default: the demo account)."""
    axis = Axis(credentials or DEMO_CREDENTIALS, directory)
    cleanup = [] if directory else [lambda: shutil.rmtree(axis.directory, ignore_errors=True)]

    @post("/sendEdoc", status_code=200)
    async def send_edoc(request: Request[Any, Any, Any]) -> Response[Any]:
        sender = axis.caller(request)
        body = await request.body()
        if request.headers.get("hash-file", "").lower() != hashlib.sha256(body).hexdigest():
            raise AxisFailure(400, "hash-file does not match the body")
        message_type = request.headers.get("messagetype", "")
        if message_type not in (DOCUMENT, STATUS):
            raise AxisFailure(400, f"messagetype must be {DOCUMENT} or {STATUS}")
        try:
            receivers = msgspec.json.decode(request.headers.get("to", ""), type=list[str])
        except msgspec.DecodeError:
            raise AxisFailure(400, "header to must be a JSON list of agency ids") from None
        if not receivers or not all(edxml.is_organ_id(r) for r in receivers):
            raise AxisFailure(400, "header to must list agency ids like 000.00.12.H53")
        message = axis.store(body, message_type, sender, receivers)
        return _ok([message.item(sender)])

    @post("/getReceivedEdocList", status_code=200)
    async def received(request: Request[Any, Any, Any]) -> Response[Any]:
        organ_id = axis.caller(request)
        limit = _limit(await _json_body(request))
        waiting = axis.received(organ_id, waiting=True)
        return _ok([m.item(organ_id) for m in waiting[:limit]])

    @post("/getSentEdocList", status_code=200)
    async def sent(request: Request[Any, Any, Any]) -> Response[Any]:
        organ_id = axis.caller(request)
        limit = _limit(await _json_body(request))
        mine = [m for m in axis.messages.values() if m.sender == organ_id]
        return _ok([{**m.item(organ_id), "statuses": m.statuses} for m in mine[:limit]])

    @post(["/countReceiveEdoc", "/countReceiveStatus"], status_code=200)
    async def count(request: Request[Any, Any, Any]) -> Response[Any]:
        organ_id = axis.caller(request)
        kind = STATUS if request.url.path.endswith("Status") else DOCUMENT
        waiting = axis.received(organ_id, waiting=True)
        return _ok([{"total": sum(m.messageType == kind for m in waiting)}])

    @post("/getEdoc", status_code=200)
    async def get_edoc(request: Request[Any, Any, Any]) -> Response[bytes]:
        organ_id = axis.caller(request)
        message = axis.addressed(str((await _json_body(request)).get("docId", "")), organ_id)
        return Response(
            axis.content(message.docId),
            media_type="application/octet-stream",
            headers={"hash-file": message.sha256, "messagetype": message.messageType},
        )

    @post("/updateStatus", status_code=200)
    async def update_status(request: Request[Any, Any, Any]) -> Response[Any]:
        organ_id = axis.caller(request)
        body = await _json_body(request)
        message = axis.addressed(str(body.get("docId", "")), organ_id)
        status = body.get("status")
        if status not in STATES or organ_id not in message.statuses:
            raise AxisFailure(400, f"status must be one of {', '.join(STATES)}, by a receiver")
        message.statuses[organ_id] = status
        message.status_desc[organ_id] = str(body.get("status_desc") or "")[:500]
        return _ok([message.item(organ_id)])

    @post(CONTROL_PREFIX + "inbox/{organ_id:str}", status_code=201)
    async def drop(request: Request[Any, Any, Any], organ_id: FromPath[str]) -> dict[str, Any]:
        kind = STATUS if request.query_params.get("type") == "status" else DOCUMENT
        sender = request.query_params.get("from", DEFAULT_SENDER)
        doc_id = request.query_params.get("docId")  # a fixed id, for walkthroughs (replaces)
        body = await request.body()
        message = axis.store(body, kind, sender, [organ_id], check=False, doc_id=doc_id)
        return message.item(organ_id)

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
    async def mailbox(organ_id: FromPath[str]) -> list[dict[str, Any]]:
        return [m.item(organ_id) for m in axis.received(organ_id, waiting=False)]

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
