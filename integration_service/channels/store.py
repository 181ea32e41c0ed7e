"""The ``telegram_channels`` rows: connect, read, page, remove, and what a check found.

The tenant's own calls (connect, read, page, remove) run on the engine they are given:
the HTTP API gives the tenant-scoped one, so row-level security applies. ``record``,
``fail`` and ``due`` are the worker's (its role reads every tenant).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import Connection, Engine

from integration_service.channels.rights import Rights, changes
from integration_service.channels.targets import ChannelTarget
from integration_service.errors import PermanentError
from integration_service.inbound.event_log import append_drafts
from integration_service.inbound.events import CHANNEL_RIGHTS_CHANGED, EventDraft
from integration_service.store.errors import StoreError
from integration_service.store.guard import DatabaseGuard
from integration_service.store.records import SessionKey

COLUMNS = (
    "id, tenant_id, account_id, peer, status, telegram_id, access_hash, kind, title, "
    "username, members_count, rights, rights_version, error_code, error_detail, checked_at, "
    "created_at, updated_at"
)
PENDING, CONNECTED, FAILED = "pending", "connected", "failed"
# Another row of this account already has the chat (uq_telegram_channels_chat).
UNIQUE_VIOLATION = "23505"


class ChannelExists(PermanentError):
    """The account is already connected to this chat (the existing channel is named)."""

    code = "channel_exists"
    channel_id: str = ""

    def __init__(self, channel_id: str, account_id: str, peer: str) -> None:
        super().__init__(
            f"account {account_id} is already connected to {peer} as channel {channel_id}"
        )
        self.channel_id = channel_id


@dataclass(frozen=True, slots=True)
class Channel:
    id: uuid.UUID
    tenant_id: str
    account_id: str
    peer: str
    status: str
    telegram_id: int | None
    access_hash: int | None
    kind: str | None
    title: str | None
    username: str | None
    members_count: int | None
    rights: Rights | None
    rights_version: int
    error_code: str | None
    error_detail: str | None
    checked_at: datetime | None
    created_at: datetime
    updated_at: datetime

    @property
    def key(self) -> SessionKey:
        return SessionKey(self.tenant_id, self.account_id)


@dataclass(frozen=True, slots=True)
class ChannelFacts:
    """What a check learnt from Telegram about a chat and the account's place in it."""

    telegram_id: int  # marked: -100... channels and supergroups, -... basic groups
    access_hash: int | None
    kind: str  # channel, supergroup or group
    title: str
    username: str | None
    members_count: int | None
    rights: Rights


@dataclass(frozen=True, slots=True)
class Recorded:
    """What ``record`` changed: the rights before (None on the first check) and after."""

    channel: Channel
    before: Rights | None
    event_added: bool


def _channel(row: Any) -> Channel:
    m = dict(row._mapping)
    rights = m.pop("rights")
    return Channel(**m, rights=None if rights is None else Rights.from_dict(rights))


