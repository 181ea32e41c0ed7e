"""The channel job's body: ask Telegram about one channel, with its account's warm client,
and store what it says.

A first check resolves the tenant's target (and may join by an invite link); later checks
(the ``low`` refresh) ask by the stored id. What cannot work is recorded, not raised:
a chat Telegram refuses on connect makes the channel ``failed`` with the reason; on a
refresh, a chat the account can no longer see keeps the channel with no rights (and the
``channel.rights_changed`` event says so). Transient failures are raised for the job to
retry; a dead session is raised for the job layer to record.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import structlog
from prometheus_client import Counter

from integration_service.channels.inspect import (
    ChannelUnusable,
    KnownChat,
    inspect,
    reinspect,
)
from integration_service.channels.rights import NO_RIGHTS
from integration_service.channels.store import CONNECTED, Channel, ChannelFacts, ChannelStore
from integration_service.channels.targets import channel_target
from integration_service.errors import PermanentError
from integration_service.runtime.session_runtime import SessionRuntime
from integration_service.store import SessionKey
from integration_service.telegram.error_mapping import to_service_error
from integration_service.telegram.errors import SessionTerminated

logger = structlog.get_logger(__name__)
CHANNEL_CHECKS = Counter("channel_checks_total", "Channel checks, by outcome.", ["outcome"])


@dataclass(frozen=True, slots=True)
class ChannelCheck:
    """``outcome``: connected, failed, gone (removed meanwhile), lost (the account can no
    longer see the chat) or unchecked (a refresh Telegram refused; rights kept);
    ``rights_changed``: whether an event was written."""

    channel_id: str
    outcome: str
    can_post: bool = False
    rights_changed: bool = False
    error_code: str | None = None


def check_channel(
    runtime: SessionRuntime, key: SessionKey, channel_id: uuid.UUID, *, actor: str = "worker"
) -> ChannelCheck:
    """Check channel ``channel_id`` of account ``key`` (the job's session); ``actor``
    names the job in the audit trail."""
    store = ChannelStore(runtime.engine)
    channel = store.get(channel_id)
    if channel is None or channel.key != key:
        # Removed since the job was enqueued (a job naming another account's channel is
        # treated alike: it must not act on a chat with the wrong account).
        return _counted(ChannelCheck(str(channel_id), "gone"))
    refresh = channel.status == CONNECTED and channel.telegram_id is not None
    try:
        facts = _ask(runtime, channel, refresh=refresh)
    except Exception as raw:
        error = to_service_error(raw)
        if isinstance(error, SessionTerminated) or not isinstance(error, PermanentError):
            raise
        if refresh:
            # A refusal we have no reading for: the channel keeps its last known rights,
            # the next refresh asks again (a scheduled check is not dead-lettered).
            logger.warning("channel_unchecked", channel=str(channel_id), error_code=error.code)
            return _counted(ChannelCheck(str(channel_id), "unchecked", error_code=error.code))
        store.fail(channel_id, error.code, error.detail, actor=actor)
        logger.info("channel_failed", channel=str(channel_id), error_code=error.code)
        return _counted(ChannelCheck(str(channel_id), "failed", error_code=error.code))
    outcome = "connected"
    if facts is None:
        # The account can no longer see the chat: the channel stays, with no rights.
        facts, outcome = _lost(channel), "lost"
    try:
        recorded = store.record(channel_id, facts, actor=actor)
    except PermanentError as error:
        # Told apart by code: another name of a chat the account has (channel_exists),
        # or what Telegram said that the table cannot hold. Never left pending.
        store.fail(channel_id, error.code, error.detail, actor=actor)
        return _counted(ChannelCheck(str(channel_id), "failed", error_code=error.code))
    if recorded is None:
        return _counted(ChannelCheck(str(channel_id), "gone"))
    return _counted(
        ChannelCheck(
            str(channel_id),
            outcome,
            can_post=facts.rights.can_post,
            rights_changed=recorded.event_added,
        )
    )


def _ask(runtime: SessionRuntime, channel: Channel, *, refresh: bool) -> ChannelFacts | None:
    with runtime.session(channel.key) as active:
        if refresh:
            assert channel.telegram_id is not None
            known = KnownChat(channel.telegram_id, channel.access_hash)
            return active.call(lambda client: reinspect(client, known))
        target = channel_target(channel.peer)
        return active.call(lambda client: inspect(client, target))


def _lost(channel: Channel) -> ChannelFacts:
    """The chat as last known, with no rights."""
    assert channel.telegram_id is not None and channel.kind is not None
    return ChannelFacts(
        telegram_id=channel.telegram_id,
        access_hash=channel.access_hash,
        kind=channel.kind,
        title=channel.title or "",
        username=channel.username,
        members_count=channel.members_count,
        rights=NO_RIGHTS,
    )


def _counted(check: ChannelCheck) -> ChannelCheck:
    CHANNEL_CHECKS.labels(outcome=check.outcome).inc()
    return check


__all__ = ["ChannelCheck", "ChannelUnusable", "check_channel"]
