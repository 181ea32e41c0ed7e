"""Worker and beat lifecycle: topology, own queues, runtime, logging, metrics, health.

Worker-lifetime resources are created at worker start and closed at shutdown, never at
import time (importing the Celery app in a producer starts nothing).
"""

from __future__ import annotations

import secrets
import threading
from typing import Any

import structlog
from celery import Celery, signals
from celery._state import (  # type: ignore[attr-defined]  # private: celery-types has no stub
    _set_task_join_will_block,
)

from integration_service.jobs.carried_headers import request_header
from integration_service.observability import (
    ObservabilityServer,
    bind_job_context,
    clear_job_context,
    configure_logging,
    register_queue_depth_collector,
    register_runtime_collector,
    set_worker_name,
)
from integration_service.queues import declare_topology
from integration_service.runtime import current
from integration_service.runtime.forwarding import worker_queues
from integration_service.runtime.session_runtime import SessionRuntime
from integration_service.settings import Settings, get_settings
from integration_service.tracing import configure_tracing, shutdown_tracing
from integration_service.tracing.jobs import JobSpan, connect_publishing, start_job_span

logger = structlog.get_logger(__name__)
_servers: list[ObservabilityServer] = []
_instances: dict[str, str] = {}
# The running job's span, per pool thread (prerun, body and postrun share one thread).
_job_spans = threading.local()


def instance_id(hostname: str) -> str:
    """This process's identity for leases and its own queues: hostname plus a nonce.

    Two processes started with one hostname (a restart racing its predecessor, a copied
    container) must never share a lease identity: one could renew or release the other's.
    """
    if hostname not in _instances:
        _instances[hostname] = f"{hostname}.{secrets.token_hex(3)}"
    return _instances[hostname]


def _start_observability(settings: Settings, runtime: SessionRuntime | None) -> None:
    # METRICS_PORT=0 disables the endpoint (0 would otherwise pick a random port).
    ports = {p for p in (settings.metrics_port, settings.health_port) if p}
    for port in sorted(ports):
        server = ObservabilityServer(settings, runtime, host=settings.metrics_host, port=port)
        _servers.append(server.start())
        logger.info("observability_listening", url=server.url)


def _stop_observability() -> None:
    while _servers:
        _servers.pop().stop()


def connect(app: Celery) -> None:
    """Attach the hooks to ``app``'s signals (called once by celery_app)."""
    # Retries, forwards and beat's jobs carry the trace of what published them.
    connect_publishing()

    # celeryd_init: before the worker's privilege check, whose warning would otherwise be
    # printed as plain text.
    @signals.celeryd_init.connect(weak=False)
    @signals.setup_logging.connect(weak=False)
    def _logging(**_: Any) -> None:
        # Connecting this signal stops Celery from configuring logging itself: every
        # line of worker and beat goes through the JSON pipeline and its scrubber.
        configure_logging(get_settings().log_level)

    @signals.worker_ready.connect(weak=False)
    def _silent_shutdown_notice(sender: Any = None, **_: Any) -> None:
        # Celery's SIGTERM handler prints "worker: Warm shutdown (MainProcess)" as plain
        # text: reinstall it without the print (signal handlers belong to the main thread);
        # worker_shutting_down below logs the same as JSON.
        if sender is not None and threading.current_thread() is threading.main_thread():
            from celery.apps.worker import (  # type: ignore[attr-defined]  # not in celery-types
                install_worker_term_handler,
            )

            install_worker_term_handler(sender.controller, verbose=False)

    @signals.worker_shutting_down.connect(weak=False)
    def _shutting_down(sig: str = "", how: str = "", **_: Any) -> None:
        logger.info("worker_shutting_down", signal=sig, how=how)

    @signals.celeryd_after_setup.connect(weak=False)
    def _consume_own_queues(sender: str, instance: Any, **_: Any) -> None:
        # Before the consumer starts: the worker's own queues, for every job class,
        # so jobs forwarded to the owner of a session always find a consumer.
        ttl = get_settings().worker_queue_message_ttl
        for queue in worker_queues(instance_id(sender), ttl):
            instance.app.amqp.queues.select_add(queue)

    @signals.worker_init.connect(weak=False)
    def _start(sender: Any = None, **_: Any) -> None:
        settings = get_settings()
        # worker_init fires before Celery's setup_logging: configure here as well, so
        # the runtime's own start-up lines are JSON and scrubbed too.
        configure_logging(settings.log_level)
        configure_tracing(settings, "worker")
        # Jobs here never wait on other jobs' results: tell Celery so, and its Redis result
        # backend stops subscribing to every republished job (a retry or a forward), which
        # would fail the publish, and so reject the job, while Redis is down.
        _set_task_join_will_block(True)
        worker_id = instance_id(sender.hostname)
        set_worker_name(worker_id)
        with app.connection_for_write() as connection:
            declare_topology(connection)
        runtime = SessionRuntime(settings, worker_id=worker_id)
        runtime.start()
        current.install(runtime)
        register_runtime_collector(runtime)
        register_queue_depth_collector(settings.broker_url, settings.redis_url)
        _start_observability(settings, runtime)

    @signals.worker_shutdown.connect(weak=False)
    def _stop(**_: Any) -> None:
        _stop_observability()
        runtime = current.uninstall()
        if runtime is not None:
            # Releases every lease so other workers take over without waiting out a TTL.
            runtime.stop()
        shutdown_tracing()

    @signals.task_prerun.connect(weak=False)
    def _bind(
        task_id: str | None = None,
        task: Any = None,
        kwargs: dict[str, Any] | None = None,
        **_: Any,
    ) -> None:
        kwargs = kwargs or {}
        ids = {"tenant_id": kwargs.get("tenant_id"), "app_id": kwargs.get("app_id")}
        bind_job_context(**ids, task_id=task_id)
        if task is not None:
            carrier = {
                name: request_header(task.request, name) for name in ("traceparent", "tracestate")
            }
            attributes = {key: str(value) for key, value in ids.items() if value is not None}
            if task_id is not None:
                attributes["celery.task_id"] = task_id
            _job_spans.current = start_job_span(task.name, carrier, attributes)

    @signals.task_failure.connect(weak=False)
    def _failed(exception: BaseException | None = None, **_: Any) -> None:
        running: JobSpan | None = getattr(_job_spans, "current", None)
        if running is not None and exception is not None:
            running.failed(exception)

    @signals.task_postrun.connect(weak=False)
    def _unbind(state: str | None = None, **_: Any) -> None:
        clear_job_context()
        running: JobSpan | None = getattr(_job_spans, "current", None)
        if running is not None:
            _job_spans.current = None
            running.end(state)

    @signals.beat_init.connect(weak=False)
    def _beat_start(**_: Any) -> None:
        set_worker_name("beat")
        configure_tracing(get_settings(), "beat")
        _start_observability(get_settings(), None)
