"""The event log as consumers read it: the triggers' events, sequences, cursors, schema.

Real PostgreSQL: triggers fire on real outbox and session-event rows, and the concurrency
cases hold real transactions open.
"""

from __future__ import annotations

import json
import random
import threading
import time
import uuid
from datetime import timedelta
from typing import Any

import jsonschema
import pytest
from sqlalchemy import text
from sqlalchemy.engine import Engine

from integration_service.inbound.event_log import EventLog
from integration_service.inbound.events import (
    GAP,
    MESSAGE_DELETED,
    MESSAGE_EDITED,
    MESSAGE_FAILED,
    MESSAGE_SENT,
    SESSION_STATE_CHANGED,
)
from integration_service.inbound.schema import event_schema
from integration_service.store import SessionKey, SessionStore
from integration_service.store.outbox import OutboxStore
from tests.inbound.conftest import TENANT, add_session
from tests.inbound.support import append_events, append_in, received_data, settled

VALIDATOR = jsonschema.Draft202012Validator(
    event_schema(), format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
)


def all_envelopes(engine: Engine, tenant_id: str = TENANT) -> list[dict[str, Any]]:
    return [event.envelope() for event in settled(engine, tenant_id)]


def sequences_of(envelopes: list[dict[str, Any]], app_id: str) -> list[int]:
    return sorted(e["sequence"] for e in envelopes if e["app_id"] == app_id)


def finish_send(
    engine: Engine, key: SessionKey, idempotency_key: str, *, status: str, **outcome: Any
) -> None:
    outbox = OutboxStore(engine)
    entry = outbox.claim(
        key,
        idempotency_key=idempotency_key,
        peer="@bob_the_user",
        payload_sha256="0" * 64,
        random_id=random.getrandbits(62),
        task_id=f"task-{idempotency_key}",
    )
    outbox.note_attempt(entry.id)
    outbox.finish(entry.id, status=status, **outcome)


def test_a_finished_send_becomes_message_sent_or_failed(
    engine: Engine, session_key: SessionKey
) -> None:
    finish_send(engine, session_key, "send-ok", status="sent", telegram_message_id=4242)
    finish_send(engine, session_key, "send-bad", status="failed", error_code="peer_invalid")
    # Finishing again changes nothing and writes no second event.
    finish_send(engine, session_key, "send-ok", status="sent", telegram_message_id=4242)

    events = {e["type"]: e for e in all_envelopes(engine)}
    assert set(events) == {MESSAGE_SENT, MESSAGE_FAILED}
    assert events[MESSAGE_SENT]["data"] == {
        "idempotency_key": "send-ok",
        "peer": "@bob_the_user",
        "telegram_message_id": 4242,
        "error_code": None,
        "attempts": 1,
        "task_id": "task-send-ok",
    }
    assert events[MESSAGE_FAILED]["data"]["error_code"] == "peer_invalid"
    assert events[MESSAGE_FAILED]["data"]["telegram_message_id"] is None
    assert sequences_of(list(events.values()), "main") == [1, 2]


def test_a_session_transition_becomes_session_state_changed(
    engine: Engine, store: SessionStore, session_key: SessionKey
) -> None:
    store.record_transition(
        session_key,
        from_state="authorized",
        to_state="revoked",
        reason="auth_key_unregistered",
        lease_epoch=1,
    )
    (event,) = all_envelopes(engine)
    assert event["type"] == SESSION_STATE_CHANGED
    assert event["data"] == {
        "from_state": "authorized",
        "to_state": "revoked",
        "reason": "auth_key_unregistered",
    }
    assert event["sequence"] == 1


def test_sequences_have_no_holes_across_feed_and_trigger_events(
    engine: Engine, store: SessionStore, session_key: SessionKey
) -> None:
    other = add_session(store, "second")
    append_events(engine, session_key, range(1, 6))
    finish_send(engine, session_key, "mixed-1", status="sent", telegram_message_id=1)
    append_events(engine, other, range(1, 4))
    store.record_transition(
        session_key,
        from_state="authorized",
        to_state="banned",
        reason="user_deactivated_ban",
        lease_epoch=1,
    )
    # A repeat of an update already logged (a replay, a takeover) adds nothing.
    with engine.begin() as conn:
        again = conn.execute(
            text(
                "SELECT append_inbound_event(:t, 'main', 'message.received', 'msg:3', now(), "
                "CAST(:d AS jsonb))"
            ),
            {"t": TENANT, "d": '{"ignored": true}'},
        ).scalar()
    assert again is None
    # A transaction that appended and rolled back leaves no hole either.
    with engine.connect() as conn:
        transaction = conn.begin()
        append_in(conn, session_key, range(100, 103))
        transaction.rollback()
    append_events(engine, session_key, range(6, 8))

    envelopes = all_envelopes(engine)
    assert sequences_of(envelopes, "main") == list(range(1, 10))
    assert sequences_of(envelopes, "second") == [1, 2, 3]


