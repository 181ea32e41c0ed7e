"""DELETE .../accounts/{id}: the session is logged out at Telegram (the emulator forgets
its auth key: the old session string no longer works) and its material is wiped here,
while the account, its transitions and its events stay."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
from sqlalchemy import text
from telethon import functions
from telethon.errors import AuthKeyUnregisteredError

from integration_service.emulator.world.client_helper import emulator_client
from integration_service.runtime.session_runtime import session_context
from tests.api.conftest import KeyMaker
from tests.support.api_process import ApiProcess
from tests.support.processes import wait_for
from tests.support.system import Provisioned, SystemUnderTest

T = "/api/integrations/telegram"
TENANT = "tenant-api-logout"


@pytest.fixture(scope="module")
def account(system: SystemUnderTest) -> Iterator[Provisioned]:
    made = system.provision(1, tenant_id=TENANT)[0]
    worker = system.start_worker("api-logout")
    yield made
    system.stop_worker(worker)


def stored_string(system: SystemUnderTest, account: Provisioned) -> str | None:
    row = system.store.require(account.key)
    if row.session_string_enc is None:
        return None
    return system.cipher.decrypt(row.session_string_enc, context=session_context(account.key))


async def still_signed_in(system: SystemUnderTest, session_string: str) -> bool:
    client = emulator_client(system.emulator.endpoint, session_string)
    await client.connect()
    try:
        # GetState, not get_me: get_me answers None where GetState raises the reason.
        await client(functions.updates.GetStateRequest())
        return True
    except AuthKeyUnregisteredError:
        return False
    finally:
        await client.disconnect()


def test_delete_logs_out_at_telegram_and_wipes_the_material(
    api: ApiProcess, system: SystemUnderTest, make_key: KeyMaker, account: Provisioned
) -> None:
    key = make_key(TENANT, "accounts:read", "accounts:write")
    before = stored_string(system, account)
    assert before is not None and asyncio.run(still_signed_in(system, before))
    app = account.key.app_id
    reply = api.call("DELETE", f"{T}/accounts/{app}", token=key)
    assert reply.status == 202, reply.body

    def revoked() -> dict[str, object] | None:
        found = api.call("GET", f"{T}/accounts/{app}", token=key).body
        return found if found["state"] == "revoked" else None

    shown = wait_for(revoked, timeout=60, interval=0.2, what="the account to be revoked")
    assert shown["auth_error"] == "logged_out" and shown["listening"] is False
    assert stored_string(system, account) is None
    row = system.store.require(account.key)
    assert row.key_id is None and row.fingerprint is None
    # Telegram (the emulator) no longer knows the auth key.
    assert asyncio.run(still_signed_in(system, before)) is False
    # The audit trail stays: the transition, and its session.state_changed event.
    assert [e.to_state for e in system.store.events(account.key)][-1] == "revoked"
    with system.engine.connect() as conn:
        changed = conn.execute(
            text(
                "SELECT count(*) FROM inbound_events WHERE tenant_id = :t AND app_id = :a "
                "AND type = 'session.state_changed' AND data->>'to_state' = 'revoked'"
            ),
            {"t": TENANT, "a": app},
        ).scalar_one()
    assert changed == 1
    # Again: still 202, and nothing changes (the job finds nothing left to end).
    again = api.call("DELETE", f"{T}/accounts/{app}", token=key)
    assert again.status == 202
