"""Stopping and starting this machine's own services for fault cases (loopback only)."""

from __future__ import annotations

import subprocess
from pathlib import Path

from tests.support.processes import wait_for


def _run(*args: str, timeout: float = 120) -> None:
    subprocess.run(list(args), check=True, capture_output=True, timeout=timeout)


def _ok(*args: str) -> bool:
    return subprocess.run(list(args), capture_output=True, timeout=30).returncode == 0


def rabbitmq_stop() -> None:
    _run("rabbitmqctl", "-q", "stop_app")


def rabbitmq_start() -> None:
    _run("rabbitmqctl", "-q", "start_app")
    wait_for(lambda: _ok("rabbitmq-diagnostics", "-q", "check_port_connectivity"), timeout=120)


def redis_stop() -> None:
    subprocess.run(["redis-cli", "shutdown", "nosave"], capture_output=True, timeout=30)
    wait_for(lambda: not _ok("redis-cli", "ping"), timeout=30, what="redis down")


def redis_start() -> None:
    Path("/var/lib/redis").mkdir(parents=True, exist_ok=True)
    Path("/var/log/redis").mkdir(parents=True, exist_ok=True)
    _run(
        "redis-server",
        "--daemonize",
        "yes",
        "--bind",
        "127.0.0.1",
        "-::1",
        "--port",
        "6379",
        "--save",
        "",
        "--appendonly",
        "no",
        "--dir",
        "/var/lib/redis",
        "--logfile",
        "/var/log/redis/ci.log",
    )
    wait_for(lambda: _ok("redis-cli", "ping"), timeout=30, what="redis up")


def _pg_version() -> str:
    return sorted(p.name for p in Path("/etc/postgresql").iterdir())[-1]


def postgres_stop() -> None:
    _run("pg_ctlcluster", "--skip-systemctl-redirect", _pg_version(), "main", "stop", "-m", "fast")


def postgres_start() -> None:
    _run("pg_ctlcluster", "--skip-systemctl-redirect", _pg_version(), "main", "start")
    wait_for(lambda: _ok("pg_isready", "-h", "127.0.0.1", "-q"), timeout=60, what="pg up")
