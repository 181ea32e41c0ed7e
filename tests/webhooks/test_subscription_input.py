"""Bad subscription input is refused with a clear error and nothing is stored; the SSRF
check runs again at delivery time; tenants see only their own rows under RLS."""

from __future__ import annotations

import base64
import uuid
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.engine import Engine

from integration_service.crypto import LocalKeyring
from integration_service.inbound.event_log import EventLog
from integration_service.settings import Settings, load_settings
from integration_service.store import SessionStore
from integration_service.webhooks import (
    DeliveryLog,
    SubscriptionNotFound,
    SubscriptionStore,
    UnknownEventType,
    WebhookSecretInvalid,
    WebhookSecretTooShort,
    WebhookTargetForbidden,
    WebhookTenantUnknown,
    WebhookUrlInvalid,
)
from integration_service.webhooks.targets import forbidden_reason, parse_url, pinned
from tests.support.processes import wait_for
from tests.support.webhook_receiver import Receiver
from tests.webhooks.harness import add_session, append_messages, deliveries, running_dispatcher

SHORT_SECRET = "whsec_" + base64.b64encode(b"x" * 16).decode()
GOOD_SECRET = "whsec_" + base64.b64encode(b"k" * 32).decode()


def stored_count(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(text("SELECT count(*) FROM webhook_subscriptions")).scalar_one())


@pytest.fixture
def strict(
    database_url: str, keyring: str, engine: Engine, cipher: LocalKeyring, store: SessionStore
) -> SubscriptionStore:
    """A store with WEBHOOK_ALLOW_PRIVATE=false, the production default."""
    settings: Settings = load_settings(
        database_url=database_url, local_keyring=keyring, webhook_allow_private=False
    )
    return SubscriptionStore(settings, engine, cipher)


@pytest.mark.parametrize(
    ("url", "types", "secret", "error", "says"),
    [
        ("not a url", None, None, WebhookUrlInvalid, "url: must not contain spaces"),
        ("example.com/hook", None, None, WebhookUrlInvalid, "url: must be an http"),
        ("ftp://example.com/hook", None, None, WebhookUrlInvalid, "url: must be an http"),
        ("https://user:pw@example.com/", None, None, WebhookUrlInvalid, "credentials"),
        ("http://127.0.0.1:8080/hook", None, None, WebhookTargetForbidden, "loopback"),
        ("http://10.1.2.3/hook", None, None, WebhookTargetForbidden, "private"),
        ("http://169.254.169.254/latest", None, None, WebhookTargetForbidden, "link-local"),
        ("http://[::1]/hook", None, None, WebhookTargetForbidden, "loopback"),
        ("http://localhost:9/hook", None, None, WebhookTargetForbidden, "loopback"),
        ("https://93.184.215.14/h", ["message.sent", "nope"], None, UnknownEventType, "nope"),
        ("https://93.184.215.14/h", None, SHORT_SECRET, WebhookSecretTooShort, "24 bytes"),
        ("https://93.184.215.14/h", None, "whsec_%%%", WebhookSecretInvalid, "base64"),
    ],
)
def test_bad_input_is_refused_and_nothing_is_stored(
    strict: SubscriptionStore,
    store: SessionStore,
    engine: Engine,
    url: str,
    types: list[str] | None,
    secret: str | None,
    error: type[Exception],
    says: str,
) -> None:
    add_session(store, "tenant-input")
    with pytest.raises(error) as refused:
        strict.add("tenant-input", url, types, secret=secret)
    assert says in str(refused.value)
    # The message never echoes the secret it refused.
    assert secret is None or secret not in str(refused.value)
    assert stored_count(engine) == 0


def test_an_unknown_tenant_is_refused_and_nothing_is_stored(
    strict: SubscriptionStore, engine: Engine
) -> None:
    with pytest.raises(WebhookTenantUnknown, match="not registered"):
        strict.add("tenant-nobody", "https://93.184.215.14/hook")
    assert stored_count(engine) == 0


def test_good_input_is_stored_with_the_secret_encrypted(
    strict: SubscriptionStore, store: SessionStore, engine: Engine
) -> None:
    add_session(store, "tenant-ok")
    created = strict.add(
        "tenant-ok", "https://93.184.215.14/hook", ["message.sent", "gap"], secret=GOOD_SECRET
    )
    assert created.secret == GOOD_SECRET
    assert created.subscription.event_types == ("gap", "message.sent")
    with engine.connect() as conn:
        stored = conn.execute(text("SELECT secret_enc FROM webhook_subscriptions")).scalar_one()
    assert GOOD_SECRET not in stored and "a2tr" not in stored
    assert [s.id for s in strict.list_subscriptions("tenant-ok")] == [created.subscription.id]
    strict.remove("tenant-ok", created.subscription.id)
    with pytest.raises(SubscriptionNotFound):
        strict.get("tenant-ok", created.subscription.id)


