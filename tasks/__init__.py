"""Celery task shells, one module per job family; imported by the Celery app."""

from tasks import channels, connect, maintenance, messages, reconnect, validation

__all__ = ["channels", "connect", "maintenance", "messages", "reconnect", "validation"]
