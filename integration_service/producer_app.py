"""The Celery app a producer publishes with: no worker hooks, bounded waits.

``integration_service.celery_app`` is the worker's app: it loads the runtime's hooks (and
with them the worker side). A producer needs only to publish and to read results, so
``IntegrationClient`` builds this one from its own settings: the same celeryconfig,
the broker and Redis of those settings, and every wait bounded by DEPENDENCY_TIMEOUT
(``dependencies.bounded_celery_config``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from integration_service.dependencies import bounded_celery_config

if TYPE_CHECKING:
    from celery import Celery

    from integration_service.settings import Settings


def producer_app(settings: Settings, name: str = "integration-service-producer") -> Celery:
    """A Celery app that only publishes and reads results, wired to ``settings``."""
    from celery import Celery

    from integration_service.tracing.jobs import connect_publishing

    # Every job published carries the publisher's trace (``traceparent`` header).
    connect_publishing()
    app = Celery(name, set_as_current=False)
    app.config_from_object("celeryconfig")
    # Item assignment is what attribute assignment on app.conf does (celery-types has the
    # settings' attributes as read-only properties).
    app.conf["broker_url"] = settings.broker_url
    app.conf["result_backend"] = settings.redis_url
    app.conf.update(bounded_celery_config(settings.dependency_timeout, app.conf))
    return app
