"""A dependency that cannot be reached: one line naming it, exit 4, within the timeout.

Each command runs as a real process (``python -m integration_service.cli``) against real
PostgreSQL, Redis (DB 7) and RabbitMQ (a private vhost), with one of them pointed at a
closed port (refused at once) or at a silent server (accepts, never answers: only the
client's own timeout ends the wait). The dead URL carries a password; it must appear
nowhere. Wall time is measured around the whole process, never slept: DEPENDENCY_TIMEOUT
bounds the command, start-up and exit included (integration_service/cli/budget.py).
"""

from __future__ import annotations

import base64
import json
import os
import signal
import socket
import struct
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
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
from tests.support.unreachable import closed_port, loopback_server, silent_server

TENANT = "tenant-cli-deps"
REDIS_URL = "redis://127.0.0.1:6379/7"
PASSWORD = "s3cret-pw"
# A refused connection is named at once; the slack is for a loaded 2-core machine.
MARGIN = 3.0
DEFAULT_TIMEOUT = 5.0
# A silent dependency: the command's budget covers its start-up and exit, so the whole
# process ends within DEPENDENCY_TIMEOUT, plus this for fork/exec and the error's print.
SILENT_TIMEOUT = 2
SILENT_MARGIN = 0.5

POSTGRESQL, REDIS, RABBITMQ = "postgresql", "redis", "rabbitmq"
ALL = frozenset({POSTGRESQL, REDIS, RABBITMQ})
BOT_TOKEN = "123456:" + "A" * 30


@dataclass(frozen=True)
class Run:
    returncode: int
    stdout: str
    stderr: str
    seconds: float


def run_cli(
    args: list[str], env: dict[str, str], stdin: str | None = None, timeout: float = 120
) -> Run:
    """Run the CLI as a process of its own session. A ``run`` that started processes
    after all (the bug these tests look for) is stopped at ``timeout`` the way Ctrl-C
    stops it (honcho's children have sessions of their own: it stops them itself)."""
    started = time.monotonic()
    process = subprocess.Popen(
        [sys.executable, "-m", "integration_service.cli", *args],
        env=env,
        stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        stdout, stderr = process.communicate(stdin, timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGINT)
        try:
            stdout, stderr = process.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            stdout, stderr = process.communicate()
        pytest.fail(f"{args} still running after {timeout}s: {stdout[-2000:]} {stderr[-2000:]}")
    return Run(process.returncode, stdout, stderr, time.monotonic() - started)


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
def environment(
    database_url: str, engine: Engine, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, str]]:
    legacy = tmp_path_factory.mktemp("legacy-sessions")
    (legacy / TENANT).mkdir()  # migrate-sessions reads SESSIONS_BASE_PATH/<tenant>
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
            "SESSIONS_BASE_PATH": str(legacy),
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
    "rotate-keys": (["rotate-keys", "--no-new-key"], None, frozenset({POSTGRESQL})),
    "migrate-sessions": (
        ["migrate-sessions", "--tenant", TENANT, "--dry-run"],
        None,
        frozenset({POSTGRESQL}),
    ),
    # Prints its table on stdout (the failing row names the address) and exits 4.
    "health": (["health"], None, ALL),
}
CASES = [
    pytest.param(name, dependency, id=f"{name}-{dependency}")
    for name, (_args, _stdin, needs) in COMMANDS.items()
    for dependency in sorted(needs)
]
# The commands an operator runs most, each against a silent server per dependency.
SILENT = ("status", "list", "send", "validate", "qr-login", "tenant add", "migrate")
SILENT_CASES = [case for case in CASES if case.values[0] in SILENT]
HEALTH_ROWS = {POSTGRESQL: "postgres", REDIS: "redis", RABBITMQ: "broker"}


def assert_one_line(run: Run, dependency: str, address: str, reason: str) -> None:
    assert run.returncode == ExitCode.DEPENDENCY_DOWN, run
    assert run.stdout == "", run
    # One line, no retry log lines, no traceback.
    assert run.stderr == f"error: {dependency} unreachable at {address}: {reason}\n", run
    assert PASSWORD not in run.stdout + run.stderr


def assert_health_names(run: Run, dependency: str, address: str, reason: str) -> None:
    """health keeps its table: the failing row says where and why, the others are ok."""
    assert run.returncode == ExitCode.DEPENDENCY_DOWN, run
    assert run.stderr == "", run
    lines = run.stdout.splitlines()
    assert lines[0].split()[:3] == ["COMPONENT", "RESULT", "LATENCY"] and lines[-1] == "NOT READY"
    rows = {line.split()[0]: line for line in lines[1:-1]}
    failing = rows.pop(HEALTH_ROWS[dependency])
    assert failing.split()[1] == "FAIL", failing
    assert failing.endswith(f"  unreachable at {address}: {reason}"), failing
    assert all(row.split()[1] == "ok" for row in rows.values()), rows
    assert PASSWORD not in run.stdout


@pytest.mark.parametrize(("name", "dependency"), CASES)
def test_a_closed_port_is_named_at_once(
    environment: dict[str, str], name: str, dependency: str
) -> None:
    args, stdin, _needs = COMMANDS[name]
    variable, url, address = dead_url(dependency, closed_port())
    run = run_cli(args, {**environment, variable: url}, stdin)
    if name == "health":
        assert_health_names(run, dependency, address, "connection refused")
    else:
        assert_one_line(run, dependency, address, "connection refused")
    assert run.seconds < DEFAULT_TIMEOUT + MARGIN, run.seconds


