"""What a command needs to reach the system: settings and the producer API.

Every job goes through ``IntegrationClient``, the same API other services use, so the
CLI validates and enqueues exactly as they do. Its Celery app is built per invocation
from the settings of that invocation: the module-level ``celery_app`` reads its broker
and result backend once per process, which would pin an in-process caller (tests, a
notebook) to whichever environment came first.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from celery import Celery

from integration_service.client import IntegrationClient
from integration_service.settings import Settings, get_settings


def current_settings() -> Settings:
    """The settings from the environment (a SettingsError names the bad variable)."""
    return get_settings()


def producer_app(settings: Settings) -> Celery:
    """A Celery app that only publishes and reads results, wired to ``settings``."""
    app = Celery("integration-service-cli", set_as_current=False)
    app.config_from_object("celeryconfig")
    app.conf.broker_url = settings.broker_url
    app.conf.result_backend = settings.redis_url
    return app


@contextmanager
def open_client(settings: Settings | None = None) -> Iterator[IntegrationClient]:
    """The producer API for one command; closes its connections afterwards."""
    resolved = settings or current_settings()
    app = producer_app(resolved)
    client = IntegrationClient(settings=resolved, app=app)
    try:
        yield client
    finally:
        client.close()
        app.close()
