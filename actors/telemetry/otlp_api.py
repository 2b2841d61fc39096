"""The OTLP/HTTP receiver: `POST /v1/metrics` and `POST /v1/traces` on the API listener.

Both need the `events:write` scope (the access guard, `actors.web.access`, decides before the
view runs: token, `allow_from`, body limit). A body is protobuf (`application/x-protobuf`) or
OTLP/JSON (`application/json`: lowerCamelCase or snake_case keys, hex trace and span ids,
unknown fields ignored), optionally `Content-Encoding: gzip`. The guard's one body limit
(`security.max_body_bytes`) bounds the body as received and again once decompressed.

Answers, in the request's encoding, as the OTLP specification says:
- 200 `Export{Metrics,Trace}ServiceResponse`; when some data points were rejected, its
  `partial_success` holds `rejected_data_points` and an `error_message` giving the reasons
  (the good points are recorded);
- 400 a `google.rpc.Status` (JSON also carries `error`, the answer shape of every route here)
  for a body that does not decode; 413 over the limit once decompressed; 415 for another
  content type or encoding.

`decode_request` and `encode_response` are the codec, pure; the translation is
`otlp_ingest.MetricsIngest` and `otlp_traces.TracesIngest`. protobuf and the OTLP messages
(~2.3 MB of memory) are imported by the first request, not with this module: most processes
never receive one.
"""

from __future__ import annotations

import base64
import binascii
import json
import zlib
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from quart import Blueprint, Response, current_app, request

from actors.web.access import Scope, requires

if TYPE_CHECKING:
    from google.protobuf.message import Message
    from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
        ExportMetricsServiceRequest,
    )
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
        ExportTraceServiceRequest,
    )

    from actors.telemetry.otlp_ingest import MetricsIngest
    from actors.telemetry.otlp_traces import TracesIngest

__all__ = [
    "JSON",
    "PROTOBUF",
    "BadRequest",
    "create_otlp_blueprint",
    "decode_request",
    "encode_response",
    "encode_status",
]

PROTOBUF = "application/x-protobuf"
JSON = "application/json"
_MEDIA = {PROTOBUF: PROTOBUF, "application/protobuf": PROTOBUF, JSON: JSON}
_ID_KEYS = ("traceId", "spanId", "parentSpanId", "trace_id", "span_id", "parent_span_id")
_INVALID_ARGUMENT = 3

M = TypeVar("M", bound="Message")


class BadRequest(Exception):
    """A request the receiver cannot take: `status` (400, 413, 415) and the reason."""

    def __init__(self, status: int, message: str) -> None:
        self.status = status
        self.message = message
        super().__init__(message)


def media_type(content_type: str | None) -> str:
    """`PROTOBUF` or `JSON` for a Content-Type header.

    Raises:
        BadRequest: 415 for any other type.
    """
    media = (content_type or "").split(";", 1)[0].strip().lower()
    found = _MEDIA.get(media)
    if found is None:
        raise BadRequest(
            415,
            f"Content-Type {media or '(none)'} is not OTLP: send {PROTOBUF} or {JSON}",
        )
    return found


def _gunzip(body: bytes, limit: int) -> bytes:
    inflater = zlib.decompressobj(wbits=31)
    try:
        out = inflater.decompress(body, limit + 1)
    except zlib.error as exc:
        raise BadRequest(400, f"body is not valid gzip: {exc}") from None
    if len(out) > limit or inflater.unconsumed_tail:
        raise BadRequest(
            413,
            f"request body larger than {limit} bytes once decompressed (security.max_body_bytes)",
        )
    if not inflater.eof:
        raise BadRequest(400, "body is not valid gzip: truncated")
    return out


