"""A listening worker hears its accounts: pushed messages become events, once each."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from sqlalchemy import text

from integration_service.inputs import InvalidInput
from integration_service.store import SessionKey
from tests.listening.inbound_support import count_events, events, send_as, started_feeds
from tests.support.processes import wait_for
from tests.support.system import SystemUnderTest, send_kwargs

TENANT = "tenant-listen"


def test_pushed_messages_and_a_restart_become_events_once(system: SystemUnderTest) -> None:
    accounts = system.provision(3, tenant_id=TENANT)
    sender = system.control.create_user("+79770000001", "Sender", username="sender_smoke")
    worker = system.start_worker("listen-a")
    wait_for(
        lambda: all(
            system.redis.exists(f"session_lock:{a.key.tenant_id}:{a.key.app_id}") for a in accounts
        ),
        timeout=30,
        what="placement claimed every account",
    )
    # Until the feed has its first state, a message may predate the log: wait for it.
    wait_for(
        lambda: started_feeds(system, TENANT) == len(accounts), timeout=30, what="feeds started"
    )
    for account in accounts:
        for i in range(5):
            send_as(system, int(sender["user_id"]), account.user_id, f"hello {i}")
    wait_for(
        lambda: count_events(system, TENANT, "message.received") == 15,
        timeout=30,
        what="15 received events",
    )
    system.stop_worker(worker)
    # Offline: these arrive through getDifference when a worker listens again.
    for account in accounts:
        send_as(system, int(sender["user_id"]), account.user_id, "while away")
    system.start_worker("listen-b")
    wait_for(
        lambda: count_events(system, TENANT, "message.received") == 18,
        timeout=30,
        what="18 received events after the restart",
    )
    rows = events(system, TENANT, "message.received")
    assert len({(r.app_id, r.dedup_key) for r in rows}) == 18
    for account in accounts:
        sequences = [r.sequence for r in events(system, TENANT) if r.app_id == account.key.app_id]
        assert sequences == list(range(1, len(sequences) + 1))
        texts = [r.data["text"] for r in rows if r.app_id == account.key.app_id]
        assert texts == [f"hello {i}" for i in range(5)] + ["while away"]
        sender_data = rows[0].data["sender"]
        assert sender_data["id"] == int(sender["user_id"])
    assert system.control.stats()["auth_key_duplicated"] == 0


FLAG_TENANT = "tenant-listen-flag"


def _cli(system: SystemUnderTest, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "integration_service.cli", *args],
        env={**os.environ, **system.env},
        capture_output=True,
        text=True,
        timeout=60,
    )


def _held(system: SystemUnderTest, key: SessionKey) -> bool:
    return bool(system.redis.exists(f"session_lock:{key.tenant_id}:{key.app_id}"))


def test_listening_turned_off_and_on_through_cli_and_producer(system: SystemUnderTest) -> None:
    quiet, loud = system.provision_minted(2, FLAG_TENANT)
    sender = int(system.control.create_user("+79770000002", "Flag sender")["user_id"])
    system.start_worker("listen-flag", concurrency=2)
    wait_for(
        lambda: _held(system, quiet.key) and _held(system, loud.key), timeout=30, what="both placed"
    )

    off = _cli(system, "listen", FLAG_TENANT, quiet.key.app_id, "--off", "--json")
    assert off.returncode == 0, off.stderr
    assert json.loads(off.stdout)["listening"] is False
    wait_for(lambda: not _held(system, quiet.key), timeout=30, what="placement let it go")
    send_as(system, sender, quiet.user_id, "while not listening")
    send_as(system, sender, loud.user_id, "still heard")
    wait_for(
        lambda: count_events(system, FLAG_TENANT, "message.received") == 1,
        timeout=30,
        what="the listening account's message",
    )
    assert _held(system, loud.key) and not _held(system, quiet.key)

    # On again (the producer library): placement claims it and getDifference brings what
    # arrived while it was off, so nothing is lost by pausing.
    system.client().set_listening(FLAG_TENANT, quiet.key.app_id, True)
    wait_for(
        lambda: count_events(system, FLAG_TENANT, "message.received") == 2,
        timeout=30,
        what="the paused account's message after listening again",
    )

    # Bad input changes nothing.
    unknown = _cli(system, "listen", FLAG_TENANT, "no-such-app")
    assert unknown.returncode == 3, unknown.stderr
    assert "no-such-app" in unknown.stderr
    with pytest.raises(InvalidInput):
        system.client().set_listening(FLAG_TENANT, quiet.key.app_id, "yes")  # type: ignore[arg-type]
    assert system.store.require(quiet.key).listening is True


SEND_TENANT = "tenant-listen-send"


def _stored_pts(system: SystemUnderTest, key: SessionKey) -> int:
    with system.engine.connect() as conn:
        return int(
            conn.execute(
                text("SELECT pts FROM inbound_state WHERE tenant_id = :t AND app_id = :a"),
                {"t": key.tenant_id, "a": key.app_id},
            ).scalar_one()
        )


def test_a_send_on_a_listening_connection_keeps_its_feed(system: SystemUnderTest) -> None:
    """Our own send comes back as updateShortSentMessage on the listening connection: it
    moves the common pts on and records nothing received; the feed carries on hearing."""
    sender, recipient = system.provision(2, tenant_id=SEND_TENANT)
    friend = system.control.create_user("+79770000011", "Friend", username="friend_send")
    worker = system.start_worker("listen-send")
    wait_for(lambda: started_feeds(system, SEND_TENANT) == 2, timeout=30, what="feeds started")
    before = _stored_pts(system, sender.key)
    outcome = system.producer.send_task(
        "tasks.messages.send_message",
        kwargs=send_kwargs(sender, recipient.peer, "from a listener", "listen-send-1"),
    ).get(timeout=60)
    assert outcome["status"] == "sent"
    wait_for(
        lambda: _stored_pts(system, sender.key) == before + 1,
        timeout=30,
        what="the sender's stored pts moved past its own send",
    )
    # The same connection still hears: a message to the sender after its send arrives.
    send_as(system, int(friend["user_id"]), sender.user_id, "after your send")
    wait_for(
        lambda: any(
            r.app_id == sender.key.app_id for r in events(system, SEND_TENANT, "message.received")
        ),
        timeout=30,
        what="the sender's feed hearing a message after its send",
    )
    received = events(system, SEND_TENANT, "message.received")
    assert sorted((r.app_id, r.data["text"]) for r in received) == sorted(
        [(recipient.key.app_id, "from a listener"), (sender.key.app_id, "after your send")]
    )
    assert count_events(system, SEND_TENANT, "message.sent") == 1
    assert "feed_stopped" not in worker.log()
