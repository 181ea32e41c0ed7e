"""Health checks against the real local services, and with one component broken."""

from __future__ import annotations

import time
from collections.abc import Iterator
from types import SimpleNamespace

import pytest
import redis
from sqlalchemy.engine import Engine

from integration_service.observability.health import HealthReport, run_checks, run_liveness
from integration_service.runtime.loop_thread import LoopThread
from integration_service.settings import Settings, load_settings
from tests.support.openbao import OpenBaoDevServer, free_port

BROKER_PASSWORD = "br0ker-secret-pw"


def assert_only_failing(report: HealthReport, failing: str) -> None:
    assert not report.ok
    by_name = {check.name: check for check in report.checks}
    assert not by_name[failing].ok
    assert by_name[failing].detail, "a failing check must say why"
    others = {name: check.ok for name, check in by_name.items() if name != failing}
    assert all(others.values()), others


@pytest.fixture
def loop_thread() -> Iterator[LoopThread]:
    loop = LoopThread(name="health-test-loop")
    loop.start()
    yield loop
    loop.stop()


@pytest.fixture
def runtime_like(loop_thread: LoopThread, engine: Engine) -> Iterator[SimpleNamespace]:
    """The three things run_checks reads from a SessionRuntime: loop, engine, redis."""
    client = redis.Redis.from_url("redis://127.0.0.1:6379/0")
    yield SimpleNamespace(loop=loop_thread, engine=engine, redis=client)
    client.close()


def test_all_real_services_are_ready(settings: Settings) -> None:
    report = run_checks(settings)
    assert report.ok, report.to_dict()
    assert [check.name for check in report.checks] == ["broker", "redis", "postgres"]
    for check in report.checks:
        assert check.latency_ms > 0
    body = report.to_dict()
    assert body["status"] == "ok"
    assert body["checks"]["postgres"]["detail"] == "SELECT 1 answered"


def test_with_a_runtime_the_loop_and_its_connections_are_checked(
    settings: Settings, runtime_like: SimpleNamespace
) -> None:
    report = run_checks(settings, runtime=runtime_like)
    assert report.ok, report.to_dict()
    loop_check = report.get("loop")
    assert loop_check is not None and loop_check.detail == "no-op coroutine round trip"
    postgres = report.get("postgres")
    assert postgres is not None and "worker pool" in postgres.detail
    assert run_liveness(runtime=runtime_like).ok


@pytest.mark.parametrize(
    ("component", "variable", "url"),
    [
        ("redis", "redis_url", "redis://127.0.0.1:{port}/0"),
        ("broker", "broker_url", "amqp://guest:" + BROKER_PASSWORD + "@127.0.0.1:{port}//"),
        ("postgres", "database_url", "postgresql+psycopg://postgres@127.0.0.1:{port}/x"),
    ],
)
def test_a_closed_port_fails_only_its_check(
    settings: Settings, component: str, variable: str, url: str
) -> None:
    overrides = {"database_url": settings.database_url, variable: url.format(port=free_port())}
    broken = load_settings(**overrides)
    started = time.monotonic()
    report = run_checks(broken, timeout=2.0)
    assert time.monotonic() - started < 4.0, "checks must run in parallel within the timeout"
    assert_only_failing(report, component)
    assert BROKER_PASSWORD not in str(report.to_dict())


def test_a_stopped_loop_fails_liveness_and_readiness(
    settings: Settings, runtime_like: SimpleNamespace
) -> None:
    runtime_like.loop.stop()
    assert not run_liveness(runtime=runtime_like).ok
    report = run_checks(settings, runtime=runtime_like)
    assert_only_failing(report, "loop")
    loop_check = report.get("loop")
    assert loop_check is not None and "not running" in loop_check.detail


def test_liveness_without_a_runtime_is_the_process_answering() -> None:
    report = run_liveness()
    assert report.ok and [check.name for check in report.checks] == ["process"]


def test_vault_is_checked_only_with_the_vault_cipher(settings: Settings) -> None:
    with OpenBaoDevServer() as bao:
        vault_settings = load_settings(
            database_url=settings.database_url, session_cipher="vault", vault_addr=bao.addr
        )
        report = run_checks(vault_settings)
        assert report.ok, report.to_dict()
        vault = report.get("vault")
        assert vault is not None and vault.detail == "sys/health: active"
        assert run_checks(settings).get("vault") is None

        bao.request("PUT", "sys/seal")
        sealed = run_checks(vault_settings)
        assert_only_failing(sealed, "vault")
        vault = sealed.get("vault")
        assert vault is not None and "sealed" in vault.detail
        assert bao.root_token not in str(sealed.to_dict())

    closed = load_settings(
        database_url=settings.database_url,
        session_cipher="vault",
        vault_addr=f"http://127.0.0.1:{free_port()}",
    )
    assert_only_failing(run_checks(closed), "vault")
