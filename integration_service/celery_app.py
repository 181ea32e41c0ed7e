"""The Celery application: ``celery -A integration_service.celery_app worker``."""

from __future__ import annotations

from celery import Celery

from integration_service.runtime import celery_hooks

# ServiceLoader: results keep a project error's class, code and attributes (jobs/results.py).
app = Celery("integration_service", loader="integration_service.jobs.results:ServiceLoader")
app.config_from_object("celeryconfig")
# Job modules live in tasks/ (thin shells over integration_service functions).
app.conf.imports = ("tasks",)
celery_hooks.connect(app)
