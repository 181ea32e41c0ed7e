"""A send through the API reaches Telegram (the emulator): POST .../send with a real
worker running, then GET .../messages/{id} until it says sent, with Telegram's message id,
and the emulator holds the message exactly once."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from tests.api.conftest import KeyMaker
from tests.support.api_process import ApiProcess
from tests.support.processes import wait_for
from tests.support.system import Provisioned, SystemUnderTest

T = "/api/integrations/telegram"
TENANT = "tenant-api-send"


@pytest.fixture(scope="module")
def account(system: SystemUnderTest) -> Iterator[Provisioned]:
    made = system.provision(1, tenant_id=TENANT)[0]
    # Only for this module: the other modules count the jobs they leave queued.
    worker = system.start_worker("api-send")
    yield made
    system.stop_worker(worker)


def test_a_send_through_the_api_reaches_telegram_once(
    api: ApiProcess, system: SystemUnderTest, make_key: KeyMaker, account: Provisioned
) -> None:
    key = make_key(TENANT, "send", "messages:read")
    recipient = f"apircpt{uuid.uuid4().hex[:8]}"
    system.control.create_user("+79870000001", "Recipient", username=recipient)
    text = f"hello over http {uuid.uuid4().hex[:6]}"
    body = {"peer": f"@{recipient}", "text": text, "idempotency_key": "api-e2e-1"}
    accepted = api.call("POST", f"{T}/accounts/{account.key.app_id}/send", token=key, body=body)
    assert accepted.status == 202, accepted.body
    message_id = accepted.body["id"]

    def sent() -> dict[str, object] | None:
        reply = api.call("GET", f"{T}/messages/{message_id}", token=key)
        assert reply.status == 200, reply.body
        assert reply.body["status"] in {"accepted", "queued", "sent"}, reply.body
        return reply.body if reply.body["status"] == "sent" else None

    outcome = wait_for(sent, timeout=60, interval=0.2, what="the message to be sent")
    assert isinstance(outcome["telegram_message_id"], int)
    assert outcome["error"] is None and outcome["attempts"] == 1
    # The same send again (same idempotency key) is the same message, not another send.
    again = api.call("POST", f"{T}/accounts/{account.key.app_id}/send", token=key, body=body)
    assert again.status == 202 and again.body["id"] == message_id
    arrived = [m for m in system.control.messages(sender_id=account.user_id) if m["text"] == text]
    assert len(arrived) == 1


def test_an_unknown_message_id_is_404(api: ApiProcess, make_key: KeyMaker) -> None:
    key = make_key(TENANT, "messages:read")
    for wrong in (str(uuid.uuid4()), "not-a-uuid"):
        reply = api.call("GET", f"{T}/messages/{wrong}", token=key)
        assert reply.status == 404 and reply.code == "not_found"


def test_a_post_to_a_channel_reaches_telegram_as_its_accounts_send(
    api: ApiProcess, system: SystemUnderTest, make_key: KeyMaker, account: Provisioned
) -> None:
    key = make_key(TENANT, "channels:read", "channels:write", "send", "messages:read")
    owner = system.control.create_user("+79870000002", "Channel Owner")
    name = f"sendchan{uuid.uuid4().hex[:8]}"
    news = system.control.call(
        "POST",
        "/channels",
        {
            "creator_id": owner["user_id"],
            "title": "Send News",
            "username": name,
            "admin_ids": [account.user_id],
        },
    )
    channel = api.call(
        "POST",
        f"{T}/channels",
        token=key,
        body={"account_id": account.key.app_id, "peer": f"@{name}"},
    )
    assert channel.status == 202, channel.body
    wait_for(
        lambda: (
            api.call("GET", f"{T}/channels/{channel.body['id']}", token=key).body["status"]
            == "connected"
        ),
        timeout=60,
        interval=0.2,
        what="the channel's check",
    )
    text = f"posted {uuid.uuid4().hex[:6]}"
    posted = api.call(
        "POST", f"{T}/channels/{channel.body['id']}/send", token=key, body={"text": text}
    )
    assert posted.status == 202, posted.body

    def sent() -> dict[str, object] | None:
        reply = api.call("GET", f"{T}/messages/{posted.body['id']}", token=key)
        return reply.body if reply.body["status"] == "sent" else None

    outcome = wait_for(sent, timeout=60, interval=0.2, what="the post to be sent")
    assert outcome["peer"] == f"@{name}"
    arrived = [
        m
        for m in system.control.messages(sender_id=account.user_id, peer_type="channel")
        if m["text"] == text
    ]
    assert [m["peer_id"] for m in arrived] == [news["channel_id"]]
