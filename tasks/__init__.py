"""Celery task shells, one module per job family; imported by the Celery app."""

from tasks import connect, maintenance, messages, reconnect, validation

__all__ = ["connect", "maintenance", "messages", "reconnect", "validation"]
