"""The Celery application: ``celery -A integration_service.celery_app worker``."""

from __future__ import annotations

from celery import Celery

from integration_service.runtime import celery_hooks

app = Celery("integration_service")
app.config_from_object("celeryconfig")
# Job modules live in tasks/ (thin shells over integration_service functions).
app.conf.imports = ("tasks",)
celery_hooks.connect(app)