class ChannelStore:
    def __init__(self, engine: Engine, guard: DatabaseGuard | None = None) -> None:
        self._engine = engine
        self._guard = guard or DatabaseGuard()

    # The tenant's calls ----------------------------------------------------------------

    def connect(self, tenant_id: str, account_id: str, target: ChannelTarget) -> Channel:
        """A new, ``pending`` channel of ``account_id``; ``ChannelExists`` when the account
        was connected by this very name before."""
        with self._guard.transaction(self._engine, "connect channel") as conn:
            row = conn.execute(
                text(
                    "INSERT INTO telegram_channels (tenant_id, account_id, peer) "
                    "VALUES (:t, :a, :p) ON CONFLICT (tenant_id, account_id, peer) "
                    f"DO NOTHING RETURNING {COLUMNS}"
                ),
                {"t": tenant_id, "a": account_id, "p": str(target)},
            ).first()
            if row is not None:
                return _channel(row)
            existing = conn.execute(
                text(
                    f"SELECT {COLUMNS} FROM telegram_channels "
                    "WHERE tenant_id = :t AND account_id = :a AND peer = :p"
                ),
                {"t": tenant_id, "a": account_id, "p": str(target)},
            ).one()
        found = _channel(existing)
        raise ChannelExists(str(found.id), found.account_id, found.peer)

    # ``tenant_id`` narrows reads for the service role (the CLI); under the tenant role
    # row-level security narrows them anyway.

    def connect_checked(
        self,
        tenant_id: str,
        account_id: str,
        target: ChannelTarget,
        enqueue_check: Callable[[Channel], object],
    ) -> Channel:
        """``connect``, then hand the new channel to ``enqueue_check`` (the connect job).
        If that fails the row is removed again: no job would ever check it, and the
        caller's retry connects afresh."""
        channel = self.connect(tenant_id, account_id, target)
        try:
            enqueue_check(channel)
        except BaseException:
            self.remove(channel.id, tenant_id=tenant_id)
            raise
        return channel

    def get(self, channel_id: uuid.UUID, *, tenant_id: str | None = None) -> Channel | None:
        """The channel, if the engine's tenant may see it (row-level security decides)."""
        with self._guard.transaction(self._engine, "read channel") as conn:
            row = conn.execute(
                text(
                    f"SELECT {COLUMNS} FROM telegram_channels WHERE id = :id "
                    "AND (CAST(:t AS varchar) IS NULL OR tenant_id = :t)"
                ),
                {"id": channel_id, "t": tenant_id},
            ).first()
        return None if row is None else _channel(row)

    def page(
        self,
        *,
        account_id: str | None,
        after: uuid.UUID | None,
        limit: int,
        tenant_id: str | None = None,
    ) -> tuple[list[Channel], uuid.UUID | None]:
        """Channels in id order, and the cursor of the next page (None: the last)."""
        where = ["true"]
        params: dict[str, object] = {"limit": limit + 1}
        if tenant_id is not None:
            where.append("tenant_id = :t")
            params["t"] = tenant_id
        if account_id is not None:
            where.append("account_id = :account")
            params["account"] = account_id
        if after is not None:
            where.append("id > :after")
            params["after"] = after
        with self._guard.transaction(self._engine, "list channels") as conn:
            rows = conn.execute(
                text(
                    f"SELECT {COLUMNS} FROM telegram_channels WHERE {' AND '.join(where)} "
                    "ORDER BY id LIMIT :limit"
                ),
                params,
            ).all()
        found = [_channel(row) for row in rows[:limit]]
        return found, (found[-1].id if len(rows) > limit else None)

    def remove(self, channel_id: uuid.UUID, *, tenant_id: str | None = None) -> bool:
        """Whether a visible channel was removed."""
        with self._guard.transaction(self._engine, "remove channel") as conn:
            removed = conn.execute(
                text(
                    "DELETE FROM telegram_channels WHERE id = :id "
                    "AND (CAST(:t AS varchar) IS NULL OR tenant_id = :t)"
                ),
                {"id": channel_id, "t": tenant_id},
            ).rowcount
        return bool(removed)

    # The worker's calls ----------------------------------------------------------------

    def access_hash(self, key: SessionKey, telegram_id: int) -> int | None:
        """The account's access hash of a connected chat (a send by id needs it)."""
        with self._guard.transaction(self._engine, "read channel access hash") as conn:
            found = conn.execute(
                text(
                    "SELECT access_hash FROM telegram_channels WHERE tenant_id = :t "
                    "AND account_id = :a AND telegram_id = :id AND access_hash IS NOT NULL "
                    "LIMIT 1"
                ),
                {"t": key.tenant_id, "a": key.app_id, "id": telegram_id},
            ).scalar()
        return None if found is None else int(found)

    def record(
        self, channel_id: uuid.UUID, facts: ChannelFacts, *, actor: str = "worker"
    ) -> Recorded | None:
        """Store what Telegram said (the channel is ``connected``). A change of rights
        after an earlier check writes one ``channel.rights_changed`` event in the same
        transaction. None: the channel was removed meanwhile. ``ChannelExists``: the
        account has this chat as another channel already (that one is named)."""
        rights = facts.rights
        try:
            with self._guard.transaction(self._engine, "record channel") as conn:
                _act_as(conn, actor)
                before_row = conn.execute(
                    text(f"SELECT {COLUMNS} FROM telegram_channels WHERE id = :id FOR UPDATE"),
                    {"id": channel_id},
                ).first()
                if before_row is None:
                    return None
                before = _channel(before_row)
                changed = before.rights is not None and before.rights != rights
                row = conn.execute(
                    text(
                        "UPDATE telegram_channels SET status = 'connected', "
                        "telegram_id = :tid, access_hash = :hash, kind = :kind, "
                        "title = :title, username = :username, members_count = :count, "
                        "rights = CAST(:rights AS jsonb), "
                        "rights_version = rights_version + :bump, "
                        "error_code = NULL, error_detail = NULL, checked_at = now(), "
                        f"updated_at = now() WHERE id = :id RETURNING {COLUMNS}"
                    ),
                    {
                        "id": channel_id,
                        "tid": facts.telegram_id,
                        "hash": facts.access_hash,
                        "kind": facts.kind,
                        "title": facts.title,
                        "username": facts.username,
                        "count": facts.members_count,
                        "rights": json.dumps(rights.as_dict()),
                        "bump": 1 if changed else 0,
                    },
                ).one()
                after = _channel(row)
                added = changed and _rights_event(conn, before, after)
        except StoreError as error:
            if error.sqlstate != UNIQUE_VIOLATION:
                raise
            return self._already_connected(channel_id, facts.telegram_id)
        return Recorded(after, before.rights, added)

    def _already_connected(self, channel_id: uuid.UUID, telegram_id: int) -> Recorded | None:
        with self._guard.transaction(self._engine, "find connected channel") as conn:
            mine = conn.execute(
                text(f"SELECT {COLUMNS} FROM telegram_channels WHERE id = :id"),
                {"id": channel_id},
            ).first()
            if mine is None:
                return None
            channel = _channel(mine)
            other = conn.execute(
                text(
                    "SELECT id FROM telegram_channels WHERE tenant_id = :t AND account_id = :a "
                    "AND telegram_id = :tid"
                ),
                {"t": channel.tenant_id, "a": channel.account_id, "tid": telegram_id},
            ).scalar_one()
        raise ChannelExists(str(other), channel.account_id, channel.peer)

    def fail(
        self, channel_id: uuid.UUID, code: str, detail: str, *, actor: str = "worker"
    ) -> Channel | None:
        """A channel that could not be connected: ``failed`` with Telegram's reason."""
        with self._guard.transaction(self._engine, "fail channel") as conn:
            _act_as(conn, actor)
            row = conn.execute(
                text(
                    "UPDATE telegram_channels SET status = 'failed', error_code = :code, "
                    "error_detail = :detail, checked_at = now(), updated_at = now() "
                    f"WHERE id = :id RETURNING {COLUMNS}"
                ),
                {"id": channel_id, "code": code, "detail": detail[:1000]},
            ).first()
        return None if row is None else _channel(row)

    def due(self, checked_before: datetime, *, limit: int) -> list[Channel]:
        """Channels to refresh: connected (or never resolved) and not checked since."""
        with self._guard.transaction(self._engine, "list channels due") as conn:
            rows = conn.execute(
                text(
                    f"SELECT {COLUMNS} FROM telegram_channels WHERE "
                    "(status = 'connected' AND checked_at < :before) "
                    "OR (status = 'pending' AND created_at < :before) "
                    "ORDER BY checked_at NULLS FIRST LIMIT :limit"
                ),
                {"before": checked_before, "limit": limit},
            ).all()
        return [_channel(row) for row in rows]


def _act_as(conn: Connection, actor: str) -> None:
    """Who this transaction acts for: the audit trigger of telegram_channels reads it."""
    conn.execute(text("SELECT set_config('app.actor', :actor, true)"), {"actor": actor})


def _rights_event(conn: Connection, before: Channel, after: Channel) -> bool:
    assert before.rights is not None and after.rights is not None
    lost, gained = changes(before.rights, after.rights)
    draft = EventDraft(
        type=CHANNEL_RIGHTS_CHANGED,
        # One event per change: retries of the same check find the key taken.
        dedup_key=f"channel-rights:{after.id}:{after.rights_version}",
        occurred_at=datetime.now(UTC),
        data={
            "channel_id": str(after.id),
            "telegram_id": after.telegram_id,
            "title": after.title,
            "kind": after.kind,
            "before": before.rights.as_dict(),
            "after": after.rights.as_dict(),
            "lost": lost,
            "gained": gained,
        },
    )
    return bool(append_drafts(conn, after.key, [draft]))
