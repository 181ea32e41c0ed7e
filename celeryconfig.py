"""Celery configuration, built from the one settings object.

Loaded by ``integration_service.celery_app`` with ``config_from_object``; every value is
derived from ``integration_service.settings`` so there is one place to configure.
"""

from __future__ import annotations

from typing import Any

from integration_service.queues import HIGH, consumed_queues, route_for
from integration_service.settings import get_settings

_settings = get_settings()


def _router(name: str, args: Any, kwargs: Any, options: Any, task: Any = None, **kw: Any) -> Any:
    return route_for(name)


broker_url = _settings.broker_url
# Results live in Redis only as a convenience for callers waiting on a handle; the
# database (outbox, session rows) is the source of truth for outcomes.
result_backend = _settings.redis_url
result_expires = 24 * 3600
# Arguments are not copied into results: they may hold phone numbers.
result_extended = False

task_queues = consumed_queues()
task_default_queue = HIGH
task_default_exchange = "tasks"
task_default_exchange_type = "topic"
task_routes = (_router,)
task_create_missing_queues = False

# Publisher confirms: a publish returns only once the broker has the message.
broker_transport_options = {"confirm_publish": True}
broker_connection_retry_on_startup = True
task_publish_retry = True
task_publish_retry_policy = {
    "max_retries": 3,
    "interval_start": 0.2,
    "interval_step": 0.5,
    "interval_max": 2.0,
}

# At-least-once delivery, one message at a time per consumer.
task_acks_late = True
task_reject_on_worker_lost = True
task_acks_on_failure = True
task_acks_on_timeout = True
worker_prefetch_multiplier = 1
worker_detect_quorum_queues = True
# Undecodable messages are dead-lettered instead of acknowledged away.
worker_consumer = "integration_service.runtime.consumer:DeadLetteringConsumer"
# Countdowns (FloodWait retries, backoff) on quorum queues use RabbitMQ-native delayed
# delivery: a cascade of TTL queues dead-lettering into each other. Quorum level queues
# dead-letter at-least-once. Retries must not carry `x-death` headers (the broker would
# drop them as a dead-letter cycle): jobs/carried_headers.py.
broker_native_delayed_delivery_queue_type = "quorum"

# Periodic jobs; only the beat holding the leader lease sends them (beat/scheduler.py).
beat_scheduler = "integration_service.beat.scheduler:LeasedScheduler"
beat_max_loop_interval = 10
beat_schedule = {
    "validate-stale-sessions": {
        "task": "tasks.validation.sweep",
        "schedule": float(_settings.session_validation_interval),
        # A sweep that waited a whole interval in the queue is superseded by the next.
        "options": {"expires": float(_settings.session_validation_interval)},
    },
    "refresh-channels": {
        "task": "tasks.channels.sweep",
        # Checked every tenth of the interval, so no channel is much older than it.
        "schedule": max(1.0, _settings.channel_refresh_interval / 10),
        "options": {"expires": max(1.0, _settings.channel_refresh_interval / 10)},
    },
    "prune-job-journal": {
        "task": "tasks.maintenance.prune_job_journal",
        "schedule": 3600.0,
        "options": {"expires": 3600.0},
    },
    "prune-audit-trail": {
        "task": "tasks.maintenance.prune_audit",
        "schedule": 3600.0,
        "options": {"expires": 3600.0},
    },
    "prune-event-log": {
        "task": "tasks.maintenance.prune_events",
        "schedule": 3600.0,
        "options": {"expires": 3600.0},
    },
}

task_serializer = "json"
result_serializer = "json"
accept_content = ["json"]
# No STARTED state: it is written to the result backend before the job body runs, and
# a Redis outage at that moment would make Celery drop the job unrun.
task_track_started = False
task_send_sent_event = True
worker_send_task_events = True
worker_hijack_root_logger = False
enable_utc = True
timezone = "UTC"
