"""The durable event log (migration 0007): append under Telegram's ids, read by cursor.

Appends go through ``append_inbound_event``, which locks the session's ``inbound_state``
row: an update already in the log is skipped, every new row gets the next per-session
sequence, and sequences follow commit order. The feed writes the update state it reached
in the same transaction as the rows it covers, so the stored state never runs ahead of
the log (a crash re-reads what it had not committed; it never skips).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Collection, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import Connection, Engine, RowMapping

from integration_service.errors import PermanentError
from integration_service.inbound.events import Event, EventDraft
from integration_service.store.batches import delete_in_batches
from integration_service.store.guard import DatabaseGuard
from integration_service.store.records import SessionKey

# After this long an append's transaction is over (they last milliseconds): its row is read
# even while some unrelated long transaction holds the cluster's xmin back.
SETTLE_SECONDS = 10.0
# Which committed rows an id cursor may pass (EventLog.read): every reader of the log by
# position uses this one rule, with :settle bound to SETTLE_SECONDS.
READABLE = (
    "(txid < pg_snapshot_xmin(pg_current_snapshot()) "
    "OR created_at < now() - make_interval(secs => :settle))"
)
EVENT_COLUMNS = "id, type, tenant_id, app_id, sequence, occurred_at, data, position, traceparent"


class EventCursorInvalid(PermanentError):
    """A replay cursor that names no position: a sequence given without its app_id."""

    code = "event_cursor_invalid"


@dataclass(frozen=True, slots=True)
class EntityRow:
    """One cached peer of a session (telegram_entities): Telethon's marked id, its access
    hash and what names it. Here, not in pg_session: producers read the log without
    importing Telethon."""

    entity_id: int
    access_hash: int
    username: str | None
    phone: str | None
    name: str | None


@dataclass(frozen=True, slots=True)
class UpdateState:
    """Telegram's update state of one account as far as the log covers it."""

    pts: int
    qts: int
    date: int
    seq: int


@dataclass(frozen=True, slots=True)
class StoredState:
    """What a listener resumes from: the common box (None before the first getState)
    and each channel's pts."""

    common: UpdateState | None
    channels: Mapping[int, int] = field(default_factory=dict)


def event_from(row: RowMapping) -> Event:
    return Event(
        id=row["id"],
        type=row["type"],
        tenant_id=row["tenant_id"],
        app_id=row["app_id"],
        sequence=int(row["sequence"]),
        occurred_at=row["occurred_at"],
        data=row["data"],
        position=int(row["position"]),
        traceparent=row["traceparent"],
    )


