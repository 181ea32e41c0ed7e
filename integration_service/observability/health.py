"""Health of a worker's dependencies: broker, Redis, PostgreSQL, Vault and the loop thread.

Readiness asks "can this worker do a job now?": every dependency answers within the
timeout. Liveness asks only "is the process responsive?": the loop thread that hosts every
Telethon client turns a no-op coroutine around. A broker outage makes a worker unready,
never dead: restarting it would not bring the broker back.

Checks run in parallel threads, each bounded by the timeout, so one hung dependency costs
one timeout, not the sum. Details name the failure, never a URL's password or a token.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import redis
from kombu import Connection
from prometheus_client import Counter
from sqlalchemy import create_engine, text
from sqlalchemy.engine import Engine
from sqlalchemy.pool import NullPool

from integration_service.crypto.cipher import CipherUnavailable
from integration_service.dependencies import address_of, known_reason
from integration_service.observability.scrubbing import scrub_text
from integration_service.runtime.loop_thread import LoopNotRunning
from integration_service.settings import Settings, SettingsError

HEALTH_CHECKS = Counter(
    "session_health_checks_total",
    "Health checks run, by component and result.",
    ["component", "result"],
)

# sys/health: 200 active, 429 standby, 472/473 performance/DR standby all serve requests.
_VAULT_SERVING = {200: "active", 429: "standby", 472: "dr standby", 473: "performance standby"}
_VAULT_DOWN = {501: "not initialised", 503: "sealed"}


class LoopLike(Protocol):
    def is_alive(self) -> bool: ...

    def run(self, coro: Any, timeout: float) -> Any: ...


@dataclass(frozen=True)
class CheckResult:
    """One component's answer."""

    name: str
    ok: bool
    latency_ms: float
    detail: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "ok": self.ok,
            "latency_ms": round(self.latency_ms, 2),
            "detail": self.detail,
        }


@dataclass(frozen=True)
class HealthReport:
    """Every component's answer; ready only when all are ok."""

    checks: tuple[CheckResult, ...] = field(default_factory=tuple)

    @property
    def ok(self) -> bool:
        return all(check.ok for check in self.checks)

    def get(self, name: str) -> CheckResult | None:
        return next((check for check in self.checks if check.name == name), None)

    def to_dict(self) -> dict[str, Any]:
        return {
            "status": "ok" if self.ok else "failing",
            "checks": {check.name: check.to_dict() for check in self.checks},
        }


def _describe(error: BaseException, address: str | None = None, timeout: float = 0.0) -> str:
    """Why a check failed: ``unreachable at 127.0.0.1:5672//: connection refused``.

    The address never carries credentials; a failure of another kind (Vault sealed, the
    loop thread stopped) keeps the error's type and first line, scrubbed.
    """
    if address is not None:
        reason = known_reason(error, timeout)
        if reason is not None:
            return f"unreachable at {address}: {reason}"
    # The first line names the failure; drivers append hints and links after it.
    first_line = (str(error).strip().splitlines() or [""])[0]
    text = scrub_text(f"{type(error).__name__}: {first_line}")[:300]
    return text if address is None else f"{address}: {text}"


def check_broker(settings: Settings, timeout: float) -> str:
    with Connection(settings.broker_url, connect_timeout=timeout) as connection:
        # One attempt: a probe reports the outage, it does not wait for it to end.
        # (kombu documents the timeout as int seconds; it only adds it to the clock.)
        connection.ensure_connection(max_retries=0, timeout=timeout)  # type: ignore[arg-type]
        with connection.channel():  # closed on leaving the block
            return "connection and channel opened"


def check_redis(settings: Settings, timeout: float, client: redis.Redis | None) -> str:
    if client is not None:
        client.ping()
        return "PING answered (worker connection)"
    own = redis.Redis.from_url(
        settings.redis_url, socket_timeout=timeout, socket_connect_timeout=timeout
    )
    try:
        own.ping()
        return "PING answered"
    finally:
        own.close()


def check_postgres(settings: Settings, timeout: float, engine: Engine | None) -> str:
    if engine is not None:
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
        return "SELECT 1 answered (worker pool)"
    # Short-lived and unpooled: a probe must not keep connections open between calls.
    own = create_engine(
        settings.database_url,
        poolclass=NullPool,
        connect_args={"connect_timeout": max(2, int(timeout + 0.999))},
    )
    try:
        with own.connect() as connection:
            connection.execute(text("SELECT 1"))
        return "SELECT 1 answered"
    finally:
        own.dispose()