def _hex_ids(node: Any) -> None:
    """OTLP/JSON writes trace and span ids in hex; the protobuf JSON mapping reads base64."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key in _ID_KEYS and isinstance(value, str):
                try:
                    node[key] = base64.b64encode(bytes.fromhex(value)).decode()
                except ValueError:
                    raise BadRequest(400, f"{key} {value[:64]!r} is not hex") from None
            else:
                _hex_ids(value)
    elif isinstance(node, list):
        for item in node:
            _hex_ids(item)


def decode_request(
    body: bytes,
    content_type: str | None,
    content_encoding: str | None,
    message: type[M],
    limit: int,
) -> tuple[M, str]:
    """The request message `message` in `body`, and its media type (the answer's).

    Raises:
        BadRequest: 415 an unknown content type or encoding, 413 larger than `limit` bytes
            once decompressed, 400 a body that does not decode.
    """
    from google.protobuf import json_format
    from google.protobuf.message import DecodeError

    media = media_type(content_type)
    encoding = (content_encoding or "identity").strip().lower()
    if encoding == "gzip":
        body = _gunzip(body, limit)
    elif encoding != "identity":
        raise BadRequest(415, f"Content-Encoding {encoding} is not supported: use gzip or none")
    out = message()
    if media == PROTOBUF:
        try:
            out.ParseFromString(body)
        except (DecodeError, RecursionError) as exc:
            raise BadRequest(400, f"body is not a valid {message.__name__}: {exc}") from None
        return out, media
    try:
        document = json.loads(body)
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise BadRequest(400, f"body is not valid JSON: {exc}") from None
    if not isinstance(document, dict):
        raise BadRequest(400, f"body must be a JSON object ({message.__name__})")
    if b"Id" in body or b"_id" in body:
        _hex_ids(document)
    try:
        json_format.ParseDict(document, out, ignore_unknown_fields=True)
    except (json_format.ParseError, binascii.Error, RecursionError) as exc:
        raise BadRequest(400, f"body is not a valid {message.__name__}: {exc}") from None
    return out, media


def encode_response(response: Message, media: str) -> bytes:
    """`response` in `media` (`PROTOBUF` or `JSON`)."""
    from google.protobuf import json_format

    if media == PROTOBUF:
        return bytes(response.SerializeToString())
    return json.dumps(json_format.MessageToDict(response)).encode()


def encode_status(error: BadRequest, media: str) -> bytes:
    """The error answer: a `google.rpc.Status` in `media` (JSON also carries `error`)."""
    from google.protobuf import json_format
    from google.rpc import status_pb2

    status = status_pb2.Status(code=_INVALID_ARGUMENT, message=error.message)
    if media == PROTOBUF:
        return bytes(status.SerializeToString())
    return json.dumps({"error": error.message, **json_format.MessageToDict(status)}).encode()


def _answer(status: int, body: bytes, media: str) -> Response:
    return Response(body, status=status, content_type=media)


def create_otlp_blueprint(
    *, metrics: MetricsIngest, traces: TracesIngest | None = None
) -> Blueprint:
    """The receiver's blueprint (routes above); register it on the API app, whose access guard
    enforces the scopes and sets the body limit (`MAX_CONTENT_LENGTH`)."""
    bp = Blueprint("otlp", __name__)

    async def receive(
        message: type[M], handle: Callable[[M], tuple[int, str]], response: type[Message]
    ) -> Response:
        try:
            media = media_type(request.headers.get("Content-Type"))
        except BadRequest as error:
            return _answer(error.status, encode_status(error, JSON), JSON)
        # Bounded by the guard's limit while it is read (413 above it).
        body = await request.get_data(cache=False, as_text=False, parse_form_data=False)
        limit = int(current_app.config.get("MAX_CONTENT_LENGTH") or 1_048_576)
        try:
            decoded, media = decode_request(
                body,
                request.headers.get("Content-Type"),
                request.headers.get("Content-Encoding"),
                message,
                limit,
            )
        except BadRequest as error:
            return _answer(error.status, encode_status(error, media), media)
        rejected, reason = handle(decoded)
        answer = response()
        if rejected:
            from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
                ExportMetricsServiceRequest,
            )

            partial = answer.partial_success
            partial.error_message = reason
            if message is ExportMetricsServiceRequest:
                partial.rejected_data_points = rejected
            else:
                partial.rejected_spans = rejected
        return _answer(200, encode_response(answer, media), media)

    def ingest_metrics(decoded: ExportMetricsServiceRequest) -> tuple[int, str]:
        result = metrics.ingest(decoded)
        return result.rejected, result.message()

    def ingest_traces(decoded: ExportTraceServiceRequest) -> tuple[int, str]:
        if traces is None:
            return 0, ""
        result = traces.ingest(decoded)
        return result.rejected, result.message()

    @bp.post("/v1/metrics")
    @requires(Scope.EVENTS_WRITE)
    async def post_metrics() -> Response:
        from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
            ExportMetricsServiceRequest,
            ExportMetricsServiceResponse,
        )

        return await receive(
            ExportMetricsServiceRequest, ingest_metrics, ExportMetricsServiceResponse
        )

    @bp.post("/v1/traces")
    @requires(Scope.EVENTS_WRITE)
    async def post_traces() -> Response:
        from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
            ExportTraceServiceRequest,
            ExportTraceServiceResponse,
        )

        return await receive(ExportTraceServiceRequest, ingest_traces, ExportTraceServiceResponse)

    return bp
