"""Turning a client's RPC message into a request for the world, and its answer into bytes.

Parsing errors are answered the way Telegram answers them: an unknown method constructor is
400 INPUT_METHOD_INVALID, an unknown nested constructor 400 INPUT_CONSTRUCTOR_INVALID and a
truncated or malformed body 400 INPUT_FETCH_ERROR. Wrappers such as invokeWithLayer and
initConnection are peeled off here so the world only ever sees the inner request.
"""

from __future__ import annotations

import inspect
import struct
import zlib
from dataclasses import dataclass, field
from typing import Any

from telethon.errors import TypeNotFoundError
from telethon.extensions import BinaryReader
from telethon.tl import functions
from telethon.tl.alltlobjects import tlobjects
from telethon.tl.core import GzipPacked
from telethon.tl.tlobject import TLObject, TLRequest

from .rpc import RpcError

RPC_RESULT = 0xF35C6D01
RPC_ERROR = 0x2144CA19
GZIP_PACKED = 0x3072CFA1
VECTOR = 0x1CB5C415
BOOL_TRUE = struct.pack("<I", 0x997275B5)
BOOL_FALSE = struct.pack("<I", 0xBC799737)
# Answers above this size are sent gzip_packed, as Telegram does for large results.
GZIP_THRESHOLD = 512
MAX_GUNZIP_BYTES = 16 * 1024 * 1024

# Wrappers whose only effect for the emulator is to carry ``query``.
_PASS_THROUGH_WRAPPERS = (
    functions.InvokeWithoutUpdatesRequest,
    functions.InvokeWithMessagesRangeRequest,
    functions.InvokeWithTakeoutRequest,
    functions.InvokeWithBusinessConnectionRequest,
    functions.InvokeWithGooglePlayIntegrityRequest,
    functions.InvokeWithApnsSecretRequest,
    functions.InvokeWithReCaptchaRequest,
)
_MAX_WRAPPER_DEPTH = 8


class ProtocolViolation(Exception):
    """The client sent bytes no conforming client sends; its connection is closed."""


def gunzip(data: bytes) -> bytes:
    """Decompress a gzip_packed payload, refusing decompression bombs."""
    inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
    try:
        plain = inflater.decompress(data, MAX_GUNZIP_BYTES)
    except zlib.error as exc:
        raise ProtocolViolation("bad gzip_packed data") from exc
    if inflater.unconsumed_tail or not inflater.eof:
        raise ProtocolViolation("gzip_packed data too large or truncated")
    return plain


def parse_request(body: bytes) -> TLRequest:
    """Decode one RPC query; raises RpcError exactly as Telegram would answer."""
    if len(body) < 4:
        raise RpcError(400, "INPUT_FETCH_ERROR")
    constructor = struct.unpack_from("<I", body)[0]
    if constructor == GZIP_PACKED:
        reader = BinaryReader(body[4:])
        try:
            packed = reader.tgread_bytes()
        except Exception as exc:  # truncated length prefix or payload
            raise RpcError(400, "INPUT_FETCH_ERROR") from exc
        return parse_request(gunzip(packed))
    cls = tlobjects.get(constructor)
    if cls is None or not issubclass(cls, TLRequest):
        raise RpcError(400, "INPUT_METHOD_INVALID")
    reader = BinaryReader(body)
    try:
        request = reader.tgread_object()
    except TypeNotFoundError as exc:
        raise RpcError(400, "INPUT_CONSTRUCTOR_INVALID") from exc
    except Exception as exc:  # short reads, bad strings, bad flags: all mean a bad body
        raise RpcError(400, "INPUT_FETCH_ERROR") from exc
    return request


@dataclass
class UnwrappedCall:
    """The innermost request and what its wrappers said."""

    request: TLRequest
    layer: int | None = None
    init: functions.InitConnectionRequest | None = None
    after_msg_ids: list[int] = field(default_factory=list)


def unwrap(request: TLRequest) -> UnwrappedCall:
    call = UnwrappedCall(request)
    current: Any = request
    for _ in range(_MAX_WRAPPER_DEPTH):
        if isinstance(current, GzipPacked):
            # Telethon's reader already inflated it; parse the object it carried.
            current = parse_request(current.data)
            continue
        if isinstance(current, functions.InvokeWithLayerRequest):
            call.layer = current.layer
        elif isinstance(current, functions.InitConnectionRequest):
            call.init = current
        elif isinstance(current, functions.InvokeAfterMsgRequest):
            call.after_msg_ids.append(current.msg_id)
        elif isinstance(current, functions.InvokeAfterMsgsRequest):
            call.after_msg_ids.extend(current.msg_ids)
        elif not isinstance(current, _PASS_THROUGH_WRAPPERS):
            if not isinstance(current, TLRequest):
                raise RpcError(400, "INPUT_METHOD_INVALID")
            call.request = current
            return call
        current = current.query
    raise RpcError(400, "INPUT_REQUEST_TOO_LONG")


def _tl_bytes(data: bytes) -> bytes:
    return bytes(TLObject.serialize_bytes(data))


_int_vector_cache: dict[type, str] = {}


def _vector_int_format(request: TLRequest) -> str:
    """'i' or 'q' for methods returning Vector<int> / Vector<long> (read from Telethon)."""
    cls = type(request)
    cached = _int_vector_cache.get(cls)
    if cached is None:
        try:
            source = inspect.getsource(cls.read_result)
        except (OSError, TypeError):
            source = ""
        cached = "<i" if "read_int()" in source and "read_long" not in source else "<q"
        _int_vector_cache[cls] = cached
    return cached


def serialize_result(value: Any, request: TLRequest) -> bytes:
    """Bytes of a world answer: a TL object, a bool, raw bytes or a list (Vector)."""
    if isinstance(value, bytes | bytearray):
        return bytes(value)
    if isinstance(value, bool):
        return BOOL_TRUE if value else BOOL_FALSE
    if isinstance(value, TLObject):
        return bytes(value)
    if isinstance(value, list):
        parts = [struct.pack("<Ii", VECTOR, len(value))]
        for item in value:
            if isinstance(item, int) and not isinstance(item, bool):
                parts.append(struct.pack(_vector_int_format(request), item))
            else:
                parts.append(serialize_result(item, request))
        return b"".join(parts)
    raise TypeError(f"cannot serialise a {type(value).__name__} as a TL answer")


def rpc_result(req_msg_id: int, payload: bytes) -> tuple[bytes, bool]:
    """rpc_result bytes, gzip-packing large payloads; also whether it was packed."""
    gzipped = False
    if len(payload) > GZIP_THRESHOLD:
        packed = bytes(GzipPacked(payload))
        if len(packed) < len(payload):
            payload, gzipped = packed, True
    return struct.pack("<Iq", RPC_RESULT, req_msg_id) + payload, gzipped


def rpc_error(req_msg_id: int, code: int, message: str) -> bytes:
    return struct.pack("<Iqii", RPC_RESULT, req_msg_id, RPC_ERROR, code) + _tl_bytes(
        message.encode("utf-8")
    )
