"""Fixtures of the webhook tests: settings and stores on the session's scratch database,
one receiver process per test, and the environment dispatcher processes run with."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine

from integration_service.crypto import LocalKeyring
from integration_service.inbound.event_log import EventLog
from integration_service.settings import Settings, load_settings
from integration_service.store import SessionStore
from integration_service.webhooks import DeliveryLog, SubscriptionStore
from tests.support.webhook_receiver import Receiver, running_receiver
from tests.webhooks.harness import keyring_spec


@pytest.fixture(scope="session")
def keyring() -> str:
    return keyring_spec()


@pytest.fixture(scope="session")
def cipher(keyring: str) -> LocalKeyring:
    return LocalKeyring.from_spec(keyring)


@pytest.fixture(scope="session")
def webhook_settings(database_url: str, keyring: str) -> Settings:
    # Receivers run on loopback: the tests allow private targets (the SSRF tests don't).
    return load_settings(
        database_url=database_url, local_keyring=keyring, webhook_allow_private=True
    )


@pytest.fixture
def subscriptions(
    webhook_settings: Settings, engine: Engine, cipher: LocalKeyring, store: SessionStore
) -> SubscriptionStore:
    # ``store`` empties the tables after the test (TRUNCATE tenants CASCADE).
    return SubscriptionStore(webhook_settings, engine, cipher)


@pytest.fixture
def delivery_log(engine: Engine) -> DeliveryLog:
    return DeliveryLog(engine)


@pytest.fixture
def event_log(engine: Engine) -> EventLog:
    return EventLog(engine)


@pytest.fixture
def dispatcher_env(database_url: str, keyring: str) -> dict[str, str]:
    return {
        "DATABASE_URL": database_url,
        "LOCAL_KEYRING": keyring,
        "WEBHOOK_ALLOW_PRIVATE": "true",
        "WEBHOOK_POLL_INTERVAL": "0.02",
        "LOG_LEVEL": "INFO",
    }


@pytest.fixture
def receiver(tmp_path: Path) -> Iterator[Receiver]:
    with running_receiver(tmp_path / "receiver.log") as started:
        yield started
