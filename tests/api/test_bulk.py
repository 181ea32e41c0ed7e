"""Bulk sends over HTTP: 1,000 messages in one request reach Telegram (the emulator)
exactly once, a retried request sends nothing again, and one invalid item refuses the
whole request and enqueues nothing."""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Iterator

import pytest

from tests.api.conftest import KeyMaker, queued_jobs
from tests.support.api_process import ApiProcess
from tests.support.processes import wait_for
from tests.support.system import Provisioned, SystemUnderTest

T = "/api/integrations/telegram"
TENANT = "tenant-api-bulk"
FAST = {
    "PACE_PER_ACCOUNT_PER_SECOND": "10000",
    "PACE_PER_CHAT_PER_SECOND": "1000",
    "PACE_PER_GROUP_PER_MINUTE": "100000",
}


@pytest.fixture(scope="module")
def account(system: SystemUnderTest) -> Provisioned:
    return system.provision(1, tenant_id=TENANT)[0]


@pytest.fixture(scope="module")
def recipient(system: SystemUnderTest) -> str:
    name = f"bulkrcpt{uuid.uuid4().hex[:8]}"
    system.control.create_user("+79870000777", "Bulk", username=name)
    return f"@{name}"


def test_one_invalid_item_refuses_the_whole_request_and_enqueues_nothing(
    api: ApiProcess,
    system: SystemUnderTest,
    make_key: KeyMaker,
    account: Provisioned,
    recipient: str,
) -> None:
    key = make_key(TENANT, "send")
    items = [{"peer": recipient, "text": f"never {i}"} for i in range(1000)]
    items[500]["peer"] = "not a peer!"
    items[900]["text"] = ""
    before = queued_jobs(system)
    reply = api.call(
        "POST", f"{T}/accounts/{account.key.app_id}/send/bulk", token=key, body={"messages": items}
    )
    assert reply.status == 422, reply.body
    fields = sorted(problem["field"] for problem in reply.body["errors"])
    assert fields == ["body.messages.500.peer", "body.messages.900.text"], fields
    too_many = api.call(
        "POST",
        f"{T}/accounts/{account.key.app_id}/send/bulk",
        token=key,
        body={"messages": items[:1] * 1001},
    )
    assert too_many.status == 422
    assert queued_jobs(system) == before


@pytest.fixture(scope="module")
def worker(system: SystemUnderTest, account: Provisioned) -> Iterator[None]:
    started = system.start_worker("api-bulk", **FAST)
    yield
    system.stop_worker(started)


def test_1000_messages_in_one_request_arrive_exactly_once(
    api: ApiProcess,
    system: SystemUnderTest,
    make_key: KeyMaker,
    account: Provisioned,
    recipient: str,
    worker: None,
) -> None:
    key = make_key(TENANT, "send", "messages:read")
    tag = uuid.uuid4().hex[:6]
    items = [{"peer": recipient, "text": f"bulk {tag} {i}"} for i in range(1000)]
    path = f"{T}/accounts/{account.key.app_id}/send/bulk"
    headers = {"Idempotency-Key": f"bulk-{tag}"}
    reply = api.call("POST", path, token=key, body={"messages": items}, headers=headers)
    assert reply.status == 202, reply.body
    assert reply.body["count"] == 1000
    ids = [m["id"] for m in reply.body["messages"]]
    assert len(set(ids)) == 1000

    def arrived() -> list[str]:
        texts = [
            m["text"]
            for m in system.control.messages(sender_id=account.user_id)
            if m["text"].startswith(f"bulk {tag} ")
        ]
        return texts if len(texts) >= 1000 else []

    texts = wait_for(arrived, timeout=180, interval=1.0, what="1,000 messages at the emulator")
    assert Counter(texts) == Counter(item["text"] for item in items)
    # The same request again: the first answer, and nothing sent twice.
    again = api.call("POST", path, token=key, body={"messages": items}, headers=headers)
    assert again.status == 202 and again.body == reply.body
    last = api.call("GET", f"{T}/messages/{ids[-1]}", token=key)
    assert last.status == 200
    wait_for(
        lambda: api.call("GET", f"{T}/messages/{ids[-1]}", token=key).body["status"] == "sent",
        timeout=30,
        interval=0.5,
        what="the last message's outcome",
    )
    final = [
        m
        for m in system.control.messages(sender_id=account.user_id)
        if m["text"].startswith(f"bulk {tag} ")
    ]
    assert len(final) == 1000
