"""Bad input through the CLI: exit code, one clear line, nothing enqueued or changed.

The broker here has the service's queues and no consumer, so every message the CLI
publishes stays countable; the first test shows a good command does land in a queue.
"""

from __future__ import annotations

import base64
import os
from collections.abc import Iterator

import pytest
import redis
from kombu import Connection
from sqlalchemy import text
from sqlalchemy.engine import Engine

from integration_service.cli.output import ExitCode
from integration_service.queues import consumed_queues, declare_topology
from integration_service.store import SessionKey, SessionMaterial, SessionStore
from tests.cli.conftest import assert_no_secret, run_cli
from tests.support.rabbitmq import private_vhost

TENANT = "tenant-cli-bad"
REDIS_URL = "redis://127.0.0.1:6379/13"


@pytest.fixture(scope="module")
def environment(database_url: str, engine: Engine) -> Iterator[dict[str, str]]:
    store = SessionStore(engine)
    store.ensure_tenant(TENANT)
    for app_id, state in (("live", "authorized"), ("gone", "revoked")):
        store.save(SessionMaterial(SessionKey(TENANT, app_id), "user", state, lease_epoch=0))
    with private_vhost() as broker_url:
        with Connection(broker_url) as connection:
            declare_topology(connection)
        yield {
            "DATABASE_URL": database_url,
            "CELERY_BROKER_URL": broker_url,
            "REDIS_URL": REDIS_URL,
            "LOCAL_KEYRING": "k1:" + base64.b64encode(os.urandom(32)).decode(),
        }
    redis.Redis.from_url(REDIS_URL).flushdb()


def queued(env: dict[str, str]) -> dict[str, int]:
    counts = {}
    with Connection(env["CELERY_BROKER_URL"]) as connection, connection.channel() as channel:
        for queue in consumed_queues():
            counts[queue.name] = channel.queue_declare(queue.name, passive=True).message_count
    return counts


def tenants(engine: Engine) -> set[str]:
    with engine.connect() as conn:
        return {row[0] for row in conn.execute(text("SELECT id FROM tenants"))}


def test_a_good_command_is_counted(environment: dict[str, str]) -> None:
    before = queued(environment)
    result = run_cli(["validate", TENANT, "live"], env=environment)
    assert result.exit_code == ExitCode.OK, result.output
    after = queued(environment)
    assert sum(after.values()) == sum(before.values()) + 1
    assert after["low"] == before["low"] + 1


CASES = [
    (["qr-login", TENANT, "bad app"], None, ExitCode.USAGE, "app_id: must be"),
    (["qr-login", "unknown-tenant", "a"], None, ExitCode.NOT_FOUND, "is not registered"),
    (["code-login", TENANT, "new", "--phone", "0151 2345"], None, ExitCode.USAGE, "E.164"),
    (["code-login", TENANT, "live", "--code"], "12a45\n", ExitCode.USAGE, "5 or 6 digits"),
    (["code-login", TENANT, "live", "--code", "-"], "98x76\n", ExitCode.USAGE, "5 or 6 digits"),
    (["code-login", TENANT, "nope", "--code", "-"], "12345\n", ExitCode.NOT_FOUND, "no session"),
    (["code-login", TENANT, "gone", "--code"], "12345\n", ExitCode.FAILED, "revoked"),
    # A code on the command line is refused before anything is read or enqueued.
    (["code-login", TENANT, "live", "--code", "98x76"], None, ExitCode.USAGE, "--code -"),
    (["code-login", TENANT, "live", "--code=98x76"], None, ExitCode.USAGE, "never taken as"),
    (["password", TENANT, "live"], "\n", ExitCode.USAGE, "password: must be"),
    (["password", TENANT, "nope"], "pw-secret\n", ExitCode.NOT_FOUND, "no session"),
    (["bot-login", TENANT, "b"], "123:short-secret\n", ExitCode.USAGE, "bot_token: is not"),
    (["send", TENANT, "live", "--peer", "@x", "--text", "t"], None, ExitCode.USAGE, "peer:"),
    (["send", TENANT, "live", "--peer", "@someone", "--text", "  "], None, 2, "text: must not"),
    (["send", TENANT, "live", "--peer", "0", "--text", "t"], None, ExitCode.USAGE, "peer: id"),
    (
        ["send", TENANT, "live", "--peer", "@someone", "--text", "x" * 4097],
        None,
        ExitCode.USAGE,
        "the limit is 4096",
    ),
    (
        ["send", TENANT, "live", "--peer", "@someone", "--text", "t", "--idempotency-key", "a b"],
        None,
        ExitCode.USAGE,
        "idempotency_key:",
    ),
    (["send", TENANT, "gone", "--peer", "@someone", "--text", "t"], None, 1, "revoked"),
    (["validate", TENANT, "nope"], None, ExitCode.NOT_FOUND, "no session"),
]


@pytest.mark.parametrize(("args", "stdin", "code", "message"), CASES)
def test_bad_input_enqueues_nothing(
    environment: dict[str, str],
    args: list[str],
    stdin: str | None,
    code: int,
    message: str,
) -> None:
    before = queued(environment)
    result = run_cli(args, env=environment, input=stdin)
    assert result.exit_code == code, result.output
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], lines
    assert queued(environment) == before
    assert_no_secret(result, "98x76", "pw-secret", "short-secret")


def test_bad_tenant_id_changes_nothing(environment: dict[str, str], engine: Engine) -> None:
    before = tenants(engine)
    result = run_cli(["tenant", "add", "no/slashes"], env=environment)
    assert result.exit_code == ExitCode.USAGE
    assert tenants(engine) == before
    added = run_cli(["tenant", "add", "tenant-cli-new"], env=environment)
    assert added.exit_code == ExitCode.OK
    assert tenants(engine) == before | {"tenant-cli-new"}
