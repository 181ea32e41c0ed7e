"""The Celery application: ``celery -A integration_service.celery_app worker``."""

from __future__ import annotations

from celery import Celery, signals

from integration_service.queues import declare_topology

app = Celery("integration_service")
app.config_from_object("celeryconfig")
# Job modules live in tasks/ (thin shells over integration_service functions).
app.conf.imports = ("tasks",)


@signals.worker_init.connect
def _declare_topology(sender: object = None, **_: object) -> None:
    # Before consumers start: the dead-letter exchange must exist before any job queue
    # can dead-letter into it.
    with app.connection_for_write() as connection:
        declare_topology(connection)
