"""Shared pieces of the end-to-end benchmarks: a whole private system, fast provisioning.

Every benchmark builds the same throwaway world the end-to-end tests use (scratch
database migrated by Alembic, private RabbitMQ vhost, Redis db 12, emulator subprocess,
real `celery worker` processes) and tears all of it down, even on failure.
"""

from __future__ import annotations

import os
import resource
import statistics
import tempfile
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

from integration_service.emulator.testing import EmulatorProcess
from integration_service.emulator.world.client_helper import random_phone
from tests.support.database import migrate, scratch_database
from tests.support.rabbitmq import private_vhost
from tests.support.system import SystemUnderTest

# Not the end-to-end tests' db 11: SystemUnderTest flushes its Redis db on start and close,
# so a benchmark and a test run sharing one db would wipe each other's leases.
BENCH_REDIS_URL = "redis://127.0.0.1:6379/12"


def machine_load() -> str:
    """The 1-minute load average: other work on the 2 cores shows in every figure."""
    return f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores"


def percentile(samples: list[float], fraction: float) -> float:
    ordered = sorted(samples)
    if not ordered:
        return float("nan")
    index = min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))
    return ordered[index]


def describe_ms(samples: list[float]) -> str:
    return (
        f"p50 {percentile(samples, 0.5) * 1000:.0f} ms, "
        f"p95 {percentile(samples, 0.95) * 1000:.0f} ms, "
        f"p99 {percentile(samples, 0.99) * 1000:.0f} ms, "
        f"mean {statistics.fmean(samples) * 1000:.0f} ms (n={len(samples)})"
    )


def rss_kib(pid: int) -> int:
    """Resident set size of a process, from /proc (KiB)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for pid {pid}")


def raise_open_file_limit() -> None:
    """A thousand warm clients mean a thousand sockets in one process."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = min(hard, 65536)
    if soft < wanted:
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))


@contextmanager
def bench_system(overrides: dict[str, str] | None = None) -> Iterator[SystemUnderTest]:
    """Scratch database + private vhost + emulator + SystemUnderTest, all removed after."""
    raise_open_file_limit()
    with ExitStack() as stack:
        state_dir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-")))
        database_url = stack.enter_context(scratch_database("is_bench"))
        migrate(database_url)
        broker_url = stack.enter_context(private_vhost())
        emulator = stack.enter_context(EmulatorProcess(state_dir / "emulator"))
        system = SystemUnderTest(
            database_url=database_url,
            broker_url=broker_url,
            state_dir=state_dir,
            emulator=emulator,
            overrides={"REDIS_URL": BENCH_REDIS_URL, **(overrides or {})},
        )
        stack.callback(system.close)
        yield system


def create_recipients(system: SystemUnderTest, count: int) -> list[str]:
    """Plain users to send to (peers as @username)."""
    stamp = os.urandom(3).hex()
    names = []
    for index in range(count):
        username = f"rcpt{stamp}x{index}"
        system.control.create_user("+" + random_phone(), "Rcpt", username=username)
        names.append(f"@{username}")
    return names
