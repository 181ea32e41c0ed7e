"""Every job command end to end: the CLI in process against emulator + a real worker."""

from __future__ import annotations

import getpass
import json
import os
import stat
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import pytest
from click.testing import Result
from sqlalchemy import text

from integration_service.cli.output import ExitCode
from integration_service.emulator.world.client_helper import random_phone
from integration_service.store import SessionKey
from tests.cli.conftest import assert_no_secret, run_cli
from tests.support.system import Provisioned, SystemUnderTest, WorkerProcess

TENANT = "tenant-cli"


@pytest.fixture(scope="module")
def worker(system: SystemUnderTest) -> WorkerProcess:
    return system.start_worker("cli")


@pytest.fixture(scope="module")
def users(system: SystemUnderTest, worker: WorkerProcess) -> list[Provisioned]:
    return system.provision(2, TENANT)


def cli(system: SystemUnderTest, *args: str, input: str | None = None, **env: str) -> Result:
    environment: Mapping[str, str] = {**system.env, **env}
    return run_cli(list(args), env=environment, input=input)


def as_json(result: Result) -> dict[str, object]:
    return dict(json.loads(result.stdout))


def qr_token(url: str) -> str:
    return parse_qs(urlparse(url).query)["token"][0]


def test_health_is_ready(system: SystemUnderTest) -> None:
    result = cli(system, "health", "--json")
    assert result.exit_code == ExitCode.OK, result.output
    assert set(as_json(result)["checks"]) == {"broker", "redis", "postgres"}  # type: ignore[arg-type]


def test_tenant_add_is_idempotent(system: SystemUnderTest, worker: WorkerProcess) -> None:
    first = cli(system, "tenant", "add", TENANT, "--name", "CLI tests")
    again = cli(system, "tenant", "add", TENANT, "--json")
    assert (first.exit_code, again.exit_code) == (0, 0), first.output + again.output
    assert first.stdout.strip() == f"tenant {TENANT} registered"
    assert as_json(again) == {"tenant_id": TENANT, "registered": True}


def test_qr_login_png_then_finalize(system: SystemUnderTest, tmp_path: Path) -> None:
    phone = random_phone()
    system.control.create_user(phone, "Qr")
    png = tmp_path / "qr.png"
    started = cli(system, "qr-login", TENANT, "qr-app", "--png", str(png), "--json")
    assert started.exit_code == ExitCode.OK, started.output
    document = as_json(started)
    assert document["state"] == "qr_pending" and document["png"] == str(png)
    assert "qr_png_base64" not in document
    assert png.read_bytes().startswith(b"\x89PNG")
    assert stat.S_IMODE(png.stat().st_mode) == 0o600
    url = str(document["qr_url"])
    status = cli(system, "status", TENANT, "qr-app", "--json")
    assert as_json(status)["login"]["method"] == "qr"  # type: ignore[index]
    system.control.call("POST", "/qr/approve", {"token": qr_token(url), "phone": phone})
    final = cli(system, "finalize", TENANT, "qr-app", "--timeout", "30")
    assert final.exit_code == ExitCode.OK, final.output
    assert ["state", "authorized"] in [line.split() for line in final.stdout.splitlines()]
    assert phone not in final.stdout and phone.lstrip("+") not in final.stdout


def test_qr_login_text_shows_terminal_qr(system: SystemUnderTest) -> None:
    result = cli(system, "qr-login", TENANT, "qr-text")
    assert result.exit_code == ExitCode.OK, result.output
    assert "QR URL: tg://login?token=" in result.stdout
    assert "█" in result.stdout or "▀" in result.stdout  # the terminal QR itself


def test_finalize_times_out_with_exit_5(system: SystemUnderTest) -> None:
    # qr-text above is still waiting for its scan.
    result = cli(system, "finalize", TENANT, "qr-text", "--timeout", "0.5")
    assert result.exit_code == ExitCode.TIMEOUT, result.output
    assert "still qr_pending" in result.stderr


def test_qr_login_wait_with_2fa_then_password(system: SystemUnderTest) -> None:
    phone = random_phone()
    secret = "correct horse 42"
    system.control.create_user(phone, "Qr2", password=secret)
    # --wait blocks until the scan: run it as the operator would, in its own process.
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "integration_service.cli",
            "qr-login",
            TENANT,
            "qr-2fa",
            "--wait",
            "--timeout",
            "40",
        ],
        env={**os.environ, **system.env},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        url = ""
        for line in process.stdout:
            if line.startswith("QR URL: "):
                url = line.removeprefix("QR URL: ").strip()
                break
        assert url, process.stderr.read() if process.stderr else ""
        system.control.call("POST", "/qr/approve", {"token": qr_token(url), "phone": phone})
        rest, errors = process.communicate(timeout=40)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == ExitCode.OK, errors
    assert "password_required" in rest and "integration-service password" in rest
    wrong = cli(system, "password", TENANT, "qr-2fa", input="battery staple\n")
    assert wrong.exit_code == ExitCode.FAILED, wrong.output
    assert "password_invalid" in wrong.stdout
    right = cli(system, "password", TENANT, "qr-2fa", "--json", input=secret + "\n")
    assert right.exit_code == ExitCode.OK, right.output
    assert as_json(right)["state"] == "authorized"
    assert_no_secret(wrong, "battery staple")
    assert_no_secret(right, secret)


