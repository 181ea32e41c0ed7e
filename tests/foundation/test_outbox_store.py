"""The outbox store against the real PostgreSQL, as the service role: claim, attempts,
finish as a compare-and-set (each one autocommitted statement)."""

from __future__ import annotations

import pytest
from sqlalchemy.engine import Engine

from integration_service.store import SessionKey, SessionMaterial, SessionStore
from integration_service.store.outbox import OutboxEntry, OutboxStore

KEY = SessionKey("tenant-o", "app-1")


@pytest.fixture
def outbox(store: SessionStore, engine: Engine) -> OutboxStore:
    store.ensure_tenant(KEY.tenant_id)
    store.save(SessionMaterial(key=KEY, kind="user", state="authorized", lease_epoch=1))
    return OutboxStore(engine)


def claim(outbox: OutboxStore, idem: str = "k1", task_id: str = "t1") -> OutboxEntry:
    return outbox.claim(
        KEY,
        idempotency_key=idem,
        peer="@someone",
        payload_sha256="a" * 64,
        random_id=12345,
        task_id=task_id,
    )


def test_claim_creates_the_row_once_and_keeps_the_first_task_id(outbox: OutboxStore) -> None:
    first = claim(outbox, task_id="t1")
    again = claim(outbox, task_id="t2")
    assert first.status == "queued" and first.attempts == 0 and first.task_id == "t1"
    assert again.id == first.id and again.task_id == "t1"


def test_attempts_are_counted(outbox: OutboxStore) -> None:
    entry = claim(outbox)
    outbox.note_attempt(entry.id)
    outbox.note_attempt(entry.id)
    found = outbox.get(KEY, "k1")
    assert found is not None and found.attempts == 2


def test_finish_moves_a_queued_row_once_and_returns_a_finished_row_as_it_is(
    outbox: OutboxStore,
) -> None:
    entry = claim(outbox)
    sent = outbox.finish(entry.id, status="sent", telegram_message_id=77)
    assert sent.status == "sent" and sent.telegram_message_id == 77 and sent.sent_at is not None
    # A second finish (say, a late failure report) changes nothing and says what is stored.
    again = outbox.finish(entry.id, status="failed", error_code="peer_unknown")
    assert again == sent
    stored = outbox.get(KEY, "k1")
    assert stored == sent


def test_a_failed_row_has_no_sent_time(outbox: OutboxStore) -> None:
    entry = claim(outbox, idem="k2")
    failed = outbox.finish(entry.id, status="failed", error_code="peer_unknown", error_details="x")
    assert failed.status == "failed" and failed.sent_at is None
    assert failed.error_code == "peer_unknown" and failed.error_details == "x"
