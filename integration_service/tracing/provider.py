"""The process's tracer provider: exporting over OTLP/HTTP, or ids without recording."""

from __future__ import annotations

import os
import threading

from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF

from integration_service.settings import Settings

INSTRUMENTATION = "integration_service"

_lock = threading.Lock()
# Until configured (a library user, the CLI): spans get ids (so a publish still carries a
# traceparent and log lines a trace_id) but nothing is recorded or exported.
_provider: TracerProvider = TracerProvider(sampler=ALWAYS_OFF)
_configured = False


def configure_tracing(settings: Settings, role: str) -> TracerProvider:
    """Set this process's provider once: ``role`` names the process (api, worker, relay,
    webhooks, beat) in ``service.name`` unless OTEL_SERVICE_NAME says otherwise."""
    global _provider, _configured
    with _lock:
        if _configured:
            return _provider
        attributes = {"service.namespace": "integration-service"}
        if not os.environ.get("OTEL_SERVICE_NAME"):
            attributes["service.name"] = f"integration-service-{role}"
        resource = Resource.create(attributes)
        if settings.otel_exporter_otlp_endpoint:
            # Imported only when exporting: the exporter pulls in protobuf and requests.
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
            from opentelemetry.sdk.trace.export import BatchSpanProcessor

            # The sampler comes from OTEL_TRACES_SAMPLER (parent-based, always on, by
            # default); the exporter reads its endpoint, headers and timeout from the
            # standard OTEL_EXPORTER_OTLP_* variables itself.
            provider = TracerProvider(resource=resource)
            provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
        else:
            provider = TracerProvider(resource=resource, sampler=ALWAYS_OFF)
        _provider, _configured = provider, True
        return provider


def use_provider(provider: TracerProvider) -> None:
    """Install ``provider`` (tests: one with an in-memory exporter)."""
    global _provider, _configured
    with _lock:
        _provider, _configured = provider, True


def tracer() -> trace.Tracer:
    return _provider.get_tracer(INSTRUMENTATION)


def shutdown_tracing() -> None:
    """Export what is still buffered (bounded by the exporter's timeout); at process end."""
    with _lock:
        _provider.shutdown()
