"""Fixtures of the HTTP API tests: one whole system (emulator, private vhost, Redis db) for
the package, an API process per module (with the module's settings), and tenants with
keys of chosen scopes, deleted after their module."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from integration_service.api.auth import ApiKeyStore
from integration_service.emulator.testing import EmulatorProcess
from integration_service.store import SessionKey, SessionMaterial
from tests.support.api_process import ApiProcess, running_api
from tests.support.system import SystemUnderTest, whole_system

KeyMaker = Callable[..., str]
AccountMaker = Callable[..., SessionKey]


@pytest.fixture(scope="package")
def emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmulatorProcess]:
    with EmulatorProcess(tmp_path_factory.mktemp("emulator")) as running:
        yield running


# Every API process of the tests: rate limits out of the way (only the rate-limit tests
# meet them), private webhook targets allowed (receivers run on loopback).
API_DEFAULTS = {
    "RATE_LIMIT_KEY_PER_SECOND": "10000",
    "RATE_LIMIT_KEY_BURST": "10000",
    "RATE_LIMIT_TENANT_PER_SECOND": "10000",
    "RATE_LIMIT_TENANT_BURST": "10000",
    "WEBHOOK_ALLOW_PRIVATE": "true",
}


@pytest.fixture(scope="package")
def system(
    database_url: str, emulator: EmulatorProcess, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[SystemUnderTest]:
    with whole_system(
        database_url=database_url,
        emulator=emulator,
        state_dir=Path(tmp_path_factory.mktemp("system")),
    ) as sut:
        yield sut


@pytest.fixture(scope="module")
def api_overrides() -> dict[str, str] | None:
    """API settings a module wants beyond API_DEFAULTS (override in the module); None
    (the default): the package's shared API process serves the module."""
    return None


@pytest.fixture(scope="package")
def shared_api(
    system: SystemUnderTest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ApiProcess]:
    log = Path(tmp_path_factory.mktemp("api")) / "api.log"
    with running_api(system.env, log, **API_DEFAULTS) as process:
        yield process


@pytest.fixture(scope="module")
def api(
    request: pytest.FixtureRequest,
    system: SystemUnderTest,
    api_overrides: dict[str, str] | None,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[ApiProcess]:
    """The API process of the module: the shared one, or one with the module's settings."""
    if api_overrides is None:
        yield request.getfixturevalue("shared_api")
        return
    log = Path(tmp_path_factory.mktemp("api")) / "api.log"
    with running_api(system.env, log, **{**API_DEFAULTS, **api_overrides}) as process:
        yield process


@pytest.fixture(scope="module")
def tenants(system: SystemUnderTest) -> Iterator[set[str]]:
    """The tenants a module registers; deleted after it, with everything of theirs."""
    made: set[str] = set()
    yield made
    with system.engine.begin() as conn:
        conn.execute(text("DELETE FROM tenants WHERE id = ANY(:ids)"), {"ids": sorted(made)})


@pytest.fixture(scope="module")
def make_key(system: SystemUnderTest, tenants: set[str]) -> KeyMaker:
    """An API key of a tenant (registered on first use) with the given scopes (all: *)."""
    keys = ApiKeyStore(system.engine)

    def make(tenant_id: str, *scopes: str) -> str:
        system.store.ensure_tenant(tenant_id)
        tenants.add(tenant_id)
        return keys.create(tenant_id, "test", scopes or ("*",)).key

    return make


@pytest.fixture(scope="module")
def make_account(system: SystemUnderTest, tenants: set[str]) -> AccountMaker:
    """A session row in state authorized (no Telegram behind it: for routes that only
    read it or enqueue a job)."""

    def make(tenant_id: str, app_id: str, kind: str = "user") -> SessionKey:
        key = SessionKey(tenant_id, app_id)
        system.store.ensure_tenant(tenant_id)
        tenants.add(tenant_id)
        system.store.save(SessionMaterial(key=key, kind=kind, state="authorized", lease_epoch=1))
        return key

    return make


def _over_shared_queues(system: SystemUnderTest, count: Callable[[Any], int]) -> int:
    """The sum of ``count(queue)`` over the system's shared queues, each declared first
    (as a worker declares them when it starts)."""
    from kombu import Connection

    from integration_service.queues import consumed_queues

    with Connection(system.env["CELERY_BROKER_URL"]) as conn:
        channel = conn.channel()
        try:
            total = 0
            for queue in consumed_queues():
                bound = queue(channel)
                bound.declare()
                total += count(bound)
            return total
        finally:
            channel.close()


def queued_jobs(system: SystemUnderTest) -> int:
    """Jobs waiting in the system's shared queues: for modules where no worker runs while
    they count."""
    return _over_shared_queues(system, lambda q: int(q.queue_declare(passive=True).message_count))


def purge_queued_jobs(system: SystemUnderTest) -> int:
    """Drop the jobs earlier modules left in the shared queues (their modules are over),
    so a module's own worker starts on its own jobs only; how many were dropped."""
    return _over_shared_queues(system, lambda q: int(q.purge() or 0))
