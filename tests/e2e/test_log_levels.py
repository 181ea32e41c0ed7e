"""A real worker logs expected outcomes at WARNING with their code, bugs at ERROR.

A PermanentError (the dead-letter probe), a domain outcome (a send to a peer the account
does not know: PeerNotFound), a terminated session (a send from a session Telegram
revoked) and failed logins (a refused bot token; a code submitted when no login is in
progress) must each give one WARNING JSON line with the error's code and no ERROR line:
Celery's "raised unexpected" ERROR with its traceback is for bugs. A job that fails with
an exception nothing classified (a TypeError) still logs at ERROR.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from celery.result import AsyncResult

from tests.support.processes import wait_for
from tests.support.system import Provisioned, SystemUnderTest, WorkerProcess

TENANT = "tenant-log-levels"
REDIS_DB = 5


@pytest.fixture(scope="module")
def system_overrides() -> dict[str, str]:
    return {"REDIS_URL": f"redis://127.0.0.1:6379/{REDIS_DB}"}


@pytest.fixture(scope="module")
def worker(system: SystemUnderTest) -> WorkerProcess:
    return system.start_worker("levels", queues="high,mid,low", concurrency=2)


@pytest.fixture(scope="module")
def sender(system: SystemUnderTest, worker: WorkerProcess) -> Iterator[Provisioned]:
    yield system.provision(1, TENANT)[0]


def job_lines(worker: WorkerProcess, job_id: str) -> list[dict[str, Any]]:
    """The worker's JSON lines about job ``job_id`` (every worker line must be JSON)."""
    found = []
    for line in worker.log().splitlines():
        if job_id not in line:
            continue
        event = json.loads(line)  # a line that is not JSON fails the test here
        assert isinstance(event, dict), line
        found.append(event)
    return found


def wait_for_failure_logged(worker: WorkerProcess, job_id: str) -> list[dict[str, Any]]:
    """The job's lines once Celery has logged its end ("raised ...")."""

    def logged() -> list[dict[str, Any]] | None:
        lines = job_lines(worker, job_id)
        return lines if any("raised" in str(e.get("event")) for e in lines) else None

    return wait_for(logged, timeout=30, interval=0.2, what=f"the end of job {job_id} logged")


def wait_for_success_logged(worker: WorkerProcess, job_id: str) -> list[dict[str, Any]]:
    """The job's lines once Celery has logged that it succeeded."""

    def logged() -> list[dict[str, Any]] | None:
        lines = job_lines(worker, job_id)
        return lines if any("succeeded" in str(e.get("event")) for e in lines) else None

    return wait_for(logged, timeout=30, interval=0.2, what=f"the success of job {job_id} logged")


def levels(lines: list[dict[str, Any]]) -> set[str]:
    return {str(e.get("level")).lower() for e in lines}


def assert_expected_outcome(
    lines: list[dict[str, Any]], code: str, *, event: str = "job_failed"
) -> None:
    warnings = [e for e in lines if e.get("level") == "warning" and e.get("event") == event]
    assert len(warnings) == 1, lines
    assert warnings[0]["code"] == code, warnings
    assert not levels(lines) & {"error", "critical"}, lines
    # Celery's own line for an expected exception: no "unexpected", no traceback.
    assert not any("raised unexpected" in str(e.get("event")) for e in lines), lines
    assert not any("exception" in e for e in lines), lines


def test_a_permanent_error_is_a_warning_with_its_code(
    system: SystemUnderTest, worker: WorkerProcess
) -> None:
    result = system.producer.send_task("tasks.maintenance.dead_letter_probe", args=["probing"])
    result.get(timeout=30, propagate=False)
    assert result.state == "FAILURE"
    assert_expected_outcome(wait_for_failure_logged(worker, result.id), "permanent")


def test_an_unknown_peer_is_a_warning_with_its_code(
    system: SystemUnderTest, worker: WorkerProcess, sender: Provisioned
) -> None:
    client = system.client()
    handle = client.send_message(sender.key.tenant_id, sender.key.app_id, 987654321, "hello?")
    AsyncResult(handle.job_id, app=system.producer).get(timeout=30, propagate=False)
    assert_expected_outcome(wait_for_failure_logged(worker, handle.job_id), "peer_unknown")


def test_a_terminated_session_is_a_warning_with_its_code(
    system: SystemUnderTest, worker: WorkerProcess, sender: Provisioned
) -> None:
    (revoked,) = system.provision(1, TENANT)
    system.control.revoke(revoked.user_id)  # Telegram ends the authorisation
    client = system.client()
    handle = client.send_message(TENANT, revoked.key.app_id, sender.peer, "after revoke")
    AsyncResult(handle.job_id, app=system.producer).get(timeout=30, propagate=False)
    assert_expected_outcome(wait_for_failure_logged(worker, handle.job_id), "session_revoked")
    assert system.store.require(revoked.key).state == "revoked"


def test_a_refused_bot_token_is_a_warning_with_its_code(
    system: SystemUnderTest, worker: WorkerProcess
) -> None:
    # A well-formed token the data centre does not know: the login fails, the job does not.
    bot = system.control.call("POST", "/bots", {"username": "levelsbot"})
    refused = bot["token"].split(":")[0] + ":" + "z" * 35
    client = system.client()
    system.store.ensure_tenant(TENANT)
    handle = client.connect_bot(TENANT, "bad-bot", refused)
    assert client.wait(handle, timeout=30)["state"] == "failed"
    lines = wait_for_success_logged(worker, handle.job_id)
    assert_expected_outcome(lines, "access_token_invalid", event="login_failed")
    assert refused not in worker.log()


def test_a_code_without_a_login_is_a_warning_with_its_code(
    system: SystemUnderTest, worker: WorkerProcess, sender: Provisioned
) -> None:
    # sender is signed in: no code login is in progress for it, so the code has no taker.
    client = system.client()
    handle = client.submit_code(sender.key.tenant_id, sender.key.app_id, "12345")
    AsyncResult(handle.job_id, app=system.producer).get(timeout=30, propagate=False)
    assert_expected_outcome(wait_for_failure_logged(worker, handle.job_id), "login_expired")


def test_a_bug_is_still_an_error(system: SystemUnderTest, worker: WorkerProcess) -> None:
    # ping takes no arguments: the call itself raises TypeError, which nothing classifies.
    result = system.producer.send_task("tasks.maintenance.ping", kwargs={"unexpected": 1})
    result.get(timeout=30, propagate=False)
    lines = wait_for_failure_logged(worker, result.id)
    errors = [e for e in lines if e.get("level") == "error"]
    assert errors and "raised unexpected" in str(errors[0]["event"]), lines
    assert "TypeError" in json.dumps(errors[0]), errors
    assert not any(e.get("event") == "job_failed" for e in lines), lines
