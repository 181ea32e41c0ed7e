"""What a command needs to reach the system: settings and the producer API.

Every job goes through ``IntegrationClient``, the same API other services use, so the
CLI validates and enqueues exactly as they do. The client builds its Celery app (on
first use) from the settings of this invocation: the module-level ``celery_app`` reads
its broker and result backend once per process, which would pin an in-process caller
(tests, a notebook) to whichever environment came first.

Imported by every command module, so it imports nothing heavy itself: ``--help`` needs
none of the producer's libraries.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from integration_service.cli.budget import remaining

if TYPE_CHECKING:
    from integration_service.client import IntegrationClient
    from integration_service.settings import Settings

# What a command reaches (the names of integration_service.dependencies, spelled out
# here: importing that module is not free, and ``--help`` needs none of it).
DATABASE = frozenset({"postgresql"})
DATABASE_AND_REDIS = frozenset({"postgresql", "redis"})
EVERYTHING = frozenset({"postgresql", "redis", "rabbitmq"})


def current_settings() -> Settings:
    """The settings from the environment (a SettingsError names the bad variable)."""
    from integration_service.settings import get_settings

    return get_settings()


@contextmanager
def open_client(
    settings: Settings | None = None, *, needs: Collection[str]
) -> Iterator[IntegrationClient]:
    """The producer API for one command, its ``needs`` reached first; closed afterwards.

    ``needs`` names the dependencies the command uses (``postgresql``, ``redis``,
    ``rabbitmq``). They are reached up front, in parallel, within what is left of the
    command's DEPENDENCY_TIMEOUT (``budget``): one that cannot be reached fails the
    command with ``DependencyUnavailable`` before it asks for input or enqueues
    anything. The connections the check opened stay pooled for the command's own calls.
    """
    from integration_service.client import IntegrationClient

    client = IntegrationClient(settings=settings or current_settings())
    try:
        check_dependencies(client, needs)
        yield client
    finally:
        client.close()


def check_dependencies(client: IntegrationClient, needs: Collection[str]) -> None:
    """Reach ``needs`` with ``client``'s own pools, within the command's budget."""
    from integration_service import dependencies as deps

    available: dict[str, Callable[[], object]] = {
        deps.POSTGRESQL: lambda: deps.probe_postgresql(client.engine),
        deps.REDIS: lambda: deps.probe_redis(client.redis),
        deps.RABBITMQ: lambda: deps.probe_broker(client.app),
    }
    unknown = set(needs) - set(available)
    assert not unknown, unknown
    probes = {name: probe for name, probe in available.items() if name in needs}
    client.dependencies.check(probes, within=remaining(client.settings.dependency_timeout))
