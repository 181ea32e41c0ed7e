"""send-message, exactly once: outbox claim, derived random_id, send, record the outcome."""

from __future__ import annotations

from dataclasses import dataclass

from prometheus_client import Counter
from telethon import TelegramClient, functions, types, utils
from telethon import errors as tg

from integration_service import inputs
from integration_service.channels.store import ChannelStore
from integration_service.errors import PermanentError, ServiceError
from integration_service.inputs import SendRequest
from integration_service.messaging.pacing import Pacer
from integration_service.messaging.random_ids import payload_digest, random_id_for
from integration_service.runtime.session_runtime import SessionRuntime
from integration_service.sessions.validation import record_terminal
from integration_service.store import SessionKey
from integration_service.store.outbox import OutboxEntry, OutboxStore
from integration_service.telegram.error_mapping import to_service_error
from integration_service.telegram.errors import SessionTerminated

MESSAGES_SENT = Counter(
    "telegram_messages_sent_total", "Messages Telegram accepted, by session kind.", ["type"]
)
MESSAGES_FAILED = Counter(
    "telegram_messages_error_total", "Sends that failed, by error code.", ["error"]
)


class IdempotencyConflict(PermanentError):
    """The idempotency key was used before for a different peer or text."""

    code = "idempotency_conflict"


class SendFailedBefore(PermanentError):
    """A second delivery of a send job that had already failed for good; carries the
    first failure's code."""

    code = "send_failed"


class PeerNotFound(PermanentError):
    """The peer id is unknown to this account (Telegram needs its access hash)."""

    code = "peer_unknown"


@dataclass(frozen=True, slots=True)
class SendOutcome:
    status: str
    idempotency_key: str
    telegram_message_id: int | None
    error_code: str | None
    # True when this run found the send already finished and sent nothing.
    repeated: bool

    @classmethod
    def of(cls, entry: OutboxEntry, *, repeated: bool) -> SendOutcome:
        return cls(
            entry.status,
            entry.idempotency_key,
            entry.telegram_message_id,
            entry.error_code,
            repeated,
        )


async def _input_peer(client: TelegramClient, peer: inputs.Peer) -> types.TypeInputPeer:
    target: str | int = peer.username if peer.username is not None else peer.peer_id or 0
    try:
        return await client.get_input_entity(target)
    except ValueError:
        if peer.peer_id is not None and -(10**12) < peer.peer_id < 0:
            # Basic groups need no access hash.
            return types.InputPeerChat(chat_id=-peer.peer_id)
        raise PeerNotFound(f"peer {peer} is not known to this account") from None


def _known_peer(
    runtime: SessionRuntime, key: SessionKey, peer: inputs.Peer
) -> types.InputPeerChannel | None:
    """A channel this account connected (telegram_channels keeps its access hash): sent to
    by id even when the worker's client has never seen it (a fresh worker, a session that
    does not listen and so keeps no entities)."""
    if peer.peer_id is None:
        return None
    channel_id, kind = utils.resolve_id(peer.peer_id)
    if kind is not types.PeerChannel:
        return None
    access_hash = ChannelStore(runtime.engine).access_hash(key, peer.peer_id)
    return None if access_hash is None else types.InputPeerChannel(channel_id, access_hash)


def _message_id(result: object, random_id: int) -> int | None:
    if isinstance(result, types.UpdateShortSentMessage):
        return int(result.id)
    for update in getattr(result, "updates", ()):
        if isinstance(update, types.UpdateMessageID) and update.random_id == random_id:
            return int(update.id)
    for update in getattr(result, "updates", ()):
        message = getattr(update, "message", None)
        if isinstance(message, types.Message):
            return int(message.id)
    return None


async def _send(
    client: TelegramClient, input_peer: types.TypeInputPeer, text: str, random_id: int
) -> int | None:
    result = await client(
        functions.messages.SendMessageRequest(
            peer=input_peer, message=text, random_id=random_id, no_webpage=True
        )
    )
    return _message_id(result, random_id)


def send_message(
    runtime: SessionRuntime,
    outbox: OutboxStore,
    request: SendRequest,
    *,
    pacer: Pacer | None = None,
    task_id: str | None = None,
) -> SendOutcome:
    """Send ``request`` at most once to Telegram and record the outcome in the outbox.

    Retryable failures (FloodWait, network, lease contention) leave the row ``queued``
    and raise for the job layer to retry with the same random_id; permanent ones mark
    it ``failed`` with the reason and raise; a finished row is returned, not re-sent.
    ``request`` was validated where it entered (inputs.SendRequest).
    """
    key, peer, text = request.key, request.peer, request.text
    idempotency_key = request.idempotency_key
    random_id = random_id_for(key, idempotency_key)
    digest = payload_digest(str(peer), text)
    entry = outbox.claim(
        key,
        idempotency_key=idempotency_key,
        peer=str(peer),
        payload_sha256=digest,
        random_id=random_id,
        task_id=task_id,
    )
    if entry.payload_sha256 != digest:
        raise IdempotencyConflict(
            f"idempotency key {idempotency_key!r} was used for another message"
        )
    if entry.status == "failed" and task_id is not None and entry.task_id == task_id:
        # This very job failed before (a redelivery, a duplicate publish): its outcome is
        # that failure, not a success reporting it.
        raise SendFailedBefore(
            entry.error_details or f"the send failed: {entry.error_code}",
            code=entry.error_code or SendFailedBefore.code,
        )
    if entry.status != "queued":
        return SendOutcome.of(entry, repeated=True)
    kind = "account"
    try:
        with runtime.session(key) as active:
            try:
                input_peer: types.TypeInputPeer = active.call(
                    lambda client: _input_peer(client, peer)
                )
            except PeerNotFound:
                known = _known_peer(runtime, key, peer)
                if known is None:
                    raise
                input_peer = known
            if pacer is not None:
                is_group = isinstance(input_peer, types.InputPeerChat | types.InputPeerChannel)
                pacer.reserve(key, str(peer), is_group=is_group)
            outbox.note_attempt(entry.id)
            message_id = active.call(lambda client: _send(client, input_peer, text, random_id))
    except tg.RandomIdDuplicateError:
        # An earlier run reached Telegram and crashed before recording it: it was sent.
        finished = outbox.finish(entry.id, status="sent", error_details="random_id duplicate")
        MESSAGES_SENT.labels(type=kind).inc()
        return SendOutcome.of(finished, repeated=True)
    except Exception as raw:
        error = to_service_error(raw)
        if isinstance(error, SessionTerminated):
            record_terminal(runtime, key, error, task_id)
        if isinstance(error, PermanentError):
            outbox.finish(
                entry.id, status="failed", error_code=error.code, error_details=str(error)
            )
            MESSAGES_FAILED.labels(error=error.code).inc()
        raise
    finished = outbox.finish(entry.id, status="sent", telegram_message_id=message_id)
    MESSAGES_SENT.labels(type=kind).inc()
    runtime.note_activity(key)
    return SendOutcome.of(finished, repeated=False)


def mark_given_up(outbox: OutboxStore, request: SendRequest, error: ServiceError) -> None:
    """Mark a send's queued row failed when its job gives up (retries exhausted, or a
    permanent error met before the row was finished)."""
    entry = outbox.get(request.key, request.idempotency_key)
    if entry is not None and entry.status == "queued":
        outbox.finish(entry.id, status="failed", error_code=error.code, error_details=str(error))
        MESSAGES_FAILED.labels(error=error.code).inc()