def test_the_address_rules() -> None:
    import ipaddress

    assert forbidden_reason(ipaddress.ip_address("::ffff:127.0.0.1")) == "loopback"
    assert forbidden_reason(ipaddress.ip_address("100.64.0.1")) == "not globally routable"
    assert forbidden_reason(ipaddress.ip_address("fe80::1")) == "link-local"
    assert forbidden_reason(ipaddress.ip_address("8.8.8.8")) is None
    # The attempt goes to the checked address; the name stays in Host and TLS SNI.
    target = parse_url("https://hooks.example.com:8443/in?x=1")
    request = pinned(target, ipaddress.ip_address("93.184.215.14"))
    assert request.url == "https://93.184.215.14:8443/in?x=1"
    assert request.headers == {"Host": "hooks.example.com:8443"}
    assert request.server_hostname == "hooks.example.com"


def test_a_private_target_is_refused_again_at_delivery_time(
    store: SessionStore,
    subscriptions: SubscriptionStore,
    event_log: EventLog,
    engine: Engine,
    receiver: Receiver,
    dispatcher_env: dict[str, str],
    tmp_path: Path,
) -> None:
    """Added while private targets were allowed (or DNS said otherwise then); the
    dispatcher, with WEBHOOK_ALLOW_PRIVATE=false, re-resolves and refuses."""
    key = add_session(store, "tenant-ssrf")
    sub = subscriptions.add("tenant-ssrf", receiver.url("ssrf")).subscription
    append_messages(event_log, key, 1)
    with running_dispatcher(
        dispatcher_env, tmp_path / "dispatcher.log", WEBHOOK_ALLOW_PRIVATE="false"
    ):
        row = wait_for(
            lambda: (rows := deliveries(engine, sub.id)) and rows[0]["attempts"] >= 1 and rows[0],
            timeout=20,
            what="the refused attempt recorded",
        )
    assert row["last_error"].startswith("refused: url: host 127.0.0.1 resolves to 127.0.0.1")
    assert "loopback" in row["last_error"]
    assert receiver.records("ssrf") == []


def test_a_tenant_role_sees_only_its_own_subscriptions_and_deliveries(
    store: SessionStore,
    subscriptions: SubscriptionStore,
    event_log: EventLog,
    admin_engine: Engine,
    engine: Engine,
) -> None:
    for tenant in ("tenant-x", "tenant-y"):
        key = add_session(store, tenant)
        subscriptions.add(tenant, f"http://127.0.0.1:9/{tenant}")
        append_messages(event_log, key, 2)
    from integration_service.webhooks.queue import DeliveryQueue

    DeliveryQueue(engine).fan_out(100)

    def visible(tenant: str | None) -> dict[str, list[str]]:
        seen: dict[str, list[str]] = {}
        with admin_engine.connect() as conn:
            conn.execute(text("SET ROLE integration_service_tenant"))
            if tenant is not None:
                conn.execute(text("SELECT set_config('app.tenant_id', :t, false)"), {"t": tenant})
            for table in ("webhook_subscriptions", "webhook_deliveries", "webhook_attempts"):
                seen[table] = sorted(conn.execute(text(f"SELECT tenant_id FROM {table}")).scalars())
            conn.execute(text("RESET ROLE"))
            conn.rollback()
        return seen

    assert visible("tenant-x") == {
        "webhook_subscriptions": ["tenant-x"],
        "webhook_deliveries": ["tenant-x", "tenant-x"],
        "webhook_attempts": [],
    }
    assert visible("tenant-y")["webhook_deliveries"] == ["tenant-y", "tenant-y"]
    assert visible(None) == {
        "webhook_subscriptions": [],
        "webhook_deliveries": [],
        "webhook_attempts": [],
    }
    # The store, as the service role, still answers per tenant: another tenant's id is
    # simply not found.
    other = subscriptions.list_subscriptions("tenant-y")[0]
    with pytest.raises(SubscriptionNotFound):
        subscriptions.get("tenant-x", other.id)
    assert DeliveryLog(engine).deliveries("tenant-x", subscription_id=other.id) == []
    assert uuid.UUID(str(other.id))
