"""A Telethon client whose update loop is our feed instead of Telethon's message box.

Telethon's own loop (MessageBox) keeps the update state in memory and saves it only on
disconnect, ahead of what any handler has stored: after a kill -9 it would either lose
updates or, resumed from its saved state, skip them. The feed (inbound/feed.py) owns the
state and commits it with the events. The sender still queues every pushed update (and
the updates our own calls return) on ``_updates_queue``; the feed reads them from there.
"""

from __future__ import annotations

import asyncio
from typing import Any

import structlog

from integration_service.inbound.feed import UpdateFeed
from integration_service.telegram.traced_client import TracedTelegramClient

logger = structlog.get_logger(__name__)


class ListeningClient(TracedTelegramClient):
    """Set ``feed`` before connecting; ``feed_error`` says why the feed stopped, if it did."""

    feed: UpdateFeed | None = None
    feed_error: BaseException | None = None

    async def _update_loop(self) -> None:
        feed = self.feed
        if feed is None:
            return
        self.feed_error = None
        try:
            await feed.run(self, self._updates_queue)
        except asyncio.CancelledError:
            pass  # disconnect() cancels this task
        except Exception as error:
            self.feed_error = error
            logger.warning(
                "feed_stopped",
                session=str(feed.key),
                error=type(error).__name__,
                exc_info=True,  # a stopped feed is a defect: its traceback says where
            )
            # The listener sees the disconnection and reconnects; the feed resumes from
            # what the log committed (getDifference), so nothing is skipped.
            await self.disconnect()

    def queued_updates(self) -> Any:
        return self._updates_queue
