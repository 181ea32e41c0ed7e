"""The ``telegram_channels`` rows: connect, read, page, remove."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import Engine

from integration_service.errors import PermanentError
from integration_service.inputs import Peer
from integration_service.store.guard import DatabaseGuard

COLUMNS = "id, account_id, peer, created_at"


class ChannelExists(PermanentError):
    """The account is already connected to this peer (the existing channel is named)."""

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
    account_id: str
    peer: str
    created_at: datetime


def _channel(row: Any) -> Channel:
    m = row._mapping
    return Channel(m["id"], m["account_id"], m["peer"], m["created_at"])


class ChannelStore:
    def __init__(self, engine: Engine, guard: DatabaseGuard | None = None) -> None:
        self._engine = engine
        self._guard = guard or DatabaseGuard()

    def connect(self, tenant_id: str, account_id: str, peer: Peer) -> Channel:
        """A new channel of ``account_id``; ``ChannelExists`` when it has this peer."""
        with self._guard.transaction(self._engine, "connect channel") as conn:
            row = conn.execute(
                text(
                    "INSERT INTO telegram_channels (tenant_id, account_id, peer) "
                    "VALUES (:t, :a, :p) ON CONFLICT (tenant_id, account_id, peer) "
                    f"DO NOTHING RETURNING {COLUMNS}"
                ),
                {"t": tenant_id, "a": account_id, "p": str(peer)},
            ).first()
            if row is not None:
                return _channel(row)
            existing = conn.execute(
                text(
                    f"SELECT {COLUMNS} FROM telegram_channels "
                    "WHERE tenant_id = :t AND account_id = :a AND peer = :p"
                ),
                {"t": tenant_id, "a": account_id, "p": str(peer)},
            ).one()
        found = _channel(existing)
        raise ChannelExists(str(found.id), found.account_id, found.peer)

    def get(self, channel_id: uuid.UUID) -> Channel | None:
        """The channel, if the engine's tenant may see it (row-level security decides)."""
        with self._guard.transaction(self._engine, "read channel") as conn:
            row = conn.execute(
                text(f"SELECT {COLUMNS} FROM telegram_channels WHERE id = :id"),
                {"id": channel_id},
            ).first()
        return None if row is None else _channel(row)

    def page(
        self, *, account_id: str | None, after: uuid.UUID | None, limit: int
    ) -> tuple[list[Channel], uuid.UUID | None]:
        """Channels in id order, and the cursor of the next page (None: the last)."""
        where = ["true"]
        params: dict[str, object] = {"limit": limit + 1}
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

    def remove(self, channel_id: uuid.UUID) -> bool:
        """Whether a visible channel was removed."""
        with self._guard.transaction(self._engine, "remove channel") as conn:
            removed = conn.execute(
                text("DELETE FROM telegram_channels WHERE id = :id"), {"id": channel_id}
            ).rowcount
        return bool(removed)
