"""One listening session's update feed: Telegram's updates into the event log, none lost.

Follows core.telegram.org/api/updates. The account's update state (pts, qts, date, seq)
and each channel's pts are the event log's (inbound_state): the feed starts from them,
applies pushed updates by the pts rules (``local + pts_count == pts`` applies, less is a
repeat, more is a gap), and fills every gap, restart and takeover with
``updates.getDifference`` / ``updates.getChannelDifference``. Each batch of updates is
committed in one transaction with the state it reaches, and the in-memory state moves
only after that commit: a crash, a lost lease or a database outage resumes from what the
log holds, so an update is never skipped; a repeat is absorbed by the log's dedup keys.

``differenceTooLong`` / ``channelDifferenceTooLong``: what Telegram still gives is taken
and a ``gap`` event says which pts range was lost.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from typing import Any

import structlog
from opentelemetry.trace import SpanKind
from telethon import TelegramClient, utils
from telethon.tl import functions, types

from integration_service.inbound import translate
from integration_service.inbound.event_log import EntityRow, StoredState, UpdateState
from integration_service.inbound.events import MESSAGE_RECEIVED, EventDraft
from integration_service.inbound.metrics import INBOUND_EVENT_LAG, INBOUND_EVENTS, SESSION_GAPS
from integration_service.inbound.pg_session import PgSession
from integration_service.store.records import SessionKey
from integration_service.tracing.spans import span

logger = structlog.get_logger(__name__)

# Commit(drafts, common state or None, channel pts, entities) -> the drafts new to the log.
Commit = Callable[
    [Sequence[EventDraft], UpdateState | None, dict[int, int], Sequence[EntityRow]],
    Awaitable[list[EventDraft]],
]

CHANNEL_DIFFERENCE_LIMIT = 100
# Names of peers kept for rendering events; the access hashes live in the PgSession.
PEER_CACHE_LIMIT = 256
_COMMON_PTS_UPDATES = (
    types.UpdateNewMessage,
    types.UpdateEditMessage,
    types.UpdateDeleteMessages,
    types.UpdateReadHistoryInbox,
    types.UpdateReadHistoryOutbox,
    types.UpdateWebPage,
    types.UpdateReadMessagesContents,
    types.UpdatePinnedMessages,
    types.UpdateFolderPeers,
)


def _now() -> datetime:
    return datetime.now(UTC)


def _timestamp(moment: datetime | None) -> int:
    return int(moment.timestamp()) if moment is not None else 0


def _channel_of(update: Any) -> int | None:
    """The channel whose box an update belongs to, or None for the common box."""
    if isinstance(update, types.UpdateNewChannelMessage | types.UpdateEditChannelMessage):
        peer = getattr(update.message, "peer_id", None)
        return peer.channel_id if isinstance(peer, types.PeerChannel) else None
    if isinstance(update, types.UpdateDeleteChannelMessages):
        return int(update.channel_id)
    if hasattr(update, "channel_id") and hasattr(update, "pts") and hasattr(update, "pts_count"):
        return int(update.channel_id)
    return None


@dataclasses.dataclass
class _Batch:
    """What one pass over received updates produced, before it is committed."""

    state: UpdateState | None
    channels: dict[int, int] = dataclasses.field(default_factory=dict)
    drafts: list[EventDraft] = dataclasses.field(default_factory=list)
    common_gap: bool = False
    channel_gaps: set[int] = dataclasses.field(default_factory=set)
    changed: bool = False


class UpdateFeed:
    """Runs on the worker's loop, inside the listening client's update loop."""

    def __init__(
        self,
        key: SessionKey,
        session: PgSession,
        stored: StoredState,
        commit: Commit,
    ) -> None:
        self.key = key
        self._session = session
        self._state = stored.common
        self._channels = dict(stored.channels)
        self._commit_to_log = commit
        self._users: dict[int, Any] = {}
        self._chats: dict[int, Any] = {}
        self.caught_up = asyncio.Event()

    @property
    def state(self) -> UpdateState | None:
        return self._state

    @property
    def channels(self) -> dict[int, int]:
        return dict(self._channels)

    # The loop --------------------------------------------------------------------------

    async def run(self, client: TelegramClient, queue: asyncio.Queue[Any]) -> None:
        """Catch up from the stored state, then apply what Telegram pushes, until the
        client disconnects (or a commit fails: the caller reconnects and we resume)."""
        self.caught_up.clear()
        with span("telegram catch-up", kind=SpanKind.CONSUMER, attributes=self._attributes()):
            await self.catch_up(client)
        self.caught_up.set()
        while client.is_connected():
            batch = [await queue.get()]
            while not queue.empty() and len(batch) < 500:
                batch.append(queue.get_nowait())
            # One trace per batch of pushed updates: its events carry it (traceparent) to
            # the relay's publish and the webhook calls.
            with span(
                "telegram updates",
                kind=SpanKind.CONSUMER,
                attributes={**self._attributes(), "telegram.updates": len(batch)},
            ):
                await self.apply(client, batch)

    def _attributes(self) -> dict[str, str]:
        return {"tenant_id": self.key.tenant_id, "app_id": self.key.app_id}

    async def catch_up(self, client: TelegramClient) -> None:
        if self._state is None:
            # First time this session listens: Telegram's current state is where our log
            # starts (nothing before it was ever promised to anyone).
            current = await client(functions.updates.GetStateRequest())
            await self._commit(
                [],
                UpdateState(current.pts, current.qts, _timestamp(current.date), current.seq),
                {},
            )
        else:
            await self.get_difference(client)
        for channel_id in list(self._channels):
            await self.channel_difference(client, channel_id)

    # Pushed updates --------------------------------------------------------------------

    async def apply(self, client: TelegramClient, received: Sequence[Any]) -> None:
        batch = _Batch(state=self._state)
        for container in received:
            self._apply_container(container, batch)
        if batch.changed or batch.drafts:
            await self._commit(batch.drafts, batch.state, batch.channels)
        if batch.common_gap:
            await self.get_difference(client)
        for channel_id in sorted(batch.channel_gaps):
            await self.channel_difference(client, channel_id)

    def _apply_container(self, container: Any, batch: _Batch) -> None:
        self._learn_peers(container)
        if isinstance(container, types.UpdatesTooLong):
            batch.common_gap = True
            return
        if isinstance(container, types.UpdateShortMessage | types.UpdateShortChatMessage):
            message = translate.short_to_message(container)
            update: Any = types.UpdateNewMessage(message, container.pts, container.pts_count)
            self._apply_update(update, batch)
            return
        if isinstance(container, types.UpdateShortSentMessage):
            # Our own send takes a pts in the common box. Its event is message.sent, written
            # by the outbox, so here it only moves the box on (nothing is received).
            if batch.state is not None:
                self._advance_common(None, container.pts, container.pts_count, batch)
            return
        if isinstance(container, types.UpdateShort):
            self._apply_update(container.update, batch)
            return
        if isinstance(container, types.Updates | types.UpdatesCombined):
            seq_start = getattr(container, "seq_start", container.seq)
            if container.seq != 0 and batch.state is not None:
                if batch.state.seq + 1 < seq_start:
                    batch.common_gap = True  # a seq hole: getDifference fills it
                    return
                if batch.state.seq + 1 > seq_start:
                    return  # applied before
            for update in container.updates:
                self._apply_update(update, batch)
            if container.seq != 0 and batch.state is not None and not batch.common_gap:
                batch.state = dataclasses.replace(
                    batch.state, seq=container.seq, date=_timestamp(container.date)
                )
                batch.changed = True

    def _apply_update(self, update: Any, batch: _Batch, *, in_difference: bool = False) -> None:
        channel_id = _channel_of(update)
        if channel_id is not None:
            self._apply_channel_update(channel_id, update, batch)
            return
        if isinstance(update, types.UpdateChannelTooLong):
            if update.channel_id in self._channels or update.channel_id in batch.channels:
                batch.channel_gaps.add(update.channel_id)
            elif update.pts is not None:
                # A channel we never had a pts for: everything up to here is out of reach.
                batch.channels[update.channel_id] = update.pts
            return
        if not isinstance(update, _COMMON_PTS_UPDATES) or batch.state is None:
            return  # no pts of ours (typing, statuses) or not started: nothing to record
        if in_difference:
            batch.drafts.extend(self._drafts_for(update, box="common"))
            return
        self._advance_common(update, update.pts, update.pts_count, batch)

    def _advance_common(self, update: Any, pts: int, pts_count: int, batch: _Batch) -> None:
        """Apply one pts step of the common box (core.telegram.org/api/updates#update-handling).

        ``update`` is None for a step that records no event (our own sent message).
        """
        if batch.common_gap or batch.state is None:
            return  # the difference brings it, in order
        local = batch.state.pts
        if local + pts_count == pts:
            if update is not None:
                batch.drafts.extend(self._drafts_for(update, box="common"))
            batch.state = dataclasses.replace(batch.state, pts=pts)
            batch.changed = True
        elif local + pts_count > pts:
            return  # applied before
        else:
            batch.common_gap = True

    def _apply_channel_update(self, channel_id: int, update: Any, batch: _Batch) -> None:
        if channel_id in batch.channel_gaps:
            return
        local = batch.channels.get(channel_id, self._channels.get(channel_id))
        if local is None or local + update.pts_count == update.pts:
            batch.drafts.extend(self._drafts_for(update, box=f"c{channel_id}"))
            batch.channels[channel_id] = update.pts
        elif local + update.pts_count > update.pts:
            return
        else:
            batch.channel_gaps.add(channel_id)

    def _drafts_for(self, update: Any, *, box: str) -> list[EventDraft]:
        users, chats = self._users, self._chats
        if isinstance(update, types.UpdateNewMessage | types.UpdateNewChannelMessage):
            draft = translate.received(update.message, users, chats)
        elif isinstance(update, types.UpdateEditMessage | types.UpdateEditChannelMessage):
            draft = translate.edited(update.message, users, chats)
        elif isinstance(update, types.UpdateDeleteChannelMessages):
            draft = translate.deleted(
                box,
                update.pts,
                update.messages,
                translate.channel_chat(update.channel_id, chats),
                _now(),
            )
        elif isinstance(update, types.UpdateDeleteMessages):
            if not update.messages:
                return []  # a pts-only marker (Telethon's stand-in for affected messages)
            # Private and basic-group deletions do not say which chat they were in.
            draft = translate.deleted(box, update.pts, update.messages, None, _now())
        else:
            draft = None
        return [] if draft is None else [draft]

    # Differences -----------------------------------------------------------------------

    async def get_difference(self, client: TelegramClient) -> None:
        """updates.getDifference from the stored state until Telegram has nothing more."""
        while self._state is not None:
            state = self._state
            difference = await client(
                functions.updates.GetDifferenceRequest(
                    pts=state.pts,
                    date=datetime.fromtimestamp(state.date, UTC),
                    qts=state.qts,
                )
            )
            if isinstance(difference, types.updates.DifferenceEmpty):
                await self._commit(
                    [],
                    dataclasses.replace(
                        state, date=_timestamp(difference.date), seq=difference.seq
                    ),
                    {},
                )
                return
            if isinstance(difference, types.updates.DifferenceTooLong):
                SESSION_GAPS.labels(box="common").inc()
                logger.warning(
                    "update_gap", session=str(self.key), from_pts=state.pts, to_pts=difference.pts
                )
                gap = translate.gap(
                    "common", None, state.pts, difference.pts, "differenceTooLong", _now()
                )
                await self._commit([gap], dataclasses.replace(state, pts=difference.pts), {})
                continue
            self._learn_peers(difference)
            batch = _Batch(state=state)
            for message in difference.new_messages:
                update = types.UpdateNewMessage(message, 0, 0)
                batch.drafts.extend(self._drafts_for(update, box="common"))
            for update in difference.other_updates:
                self._apply_update(update, batch, in_difference=True)
            final = (
                difference.intermediate_state
                if isinstance(difference, types.updates.DifferenceSlice)
                else difference.state
            )
            reached = UpdateState(final.pts, final.qts, _timestamp(final.date), final.seq)
            await self._commit(batch.drafts, reached, batch.channels)
            for channel_id in sorted(batch.channel_gaps):
                await self.channel_difference(client, channel_id)
            if not isinstance(difference, types.updates.DifferenceSlice):
                return

    async def channel_difference(self, client: TelegramClient, channel_id: int) -> None:
        """updates.getChannelDifference from the channel's stored pts until final."""
        marked = utils.get_peer_id(types.PeerChannel(channel_id))
        found = self._session.get_entity_rows_by_id(marked, exact=True)
        if found is None:
            logger.warning("channel_without_access_hash", session=str(self.key), channel=channel_id)
            return
        channel = types.InputChannel(channel_id, found[1])
        while channel_id in self._channels:
            local = self._channels[channel_id]
            difference = await client(
                functions.updates.GetChannelDifferenceRequest(
                    channel=channel,
                    filter=types.ChannelMessagesFilterEmpty(),
                    pts=local,
                    limit=CHANNEL_DIFFERENCE_LIMIT,
                )
            )
            if isinstance(difference, types.updates.ChannelDifferenceEmpty):
                if difference.pts != local:
                    await self._commit([], None, {channel_id: difference.pts})
                return
            self._learn_peers(difference)
            box = f"c{channel_id}"
            drafts: list[EventDraft] = []
            if isinstance(difference, types.updates.ChannelDifferenceTooLong):
                reached = difference.dialog.pts
                SESSION_GAPS.labels(box="channel").inc()
                logger.warning(
                    "update_gap",
                    session=str(self.key),
                    channel=channel_id,
                    from_pts=local,
                    to_pts=reached,
                )
                drafts.append(
                    translate.gap(
                        box, channel_id, local, reached, "channelDifferenceTooLong", _now()
                    )
                )
                for message in difference.messages:
                    drafts.extend(
                        self._drafts_for(types.UpdateNewChannelMessage(message, 0, 0), box=box)
                    )
                await self._commit(drafts, None, {channel_id: reached})
                return
            for message in difference.new_messages:
                drafts.extend(
                    self._drafts_for(types.UpdateNewChannelMessage(message, 0, 0), box=box)
                )
            for update in difference.other_updates:
                drafts.extend(self._drafts_for(update, box=box))
            await self._commit(drafts, None, {channel_id: difference.pts})
            if difference.final:
                return

    # Committing ------------------------------------------------------------------------

    async def _commit(
        self, drafts: Sequence[EventDraft], state: UpdateState | None, channels: dict[int, int]
    ) -> None:
        entities = self._session.take_unsaved()
        try:
            added = await self._commit_to_log(drafts, state, channels, entities)
        except BaseException:
            self._session.give_back(entities)
            raise
        # Only now, with the rows committed, does the feed's state move.
        if state is not None:
            self._state = state
        self._channels.update(channels)
        now = time.time()
        for draft in added:
            INBOUND_EVENTS.labels(type=draft.type).inc()
            if draft.type == MESSAGE_RECEIVED:
                INBOUND_EVENT_LAG.observe(max(0.0, now - draft.occurred_at.timestamp()))

    def _learn_peers(self, container: Any) -> None:
        users = getattr(container, "users", None)
        chats = getattr(container, "chats", None)
        if not users and not chats:
            return
        self._session.process_entities(container)
        for user in users or ():
            self._users[user.id] = user
        for chat in chats or ():
            self._chats[chat.id] = chat
        for cache in (self._users, self._chats):
            while len(cache) > PEER_CACHE_LIMIT:
                cache.pop(next(iter(cache)))
