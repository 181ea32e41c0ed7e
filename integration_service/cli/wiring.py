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

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from integration_service.client import IntegrationClient
    from integration_service.settings import Settings


def current_settings() -> Settings:
    """The settings from the environment (a SettingsError names the bad variable)."""
    from integration_service.settings import get_settings

    return get_settings()


@contextmanager
def open_client(settings: Settings | None = None) -> Iterator[IntegrationClient]:
    """The producer API for one command; closes its connections afterwards."""
    from integration_service.client import IntegrationClient

    client = IntegrationClient(settings=settings or current_settings())
    try:
        yield client
    finally:
        client.close()