def test_code_login_from_stdin(system: SystemUnderTest) -> None:
    phone = "+" + random_phone()
    system.control.create_user(phone, "Code")
    sent = cli(system, "code-login", TENANT, "code-app", "--phone", phone)
    assert sent.exit_code == ExitCode.OK, sent.output
    assert "code_sent" in sent.stdout and "--code -" in sent.stdout
    status = cli(system, "status", TENANT, "code-app", "--json")
    assert as_json(status)["state"] == "code_sent"
    assert phone not in status.stdout and phone[1:] not in status.stdout
    code = system.control.login_code(phone)
    wrong_code = "00000" if code != "00000" else "11111"
    inline = cli(system, "code-login", TENANT, "code-app", "--code", code)
    assert inline.exit_code == ExitCode.USAGE and "--code -" in inline.stderr, inline.output
    assert_no_secret(inline, code)
    # --code alone: a hidden prompt at a terminal, stdin when piped (as here).
    wrong = cli(system, "code-login", TENANT, "code-app", "--code", input=wrong_code + "\n")
    assert wrong.exit_code == ExitCode.FAILED and "phone_code_invalid" in wrong.stdout
    right = cli(system, "code-login", TENANT, "code-app", "--code", "-", input=code + "\n")
    assert right.exit_code == ExitCode.OK, right.output
    assert "authorized" in right.stdout
    assert_no_secret(right, code)
    assert_no_secret(wrong, wrong_code)
    row = system.store.require(SessionKey(TENANT, "code-app"))
    assert row.state == "authorized"


def test_bot_login_token_only_from_stdin(system: SystemUnderTest) -> None:
    bot = system.control.call("POST", "/bots", {"username": f"cli{random_phone()[-6:]}bot"})
    token = str(bot["token"])
    good = cli(system, "bot-login", TENANT, "bot-app", "--json", input=token + "\n")
    assert good.exit_code == ExitCode.OK, good.output
    assert as_json(good)["state"] == "authorized"
    bad_token = token.split(":")[0] + ":" + "x" * 35
    bad = cli(system, "bot-login", TENANT, "bot-bad", input=bad_token + "\n")
    assert bad.exit_code == ExitCode.FAILED, bad.output
    assert "access_token_invalid" in bad.stdout
    assert_no_secret(good, token, token.split(":")[1])
    assert_no_secret(bad, bad_token.split(":")[1])


def test_send_and_idempotency(system: SystemUnderTest, users: list[Provisioned]) -> None:
    sender, recipient = users
    args = ("send", sender.key.tenant_id, sender.key.app_id, "--peer", recipient.peer)
    first = cli(
        system,
        *args,
        "--text",
        "hello from the CLI",
        "--idempotency-key",
        "cli-1",
        "--wait",
        "--json",
    )
    assert first.exit_code == ExitCode.OK, first.output
    sent = as_json(first)
    assert sent["status"] == "sent" and sent["repeated"] is False
    again = cli(
        system, *args, "--text", "hello from the CLI", "--idempotency-key", "cli-1", "--wait"
    )
    assert again.exit_code == ExitCode.OK, again.output
    assert "not sent again" in again.stdout
    queued = cli(system, *args, "--text", "no wait")
    assert queued.exit_code == ExitCode.OK and queued.stdout.startswith("queued job ")


def test_validate_wait(system: SystemUnderTest, users: list[Provisioned]) -> None:
    key = users[0].key
    result = cli(system, "validate", key.tenant_id, key.app_id, "--wait")
    assert result.exit_code == ExitCode.OK, result.output
    assert result.stdout.strip() == f"{key.tenant_id}/{key.app_id}: authorized"


