"""Celery task shells, one module per job family; imported by the Celery app."""

from tasks import maintenance, messages, validation

__all__ = ["maintenance", "messages", "validation"]