def test_paging_by_cursor_never_skips_a_row_committed_late(
    engine: Engine, store: SessionStore, session_key: SessionKey
) -> None:
    """A long transaction appends first (lower position) and commits after a later one:
    the reader must not step past it before it is visible."""
    other = add_session(store, "second")
    log = EventLog(engine)
    early = append_events(engine, session_key, [1])
    with engine.connect() as slow:
        transaction = slow.begin()
        late = [str(i) for i in append_in(slow, session_key, [2])]
        quick = append_events(engine, other, [1])  # committed while the slow one is open
        page = log.read(TENANT, after=uuid.UUID(early[0]), limit=10)
        # Not yet: the quick row waits behind the open transaction rather than being
        # returned first and moving the cursor past the slow row.
        assert [str(e.id) for e in page] == []
        transaction.commit()
    settled(engine, TENANT)
    seen = early[:]
    cursor = uuid.UUID(early[0])
    while page := log.read(TENANT, after=cursor, limit=1):
        seen.append(str(page[0].id))
        cursor = page[0].id
    assert sorted(seen) == sorted(early + late + quick)
    assert len(seen) == 3


def test_paging_under_concurrent_writers_returns_every_event_once(
    engine: Engine, store: SessionStore
) -> None:
    keys = [add_session(store, f"writer-{n}") for n in range(4)]
    log = EventLog(engine)
    committed: list[str] = []
    lock = threading.Lock()
    stop = threading.Event()

    def write(key: SessionKey, seed: int) -> None:
        rng = random.Random(seed)
        next_id = 1
        while not stop.is_set() and next_id < 400:
            size = rng.randint(1, 5)
            with engine.connect() as conn:
                transaction = conn.begin()
                ids = append_in(conn, key, range(next_id, next_id + size))
                # Hold some transactions open while others commit behind them.
                stop.wait(rng.choice([0, 0, 0.002, 0.02]))
                transaction.commit()
            next_id += size
            with lock:
                committed.extend(str(i) for i in ids)

    writers = [
        threading.Thread(target=write, args=(key, n), daemon=True) for n, key in enumerate(keys)
    ]
    for thread in writers:
        thread.start()
    seen: list[str] = []
    cursor: uuid.UUID | None = None
    # Page while the writers write, then once more after the last commit.
    while any(thread.is_alive() for thread in writers):
        page = log.read(TENANT, after=cursor, limit=7)
        seen.extend(str(e.id) for e in page)
        if page:
            cursor = page[-1].id
    stop.set()
    for thread in writers:
        thread.join(timeout=10)
    settled(engine, TENANT)
    while page := log.read(TENANT, after=cursor, limit=50):
        seen.extend(str(e.id) for e in page)
        cursor = page[-1].id
    assert len(seen) == len(set(seen)), "an event was returned twice"
    assert set(seen) == set(committed), f"{len(set(committed) - set(seen))} events skipped"


