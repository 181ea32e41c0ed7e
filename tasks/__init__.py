"""Celery task shells, one module per job family; imported by the Celery app."""

from tasks import maintenance

__all__ = ["maintenance"]
