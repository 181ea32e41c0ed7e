"""A worker's listening sessions: their clients run the feed and are kept connected.

A listening session's client is an ordinary pooled client of the worker (jobs for the
session use the same connection: one auth key, one connection, no AUTH_KEY_DUPLICATED),
built on a PgSession with the feed as its update loop. While this worker holds its lease
the listener reconnects it whenever it drops (with backoff, through the pool's breaker
and bounded handshakes); each reconnect resumes the feed from the log with
getDifference. A terminated authorisation is recorded (revoked, banned, ...) and the
session is let go. Everything here runs on the worker's loop unless it says otherwise.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

import structlog
from telethon import TelegramClient
from telethon.tl import functions

from integration_service.inbound.event_log import EntityRow, EventLog, UpdateState
from integration_service.inbound.events import EventDraft
from integration_service.inbound.feed import UpdateFeed
from integration_service.inbound.listening_client import ListeningClient
from integration_service.inbound.pg_session import PgSession
from integration_service.store.records import SessionKey
from integration_service.tracing.propagation import current_traceparent

if TYPE_CHECKING:
    from integration_service.runtime.client_pool import PooledClient
    from integration_service.runtime.session_runtime import SessionRuntime

logger = structlog.get_logger(__name__)

RECONNECT_BACKOFF_MAX = 30.0


class Listener:
    """Builds listening clients for a runtime and keeps them connected."""

    def __init__(self, runtime: SessionRuntime, events: EventLog) -> None:
        self._runtime = runtime
        self._events = events
        # Database calls of feeds run here, off the loop: thousands of sessions share it.
        self._database = ThreadPoolExecutor(max_workers=4, thread_name_prefix="feed-db")
        self._watchers: dict[SessionKey, asyncio.Task[None]] = {}

    def close(self) -> None:
        for task in self._watchers.values():
            task.cancel()
        self._database.shutdown(wait=False, cancel_futures=True)

    def is_listening(self, entry: PooledClient) -> bool:
        return isinstance(entry.client, ListeningClient)

    def feed_of(self, key: SessionKey) -> UpdateFeed | None:
        entry = self._runtime.pool.peek(key)
        if entry is None or not isinstance(entry.client, ListeningClient):
            return None
        return entry.client.feed

    async def build(self, key: SessionKey, material: str) -> TelegramClient:
        """A listening client for ``key`` (unconnected), on its stored entities and state."""
        loop = asyncio.get_running_loop()
        entities = await loop.run_in_executor(self._database, self._events.entities, key)
        stored = await loop.run_in_executor(self._database, self._events.state, key)
        session = PgSession(material, entities)

        async def commit(
            drafts: Sequence[EventDraft],
            state: UpdateState | None,
            channels: dict[int, int],
            rows: Sequence[EntityRow],
        ) -> list[EventDraft]:
            # Read here, on the feed's task: the database thread does not see its context.
            traceparent = current_traceparent()
            return await loop.run_in_executor(
                self._database,
                lambda: self._events.commit_feed(
                    key,
                    drafts,
                    state=state,
                    channels=channels,
                    entities=rows,
                    traceparent=traceparent,
                ),
            )

        client = self._runtime.client_factory.create_on(
            session, receive_updates=True, client_class=ListeningClient
        )
        assert isinstance(client, ListeningClient)
        client.feed = UpdateFeed(key, session, stored, commit)
        return client

    def watch(self, entry: PooledClient) -> None:
        """Keep ``entry`` connected while it is pooled under its lease."""
        old = self._watchers.get(entry.key)
        if old is not None and not old.done():
            old.cancel()
        self._watchers[entry.key] = asyncio.get_running_loop().create_task(self._watch(entry))

    def forget(self, key: SessionKey) -> None:
        task = self._watchers.pop(key, None)
        if task is not None and task is not asyncio.current_task():
            task.cancel()

    async def _watch(self, entry: PooledClient) -> None:
        runtime = self._runtime
        delay = 1.0
        client = entry.client
        while runtime.pool.peek(entry.key) is entry:
            await asyncio.shield(client.disconnected)
            if runtime.pool.peek(entry.key) is not entry or not runtime.holds(entry.lease):
                return
            error = getattr(client, "feed_error", None)
            if error is not None and await self._terminated(entry, error):
                return
            await asyncio.sleep(delay * random.uniform(0.5, 1.0))
            try:
                await runtime.pool.reconnect(entry)
                delay = 1.0
            except Exception as failure:  # noqa: BLE001 - retried with backoff
                if await self._terminated(entry, failure):
                    return
                delay = min(RECONNECT_BACKOFF_MAX, delay * 2)
                logger.info(
                    "listening_reconnect_failed",
                    session=str(entry.key),
                    error=type(failure).__name__,
                    retry_in=round(delay, 1),
                )

    async def _terminated(self, entry: PooledClient, error: BaseException) -> bool:
        """Record a dead authorisation (revoked, banned, ...) and let the session go."""
        from integration_service.sessions.validation import record_terminal
        from integration_service.telegram.error_mapping import to_service_error
        from integration_service.telegram.errors import SessionTerminated

        mapped = to_service_error(error)
        if not isinstance(mapped, SessionTerminated):
            return False
        loop = asyncio.get_running_loop()
        logger.warning("listening_session_terminated", session=str(entry.key), state=mapped.state)
        self._watchers.pop(entry.key, None)
        try:
            await loop.run_in_executor(
                None, record_terminal, self._runtime, entry.key, mapped, None
            )
        except Exception:
            logger.exception("record_terminal_failed", session=str(entry.key))
            await self._runtime.pool.evict(entry.key, f"session_{mapped.state}")
        return True

    async def start_state(self, key: SessionKey, client: Any) -> None:
        """A login just finished on ``client``: the log starts at Telegram's state now,
        so what arrives between the login and the first listener is not lost."""
        current = await client(functions.updates.GetStateRequest())
        loop = asyncio.get_running_loop()
        state = UpdateState(current.pts, current.qts, int(current.date.timestamp()), current.seq)

        def reset_and_start() -> None:
            self._events.reset_state(key)
            self._events.commit_feed(key, [], state=state, channels={}, entities=[])

        await loop.run_in_executor(self._database, reset_and_start)