def test_every_kind_of_stored_event_validates_against_the_schema(
    engine: Engine, store: SessionStore, session_key: SessionKey
) -> None:
    finish_send(engine, session_key, "schema-ok", status="sent", telegram_message_id=9)
    finish_send(engine, session_key, "schema-bad", status="failed", error_code="flood_wait")
    store.record_transition(
        session_key,
        from_state="authorized",
        to_state="revoked",
        reason="logged out",
        lease_epoch=1,
    )
    append_events(engine, session_key, range(1, 3))
    channel = {"type": "channel", "id": 1500, "title": "News", "username": "news"}
    supergroup = {"type": "supergroup", "id": 1600, "title": "Chat", "username": None}
    basic = {"type": "group", "id": 1700, "title": "Friends", "username": None}
    drafts = [
        (
            "message.received",
            "post:1",
            {
                **received_data(10),
                "chat": channel,
                "sender": {"type": "channel", "id": 1500, "username": "news", "name": "News"},
            },
        ),
        (
            "message.received",
            "sg:1",
            {**received_data(11), "chat": supergroup, "reply_to_message_id": 10},
        ),
        (
            "message.received",
            "bg:1",
            {
                **received_data(12),
                "chat": basic,
                "text": "",
                "media": {
                    "type": "document",
                    "mime_type": "image/png",
                    "size": 2048,
                    "file_name": "a.png",
                },
            },
        ),
        (MESSAGE_EDITED, "edit:1", {**received_data(12), "edit_date": received_data(1)["date"]}),
        (MESSAGE_DELETED, "del:1", {"chat": None, "message_ids": [1, 2]}),
        (MESSAGE_DELETED, "del:2", {"chat": channel, "message_ids": [7]}),
        (
            GAP,
            "gap:1",
            {
                "box": "common",
                "channel_id": None,
                "from_pts": 10,
                "to_pts": 900,
                "reason": "differenceTooLong",
            },
        ),
        (
            GAP,
            "gap:2",
            {
                "box": "channel",
                "channel_id": 1500,
                "from_pts": 3,
                "to_pts": 80,
                "reason": "channelDifferenceTooLong",
            },
        ),
    ]
    with engine.begin() as conn:
        for event_type, dedup_key, data in drafts:
            conn.execute(
                text(
                    "SELECT append_inbound_event(:t, 'main', :type, :key, now(), "
                    "CAST(:data AS jsonb))"
                ),
                {"t": TENANT, "type": event_type, "key": dedup_key, "data": json.dumps(data)},
            )
    envelopes = all_envelopes(engine)
    assert {e["type"] for e in envelopes} == {
        "message.received",
        MESSAGE_EDITED,
        MESSAGE_DELETED,
        MESSAGE_SENT,
        MESSAGE_FAILED,
        SESSION_STATE_CHANGED,
        GAP,
    }
    for envelope in envelopes:
        errors = [error.message for error in VALIDATOR.iter_errors(envelope)]
        assert errors == [], (envelope["type"], errors)


@pytest.mark.parametrize(
    ("change", "where"),
    [
        (lambda e: e.pop("sequence"), "sequence"),
        (lambda e: e.update(type="message.unknown"), "message.unknown"),
        (lambda e: e["data"].pop("chat"), "chat"),
        (lambda e: e["data"]["chat"].update(type="secret"), "secret"),
        (lambda e: e.update(sequence=0), "0"),
        (lambda e: e["data"].update(out="no"), "boolean"),
    ],
)
def test_the_schema_refuses_malformed_envelopes(
    engine: Engine, session_key: SessionKey, change: Any, where: str
) -> None:
    append_events(engine, session_key, [1])
    (envelope,) = all_envelopes(engine)
    assert VALIDATOR.is_valid(envelope)
    change(envelope)
    errors = " ".join(error.message for error in VALIDATOR.iter_errors(envelope))
    assert errors and where in errors


def test_prune_removes_events_past_retention_only(
    engine: Engine, admin_engine: Engine, session_key: SessionKey
) -> None:
    old = append_events(engine, session_key, range(1, 4))
    recent = append_events(engine, session_key, range(4, 6))
    with admin_engine.begin() as conn:
        conn.execute(
            text(
                "UPDATE inbound_events SET created_at = now() - interval '8 days' "
                "WHERE id = ANY(CAST(:ids AS uuid[]))"
            ),
            {"ids": old},
        )
    assert EventLog(engine).prune(timedelta(days=7)) == 3
    assert [e["id"] for e in all_envelopes(engine)] == recent


def test_beat_prunes_the_event_log_hourly_on_the_low_queue() -> None:
    import celeryconfig
    from integration_service.queues import route_for
    from tasks.maintenance import prune_events

    entry = celeryconfig.beat_schedule["prune-event-log"]
    assert entry["task"] == prune_events.name == "tasks.maintenance.prune_events"
    assert entry["schedule"] == 3600.0
    assert (route_for(prune_events.name) or {}).get("queue") == "low"


def test_an_unrelated_long_transaction_delays_replay_but_never_stalls_it(
    engine: Engine, store: SessionStore, session_key: SessionKey
) -> None:
    """Transaction ids are cluster-wide: a report running in another database holds the
    horizon back. Events still become readable within SETTLE_SECONDS of their commit."""
    from sqlalchemy import create_engine

    from integration_service.inbound.event_log import SETTLE_SECONDS
    from tests.support.database import ADMIN_URL
    from tests.support.processes import wait_for

    other_database = create_engine(ADMIN_URL)
    log = EventLog(engine)
    try:
        with other_database.connect() as report:
            report.begin()
            report.execute(text("SELECT pg_current_xact_id()"))  # holds an xid open
            started = time.monotonic()
            (appended,) = append_events(engine, session_key, [901])
            wait_for(
                lambda: appended in {str(e.id) for e in log.read(TENANT, limit=10_000)},
                timeout=SETTLE_SECONDS + 20,
                what="the event readable despite the open transaction",
            )
            assert time.monotonic() - started < SETTLE_SECONDS + 20
            report.rollback()
    finally:
        other_database.dispose()
