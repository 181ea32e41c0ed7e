"""Arguments, help and exit codes that need no running system (CliRunner, in process)."""

from __future__ import annotations

import json

import pytest

from integration_service.cli.output import ExitCode
from tests.cli.conftest import run_cli

COMMANDS = [
    ["health"],
    ["list"],
    ["status"],
    ["tenant", "add"],
    ["qr-login"],
    ["code-login"],
    ["password"],
    ["bot-login"],
    ["send"],
    ["validate"],
    ["finalize"],
    ["migrate-sessions"],
    ["rotate-keys"],
    ["emulator"],
    ["migrate"],
]
# Nothing listens on port 1 of loopback: connections are refused at once.
BROKER_DOWN = {"CELERY_BROKER_URL": "amqp://guest:guest@127.0.0.1:1//"}
DATABASE_DOWN = {"DATABASE_URL": "postgresql://postgres@127.0.0.1:1/none"}


@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
def test_every_command_has_help(command: list[str]) -> None:
    result = run_cli([*command, "--help"])
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("Usage: ")
    if command[0] not in {"emulator", "migrate"}:
        assert "--json" in result.stdout


def test_top_level_help_lists_the_exit_codes() -> None:
    result = run_cli(["--help"])
    assert result.exit_code == 0
    assert "3 unknown tenant or session" in result.stdout
    assert "qr-login" in result.stdout and "rotate-keys" in result.stdout


def test_rotate_keys_help_names_the_queued_way() -> None:
    assert "tasks.maintenance.rotate_keys" in run_cli(["rotate-keys", "--help"]).stdout


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["status", "only-tenant"], "Missing argument 'APP_ID'"),
        (["list"], "missing the tenant"),
        (["list", "a", "--tenant", "b"], "give the tenant once"),
        (["list", "--tenant", "t", "--state", "sleeping"], "Invalid value for '--state'"),
        (["list", "--tenant", "t", "--limit", "0"], "Invalid value for '--limit'"),
        (["send", "t", "a", "--text", "hi"], "Missing option '--peer'"),
        (["send", "t", "a", "--peer", "@someone"], "Missing option '--text'"),
        (["code-login", "t", "a"], "exactly one of --phone"),
        (["code-login", "t", "a", "--phone", "+4915112345678", "--code", "-"], "exactly one"),
        (["code-login", "t", "a", "--phone", "+4915112345678", "--code"], "exactly one"),
        # Secrets are never accepted as arguments.
        (["password", "t", "a", "hunter2"], "never taken as an argument"),
        (["bot-login", "t", "a", "123:hunter2"], "never taken as an argument"),
        (["password", "t", "a", "--password", "hunter2"], "No such option"),
        (["bot-login", "t", "a", "--token", "1:abc"], "No such option"),
        (["qr-login", "t", "a", "--timeout", "0"], "Invalid value for '--timeout'"),
        (["rotate-keys", "--batch-size", "0"], "Invalid value for '--batch-size'"),
        (["migrate-sessions", "--tenant", "t", "--source", "/nonexistent/dir"], "does not exist"),
        (["tenant"], "Usage: "),
    ],
)
def test_usage_errors_exit_2(args: list[str], fragment: str) -> None:
    result = run_cli(args)
    assert result.exit_code == ExitCode.USAGE, result.output
    assert fragment in result.output
    assert "hunter2" not in result.output


@pytest.mark.parametrize(
    "args",
    [
        ["code-login", "t", "a", "--code", "hunter2"],
        ["code-login", "t", "a", "--code=hunter2"],
        ["code-login", "t", "a", "--code", "hunter2", "--json"],
        ["code-login", "t", "a", "--phone", "+4915112345678", "--code", "hunter2"],
    ],
)
def test_a_login_code_on_the_command_line_is_refused_in_one_line(args: list[str]) -> None:
    # No dependency is reached (none is running at these addresses): refused while parsing.
    result = run_cli(args, env={**BROKER_DOWN, **DATABASE_DOWN})
    assert result.exit_code == ExitCode.USAGE, result.output
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    if "--json" in args:
        assert [json.loads(line)["error"] for line in lines] == ["invalid_input"]
    else:
        assert len(lines) == 1 and lines[0].startswith("error: the login code is never taken")
    assert "--code -" in lines[0] and "prompt" in lines[0]
    assert "hunter2" not in result.output


