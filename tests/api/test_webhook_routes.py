"""Webhook subscriptions over HTTP against the real API process and a real receiver that
verifies signatures with the standardwebhooks package: bad input refused with nothing
stored, the secret never returned, a signed test ping, enable/disable, rotation, the
delivery log, redelivery, removal; another tenant sees none of it."""

from __future__ import annotations

import base64
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text

from integration_service.inbound.event_log import EventLog
from integration_service.store import SessionKey
from tests.api.conftest import AccountMaker, KeyMaker
from tests.support.api_process import ApiProcess
from tests.support.processes import wait_for
from tests.support.system import SystemUnderTest
from tests.support.webhook_receiver import Receiver, running_receiver
from tests.webhooks.harness import append_messages

W = "/api/integrations/webhooks"
TENANT = "tenant-api-hooks"


def new_secret() -> str:
    return "whsec_" + base64.b64encode(os.urandom(32)).decode()


@pytest.fixture(scope="module")
def receiver(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Receiver]:
    with running_receiver(Path(tmp_path_factory.mktemp("receiver")) / "receiver.log") as r:
        yield r


def subscription_rows(system: SystemUnderTest) -> int:
    with system.engine.connect() as conn:
        return int(
            conn.execute(
                text("SELECT count(*) FROM webhook_subscriptions WHERE tenant_id = :t"),
                {"t": TENANT},
            ).scalar_one()
        )


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"url": "not a url"}, "url"),
        ({"url": "ftp://example.com/hook"}, "url"),
        ({"event_types": ["message.nope"]}, "event_types"),
        ({"secret": "whsec_c2hvcnQ="}, "secret"),
        ({"secret": "plain-text"}, "secret"),
    ],
)
def test_bad_subscription_input_is_refused_and_nothing_is_stored(
    api: ApiProcess,
    system: SystemUnderTest,
    make_key: KeyMaker,
    receiver: Receiver,
    change: dict[str, object],
    field: str,
) -> None:
    key = make_key(TENANT, "webhooks:write")
    before = subscription_rows(system)
    body = {"url": receiver.url("bad"), "secret": new_secret(), **change}
    reply = api.call("POST", W, token=key, body=body)
    assert reply.status == 422, reply.body
    assert field in str(reply.body.get("field")), reply.body
    assert subscription_rows(system) == before


def test_a_subscription_s_life_over_http(
    api: ApiProcess,
    system: SystemUnderTest,
    make_key: KeyMaker,
    receiver: Receiver,
    make_account: AccountMaker,
) -> None:
    key = make_key(TENANT, "webhooks:read", "webhooks:write")
    secret = new_secret()
    receiver.configure("life", secrets=[secret])
    created = api.call("POST", W, token=key, body={"url": receiver.url("life"), "secret": secret})
    assert created.status == 201, created.body
    assert secret not in str(created.body) and "secret" not in created.body
    sub_id = created.body["id"]
    assert [s["id"] for s in api.call("GET", W, token=key).body["items"]] == [sub_id]

    ping = api.call("POST", f"{W}/{sub_id}/test", token=key)
    assert ping.status == 200 and ping.body["delivered"] is True, ping.body
    (call,) = [c for c in receiver.records("life") if c["id"] == ping.body["id"]]
    assert call["valid"] and '"type":"webhook.test"' in call["body"]

    # Events of the tenant are delivered to it by the dispatcher, listed in its log.
    make_account(TENANT, "acct")
    from integration_service.webhooks import WebhookDispatcher

    dispatcher = WebhookDispatcher(
        system.settings.model_copy(update={"webhook_allow_private": True}),
        system.engine,
        system.cipher,
    )
    dispatcher.start()
    try:
        append_messages(EventLog(system.engine), SessionKey(TENANT, "acct"), 3)

        def delivered() -> list[dict[str, object]] | None:
            items = api.call("GET", f"{W}/{sub_id}/deliveries", token=key).body["items"]
            return items if len([d for d in items if d["status"] == "delivered"]) == 3 else None

        deliveries = wait_for(delivered, timeout=30, interval=0.2, what="3 deliveries")
    finally:
        dispatcher.stop()
    again = api.call("POST", f"{W}/deliveries/{deliveries[0]['id']}/redeliver", token=key)
    assert again.status == 200 and again.body["status"] == "pending"

    off = api.call("PATCH", f"{W}/{sub_id}", token=key, body={"enabled": False})
    assert off.status == 200 and off.body["enabled"] is False
    rotated = api.call(
        "POST", f"{W}/{sub_id}/rotate-secret", token=key, body={"secret": new_secret()}
    )
    assert rotated.status == 200 and rotated.body["previous_secret_expires_at"] is not None

    other = make_key("tenant-api-hooks-other", "webhooks:read", "webhooks:write")
    for method, path in (
        ("GET", f"{W}/{sub_id}"),
        ("GET", f"{W}/{sub_id}/deliveries"),
        ("POST", f"{W}/{sub_id}/test"),
        ("DELETE", f"{W}/{sub_id}"),
        ("POST", f"{W}/deliveries/{deliveries[0]['id']}/redeliver"),
    ):
        assert api.call(method, path, token=other).status == 404, (method, path)
    assert api.call("GET", W, token=other).body["items"] == []

    assert api.call("DELETE", f"{W}/{sub_id}", token=key).status == 204
    assert api.call("GET", f"{W}/{sub_id}", token=key).status == 404
