"""Which processes the local system runs, with their commands, ports and environment."""

from __future__ import annotations

import os
import secrets
import sys
from dataclasses import dataclass, field
from pathlib import Path

from integration_service.settings import Settings

# --quiet: no plain-text start-up banner; every line a worker or beat writes is JSON.
CELERY = [sys.executable, "-m", "celery", "-A", "integration_service.celery_app", "--quiet"]
# Flower through the project's wrapper: JSON logs, credentials from the environment.
FLOWER = [sys.executable, "-m", "integration_service.observability.flower"]


@dataclass(frozen=True)
class Ports:
    emulator: int = 8443
    flower: int = 5555
    metrics_base: int = 9100
    api: int = 8000

    @property
    def worker_high(self) -> int:
        return self.metrics_base + 1

    @property
    def worker_bulk(self) -> int:
        return self.metrics_base + 2

    @property
    def beat(self) -> int:
        return self.metrics_base + 3

    @property
    def relay(self) -> int:
        return self.metrics_base + 4


@dataclass(frozen=True)
class Process:
    name: str
    argv: list[str]
    env: dict[str, str] = field(default_factory=dict)
    # Where the process says it is ready (None: no readiness endpoint).
    ready_url: str | None = None
    description: str = ""


def flower_credentials(settings: Settings, state_dir: Path) -> str:
    """FLOWER_BASIC_AUTH, else a random pair kept in the state dir (0600), never in the repo."""
    if settings.flower_basic_auth is not None:
        return settings.flower_basic_auth.get_secret_value()
    path = state_dir / "flower-auth"
    if path.exists():
        return path.read_text().strip()
    state_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    value = f"operator:{secrets.token_urlsafe(12)}"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(value + "\n")
    return value


def plan(
    settings: Settings, state_dir: Path, ports: Ports, *, concurrency: int = 8
) -> list[Process]:
    """The processes of the local system, in start order."""
    emulator_dir = state_dir / "emulator"
    shared: dict[str, str] = {}
    processes: list[Process] = []
    if not settings.uses_real_telegram:
        shared["TELEGRAM_EMULATOR_CONFIG"] = str(emulator_dir / "emulator.json")
        processes.append(
            Process(
                "emulator",
                [
                    sys.executable,
                    "-m",
                    "integration_service.cli",
                    "emulator",
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(ports.emulator),
                    "--state-dir",
                    str(emulator_dir),
                ],
                description=f"Telegram emulator, MTProto on 127.0.0.1:{ports.emulator}",
            )
        )
    worker = [*CELERY, "worker", "--pool=threads", f"--concurrency={concurrency}"]
    processes += [
        Process(
            "worker_high",
            [*worker, "--queues=high", "--hostname=high@%h"],
            # The interactive worker never listens: logins hand their session to placement.
            {**shared, "METRICS_PORT": str(ports.worker_high), "LISTEN_CAPACITY": "0"},
            f"http://127.0.0.1:{ports.worker_high}/health/ready",
            "worker for interactive logins (queue high)",
        ),
        Process(
            "worker_bulk",
            [*worker, "--queues=mid,low", "--hostname=bulk@%h"],
            {**shared, "METRICS_PORT": str(ports.worker_bulk)},
            f"http://127.0.0.1:{ports.worker_bulk}/health/ready",
            "worker for sends, reconnects, validation and listening (queues mid, low)",
        ),
        Process(
            "beat",
            [*CELERY, "beat", f"--schedule={state_dir / 'celerybeat-schedule'}"],
            {**shared, "METRICS_PORT": str(ports.beat)},
            f"http://127.0.0.1:{ports.beat}/health/ready",
            "periodic validation sweep (leader-leased)",
        ),
        Process(
            "relay",
            [sys.executable, "-m", "integration_service.cli", "relay"],
            {**shared, "METRICS_PORT": str(ports.relay)},
            f"http://127.0.0.1:{ports.relay}/health/ready",
            "event relay: the event log to the events exchange (and webhooks)",
        ),
        Process(
            "api",
            [sys.executable, "-m", "integration_service.cli", "api", "--port", str(ports.api)],
            shared,
            f"http://127.0.0.1:{ports.api}/health/ready",
            f"HTTP API (docs at http://127.0.0.1:{ports.api}/docs)",
        ),
        Process(
            "flower",
            [*FLOWER, "--address=127.0.0.1", f"--port={ports.flower}"],
            # In its environment, not on its command line (which `ps` shows to everyone).
            {**shared, "FLOWER_BASIC_AUTH": flower_credentials(settings, state_dir)},
            f"http://127.0.0.1:{ports.flower}/healthcheck",
            "Flower dashboard (basic auth)",
        ),
    ]
    return processes
