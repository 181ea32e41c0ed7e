"""One JSON log pipeline for structlog and stdlib loggers alike.

Celery, kombu, Telethon and SQLAlchemy log through stdlib ``logging``; our code logs
through structlog. Both end in the same ``ProcessorFormatter`` on the root handler, so
every line gets the same timestamp, level, logger name, job context and, above all, the
same secret scrubbing (``scrubbing.scrub_secrets`` runs last before rendering).

Job context (tenant_id, app_id, task_id) lives in ``structlog.contextvars``: Celery runs a
task's prerun hook, body and postrun hook on one pool thread, and every thread has its own
context, so concurrent jobs never see each other's ids.
"""

from __future__ import annotations

import logging
import sys
from typing import Any, TextIO

import structlog
from structlog.typing import EventDict, Processor, WrappedLogger

from integration_service.observability.scrubbing import scrub_secrets
from integration_service.tracing.propagation import current_span_ids

JOB_CONTEXT_KEYS = ("tenant_id", "app_id", "task_id")

# Libraries whose handlers we take over so their lines reach the root handler only once.
ROUTED_LOGGERS = (
    "celery",
    "celery.task",
    "celery.worker",
    "celery.app.trace",
    "celery.redirected",
    "kombu",
    "amqp",
    "telethon",
    "sqlalchemy",
    "alembic",
    "py.warnings",
)
# SQLAlchemy's engine logger prints statements and their parameters at INFO.
_QUIET_UNLESS_DEBUG = {"sqlalchemy": logging.WARNING}

_worker_name: str | None = None


def set_worker_name(worker: str | None) -> None:
    """Stamp ``worker=<name>`` on every line from now on (every thread, not one context)."""
    global _worker_name
    _worker_name = worker


def add_worker(_logger: WrappedLogger, _method: str, event_dict: EventDict) -> EventDict:
    if _worker_name is not None:
        event_dict.setdefault("worker", _worker_name)
    return event_dict


def add_trace_ids(_logger: WrappedLogger, _method: str, event_dict: EventDict) -> EventDict:
    """``trace_id`` (and ``span_id``) of the span the line is logged in: null outside any,
    so every line has the key and a search by trace id finds a request in every process."""
    trace_id, span_id = current_span_ids()
    event_dict.setdefault("trace_id", trace_id)
    if span_id is not None:
        event_dict.setdefault("span_id", span_id)
    return event_dict


_LEADING_KEYS = ("timestamp", "level", "logger", "event")


def order_keys(_logger: WrappedLogger, _method: str, event_dict: EventDict) -> EventDict:
    """Timestamp, level, logger and event first: lines read left to right by humans too."""
    ordered = {key: event_dict[key] for key in _LEADING_KEYS if key in event_dict}
    ordered.update(event_dict)
    return ordered


def _shared_processors() -> list[Processor]:
    """What both structlog calls and stdlib records go through before formatting."""
    return [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.stdlib.PositionalArgumentsFormatter(),
        structlog.processors.TimeStamper(fmt="iso", utc=True, key="timestamp"),
        add_worker,
        add_trace_ids,
    ]


def _formatter() -> structlog.stdlib.ProcessorFormatter:
    return structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=_shared_processors(),
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.StackInfoRenderer(),
            structlog.processors.format_exc_info,
            # Last before rendering: nothing added after this point is unscrubbed.
            scrub_secrets,
            order_keys,
            structlog.processors.JSONRenderer(default=str, ensure_ascii=False),
        ],
    )


class _PipelineHandler(logging.StreamHandler[TextIO]):
    """The one root handler this module installs (recognised on reconfiguration)."""


def configure_logging(
    level: str, *, worker: str | None = None, stream: TextIO | None = None
) -> None:
    """Route every logger of the process into one scrubbed JSON-lines stream.

    Safe to call again (the worker calls it once Celery sets logging up and again when it
    knows its hostname): handlers are replaced, never stacked.
    """
    numeric_level = logging.getLevelName(level.upper())
    if not isinstance(numeric_level, int):
        raise ValueError(f"unknown log level {level!r}")
    if worker is not None:
        set_worker_name(worker)

    structlog.configure(
        processors=[
            structlog.stdlib.filter_by_level,
            *_shared_processors(),
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        # Not cached: a cached logger would keep the first configuration forever, and the
        # worker reconfigures once it knows its name. Jobs log a few lines; the cost is noise.
        cache_logger_on_first_use=False,
    )

    handler = _PipelineHandler(stream if stream is not None else sys.stderr)
    handler.setFormatter(_formatter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
        if isinstance(old, _PipelineHandler):
            old.close()
    root.addHandler(handler)
    root.setLevel(numeric_level)

    for name in ROUTED_LOGGERS:
        library_logger = logging.getLogger(name)
        for old in list(library_logger.handlers):
            library_logger.removeHandler(old)
        library_logger.propagate = True
        quiet = _QUIET_UNLESS_DEBUG.get(name)
        if quiet is not None and numeric_level > logging.DEBUG:
            library_logger.setLevel(max(numeric_level, quiet))
        else:
            library_logger.setLevel(logging.NOTSET)
    logging.captureWarnings(True)


def bind_job_context(
    *,
    tenant_id: Any = None,
    app_id: Any = None,
    task_id: Any = None,
    **extra: Any,
) -> None:
    """Put a job's identity on every line logged by this thread until ``clear_job_context``."""
    ids = {"tenant_id": tenant_id, "app_id": app_id, "task_id": task_id}
    context = {key: str(value) for key, value in ids.items() if value is not None}
    context.update({key: value for key, value in extra.items() if value is not None})
    structlog.contextvars.bind_contextvars(**context)


def clear_job_context() -> None:
    """Forget the finished job's context, so the pool thread's next job starts clean."""
    structlog.contextvars.clear_contextvars()
