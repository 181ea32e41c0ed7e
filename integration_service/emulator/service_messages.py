"""MTProto service messages a client may send (core.telegram.org/mtproto/service_messages).

ping, ping_delay_disconnect, get_future_salts and destroy_session are answered directly (not
inside rpc_result), as Telegram does and as Telethon expects; rpc_drop_answer is answered
inside rpc_result. Acknowledgements and informational messages need no answer.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from telethon.extensions import BinaryReader
from telethon.tl import TLObject, functions, types

from .auth_keys import SALT_PERIOD_SECONDS
from .rpc_calls import rpc_result

if TYPE_CHECKING:
    from .connection import ClientConnection
    from .session import MtprotoSession

MAX_FUTURE_SALTS = 64

# Only acknowledgements, containers and purely informational messages are not
# content-related (their seq_no is even); everything else must carry an odd seq_no.
_NOT_CONTENT_RELATED = frozenset(
    cls.CONSTRUCTOR_ID
    for cls in (
        types.MsgsAck,
        types.HttpWait,
        types.MsgsStateInfo,
        types.MsgsAllInfo,
        types.MsgDetailedInfo,
        types.MsgNewDetailedInfo,
    )
) | {0x73F1F8DC}


def is_content_related(constructor: int) -> bool:
    return constructor not in _NOT_CONTENT_RELATED


@dataclass(slots=True)
class ServiceContext:
    connection: ClientConnection
    session: MtprotoSession
    msg_id: int

    def reply(self, obj: TLObject, *, content_related: bool = True) -> None:
        self.connection.queue_object(self.session, obj, content_related)


def _read(body: bytes) -> Any:
    return BinaryReader(body).tgread_object()


def _ignore(_ctx: ServiceContext, _body: bytes) -> None:
    """Acks and informational messages: nothing to answer."""


def _ping(ctx: ServiceContext, body: bytes) -> None:
    request = _read(body)
    ctx.reply(types.Pong(msg_id=ctx.msg_id, ping_id=request.ping_id))


def _ping_delay_disconnect(ctx: ServiceContext, body: bytes) -> None:
    request = _read(body)
    ctx.reply(types.Pong(msg_id=ctx.msg_id, ping_id=request.ping_id))
    ctx.connection.arm_disconnect(max(0, request.disconnect_delay))


def _future_salts(ctx: ServiceContext, body: bytes) -> None:
    request = _read(body)
    record = ctx.connection.key
    assert record is not None
    now = time.time()
    first_period = int(now // SALT_PERIOD_SECONDS)
    salts = []
    for offset in range(max(1, min(request.num, MAX_FUTURE_SALTS))):
        period = first_period + offset
        salts.append(
            types.FutureSalt(
                valid_since=dt.datetime.fromtimestamp(period * SALT_PERIOD_SECONDS, dt.UTC),
                valid_until=dt.datetime.fromtimestamp((period + 2) * SALT_PERIOD_SECONDS, dt.UTC),
                salt=record.salt_for_period(period),
            )
        )
    ctx.reply(types.FutureSalts(req_msg_id=ctx.msg_id, now=int(now), salts=salts))


def _destroy_session(ctx: ServiceContext, body: bytes) -> None:
    request = _read(body)
    record = ctx.connection.key
    assert record is not None
    target = record.sessions.get(request.session_id)
    if target is None or target is ctx.session:
        ctx.reply(types.DestroySessionNone(session_id=request.session_id))
        return
    target.cancel_running()
    del record.sessions[request.session_id]
    ctx.reply(types.DestroySessionOk(session_id=request.session_id))


def _rpc_drop_answer(ctx: ServiceContext, body: bytes) -> None:
    request = _read(body)
    task = ctx.session.running.pop(request.req_msg_id, None)
    answer: TLObject
    if task is not None:
        task.cancel()
        answer = types.RpcAnswerDroppedRunning()
    else:
        answer = types.RpcAnswerUnknown()
    payload, _ = rpc_result(ctx.msg_id, bytes(answer))
    ctx.connection.queue_raw(ctx.session, payload)


def _msgs_state_req(ctx: ServiceContext, body: bytes) -> None:
    request = _read(body)
    info = bytes(ctx.session.state_of(msg_id) for msg_id in request.msg_ids)
    ctx.reply(types.MsgsStateInfo(req_msg_id=ctx.msg_id, info=info.decode("latin-1")))


def _destroy_auth_key(ctx: ServiceContext, _body: bytes) -> None:
    record = ctx.connection.key
    assert record is not None
    ctx.reply(types.DestroyAuthKeyOk())
    ctx.connection.server.destroy_key(record.key_id)


SERVICE_HANDLERS: dict[int, Callable[[ServiceContext, bytes], None]] = {
    types.MsgsAck.CONSTRUCTOR_ID: _ignore,
    types.HttpWait.CONSTRUCTOR_ID: _ignore,
    types.MsgsStateInfo.CONSTRUCTOR_ID: _ignore,
    types.MsgsAllInfo.CONSTRUCTOR_ID: _ignore,
    types.MsgResendReq.CONSTRUCTOR_ID: _ignore,
    types.MsgDetailedInfo.CONSTRUCTOR_ID: _ignore,
    types.MsgNewDetailedInfo.CONSTRUCTOR_ID: _ignore,
    functions.PingRequest.CONSTRUCTOR_ID: _ping,
    functions.PingDelayDisconnectRequest.CONSTRUCTOR_ID: _ping_delay_disconnect,
    functions.GetFutureSaltsRequest.CONSTRUCTOR_ID: _future_salts,
    functions.DestroySessionRequest.CONSTRUCTOR_ID: _destroy_session,
    functions.RpcDropAnswerRequest.CONSTRUCTOR_ID: _rpc_drop_answer,
    types.MsgsStateReq.CONSTRUCTOR_ID: _msgs_state_req,
    functions.DestroyAuthKeyRequest.CONSTRUCTOR_ID: _destroy_auth_key,
}
