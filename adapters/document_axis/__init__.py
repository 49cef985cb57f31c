"""The national document-exchange axis (VDXP): outbound documents, inbound polling, a mock axis.

No axis server code is public; the wire protocol is what public clients
send and parse (VNPT's SDK, Bkav's and other provinces' integrations),
and the defaults of ``settings.AxisProtocol`` are VNPT's Java SDK
(``JAVA_SDK_VXP`` 2.0.x). Where each detail comes from:

- signing (``client.signed_headers``): ``XroadVnpt-<name>`` headers, the
  compact JSON ``sign-header`` in the SDK's HashMap order, ``sign-header-key``,
  hex HMAC-SHA256 ``hash-header``, ``version``, ``User-Agent``: SDK
  ``VnptService.addXroadVnptHashHeader``; ``timestamp`` format: its
  constructor;
- ``sendEdoc`` map ``from``, ``servicetype: eDoc``, ``messagetype`` and no
  ``to``: Bkav ``ServiceVPCP.sendDocument``/``sendStatus`` and the SDK's
  ``ServiceTest``; unpadded ``hash-file``, raw body then CRLF: SDK
  ``createContentHA256`` and ``MultipartUtility``; top-level ``DocId``: SDK
  ``sendEdoc`` and TLTV ``sendEdocExt``;
- lists with ``servicetype`` + ``messagetype`` and no body, their items: SDK
  ``getReceivedEdocList`` and ``ServiceTest``; getSentEdocList items are also
  read with SDK 2.0.1's ``StatusResult`` names (``toCode``, ``receiveStatus``...);
- ``getEdoc`` with ``docId``, the base64 ``data`` answer: SDK ``getEdoc`` and
  ``ServiceTest``; ``updateStatus`` with ``docid`` and ``status``: Bkav
  ``confirmReceived``; ``{}`` as their body: SDK ``sendPostMultipart``;
- ``ErrorCode`` ``"0"`` compared case-insensitively: every SDK answer reader.

Assumptions (no public code shows them): that the axis checks the signature
over the ``sign-header`` string as sent (any map order then verifies); the
``timestamp`` in Vietnam time; ``status_desc`` sent with ``updateStatus``
for the reason of a ``fail`` (the SDK sends none; list items carry one);
that a FAIL's ``ErrorCode`` values are HTTP-like (``error_codes`` maps them);
that a list returns every waiting item at once (the SDK has no paging).
"""