@pytest.mark.parametrize(("name", "dependency"), SILENT_CASES)
def test_a_silent_dependency_fails_the_whole_command_within_dependency_timeout(
    environment: dict[str, str], name: str, dependency: str
) -> None:
    args, stdin, _needs = COMMANDS[name]
    with silent_server() as port:
        variable, url, address = dead_url(dependency, port)
        env = {**environment, variable: url, "DEPENDENCY_TIMEOUT": str(SILENT_TIMEOUT)}
        run = run_cli(args, env, stdin)
    assert_one_line(run, dependency, address, f"no answer within {SILENT_TIMEOUT}s")
    # Start-up, the wait and exit: all of it within the one budget.
    assert run.seconds <= SILENT_TIMEOUT + SILENT_MARGIN, run.seconds


@contextmanager
def refusing_postgres(sqlstate: str, message: str) -> Iterator[int]:
    """A loopback server speaking just enough of PostgreSQL's protocol to refuse a login
    with ``sqlstate`` (the local server trusts every login, so it never refuses one).
    Yields its port."""
    fields = b"SFATAL\0VFATAL\0C" + sqlstate.encode() + b"\0M" + message.encode() + b"\0\0"
    refusal = b"E" + struct.pack("!i", len(fields) + 4) + fields

    def read(connection: socket.socket, size: int) -> bytes:
        data = b""
        while len(data) < size:
            chunk = connection.recv(size - len(data))
            if not chunk:
                raise ConnectionError("client went away")
            data += chunk
        return data

    def refuse(connection: socket.socket) -> None:
        with suppress(OSError):
            connection.settimeout(5)
            while True:
                length, code = struct.unpack("!ii", read(connection, 8))
                read(connection, length - 8)
                if code in (80877103, 80877104):  # SSLRequest, GSSENCRequest: no
                    connection.sendall(b"N")
                    continue
                connection.sendall(refusal)  # the startup message: refused
                break
        connection.close()

    with loopback_server(refuse, name="refusing-postgres") as port:
        yield port


@pytest.mark.parametrize("name", ["list", "migrate", "health"])
def test_a_database_that_does_not_exist_is_named_so(environment: dict[str, str], name: str) -> None:
    url = f"postgresql://postgres:{PASSWORD}@127.0.0.1:5432/is_no_such_db"
    run = run_cli(COMMANDS[name][0], {**environment, "DATABASE_URL": url})
    address, reason = "127.0.0.1:5432/is_no_such_db", "database does not exist"
    if name == "health":
        assert_health_names(run, POSTGRESQL, address, reason)
    else:
        assert_one_line(run, POSTGRESQL, address, reason)


def test_a_role_that_does_not_exist_is_an_authentication_failure(
    environment: dict[str, str],
) -> None:
    url = f"postgresql://is_no_such_role:{PASSWORD}@127.0.0.1:5432/postgres"
    run = run_cli(["list", TENANT], {**environment, "DATABASE_URL": url})
    assert_one_line(
        run, POSTGRESQL, "127.0.0.1:5432/postgres", "authentication failed (no such role)"
    )
    assert "is_no_such_role" not in run.stderr  # the address never names the user


def test_a_wrong_password_is_an_authentication_failure(environment: dict[str, str]) -> None:
    message = 'password authentication failed for user "svc"'
    with refusing_postgres("28P01", message) as port:
        url = f"postgresql://svc:{PASSWORD}@127.0.0.1:{port}/app"
        run = run_cli(["list", TENANT], {**environment, "DATABASE_URL": url})
    assert_one_line(run, POSTGRESQL, f"127.0.0.1:{port}/app", "authentication failed")


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


@pytest.mark.parametrize("migrate", ["--migrate", "--no-migrate"])
@pytest.mark.parametrize("dependency", sorted(ALL))
def test_run_with_a_dependency_down_names_it_before_starting_anything(
    environment: dict[str, str], tmp_path: Path, dependency: str, migrate: str
) -> None:
    state = tmp_path / "state"
    variable, url, address = dead_url(dependency, closed_port())
    args = ["run", "--state-dir", str(state), migrate]
    run = run_cli(args, {**environment, variable: url}, timeout=DEFAULT_TIMEOUT + MARGIN)
    assert_one_line(run, dependency, address, "connection refused")
    assert not state.exists()  # nothing was started


@pytest.mark.parametrize("dependency", sorted(ALL))
def test_run_with_a_silent_dependency_fails_within_dependency_timeout(
    environment: dict[str, str], tmp_path: Path, dependency: str
) -> None:
    state = tmp_path / "state"
    with silent_server() as port:
        variable, url, address = dead_url(dependency, port)
        env = {**environment, variable: url, "DEPENDENCY_TIMEOUT": str(SILENT_TIMEOUT)}
        run = run_cli(["run", "--state-dir", str(state)], env, timeout=DEFAULT_TIMEOUT + MARGIN)
    assert_one_line(run, dependency, address, f"no answer within {SILENT_TIMEOUT}s")
    assert run.seconds <= SILENT_TIMEOUT + SILENT_MARGIN, run.seconds
    assert not state.exists()
