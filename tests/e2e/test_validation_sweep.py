"""Beat's validation sweep catches a revoked session; later sends fail fast, send nothing."""

from __future__ import annotations

import pytest
from kombu import Connection

from integration_service.queues import dead_letter_queue
from integration_service.telegram.errors import SessionTerminated
from tests.support.processes import wait_for
from tests.support.system import SystemUnderTest, send_kwargs

TENANT = "tenant-sweep"


@pytest.fixture(scope="module")
def system_overrides() -> dict[str, str]:
    return {"SESSION_VALIDATION_INTERVAL": "2", "SESSION_STALE_THRESHOLD": "1"}


def test_sweep_marks_revoked_session_and_sends_fail_fast(system: SystemUnderTest) -> None:
    revoked, healthy = system.provision(2, tenant_id=TENANT)
    system.start_worker("sweeper")
    leader = system.start_beat("one")
    standby = system.start_beat("two")

    system.control.revoke(revoked.user_id)
    wait_for(
        lambda: system.store.require(revoked.key).state == "revoked",
        timeout=60,
        what="sweep marks the session revoked",
    )
    events = system.store.events(revoked.key)
    assert events[-1].to_state == "revoked"
    assert "AUTH_KEY_UNREGISTERED" in events[-1].reason
    # The healthy session was validated by the same sweeps and stays authorized.
    assert system.store.require(healthy.key).state == "authorized"

    client = system.client()
    with pytest.raises(SessionTerminated) as refused:
        client.send_message(TENANT, revoked.key.app_id, healthy.peer, "never sent")
    assert refused.value.code == "session_revoked"

    # A job published past the producer is refused by the worker too, and dead-lettered.
    result = system.producer.send_task(
        "tasks.messages.send_message",
        kwargs=send_kwargs(revoked, healthy.peer, "sneaked past", "sneak-1"),
    )
    with pytest.raises(Exception, match="revoked"):
        result.get(timeout=30)
    assert system.control.messages(sender_id=revoked.user_id) == []
    dead: dict[str, dict[str, object]] = {}

    def dead_lettered() -> bool:
        with Connection(system.env["CELERY_BROKER_URL"]) as conn:
            channel = conn.channel()
            try:
                while message := channel.basic_get(dead_letter_queue().name, no_ack=True):
                    dead[str(message.headers.get("id"))] = dict(message.headers)
            finally:
                channel.close()
        return result.id in dead

    wait_for(dead_lettered, timeout=30, what="the refused send in the dead-letter queue")
    assert dead[result.id]["x-failure-exception"] == "SessionTerminated"

    # Two beats ran the whole time; only the leader sent sweeps.
    holder = system.redis.get("beat_leader")
    assert holder is not None
    logs = leader.log() + standby.log()
    assert logs.count("beat_leadership_changed") >= 1
    assert "Sending due task validate-stale-sessions" in logs
    senders = [b for b in (leader, standby) if "Sending due task" in b.log()]
    assert len(senders) == 1