def check_vault(settings: Settings, timeout: float) -> str:
    url = settings.vault_addr.rstrip("/") + "/v1/sys/health"
    if not url.startswith(("http://", "https://")):
        raise SettingsError("VAULT_ADDR must be an http(s) URL")
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 - checked
            status = int(response.status)
    except urllib.error.HTTPError as error:
        status = int(error.code)
    if status in _VAULT_SERVING:
        return f"sys/health: {_VAULT_SERVING[status]}"
    raise CipherUnavailable(
        f"sys/health answered {status} ({_VAULT_DOWN.get(status, 'unexpected')})"
    )


async def _noop() -> bool:
    await asyncio.sleep(0)
    return True


def check_loop(loop: LoopLike, timeout: float) -> str:
    if not loop.is_alive():
        raise LoopNotRunning("loop thread is not running")
    loop.run(_noop(), timeout)
    return "no-op coroutine round trip"


def _timed(name: str, check: Callable[[], str], address: str | None, timeout: float) -> CheckResult:
    begin = time.perf_counter()
    try:
        detail = check()
    except Exception as error:  # noqa: BLE001 - any failure is this check failing
        elapsed = (time.perf_counter() - begin) * 1000
        return CheckResult(name, False, elapsed, _describe(error, address, timeout))
    return CheckResult(name, True, (time.perf_counter() - begin) * 1000, detail)


def _run_parallel(
    checks: dict[str, Callable[[], str]],
    timeout: float,
    addresses: dict[str, str] | None = None,
) -> HealthReport:
    """``addresses``: where each dependency check looks (no credentials), for its detail."""
    where = addresses or {}
    executor = concurrent.futures.ThreadPoolExecutor(
        max_workers=max(1, len(checks)), thread_name_prefix="health-check"
    )
    futures = {
        name: executor.submit(_timed, name, check, where.get(name), timeout)
        for name, check in checks.items()
    }
    started = time.perf_counter()
    deadline = started + timeout
    results = []
    for name, future in futures.items():
        try:
            results.append(future.result(timeout=max(0.0, deadline - time.perf_counter())))
        except concurrent.futures.TimeoutError:
            latency = (time.perf_counter() - started) * 1000
            silent = f"no answer within {timeout:g}s"
            detail = f"unreachable at {where[name]}: {silent}" if name in where else silent
            results.append(CheckResult(name, False, latency, detail))
    # A hung check keeps its thread until its own socket timeout; the report does not wait.
    executor.shutdown(wait=False, cancel_futures=True)
    for result in results:
        HEALTH_CHECKS.labels(result.name, "ok" if result.ok else "failed").inc()
    return HealthReport(tuple(results))


def run_checks(settings: Settings, *, runtime: Any = None, timeout: float = 2.0) -> HealthReport:
    """Readiness: every dependency this worker needs, checked in parallel."""
    engine = getattr(runtime, "engine", None)
    redis_client = getattr(runtime, "redis", None)
    checks: dict[str, Callable[[], str]] = {
        "broker": lambda: check_broker(settings, timeout),
        "redis": lambda: check_redis(settings, timeout, redis_client),
        "postgres": lambda: check_postgres(settings, timeout, engine),
    }
    if settings.session_cipher == "vault":
        checks["vault"] = lambda: check_vault(settings, timeout)
    if runtime is not None:
        checks["loop"] = lambda: check_loop(runtime.loop, timeout)
    addresses = {
        "broker": address_of(settings.broker_url),
        "redis": address_of(settings.redis_url),
        "postgres": address_of(settings.database_url),
        "vault": address_of(settings.vault_addr),
    }
    return _run_parallel(checks, timeout, addresses)


def run_liveness(*, runtime: Any = None, timeout: float = 2.0) -> HealthReport:
    """Liveness: the process answers and, in a worker, its loop thread turns around."""
    checks: dict[str, Callable[[], str]] = {"process": lambda: "answering"}
    if runtime is not None:
        checks["loop"] = lambda: check_loop(runtime.loop, timeout)
    return _run_parallel(checks, timeout)
