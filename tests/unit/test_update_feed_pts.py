"""The feed's pts rules for the common box (core.telegram.org/api/updates), pushed
containers only: no network, a recording commit in place of the event log."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, cast

from telethon.tl import types

from integration_service.inbound.event_log import EntityRow, StoredState, UpdateState
from integration_service.inbound.events import EventDraft
from integration_service.inbound.feed import UpdateFeed
from integration_service.inbound.pg_session import PgSession
from integration_service.store.records import SessionKey

MOMENT = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)


class _NoEntities:
    """The two PgSession calls a commit makes, with nothing to save."""

    def take_unsaved(self) -> list[EntityRow]:
        return []

    def give_back(self, _rows: Sequence[EntityRow]) -> None:
        return None


def _feed(pts: int) -> tuple[UpdateFeed, list[tuple[list[EventDraft], UpdateState | None]]]:
    commits: list[tuple[list[EventDraft], UpdateState | None]] = []

    async def commit(
        drafts: Sequence[EventDraft],
        state: UpdateState | None,
        _channels: dict[int, int],
        _entities: Sequence[EntityRow],
    ) -> list[EventDraft]:
        commits.append((list(drafts), state))
        return list(drafts)

    feed = UpdateFeed(
        SessionKey("tenant-unit", "app-unit"),
        cast(PgSession, _NoEntities()),
        StoredState(common=UpdateState(pts, 0, 0, 0)),
        commit,
    )
    return feed, commits


def _apply(feed: UpdateFeed, *containers: Any) -> None:
    # No gap in these cases, so the client (used only for differences) is never touched.
    asyncio.run(feed.apply(cast(Any, None), list(containers)))


def test_our_sent_message_moves_the_box_and_records_nothing() -> None:
    feed, commits = _feed(pts=10)
    _apply(feed, types.UpdateShortSentMessage(id=7, pts=11, pts_count=1, date=MOMENT))
    assert feed.state is not None and feed.state.pts == 11
    assert [drafts for drafts, _ in commits] == [[]]


def test_a_repeated_sent_message_is_absorbed() -> None:
    feed, commits = _feed(pts=11)
    _apply(feed, types.UpdateShortSentMessage(id=7, pts=11, pts_count=1, date=MOMENT))
    assert feed.state is not None and feed.state.pts == 11
    assert commits == []


def test_a_short_message_after_our_send_is_received_in_order() -> None:
    feed, commits = _feed(pts=10)
    _apply(
        feed,
        types.UpdateShortSentMessage(id=7, pts=11, pts_count=1, date=MOMENT),
        types.UpdateShortMessage(id=8, user_id=42, message="hi", pts=12, pts_count=1, date=MOMENT),
    )
    assert feed.state is not None and feed.state.pts == 12
    ((drafts, state),) = commits
    assert state is not None and state.pts == 12
    assert [(d.type, d.data["text"]) for d in drafts] == [("message.received", "hi")]
