"""Every route x every kind of caller, against the real API process: no token (401),
a key without the route's scope (403), another tenant's key (404: its resources do not
exist for it), and the right key (2xx)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import pytest

from integration_service.channels import ChannelFacts, ChannelStore, Rights
from integration_service.inbound.event_log import EventLog
from integration_service.store import SessionKey
from integration_service.webhooks import DeliveryLog
from integration_service.webhooks.queue import DeliveryQueue
from tests.api.conftest import AccountMaker, KeyMaker
from tests.support.api_process import ApiProcess
from tests.support.system import SystemUnderTest
from tests.webhooks.harness import append_messages

T = "/api/integrations/telegram"
W = "/api/integrations/webhooks"
E = "/api/integrations/events"
HOOK = "http://127.0.0.1:9/hook"  # loopback's discard port: nothing listens
SECRET = "whsec_" + "A" * 43 + "="
OWNER = "tenant-authz-a"
OTHER = "tenant-authz-b"


@dataclass(frozen=True)
class Route:
    method: str
    path: str  # {account}, {message}, {login} are filled in from the owner's resources
    scope: str
    body: Any = None
    ok: int = 200
    # Whether another tenant's call names the owner's resource (else it acts on its own).
    owned: bool = True


ROUTES = [
    Route("GET", f"{T}/accounts", "accounts:read", owned=False),
    Route("GET", f"{T}/accounts/{{account}}", "accounts:read"),
    Route("POST", f"{T}/accounts/{{account}}/reconnect", "accounts:write", ok=202),
    Route("POST", f"{T}/accounts/{{account}}/validate", "accounts:write", ok=202),
    Route(
        "POST",
        f"{T}/accounts/{{account}}/send/bulk",
        "send",
        {"messages": [{"peer": "@example_user", "text": "hi"}]},
        ok=202,
    ),
    Route(
        "POST",
        f"{T}/accounts/{{account}}/send",
        "send",
        {"peer": "@example_user", "text": "hi"},
        ok=202,
    ),
    Route("DELETE", f"{T}/accounts/{{gone}}", "accounts:write", ok=202),
    Route("GET", f"{T}/messages/{{message}}", "messages:read"),
    Route("GET", f"{T}/bots", "accounts:read", owned=False),
    Route(
        "POST",
        f"{T}/bots",
        "connect",
        {"app_id": "new-bot", "bot_token": "123456:" + "A" * 35},
        202,
        False,
    ),
    Route("GET", f"{T}/bots/{{bot}}", "accounts:read"),
    Route(
        "POST", f"{T}/bots/{{bot}}/send", "send", {"peer": "@example_user", "text": "hi"}, ok=202
    ),
    Route("DELETE", f"{T}/bots/{{gone_bot}}", "accounts:write", ok=202),
    Route("GET", f"{T}/channels", "channels:read", owned=False),
    Route(
        "POST",
        f"{T}/channels",
        "channels:write",
        {"account_id": "acct", "peer": "@another_channel"},
        202,
        # The account named is the owner's: for another tenant it does not exist.
        True,
    ),
    Route("GET", f"{T}/channels/{{channel}}", "channels:read"),
    Route("POST", f"{T}/channels/{{channel}}/send", "send", {"text": "hi"}, ok=202),
    Route("POST", f"{T}/channels/{{channel}}/refresh", "channels:write", ok=202),
    Route("DELETE", f"{T}/channels/{{gone_channel}}", "channels:write", ok=204),
    Route("POST", f"{T}/connect", "connect", {"method": "qr", "app_id": "acct"}, 202, False),
    Route("GET", f"{T}/logins/{{login}}", "connect"),
    Route("POST", f"{T}/logins/{{login}}/code", "connect", {"code": "12345"}, ok=202),
    Route("POST", f"{T}/logins/{{login}}/password", "connect", {"password": "pw"}, ok=202),
    Route("GET", W, "webhooks:read", owned=False),
    Route("POST", W, "webhooks:write", {"url": HOOK, "secret": SECRET}, 201, False),
    Route("GET", f"{W}/{{subscription}}", "webhooks:read"),
    Route("PATCH", f"{W}/{{subscription}}", "webhooks:write", {"enabled": True}),
    Route("POST", f"{W}/{{subscription}}/rotate-secret", "webhooks:write", {"secret": SECRET}),
    Route("POST", f"{W}/{{subscription}}/test", "webhooks:write"),
    Route("GET", f"{W}/{{subscription}}/deliveries", "webhooks:read"),
    Route("POST", f"{W}/deliveries/{{delivery}}/redeliver", "webhooks:write"),
    Route("DELETE", f"{W}/{{doomed}}", "webhooks:write", ok=204),
    Route("GET", E, "events:read", owned=False),
    Route("GET", "/api/integrations/audit", "audit:read", owned=False),
]


@pytest.fixture(scope="module")
def owned(
    api: ApiProcess, system: SystemUnderTest, make_key: KeyMaker, make_account: AccountMaker
) -> dict[str, str]:
    """The owner's account, one accepted message, one login, webhook subscriptions (one
    for the DELETE case) and a delivery."""
    make_account(OWNER, "acct")
    make_account(OWNER, "acct-gone")
    make_account(OWNER, "bot", kind="bot")
    make_account(OWNER, "bot-gone", kind="bot")
    key = make_key(OWNER, "*")
    sent = api.call(
        "POST", f"{T}/accounts/acct/send", token=key, body={"peer": "@example_user", "text": "x"}
    )
    assert sent.status == 202, sent.body
    login = api.call("POST", f"{T}/connect", token=key, body={"method": "qr", "app_id": "acct"})
    assert login.status == 202, login.body
    channel = api.call(
        "POST", f"{T}/channels", token=key, body={"account_id": "acct", "peer": "@owned_channel"}
    )
    gone_channel = api.call(
        "POST", f"{T}/channels", token=key, body={"account_id": "acct", "peer": "-1001234567"}
    )
    assert channel.status == gone_channel.status == 202, (channel.body, gone_channel.body)
    # No worker checks it here: recorded as a check would leave it, so it may be posted to.
    ChannelStore(system.engine).record(
        uuid.UUID(channel.body["id"]),
        ChannelFacts(
            telegram_id=-1001900000042,
            access_hash=42,
            kind="channel",
            title="Owned",
            username="owned_channel",
            members_count=2,
            rights=Rights(member=True, creator=True, admin=True, can_post=True),
        ),
    )
    hook = api.call("POST", W, token=key, body={"url": HOOK, "secret": SECRET})
    doomed = api.call("POST", W, token=key, body={"url": HOOK, "secret": SECRET})
    assert hook.status == doomed.status == 201, (hook.body, doomed.body)
    append_messages(EventLog(system.engine), SessionKey(OWNER, "acct"), 1)
    DeliveryQueue(system.engine).fan_out(100)
    deliveries = DeliveryLog(system.engine).deliveries(OWNER, subscription_id=hook.body["id"])
    return {
        "account": "acct",
        "gone": "acct-gone",
        "bot": "bot",
        "gone_bot": "bot-gone",
        "message": sent.body["id"],
        "channel": channel.body["id"],
        "gone_channel": gone_channel.body["id"],
        "login": login.body["id"],
        "subscription": hook.body["id"],
        "doomed": doomed.body["id"],
        "delivery": str(deliveries[0].id),
    }


def _call(api: ApiProcess, route: Route, owned: dict[str, str], token: str | None) -> Any:
    return api.call(route.method, route.path.format(**owned), token=token, body=route.body)


@pytest.mark.parametrize("route", ROUTES, ids=lambda r: f"{r.method} {r.path}")
def test_no_token_is_401(api: ApiProcess, owned: dict[str, str], route: Route) -> None:
    reply = _call(api, route, owned, None)
    assert reply.status == 401, reply.body
    assert reply.code == "unauthenticated"
    assert reply.headers["content-type"] == "application/problem+json"
    assert reply.headers["www-authenticate"].startswith("Bearer")


@pytest.mark.parametrize("route", ROUTES, ids=lambda r: f"{r.method} {r.path}")
def test_a_bad_token_is_401(api: ApiProcess, owned: dict[str, str], route: Route) -> None:
    for token in ("isk_not-a-real-key", "a.b.c", "garbage"):
        reply = _call(api, route, owned, token)
        assert reply.status == 401, (token, reply.body)
        assert token not in str(reply.body)


@pytest.mark.parametrize("route", ROUTES, ids=lambda r: f"{r.method} {r.path}")
def test_a_key_without_the_scope_is_403(
    api: ApiProcess, owned: dict[str, str], make_key: KeyMaker, route: Route
) -> None:
    others = sorted({r.scope for r in ROUTES} - {route.scope})
    reply = _call(api, route, owned, make_key(OWNER, *others))
    assert reply.status == 403, reply.body
    assert reply.code == "scope_missing"
    assert route.scope in reply.body["detail"]


@pytest.mark.parametrize("route", ROUTES, ids=lambda r: f"{r.method} {r.path}")
def test_another_tenants_key_finds_nothing(
    api: ApiProcess, owned: dict[str, str], make_key: KeyMaker, route: Route
) -> None:
    reply = _call(api, route, owned, make_key(OTHER, route.scope))
    if route.owned:
        assert reply.status == 404, reply.body
        # "not_found", or the library's own ("webhook_subscription_not_found", ...).
        assert str(reply.code).endswith("not_found"), reply.body
    elif route.method == "GET":
        assert reply.status == 200, reply.body
        # None of the owner's resources (listed items carry no tenant: their ids tell).
        assert all(item["id"] not in owned.values() for item in reply.body["items"])
    else:
        # Creating makes the other tenant's own login or subscription, never the owner's.
        assert reply.status == route.ok, reply.body
        assert reply.body["id"] not in owned.values()


@pytest.mark.parametrize("route", ROUTES, ids=lambda r: f"{r.method} {r.path}")
def test_the_right_key_is_served(
    api: ApiProcess, owned: dict[str, str], make_key: KeyMaker, route: Route
) -> None:
    reply = _call(api, route, owned, make_key(OWNER, route.scope))
    assert reply.status == route.ok, reply.body
    assert "ratelimit" in reply.headers


def test_a_revoked_key_is_refused(
    api: ApiProcess, system: SystemUnderTest, make_key: KeyMaker, owned: dict[str, str]
) -> None:
    from integration_service.api.auth import ApiKeyStore
    from integration_service.api.auth.api_keys import CACHE_SECONDS
    from tests.support.processes import wait_for

    key = make_key(OWNER, "accounts:read")
    assert api.call("GET", f"{T}/accounts", token=key).status == 200
    store = ApiKeyStore(system.engine)
    record = next(r for r in store.list(OWNER) if r.hint == key[-4:])
    store.revoke(OWNER, record.id)
    # The API process caches a verified key for CACHE_SECONDS.
    wait_for(
        lambda: api.call("GET", f"{T}/accounts", token=key).status == 401,
        timeout=CACHE_SECONDS + 5,
        interval=0.2,
        what="the revoked key to be refused",
    )
    used = next(r for r in store.list(OWNER) if r.id == record.id)
    assert used.last_used_at is not None and used.revoked_at is not None
