"""reconnect after a mass disconnect, and RANDOM_ID_DUPLICATE after a crash."""

from __future__ import annotations

import asyncio

from telethon import TelegramClient, functions
from telethon.sessions import StringSession

from integration_service.messaging.random_ids import random_id_for
from integration_service.runtime.session_runtime import session_context
from integration_service.telegram.client_factory import EMULATOR_API_HASH, EMULATOR_API_ID
from integration_service.telegram.endpoint import apply_to_session, register_rsa_key
from tests.support.system import SystemUnderTest, send_kwargs

TENANT = "tenant-reconnect"


def test_reconnect_after_every_connection_was_dropped(system: SystemUnderTest) -> None:
    sessions = system.provision(10, tenant_id=TENANT)
    system.start_worker("reconnector")
    client = system.client()
    # Warm every session (a send keeps its client connected), then drop every connection.
    warm = [
        client.send_message(TENANT, s.key.app_id, sessions[(i + 1) % 10].peer, f"warm {i}")
        for i, s in enumerate(sessions)
    ]
    assert {client.wait(h, timeout=60)["status"] for h in warm} == {"sent"}
    dropped = system.control.call("POST", "/connections/drop")["dropped"]
    assert dropped >= len(sessions)
    handles = [client.reconnect(TENANT, s.key.app_id) for s in sessions]
    results = [client.wait(h, timeout=60) for h in handles]
    assert all(r["reconnected"] and r["state"] == "authorized" for r in results)
    stats = {k["user_id"]: k for k in system.control.stats()["auth_keys"] if k["user_id"]}
    for s in sessions:
        # Never two connections of one key at once, also while reconnecting in bulk.
        assert stats[s.user_id]["max_concurrent_connections"] == 1
    assert system.control.stats()["auth_key_duplicated"] == 0
    # The reconnected clients serve sends.
    sent = client.wait(
        client.send_message(TENANT, sessions[0].key.app_id, sessions[2].peer, "back again"),
        timeout=60,
    )
    assert sent["status"] == "sent"


def test_random_id_duplicate_after_a_crash_is_recorded_as_sent(system: SystemUnderTest) -> None:
    """An earlier run reached Telegram and died before recording it: no second message."""
    sender, recipient = system.provision(2, tenant_id=f"{TENANT}-dup")
    key = "crashed-send-1"
    row = system.store.require(sender.key)
    assert row.session_string_enc is not None
    string = system.cipher.decrypt(row.session_string_enc, context=session_context(sender.key))

    async def first_run() -> None:
        # What the crashed run sent: same session, same random_id, then the process died.
        register_rsa_key(system.emulator.endpoint)
        session = StringSession(string)
        apply_to_session(session, system.emulator.endpoint)
        telegram = TelegramClient(session, EMULATOR_API_ID, EMULATOR_API_HASH)
        await telegram.connect()
        try:
            peer = await telegram.get_input_entity(recipient.peer)
            await telegram(
                functions.messages.SendMessageRequest(
                    peer=peer, message="only once", random_id=random_id_for(sender.key, key)
                )
            )
        finally:
            await telegram.disconnect()

    asyncio.run(first_run())
    system.start_worker("dup-checker")
    outcome = system.producer.send_task(
        "tasks.messages.send_message", kwargs=send_kwargs(sender, recipient.peer, "only once", key)
    ).get(timeout=60)
    assert outcome["status"] == "sent"
    assert outcome["repeated"] is True
    assert [m["text"] for m in system.control.messages(sender_id=sender.user_id)] == ["only once"]
    from integration_service.store import SessionKey
    from integration_service.store.outbox import OutboxStore

    row_out = OutboxStore(system.engine).get(
        SessionKey(sender.key.tenant_id, sender.key.app_id), key
    )
    assert row_out is not None and row_out.status == "sent"
    assert row_out.error_details == "random_id duplicate"
