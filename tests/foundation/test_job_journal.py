"""The job journal: first outcome wins, pruning by age, tenants see only their own rows."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import timedelta

import pytest
from sqlalchemy import text
from sqlalchemy.engine import Engine

from integration_service.store.job_journal import JobJournal


@pytest.fixture
def journal(engine: Engine, admin_engine: Engine) -> Iterator[JobJournal]:
    yield JobJournal(engine)
    with admin_engine.begin() as conn:
        conn.execute(text("TRUNCATE job_journal"))


def task_id() -> str:
    return str(uuid.uuid4())


def test_the_first_record_stands(journal: JobJournal) -> None:
    job = task_id()
    assert journal.get(job) is None
    first = journal.record(job, "tasks.x", "succeeded", {"state": "authorized", "n": 1})
    again = journal.record(job, "tasks.x", "dead_lettered", {"code": "later"})
    assert first == again
    stored = journal.get(job)
    assert stored is not None
    assert (stored.status, stored.outcome) == ("succeeded", {"state": "authorized", "n": 1})


def test_outcomes_of_every_json_shape_round_trip(journal: JobJournal) -> None:
    for outcome in [None, 7, "text", [1, "a"], {"nested": {"list": [None, True]}}]:
        job = task_id()
        journal.record(job, "tasks.x", "succeeded", outcome)
        stored = journal.get(job)
        assert stored is not None and stored.outcome == outcome


def test_a_bad_status_is_refused_and_nothing_is_written(journal: JobJournal) -> None:
    job = task_id()
    with pytest.raises(Exception, match="job_journal_status"):
        journal.record(job, "tasks.x", "maybe", {})  # type: ignore[arg-type]
    assert journal.get(job) is None


def test_prune_forgets_only_old_entries(journal: JobJournal, admin_engine: Engine) -> None:
    old, recent = task_id(), task_id()
    journal.record(old, "tasks.x", "succeeded", {})
    journal.record(recent, "tasks.x", "succeeded", {})
    with admin_engine.begin() as conn:
        conn.execute(
            text(
                "UPDATE job_journal SET completed_at = now() - interval '8 days' WHERE task_id = :t"
            ),
            {"t": old},
        )
    assert journal.prune(timedelta(days=7), batch_size=1) == 1
    assert journal.get(old) is None and journal.get(recent) is not None


def test_a_tenant_sees_only_its_own_jobs(journal: JobJournal, admin_engine: Engine) -> None:
    journal.record(task_id(), "tasks.x", "succeeded", {}, tenant_id="tenant-a", app_id="a")
    journal.record(task_id(), "tasks.x", "succeeded", {}, tenant_id="tenant-b", app_id="b")
    journal.record(task_id(), "tasks.validation.sweep", "succeeded", {})
    with admin_engine.connect() as conn:
        conn.execute(text("SET ROLE integration_service_tenant"))
        conn.execute(text("SELECT set_config('app.tenant_id', 'tenant-a', false)"))
        seen = conn.execute(text("SELECT tenant_id FROM job_journal")).scalars().all()
        conn.execute(text("RESET ROLE"))
        conn.rollback()
    assert seen == ["tenant-a"]
