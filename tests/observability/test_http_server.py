"""The metrics/health endpoint over real HTTP."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest
from prometheus_client import CollectorRegistry, Counter

from integration_service.observability.http_server import ObservabilityServer
from integration_service.settings import Settings, load_settings
from tests.support.openbao import free_port

BROKER_PASSWORD = "http-test-broker-pw"
VAULT_TOKEN = "hvs.HttpTestTokenThatMustNotLeak0123"


def get(url: str) -> tuple[int, str, str]:
    """Status, content type and body, for 2xx and error statuses alike."""
    try:
        with urllib.request.urlopen(url, timeout=10) as response:  # noqa: S310 - loopback
            return response.status, response.headers["Content-Type"], response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.headers["Content-Type"], error.read().decode()


def get_json(url: str) -> tuple[int, dict[str, Any]]:
    status, content_type, body = get(url)
    assert content_type == "application/json"
    return status, json.loads(body)


@pytest.fixture
def server(settings: Settings) -> Iterator[ObservabilityServer]:
    with ObservabilityServer(settings, port=0) as running:
        yield running


def test_port_zero_picks_a_free_port_and_url_is_readable(server: ObservabilityServer) -> None:
    assert server.port > 0
    assert server.url == f"http://127.0.0.1:{server.port}"


def test_metrics_serves_the_default_registry(server: ObservabilityServer) -> None:
    get_json(f"{server.url}/health/ready")  # counts session_health_checks_total
    status, content_type, body = get(f"{server.url}/metrics")
    assert status == 200
    assert content_type.startswith("text/plain")
    assert 'session_health_checks_total{component="redis",result="ok"}' in body
    assert "python_info" in body  # the default registry's platform collector


def test_a_private_registry_can_be_served(settings: Settings) -> None:
    registry = CollectorRegistry()
    Counter("observability_test_total", "A counter only this test knows.", registry=registry).inc(3)
    with ObservabilityServer(settings, registry=registry) as running:
        _, _, body = get(f"{running.url}/metrics")
    assert "observability_test_total 3.0" in body
    assert "session_health_checks_total" not in body


def test_ready_and_health_report_every_check(server: ObservabilityServer) -> None:
    for path in ("/health/ready", "/health", "/health/ready/"):
        status, body = get_json(f"{server.url}{path}")
        assert status == 200, body
        assert body["status"] == "ok"
        assert set(body["checks"]) == {"broker", "redis", "postgres"}
        for check in body["checks"].values():
            assert check["ok"] is True and check["latency_ms"] >= 0


def test_live_answers_without_dependencies(server: ObservabilityServer) -> None:
    status, body = get_json(f"{server.url}/health/live")
    assert status == 200 and body["checks"]["process"]["ok"] is True


def test_unknown_path_is_404(server: ObservabilityServer) -> None:
    status, body = get_json(f"{server.url}/nope")
    assert status == 404 and body == {"error": "not found"}


def test_broken_dependency_is_503_without_secrets(settings: Settings) -> None:
    broken = load_settings(
        database_url=settings.database_url,
        broker_url=f"amqp://guest:{BROKER_PASSWORD}@127.0.0.1:{free_port()}//",
        vault_token=VAULT_TOKEN,
    )
    with ObservabilityServer(broken, check_timeout=1.0) as running:
        status, body = get_json(f"{running.url}/health/ready")
        live_status, _ = get_json(f"{running.url}/health/live")
        raw = get(f"{running.url}/health")[2] + get(f"{running.url}/metrics")[2]
    assert status == 503 and body["status"] == "failing"
    assert body["checks"]["broker"]["ok"] is False and body["checks"]["broker"]["detail"]
    assert body["checks"]["redis"]["ok"] is True
    assert live_status == 200, "a broker outage makes a worker unready, not dead"
    assert BROKER_PASSWORD not in raw and VAULT_TOKEN not in raw


def test_stop_releases_the_port(settings: Settings) -> None:
    running = ObservabilityServer(settings).start()
    url = running.url
    running.stop()
    with pytest.raises(urllib.error.URLError):
        urllib.request.urlopen(f"{url}/health/live", timeout=2)  # noqa: S310 - loopback
    running.stop()  # a second stop is harmless