def test_list_and_status(system: SystemUnderTest, users: list[Provisioned]) -> None:
    listed = cli(system, "list", "--tenant", TENANT, "--json")
    assert listed.exit_code == ExitCode.OK, listed.output
    apps = {s["app_id"]: s for s in as_json(listed)["sessions"]}  # type: ignore[attr-defined]
    assert {"code-app", "bot-app", users[0].key.app_id} <= set(apps)
    assert apps["bot-app"]["kind"] == "bot"
    only_authorized = cli(system, "list", "--tenant", TENANT, "--state", "code_sent")
    assert only_authorized.exit_code == 0 and "code-app" not in only_authorized.stdout
    table = cli(system, "list", TENANT, "--limit", "2")
    assert table.stdout.splitlines()[0].split()[:4] == ["TENANT", "APP", "KIND", "STATE"]
    assert len(table.stdout.splitlines()) == 3
    for output in (listed.stdout, table.stdout):
        assert "local:" not in output  # never a ciphertext
    status = cli(system, "status", TENANT, "bot-app")
    assert status.exit_code == 0, status.output
    assert ["kind", "bot"] in [line.split() for line in status.stdout.splitlines()]


def test_unknown_session_and_tenant_exit_3(system: SystemUnderTest) -> None:
    for args in (
        ("status", TENANT, "no-such-app"),
        ("validate", TENANT, "no-such-app"),
        ("finalize", TENANT, "no-such-app"),
        ("send", TENANT, "no-such-app", "--peer", "@someone", "--text", "x"),
        ("qr-login", "no-such-tenant", "app"),
        ("list", "--tenant", "no-such-tenant"),
    ):
        result = cli(system, *args)
        assert result.exit_code == ExitCode.NOT_FOUND, (args, result.output)
        assert result.stderr.startswith("error: ") and len(result.stderr.splitlines()) == 1


def test_channels_connect_list_get_refresh_delete(
    system: SystemUnderTest, users: list[Provisioned], worker: WorkerProcess
) -> None:
    account = users[0]
    owner = system.control.create_user(random_phone(), "Chan Owner")
    news = system.control.call(
        "POST",
        "/channels",
        {
            "creator_id": owner["user_id"],
            "title": "CLI News",
            "username": "cli_news_chan",
            "admin_ids": [account.user_id],
        },
    )
    app_id = account.key.app_id
    made = cli(
        system, "channels", "connect", TENANT, app_id, "@cli_news_chan", "--wait", "60", "--json"
    )
    assert made.exit_code == ExitCode.OK, made.output
    channel = as_json(made)
    assert channel["status"] == "connected" and channel["title"] == "CLI News", channel
    assert channel["telegram_id"] == int(f"-100{news['channel_id']}")
    assert channel["rights"]["can_post"] is True  # type: ignore[index]
    shown = cli(system, "channels", "get", TENANT, str(channel["id"]))
    assert shown.exit_code == ExitCode.OK and "admin, may post" in shown.stdout, shown.output
    listed = cli(system, "channels", "list", TENANT, "--json")
    assert [c["id"] for c in as_json(listed)["channels"]] == [channel["id"]]  # type: ignore[attr-defined]
    refreshed = cli(system, "channels", "refresh", TENANT, str(channel["id"]), "--json")
    assert refreshed.exit_code == ExitCode.OK and as_json(refreshed)["job_id"], refreshed.output
    # Bad input exits 2 and stores nothing; unknown names exit 3.
    bad = cli(system, "channels", "connect", TENANT, app_id, "t.me/+bad hash")
    assert bad.exit_code == ExitCode.USAGE and "peer" in bad.output, bad.output
    nobody = cli(system, "channels", "connect", TENANT, "no-such-account", "@cli_news_chan")
    assert nobody.exit_code == ExitCode.NOT_FOUND, nobody.output
    other_tenant = cli(system, "channels", "get", "tenant-cli-other", str(channel["id"]))
    assert other_tenant.exit_code == ExitCode.NOT_FOUND, other_tenant.output
    assert len(as_json(cli(system, "channels", "list", TENANT, "--json"))["channels"]) == 1  # type: ignore[arg-type]
    removed = cli(system, "channels", "delete", TENANT, str(channel["id"]))
    assert removed.exit_code == ExitCode.OK, removed.output
    again = cli(system, "channels", "delete", TENANT, str(channel["id"]))
    assert again.exit_code == ExitCode.NOT_FOUND, again.output
    # Each operation in the audit trail, as the operator; reads are not recorded.
    with system.engine.connect() as conn:
        trail = conn.execute(
            text(
                "SELECT action, actor, target, status, error_message FROM integration_logs "
                "WHERE tenant_id = :t AND actor LIKE 'cli:%' AND action LIKE 'channels %' "
                "ORDER BY id"
            ),
            {"t": TENANT},
        ).all()
    target = f"channel:{channel['id']}"
    assert [(r.action, r.target, r.status, r.error_message) for r in trail] == [
        ("channels connect", f"account:{app_id}", "success", None),
        ("channels refresh", target, "success", None),
        ("channels connect", "account:no-such-account", "error", "not_found"),
        ("channels delete", target, "success", None),
        ("channels delete", target, "error", "not_found"),
    ]
    assert {r.actor for r in trail} == {f"cli:{getpass.getuser()}"}
