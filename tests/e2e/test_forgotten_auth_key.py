"""A key the data centre forgot (transport error -404) ends the session, classified.

Real workers against the emulator: after the emulator forgets a session's auth key, a send,
a validation and a reconnect each record the session ``revoked`` with the reason
``auth_key_unknown`` (row, auth_error, session_events), promptly, and the producer gets the
project's SessionTerminated, not an UnpickleableExceptionWrapper. A restarted emulator keeps
its keys (sessions keep working); one that lost its world is the same forgotten key.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from integration_service.emulator.testing import EmulatorProcess
from integration_service.emulator.world.persistence import WORLD_DB
from integration_service.store import SessionKey
from integration_service.telegram.errors import AUTH_KEY_UNKNOWN, SessionTerminated
from tests.support.system import Provisioned, SystemUnderTest, WorkerProcess, free_port

TENANT = "tenant-forgotten-key"
# A forgotten key is answered at once; the job must not hang or retry for long.
PROMPT = 30.0


@pytest.fixture(scope="module")
def emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmulatorProcess]:
    # A fixed port: stored sessions carry the address, and the emulator is restarted here.
    state_dir = Path(tmp_path_factory.mktemp("emulator"))
    with EmulatorProcess(state_dir, port=free_port()) as running:
        yield running


@pytest.fixture(scope="module")
def worker(system: SystemUnderTest) -> WorkerProcess:
    return system.start_worker("forgotten-key")


@pytest.fixture(scope="module")
def recipient(system: SystemUnderTest) -> Provisioned:
    (made,) = system.provision(1, tenant_id=TENANT)
    return made


def _assert_revoked_unknown(system: SystemUnderTest, key: SessionKey) -> None:
    row = system.store.require(key)
    assert (row.state, row.auth_error) == ("revoked", AUTH_KEY_UNKNOWN)
    last = system.store.events(key)[-1]
    assert last.to_state == "revoked" and "-404" in last.reason


def _assert_clean_log(worker: WorkerProcess) -> None:
    log = worker.log()
    assert "UnpickleableExceptionWrapper" not in log
    assert "Future exception was never retrieved" not in log


def test_a_send_on_a_forgotten_key_is_refused_and_recorded(
    system: SystemUnderTest, worker: WorkerProcess, recipient: Provisioned
) -> None:
    (sender,) = system.provision(1, tenant_id=TENANT)
    client = system.client()
    first = client.send_message(
        TENANT, sender.key.app_id, recipient.peer, "warm", idempotency_key="fk-1"
    )
    assert client.wait(first, timeout=60)["status"] == "sent"

    forgotten = system.control.forget_auth_keys(sender.user_id)
    assert forgotten["forgotten_keys"] == 1
    started = time.monotonic()
    handle = client.send_message(
        TENANT, sender.key.app_id, recipient.peer, "lost", idempotency_key="fk-2"
    )
    with pytest.raises(SessionTerminated) as refused:
        client.wait(handle, timeout=PROMPT)
    assert time.monotonic() - started < PROMPT
    error = refused.value
    assert (error.code, error.state, error.auth_error) == (
        "session_revoked",
        "revoked",
        AUTH_KEY_UNKNOWN,
    )
    _assert_revoked_unknown(system, sender.key)
    assert [m["text"] for m in system.control.messages(sender_id=sender.user_id)] == ["warm"]

    # The producer now refuses at once, from the stored state; nothing is enqueued.
    with pytest.raises(SessionTerminated):
        client.send_message(
            TENANT, sender.key.app_id, recipient.peer, "again", idempotency_key="fk-3"
        )
    _assert_clean_log(worker)


def test_validate_and_reconnect_record_a_forgotten_key(
    system: SystemUnderTest, worker: WorkerProcess
) -> None:
    validated, reconnected = system.provision(2, tenant_id=TENANT)
    for session in (validated, reconnected):
        system.control.forget_auth_keys(session.user_id)
    client = system.client()

    result = client.wait(client.validate_session(TENANT, validated.key.app_id), timeout=PROMPT)
    assert (result["outcome"], result["state"], result["auth_error"]) == (
        "revoked",
        "revoked",
        AUTH_KEY_UNKNOWN,
    )
    _assert_revoked_unknown(system, validated.key)
    assert client.get_status(TENANT, validated.key.app_id).auth_error == AUTH_KEY_UNKNOWN

    with pytest.raises(SessionTerminated) as refused:
        client.wait(client.reconnect(TENANT, reconnected.key.app_id), timeout=PROMPT)
    assert refused.value.auth_error == AUTH_KEY_UNKNOWN
    _assert_revoked_unknown(system, reconnected.key)
    _assert_clean_log(worker)


def test_a_restarted_emulator_keeps_sessions_one_that_lost_its_world_does_not(
    system: SystemUnderTest,
    emulator: EmulatorProcess,
    worker: WorkerProcess,
    recipient: Provisioned,
) -> None:
    (sender,) = system.provision(1, tenant_id=TENANT)
    client = system.client()
    assert (
        client.wait(
            client.send_message(
                TENANT, sender.key.app_id, recipient.peer, "one", idempotency_key="rs-1"
            ),
            timeout=60,
        )["status"]
        == "sent"
    )

    # Restarted on its state directory (as `make run` restarts it): the key is still known.
    emulator.stop()
    emulator.start()
    assert (
        client.wait(
            client.send_message(
                TENANT, sender.key.app_id, recipient.peer, "two", idempotency_key="rs-2"
            ),
            timeout=60,
        )["status"]
        == "sent"
    )
    assert system.store.require(sender.key).state == "authorized"

    # Restarted without its world (a data centre that lost its keys): -404, classified.
    emulator.stop()
    (emulator.state_dir / WORLD_DB).unlink()
    emulator.start()
    with pytest.raises(SessionTerminated) as refused:
        client.wait(
            client.send_message(
                TENANT, sender.key.app_id, recipient.peer, "three", idempotency_key="rs-3"
            ),
            timeout=PROMPT,
        )
    assert refused.value.auth_error == AUTH_KEY_UNKNOWN
    _assert_revoked_unknown(system, sender.key)
    _assert_clean_log(worker)
