"""Fixtures of the inbound tests: a session to log events for, a private vhost, a consumer."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from integration_service.settings import Settings, load_settings
from integration_service.store import SessionKey, SessionMaterial, SessionStore
from tests.inbound.support import EventConsumer
from tests.support.rabbitmq import private_vhost

TENANT = "inbound-acme"


@pytest.fixture(scope="module")
def broker_url() -> Iterator[str]:
    with private_vhost() as url:
        yield url


def add_session(store: SessionStore, app_id: str, tenant_id: str = TENANT) -> SessionKey:
    key = SessionKey(tenant_id, app_id)
    store.ensure_tenant(tenant_id)
    store.save(SessionMaterial(key, "user", "authorized", lease_epoch=0))
    return key


@pytest.fixture
def session_key(store: SessionStore) -> SessionKey:
    """An authorised session of TENANT; the store fixture truncates everything after."""
    return add_session(store, "main")


@pytest.fixture
def relay_settings(database_url: str, broker_url: str) -> Settings:
    return load_settings(
        database_url=database_url,
        broker_url=broker_url,
        relay_batch=50,
        relay_poll_interval=0.05,
        dependency_timeout=5,
    )


@pytest.fixture
def consumer(broker_url: str) -> Iterator[EventConsumer]:
    bound = EventConsumer(broker_url)
    yield bound
    bound.close()
