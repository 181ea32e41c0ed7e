"""Bots over HTTP, end to end against the emulator: POST .../bots connects one by its
token (the login reaches authorized), it is listed and shown as a bot (a user account is
not a bot), it sends, and a bad token ends the login failed with the reason."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from integration_service.emulator.world.client_helper import random_phone
from tests.api.conftest import AccountMaker, KeyMaker
from tests.support.api_process import ApiProcess
from tests.support.processes import wait_for
from tests.support.system import SystemUnderTest

T = "/api/integrations/telegram"
TENANT = "tenant-api-bots"


@pytest.fixture(scope="module")
def worker(system: SystemUnderTest) -> Iterator[None]:
    started = system.start_worker("api-bots")
    yield
    system.stop_worker(started)


def login_state(api: ApiProcess, key: str, login_id: str, wanted: set[str]) -> dict[str, object]:
    def reached() -> dict[str, object] | None:
        body = api.call("GET", f"{T}/logins/{login_id}", token=key).body
        return body if body["state"] in wanted else None

    return wait_for(reached, timeout=60, interval=0.2, what=f"the login to reach {wanted}")


def test_a_bot_connects_lists_and_sends(
    api: ApiProcess,
    system: SystemUnderTest,
    make_key: KeyMaker,
    make_account: AccountMaker,
    worker: None,
) -> None:
    key = make_key(TENANT, "connect", "accounts:read", "send", "messages:read")
    make_account(TENANT, "a-user")
    bot = system.control.call("POST", "/bots", {"username": f"api{random_phone()[-6:]}bot"})
    started = api.call(
        "POST", f"{T}/bots", token=key, body={"app_id": "bot-1", "bot_token": bot["token"]}
    )
    assert started.status == 202, started.body
    assert bot["token"] not in str(started.body)
    done = login_state(api, key, started.body["id"], {"authorized", "failed"})
    assert done["state"] == "authorized", done
    listed = api.call("GET", f"{T}/bots", token=key).body["items"]
    assert [b["id"] for b in listed] == ["bot-1"] and listed[0]["kind"] == "bot"
    assert api.call("GET", f"{T}/bots/bot-1", token=key).status == 200
    assert api.call("GET", f"{T}/bots/a-user", token=key).status == 404

    name = f"botrcpt{uuid.uuid4().hex[:8]}"
    rcpt = system.control.create_user("+79870000888", "Rcpt", username=name)
    # A bot may only write to a user who started it (Telegram's rule): the user does.
    system.control.call(
        "POST",
        "/messages",
        {
            "sender": rcpt["user_id"],
            "peer": {"type": "user", "id": bot["user_id"]},
            "text": "/start",
        },
    )
    sent = api.call(
        "POST",
        f"{T}/bots/bot-1/send",
        token=key,
        body={"peer": f"@{name}", "text": "hi from a bot"},
    )
    assert sent.status == 202, sent.body

    def outcome() -> dict[str, object] | None:
        body = api.call("GET", f"{T}/messages/{sent.body['id']}", token=key).body
        return body if body["status"] in {"sent", "failed"} else None

    finished = wait_for(outcome, timeout=60, interval=0.2, what="the bot's send")
    assert finished["status"] == "sent", finished


def test_a_bad_bot_token_ends_the_login_failed(
    api: ApiProcess, system: SystemUnderTest, make_key: KeyMaker, worker: None
) -> None:
    key = make_key(TENANT, "connect")
    bad = "123456:" + "x" * 35
    started = api.call("POST", f"{T}/bots", token=key, body={"app_id": "bot-bad", "bot_token": bad})
    assert started.status == 202, started.body
    done = login_state(api, key, started.body["id"], {"authorized", "failed"})
    assert done["state"] == "failed" and "access_token_invalid" in str(done["reason"])