class EventLog:
    """Append events with the update state they reach; read them back by cursor."""

    def __init__(self, engine: Engine, *, guard: DatabaseGuard | None = None) -> None:
        self._engine = engine
        self._guard = guard or DatabaseGuard()

    @contextmanager
    def _transaction(self, operation: str) -> Iterator[Connection]:
        with self._guard.transaction(self._engine, operation) as conn:
            yield conn

    # Writing ---------------------------------------------------------------------------

    def append(
        self,
        key: SessionKey,
        drafts: Sequence[EventDraft],
        *,
        state: UpdateState | None = None,
        channels: Mapping[int, int] | None = None,
    ) -> list[uuid.UUID]:
        """Store ``drafts`` (skipping any already stored) and, in the same transaction,
        the update state they bring the session to. Returns the ids of new rows."""
        with self._transaction(f"append events of {key}") as conn:
            added = append_drafts(conn, key, drafts)
            if state is not None:
                _save_common(conn, key, state)
            for channel_id, pts in (channels or {}).items():
                _save_channel(conn, key, channel_id, pts)
        return added

    def commit_feed(
        self,
        key: SessionKey,
        drafts: Sequence[EventDraft],
        *,
        state: UpdateState | None,
        channels: Mapping[int, int],
        entities: Sequence[EntityRow],
        traceparent: str | None = None,
    ) -> list[EventDraft]:
        """The feed's commit: events, the update state they reach and the peers they
        introduced, in one transaction. Returns the drafts that were new to the log.
        ``traceparent`` is stored on the new rows (the trace the relay and webhooks go on)."""
        with self._transaction(f"commit feed of {key}") as conn:
            if traceparent is not None and drafts:
                set_traceparent(conn, traceparent)
            added = [
                draft
                for draft, new_id in zip(drafts, append_each(conn, key, drafts), strict=True)
                if new_id is not None
            ]
            if state is not None:
                _save_common(conn, key, state)
            for channel_id, pts in channels.items():
                _save_channel(conn, key, channel_id, pts)
            if entities:
                _save_entities(conn, key, entities)
        return added

    def entities(self, key: SessionKey) -> list[EntityRow]:
        """The session's cached peers (telegram_entities), for its PgSession."""
        with self._transaction(f"read entities of {key}") as conn:
            rows = conn.execute(
                text(
                    "SELECT entity_id, access_hash, username, phone, name FROM telegram_entities "
                    "WHERE tenant_id = :tenant_id AND app_id = :app_id"
                ),
                {"tenant_id": key.tenant_id, "app_id": key.app_id},
            ).all()
        return [EntityRow(int(r[0]), int(r[1]), r[2], r[3], r[4]) for r in rows]

    def reset_state(self, key: SessionKey) -> None:
        """Forget the stored update state (a new login: another account may sit behind
        the same key). Sequences go on; the next listener starts from updates.getState."""
        with self._transaction(f"reset update state of {key}") as conn:
            params = {"tenant_id": key.tenant_id, "app_id": key.app_id}
            conn.execute(
                text(
                    "UPDATE inbound_state SET pts = NULL, qts = NULL, date = NULL, seq = NULL, "
                    "updated_at = now() WHERE tenant_id = :tenant_id AND app_id = :app_id"
                ),
                params,
            )
            conn.execute(
                text(
                    "DELETE FROM inbound_channel_state "
                    "WHERE tenant_id = :tenant_id AND app_id = :app_id"
                ),
                params,
            )

    # Reading ---------------------------------------------------------------------------

    def state(self, key: SessionKey) -> StoredState:
        params = {"tenant_id": key.tenant_id, "app_id": key.app_id}
        with self._transaction(f"read update state of {key}") as conn:
            row = conn.execute(
                text(
                    "SELECT pts, qts, date, seq FROM inbound_state "
                    "WHERE tenant_id = :tenant_id AND app_id = :app_id"
                ),
                params,
            ).first()
            channels = conn.execute(
                text(
                    "SELECT channel_id, pts FROM inbound_channel_state "
                    "WHERE tenant_id = :tenant_id AND app_id = :app_id"
                ),
                params,
            ).all()
        common = None
        if row is not None and row.pts is not None:
            common = UpdateState(
                int(row.pts), int(row.qts or 0), int(row.date or 0), int(row.seq or 0)
            )
        return StoredState(common, {int(c.channel_id): int(c.pts) for c in channels})

    def read(
        self,
        tenant_id: str,
        *,
        app_id: str | None = None,
        after: int | uuid.UUID | None = None,
        types: Collection[str] | None = None,
        limit: int = 100,
    ) -> list[Event]:
        """Events of a tenant in log order, after a cursor.

        ``after`` is an event id (any session of the tenant) or, with ``app_id``, a
        per-session sequence.
        - By id: only rows of transactions older than every running one are read, ordered
          by (transaction, position), so a row committed later can never sort before the
          last one returned and paging never skips an event. The horizon is the whole
          cluster's, so a long transaction anywhere (a report, a dump, another database)
          would hold new rows back: a row is also read once its transaction began more than
          SETTLE_SECONDS ago. Appends are short transactions (a feed batch, a send outcome,
          a state change); one still running after that long could be passed by a cursor.
        - By sequence: a session's sequences are given out under its row lock and commit
          in order, so what is visible is always a prefix: no filter is needed.
        """
        by_sequence = isinstance(after, int) and not isinstance(after, bool)
        where = ["tenant_id = :tenant_id"]
        if not by_sequence:
            where.append(READABLE)
        params: dict[str, Any] = {"tenant_id": tenant_id, "limit": limit, "settle": SETTLE_SECONDS}
        if app_id is not None:
            where.append("app_id = :app_id")
            params["app_id"] = app_id
        if types:
            where.append("type = ANY(:types)")
            params["types"] = list(types)
        with self._transaction("read events") as conn:
            if isinstance(after, uuid.UUID):
                where.append(
                    "(txid, position) > (SELECT txid, position FROM inbound_events "
                    "WHERE id = :after AND tenant_id = :tenant_id)"
                )
                params["after"] = after
            elif after is not None:
                if app_id is None:
                    raise EventCursorInvalid("a sequence cursor needs the app_id it belongs to")
                where.append("sequence > :after")
                params["after"] = after
            order = "sequence" if by_sequence else "txid, position"
            rows = conn.execute(
                text(
                    f"SELECT {EVENT_COLUMNS} FROM inbound_events WHERE {' AND '.join(where)} "  # noqa: S608 - fixed fragments
                    f"ORDER BY {order} LIMIT :limit"
                ),
                params,
            ).mappings()
            return [event_from(row) for row in rows]

    def get(self, tenant_id: str, event_id: uuid.UUID) -> Event | None:
        with self._transaction("read event") as conn:
            row = (
                conn.execute(
                    text(
                        f"SELECT {EVENT_COLUMNS} FROM inbound_events "  # noqa: S608
                        "WHERE id = :id AND tenant_id = :tenant_id"
                    ),
                    {"id": event_id, "tenant_id": tenant_id},
                )
                .mappings()
                .first()
            )
        return None if row is None else event_from(row)

    def prune(self, older_than: timedelta, *, batch_size: int = 5000) -> int:
        """Delete events stored longer ago than ``older_than`` (EVENT_RETENTION_DAYS)."""
        statement = text(
            "DELETE FROM inbound_events WHERE id IN (SELECT id FROM inbound_events "
            "WHERE created_at < now() - :age LIMIT :n)"
        )

        def one_batch() -> int:
            with self._transaction("prune events") as conn:
                return int(conn.execute(statement, {"age": older_than, "n": batch_size}).rowcount)

        return delete_in_batches(one_batch, batch_size)


