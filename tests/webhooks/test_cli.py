"""``integration-service webhooks ...``: bad input exits 2 with one line and stores
nothing; add, list, rotate-secret, deliveries, redeliver and remove work, with --json."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable

import pytest
from click.testing import CliRunner, Result
from sqlalchemy import text
from sqlalchemy.engine import Engine

from integration_service.cli import main
from integration_service.inbound.event_log import EventLog
from integration_service.settings import get_settings
from integration_service.store import SessionStore
from integration_service.webhooks.queue import DeliveryQueue
from tests.webhooks.harness import add_session, append_messages

Cli = Callable[..., Result]


@pytest.fixture
def cli(database_url: str, keyring: str) -> Cli:
    def run(*args: str, input: str | None = None, allow_private: bool = False) -> Result:
        env = {
            "DATABASE_URL": database_url,
            "LOCAL_KEYRING": keyring,
            "WEBHOOK_ALLOW_PRIVATE": "true" if allow_private else "false",
        }
        get_settings.cache_clear()
        try:
            return CliRunner().invoke(main, ["webhooks", *args], env=env, input=input)
        finally:
            get_settings.cache_clear()

    return run


def stored(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(text("SELECT count(*) FROM webhook_subscriptions")).scalar_one())


@pytest.mark.parametrize(
    ("args", "stdin", "says"),
    [
        (["not-a-url"], None, "error: url: must be an http:// or https:// URL"),
        (["http://10.0.0.7/hook"], None, "error: url: host 10.0.0.7 resolves to 10.0.0.7"),
        (["http://127.0.0.1:9000/"], None, "a loopback address"),
        (["https://93.184.215.14/", "--event", "message.bogus"], None, "unknown event type"),
        (
            ["https://93.184.215.14/", "--secret-stdin"],
            "whsec_" + base64.b64encode(b"s" * 10).decode() + "\n",
            "error: secret: must decode to at least 24 bytes, got 10",
        ),
    ],
)
def test_bad_input_exits_2_with_one_line_and_stores_nothing(
    cli: Cli, store: SessionStore, engine: Engine, args: list[str], stdin: str | None, says: str
) -> None:
    add_session(store, "tenant-cli")
    result = cli("add", "tenant-cli", *args, input=stdin)
    assert result.exit_code == 2, result.output
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and says in lines[0], result.stderr
    assert stored(engine) == 0


def test_an_unknown_tenant_exits_3_and_stores_nothing(cli: Cli, engine: Engine) -> None:
    result = cli("add", "tenant-unknown", "https://93.184.215.14/hook", "--json")
    assert result.exit_code == 3, result.output
    error = json.loads(result.stderr)
    assert error["error"] == "not_found" and "not registered" in error["message"]
    assert stored(engine) == 0


def test_add_list_rotate_deliveries_redeliver_remove(
    cli: Cli, store: SessionStore, engine: Engine, admin_engine: Engine
) -> None:
    key = add_session(store, "tenant-cli")
    added = cli(
        "add", "tenant-cli", "http://127.0.0.1:9/hook", "--event", "message.received",
        "--json", allow_private=True,
    )  # fmt: skip
    assert added.exit_code == 0, added.output
    document = json.loads(added.stdout)
    sub_id, secret = document["id"], document["secret"]
    assert secret.startswith("whsec_") and len(base64.b64decode(secret[6:])) == 32

    listed = cli("list", "tenant-cli")
    assert listed.exit_code == 0 and sub_id in listed.stdout and "enabled" in listed.stdout
    assert secret not in listed.stdout
    as_json = json.loads(cli("list", "tenant-cli", "--json").stdout)
    assert [s["id"] for s in as_json["subscriptions"]] == [sub_id]

    rotated = cli("rotate-secret", "tenant-cli", sub_id, "--json")
    assert rotated.exit_code == 0, rotated.output
    assert json.loads(rotated.stdout)["secret"] not in (secret, None)

    append_messages(EventLog(engine), key, 2)
    DeliveryQueue(engine).fan_out(100)
    with admin_engine.begin() as conn:
        conn.execute(
            text(
                "UPDATE webhook_deliveries SET status = 'dead', attempts = 3, "
                "last_status_code = 500, dead_reason = 'gave up (test)'"
            )
        )
    shown = cli("deliveries", "tenant-cli", "--subscription", sub_id)
    assert shown.exit_code == 0 and shown.stdout.count("gave up (test)") == 2, shown.output
    rows = json.loads(cli("deliveries", "tenant-cli", "--json", "--attempts").stdout)
    assert [r["status"] for r in rows["deliveries"]] == ["dead", "dead"]
    assert all(r["attempt_log"] == [] and r["attempts"] == 3 for r in rows["deliveries"])

    one = rows["deliveries"][0]["id"]
    again = cli("redeliver", "tenant-cli", one, "--json")
    assert again.exit_code == 0 and json.loads(again.stdout)["status"] == "pending"
    rest = cli("redeliver", "tenant-cli", "--dead", sub_id, "--json")
    assert rest.exit_code == 0 and json.loads(rest.stdout)["redelivered"] == 1
    pending = json.loads(cli("deliveries", "tenant-cli", "--status", "pending", "--json").stdout)
    assert pending["count"] == 2

    assert cli("redeliver", "tenant-cli").exit_code == 2
    assert cli("remove", "tenant-cli", "not-a-uuid").exit_code == 2
    assert cli("remove", "tenant-cli", sub_id).exit_code == 0
    gone = cli("remove", "tenant-cli", sub_id)
    assert gone.exit_code == 3 and "no webhook subscription" in gone.stderr
    assert stored(engine) == 0
