"""A dependency that cannot be reached: one line naming it, exit 4, within the timeout.

Each command runs as a real process (``python -m integration_service.cli``) against real
PostgreSQL, Redis (DB 7) and RabbitMQ (a private vhost), with one of them pointed at a
closed port (refused at once) or at a silent server (accepts, never answers: only the
client's own timeout ends the wait). The dead URL carries a password; it must appear
nowhere. Wall time is measured, never slept.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis
from kombu import Connection
from sqlalchemy.engine import Engine

from integration_service.cli.output import ExitCode
from integration_service.queues import declare_topology
from integration_service.store import SessionKey, SessionMaterial, SessionStore
from tests.support.rabbitmq import private_vhost
from tests.support.unreachable import closed_port, silent_server

TENANT = "tenant-cli-deps"
REDIS_URL = "redis://127.0.0.1:6379/7"
PASSWORD = "s3cret-pw"
# Process start-up (imports, a loaded 2-core machine) on top of DEPENDENCY_TIMEOUT.
MARGIN = 3.0
DEFAULT_TIMEOUT = 5.0

POSTGRESQL, REDIS, RABBITMQ = "postgresql", "redis", "rabbitmq"
ALL = frozenset({POSTGRESQL, REDIS, RABBITMQ})
BOT_TOKEN = "123456:" + "A" * 30


@dataclass(frozen=True)
class Run:
    returncode: int
    stdout: str
    stderr: str
    seconds: float


def run_cli(args: list[str], env: dict[str, str], stdin: str | None = None) -> Run:
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "integration_service.cli", *args],
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    return Run(done.returncode, done.stdout, done.stderr, time.monotonic() - started)


def dead_url(dependency: str, port: int) -> tuple[str, str, str]:
    """(variable, URL with a password, the address the error must name)."""
    if dependency == POSTGRESQL:
        url = f"postgresql://postgres:{PASSWORD}@127.0.0.1:{port}/is_down"
        return "DATABASE_URL", url, f"127.0.0.1:{port}/is_down"
    if dependency == REDIS:
        return "REDIS_URL", f"redis://:{PASSWORD}@127.0.0.1:{port}/7", f"127.0.0.1:{port}/7"
    url = f"amqp://guest:{PASSWORD}@127.0.0.1:{port}//"
    return "CELERY_BROKER_URL", url, f"127.0.0.1:{port}//"


@pytest.fixture(scope="module")
def environment(database_url: str, engine: Engine) -> Iterator[dict[str, str]]:
    store = SessionStore(engine)
    store.ensure_tenant(TENANT)
    store.save(SessionMaterial(SessionKey(TENANT, "live"), "user", "authorized", lease_epoch=0))
    with private_vhost() as broker_url:
        with Connection(broker_url) as connection:
            declare_topology(connection)
        base = {
            key: value
            for key, value in os.environ.items()
            if not key.startswith(("TELEGRAM_", "DATABASE_", "REDIS_", "CELERY_", "BROKER_"))
        }
        yield {
            **base,
            "DATABASE_URL": database_url,
            "CELERY_BROKER_URL": broker_url,
            "REDIS_URL": REDIS_URL,
            "LOCAL_KEYRING": "k1:" + base64.b64encode(os.urandom(32)).decode(),
            "ROUTE_TO_OWNER": "true",
        }
    redis.Redis.from_url(REDIS_URL).flushdb()


# Each command, its stdin, and the dependencies it needs.
COMMANDS: dict[str, tuple[list[str], str | None, frozenset[str]]] = {
    "send": (["send", TENANT, "live", "--peer", "@someone", "--text", "hi"], None, ALL),
    "qr-login": (["qr-login", TENANT, "new", "--timeout", "30"], None, ALL),
    "code-login": (["code-login", TENANT, "new", "--phone", "+4915112345678"], None, ALL),
    "bot-login": (["bot-login", TENANT, "bot"], BOT_TOKEN + "\n", ALL),
    "password": (["password", TENANT, "live"], "pw-typed\n", ALL),
    "validate": (["validate", TENANT, "live"], None, ALL),
    "status": (["status", TENANT, "live"], None, frozenset({POSTGRESQL, REDIS})),
    "finalize": (
        ["finalize", TENANT, "live", "--timeout", "1"],
        None,
        frozenset({POSTGRESQL, REDIS}),
    ),
    "list": (["list", TENANT], None, frozenset({POSTGRESQL})),
    "tenant add": (["tenant", "add", "tenant-cli-deps-2"], None, frozenset({POSTGRESQL})),
    "migrate": (["migrate"], None, frozenset({POSTGRESQL})),
}
CASES = [
    pytest.param(name, dependency, id=f"{name}-{dependency}")
    for name, (_args, _stdin, needs) in COMMANDS.items()
    for dependency in sorted(needs)
]


def assert_one_line(run: Run, dependency: str, address: str, reason: str) -> None:
    assert run.returncode == ExitCode.DEPENDENCY_DOWN, run
    assert run.stdout == "", run
    # One line, no retry log lines, no traceback.
    assert run.stderr == f"error: {dependency} unreachable at {address}: {reason}\n", run
    assert PASSWORD not in run.stdout + run.stderr


@pytest.mark.parametrize(("name", "dependency"), CASES)
def test_a_closed_port_is_named_at_once(
    environment: dict[str, str], name: str, dependency: str
) -> None:
    args, stdin, _needs = COMMANDS[name]
    variable, url, address = dead_url(dependency, closed_port())
    run = run_cli(args, {**environment, variable: url}, stdin)
    assert_one_line(run, dependency, address, "connection refused")
    assert run.seconds < DEFAULT_TIMEOUT + MARGIN, run.seconds


@pytest.mark.parametrize("dependency", sorted(ALL))
def test_a_silent_dependency_fails_within_dependency_timeout(
    environment: dict[str, str], dependency: str
) -> None:
    args, _stdin, _needs = COMMANDS["send"]
    with silent_server() as port:
        variable, url, address = dead_url(dependency, port)
        run = run_cli(args, {**environment, variable: url, "DEPENDENCY_TIMEOUT": "2"})
    assert_one_line(run, dependency, address, "no answer within 2s")
    assert run.seconds < 2 + MARGIN, run.seconds


def test_the_failure_as_json(environment: dict[str, str]) -> None:
    variable, url, address = dead_url(REDIS, closed_port())
    run = run_cli(["status", TENANT, "live", "--json"], {**environment, variable: url})
    assert run.returncode == ExitCode.DEPENDENCY_DOWN
    assert json.loads(run.stderr) == {
        "error": "dependency_unavailable",
        "message": f"redis unreachable at {address}: connection refused",
        "exit_code": 4,
    }


def test_with_everything_up_the_same_commands_work(environment: dict[str, str]) -> None:
    # The failures above are the dead dependency's, not the set-up's.
    for args in (["status", TENANT, "live"], ["list", TENANT], COMMANDS["send"][0]):
        run = run_cli(args, environment)
        assert run.returncode == ExitCode.OK, run


def test_a_wait_that_times_out_is_one_line_too(environment: dict[str, str]) -> None:
    # No worker consumes this vhost: the result never comes. The abandoned result must
    # not print a traceback when the interpreter exits.
    args = [*COMMANDS["send"][0], "--wait", "--timeout", "1"]
    run = run_cli(args, environment)
    assert run.returncode == ExitCode.TIMEOUT, run
    assert run.stderr.startswith("error: timed out") and run.stderr.count("\n") == 1, run


def test_run_with_a_bad_setting_prints_one_line_and_exits_2(
    environment: dict[str, str], tmp_path: Path
) -> None:
    state = tmp_path / "state"
    run = run_cli(["run", "--state-dir", str(state)], {**environment, "SESSION_LOCK_TTL": "abc"})
    assert run.returncode == ExitCode.USAGE, run
    assert run.stdout == ""
    assert run.stderr.count("\n") == 1 and run.stderr.startswith("error: "), run
    assert "SESSION_LOCK_TTL" in run.stderr and "Traceback" not in run.stderr
    assert not state.exists()  # nothing was started


def test_run_with_the_database_down_names_it_before_starting_anything(
    environment: dict[str, str], tmp_path: Path
) -> None:
    state = tmp_path / "state"
    variable, url, address = dead_url(POSTGRESQL, closed_port())
    run = run_cli(["run", "--state-dir", str(state)], {**environment, variable: url})
    assert_one_line(run, POSTGRESQL, address, "connection refused")
    assert not state.exists()