def set_traceparent(conn: Connection, traceparent: str) -> None:
    """Events appended in this transaction carry ``traceparent`` (append_inbound_event
    reads the transaction-local ``app.traceparent``)."""
    conn.execute(text("SELECT set_config('app.traceparent', :value, true)"), {"value": traceparent})


def append_drafts(
    conn: Connection, key: SessionKey, drafts: Sequence[EventDraft]
) -> list[uuid.UUID]:
    """Append inside the caller's transaction; the ids of rows that were new."""
    return [new_id for new_id in append_each(conn, key, drafts) if new_id is not None]


def append_each(
    conn: Connection, key: SessionKey, drafts: Sequence[EventDraft]
) -> list[uuid.UUID | None]:
    """Append each draft; per draft its new row's id, or None when it was stored before."""
    added: list[uuid.UUID | None] = []
    statement = text(
        "SELECT append_inbound_event(:tenant_id, :app_id, :type, :dedup_key, :occurred_at, "
        "CAST(:data AS jsonb))"
    )
    for draft in drafts:
        new_id = conn.execute(
            statement,
            {
                "tenant_id": key.tenant_id,
                "app_id": key.app_id,
                "type": draft.type,
                "dedup_key": draft.dedup_key,
                "occurred_at": draft.occurred_at,
                "data": json.dumps(draft.data, default=str),
            },
        ).scalar()
        added.append(new_id)
    return added


def _save_common(conn: Connection, key: SessionKey, state: UpdateState) -> None:
    conn.execute(
        text(
            "INSERT INTO inbound_state (tenant_id, app_id, pts, qts, date, seq) "
            "VALUES (:tenant_id, :app_id, :pts, :qts, :date, :seq) "
            "ON CONFLICT (tenant_id, app_id) DO UPDATE SET pts = EXCLUDED.pts, "
            "qts = EXCLUDED.qts, date = EXCLUDED.date, seq = EXCLUDED.seq, updated_at = now()"
        ),
        {
            "tenant_id": key.tenant_id,
            "app_id": key.app_id,
            "pts": state.pts,
            "qts": state.qts,
            "date": state.date,
            "seq": state.seq,
        },
    )


def _save_channel(conn: Connection, key: SessionKey, channel_id: int, pts: int) -> None:
    conn.execute(
        text(
            "INSERT INTO inbound_channel_state (tenant_id, app_id, channel_id, pts) "
            "VALUES (:tenant_id, :app_id, :channel_id, :pts) "
            "ON CONFLICT (tenant_id, app_id, channel_id) DO UPDATE SET pts = EXCLUDED.pts, "
            "updated_at = now()"
        ),
        {"tenant_id": key.tenant_id, "app_id": key.app_id, "channel_id": channel_id, "pts": pts},
    )


def _save_entities(conn: Connection, key: SessionKey, entities: Sequence[EntityRow]) -> None:
    conn.execute(
        text(
            "INSERT INTO telegram_entities (tenant_id, app_id, entity_id, access_hash, "
            "username, phone, name) VALUES (:tenant_id, :app_id, :entity_id, :access_hash, "
            ":username, :phone, :name) ON CONFLICT (tenant_id, app_id, entity_id) DO UPDATE "
            "SET access_hash = EXCLUDED.access_hash, username = EXCLUDED.username, "
            "phone = EXCLUDED.phone, name = EXCLUDED.name, updated_at = now()"
        ),
        [
            {
                "tenant_id": key.tenant_id,
                "app_id": key.app_id,
                "entity_id": row.entity_id,
                "access_hash": row.access_hash,
                "username": row.username,
                "phone": row.phone,
                "name": row.name,
            }
            for row in entities
        ],
    )