def test_code_login_help_says_the_code_is_prompted_or_piped() -> None:
    text = " ".join(run_cli(["code-login", "--help"]).stdout.split())
    assert "hidden prompt" in text and "--code - < code.txt" in text
    assert "Never as an argument" in text


def test_invalid_identifier_is_one_clear_line() -> None:
    result = run_cli(["list", "--tenant", "bad:tenant"])
    assert result.exit_code == ExitCode.USAGE
    assert result.stdout == ""
    assert result.stderr.strip().splitlines() == [
        "error: tenant_id: must be 1-64 characters of letters, digits, '_', '.', '-' (no ':')"
    ]


def test_invalid_input_as_json_on_stderr() -> None:
    result = run_cli(["tenant", "add", "bad tenant", "--json"])
    assert result.exit_code == ExitCode.USAGE
    error = json.loads(result.stderr)
    assert error == {
        "error": "invalid_input",
        "message": error["message"],
        "exit_code": 2,
    }
    assert error["message"].startswith("tenant_id: ")


def test_bad_configuration_names_the_variable() -> None:
    result = run_cli(["list", "--tenant", "t"], env={"DATABASE_URL": "mysql://x@127.0.0.1/db"})
    assert result.exit_code == ExitCode.USAGE
    assert "DATABASE_URL" in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_health_with_the_broker_down_exits_4_and_names_it() -> None:
    result = run_cli(["health", "--json", "--timeout", "2"], env=BROKER_DOWN)
    assert result.exit_code == ExitCode.DEPENDENCY_DOWN, result.output
    report = json.loads(result.stdout)
    assert report["status"] == "failing"
    assert report["checks"]["broker"]["ok"] is False
    assert report["checks"]["redis"]["ok"] is True
    assert "guest:guest" not in result.stdout


def test_health_text_lists_each_component(database_url: str) -> None:
    result = run_cli(["health"], env={**BROKER_DOWN, "DATABASE_URL": database_url})
    assert result.exit_code == ExitCode.DEPENDENCY_DOWN
    lines = result.stdout.splitlines()
    assert lines[0].split()[:3] == ["COMPONENT", "RESULT", "LATENCY"]
    rows = {line.split()[0]: line.split()[1] for line in lines[1:-1]}
    assert rows == {"broker": "FAIL", "redis": "ok", "postgres": "ok"}
    assert lines[-1] == "NOT READY"


def test_database_down_exits_4() -> None:
    result = run_cli(["list", "--tenant", "t"], env=DATABASE_DOWN)
    assert result.exit_code == ExitCode.DEPENDENCY_DOWN, result.output
    assert result.stderr.startswith("error: postgresql unreachable at 127.0.0.1:1/none:")
    assert len(result.stderr.strip().splitlines()) == 1


def test_broker_down_while_enqueueing_exits_4(database_url: str) -> None:
    from sqlalchemy import create_engine, text

    admin = create_engine(database_url)
    with admin.begin() as conn:
        conn.execute(
            text("INSERT INTO tenants (id, name) VALUES ('cli-down', 'x') ON CONFLICT DO NOTHING")
        )
    admin.dispose()
    env = {**BROKER_DOWN, "DATABASE_URL": database_url}
    result = run_cli(["qr-login", "cli-down", "app", "--timeout", "5"], env=env)
    assert result.exit_code == ExitCode.DEPENDENCY_DOWN, result.output
    assert result.stderr == "error: rabbitmq unreachable at 127.0.0.1:1//: connection refused\n"
