"""No login secret in Flower, in the result backend or in the process list.

A real worker and a real Flower (started as `run` starts it: credentials in its
environment) watch a QR login, a code login with 2FA (a wrong code and a wrong password
first) and bot logins. Afterwards Flower's API (every task, its info and its result),
the Redis result backend and ``ps -efww`` must hold none of: the QR URL or its token,
the QR image (PNG bytes or base64), the login code, the 2FA password, the bot token,
a stored session string, Flower's own password, or a full phone number (phones are
masked, never shown whole). The producer API still hands the caller the QR while the
login is pending, and no longer once it has finished.
"""

from __future__ import annotations

import base64
import json
import re
import secrets
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest

from integration_service.emulator.world.client_helper import random_phone
from integration_service.runtime.session_runtime import session_context
from integration_service.store import SessionKey
from tests.support.processes import running_flower, wait_for
from tests.support.system import SystemUnderTest, WorkerProcess

TENANT = "tenant-secrets"
REDIS_DB = 5
FLOWER_USER = "operator"
FLOWER_PASSWORD = f"flower-pw-{secrets.token_hex(8)}"
# Every PNG starts with these 8 bytes, so every base64 PNG starts with this text.
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
PNG_BASE64_PREFIX = base64.b64encode(PNG_MAGIC)[:10].decode()


@dataclass
class Flower:
    port: int
    log_path: Path

    def get(self, path: str, *, auth: bool = True) -> tuple[int, str]:
        request = urllib.request.Request(f"http://127.0.0.1:{self.port}{path}")
        if auth:
            pair = f"{FLOWER_USER}:{FLOWER_PASSWORD}".encode()
            request.add_header("Authorization", "Basic " + base64.b64encode(pair).decode())
        try:
            with urllib.request.urlopen(request, timeout=10) as answer:  # noqa: S310
                return answer.status, answer.read().decode(errors="replace")
        except urllib.error.HTTPError as error:
            return error.code, ""
        except OSError:
            return 0, ""

    def tasks(self) -> dict[str, dict[str, Any]]:
        status, body = self.get("/api/tasks?limit=1000")
        assert status == 200, status
        tasks = json.loads(body)
        assert isinstance(tasks, dict)
        return tasks


@pytest.fixture(scope="module")
def system_overrides() -> dict[str, str]:
    return {"REDIS_URL": f"redis://127.0.0.1:6379/{REDIS_DB}"}


@pytest.fixture(scope="module")
def worker(system: SystemUnderTest) -> WorkerProcess:
    system.store.ensure_tenant(TENANT)
    return system.start_worker("secrets", concurrency=4)


@pytest.fixture(scope="module")
def flower(
    system: SystemUnderTest, worker: WorkerProcess, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Flower]:
    log_path = tmp_path_factory.mktemp("flower") / "flower.log"
    # As `integration-service run` starts it: the credentials in its environment only.
    env = {**system.env, "FLOWER_BASIC_AUTH": f"{FLOWER_USER}:{FLOWER_PASSWORD}"}
    with running_flower(env, log_path) as (port, _pid):
        dashboard = Flower(port, log_path)
        assert dashboard.get("/api/tasks", auth=False)[0] == 401

        # Flower only knows the jobs whose events it received: wait until it sees one.
        def sees_a_ping() -> bool:
            system.producer.send_task("tasks.maintenance.ping")
            return any(
                t.get("name") == "tasks.maintenance.ping" and t.get("state") == "SUCCESS"
                for t in dashboard.tasks().values()
            )

        wait_for(sees_a_ping, timeout=60, interval=1.0, what="Flower receiving task events")
        yield dashboard


def qr_token(url: str) -> str:
    return parse_qs(urlparse(url).query)["token"][0]


def stored_session_string(system: SystemUnderTest, app_id: str) -> str:
    key = SessionKey(TENANT, app_id)
    row = system.store.require(key)
    assert row.state == "authorized" and row.session_string_enc is not None
    return system.cipher.decrypt(row.session_string_enc, context=session_context(key))


def result_backend(system: SystemUnderTest) -> str:
    values = []
    for raw_key in system.redis.scan_iter(match="celery-task-meta-*"):
        value = system.redis.get(raw_key)
        if value is not None:
            values.append(value.decode(errors="replace"))
    assert values, "no results in the result backend"
    return "\n".join(values)


def process_list() -> str:
    # ww: whole command lines, however long.
    return subprocess.run(["ps", "-efww"], capture_output=True, text=True, check=True).stdout


def digits_found(digits: str, text: str) -> bool:
    """``digits`` standing alone (not part of a longer number, a float or an id)."""
    return re.search(rf"(?<![0-9A-Za-z.]){re.escape(digits)}(?![0-9A-Za-z.])", text) is not None


def test_no_login_secret_in_flower_results_or_ps(
    system: SystemUnderTest, worker: WorkerProcess, flower: Flower
) -> None:
    client = system.client()
    job_ids: list[str] = []
    texts: list[str] = []  # secrets: every string below must appear nowhere
    phones: list[str] = []

    # A QR login. The caller gets the QR through the producer API while it is pending.
    qr_phone = random_phone()
    system.control.create_user(qr_phone, "Qr", username=f"sec{qr_phone[-6:]}")
    handle = client.start_qr_login(TENANT, "qr")
    job_ids.append(handle.job_id)
    started = client.wait(handle, timeout=30)
    assert started["state"] == "qr_pending" and started["ticket_id"]
    qr = client.qr_code(TENANT, "qr", started["ticket_id"])
    assert qr is not None and qr.url.startswith("tg://login?token=")
    png = qr.png_base64()
    assert base64.b64decode(png).startswith(PNG_MAGIC)
    texts += [qr.url, qr_token(qr.url), png]
    system.control.call("POST", "/qr/approve", {"token": qr_token(qr.url), "phone": qr_phone})
    assert client.wait_for_state(TENANT, "qr", {"authorized", "failed"}).state == "authorized"
    assert client.qr_code(TENANT, "qr") is None  # finished: the QR is gone
    texts.append(stored_session_string(system, "qr"))
    phones.append(qr_phone)

    # A code login with 2FA, a wrong code and a wrong password first.
    phone = "+" + random_phone()
    password = f"pw {secrets.token_hex(6)} horse"
    system.control.create_user(phone, "Code", password=password)
    steps = [client.request_code(TENANT, "code", phone)]
    assert client.wait(steps[-1], timeout=30)["state"] == "code_sent"
    code = system.control.login_code(phone)
    wrong_code = "00000" if code != "00000" else "11111"
    for submitted in (wrong_code, code):
        steps.append(client.submit_code(TENANT, "code", submitted))
        client.wait(steps[-1], timeout=30)
    wrong_password = f"wrong {secrets.token_hex(6)}"
    for typed in (wrong_password, password):
        steps.append(client.submit_password(TENANT, "code", typed))
        last = client.wait(steps[-1], timeout=30)
    assert last["state"] == "authorized", last
    job_ids += [s.job_id for s in steps]
    texts += [password, wrong_password, stored_session_string(system, "code")]
    phones.append(phone)

    # Bot logins: a good token and a refused one.
    bot = system.control.call("POST", "/bots", {"username": f"sec{random_phone()[-6:]}bot"})
    bad_token = bot["token"].split(":")[0] + ":" + "y" * 35
    for app_id, token in (("bot", bot["token"]), ("bot-bad", bad_token)):
        handle = client.connect_bot(TENANT, app_id, token)
        job_ids.append(handle.job_id)
        client.wait(handle, timeout=30)
    texts += [bot["token"], bad_token, stored_session_string(system, "bot")]
    texts.append(FLOWER_PASSWORD)

    # Flower has seen every job end.
    def every_job_ended() -> dict[str, dict[str, Any]] | None:
        tasks = flower.tasks()
        ended = all(tasks.get(j, {}).get("state") in {"SUCCESS", "FAILURE"} for j in job_ids)
        return tasks if ended else None

    tasks = wait_for(every_job_ended, timeout=60, interval=0.5, what="Flower seeing every job")
    # Results reach Flower (the QR login's names its ticket, nothing more), and so do
    # arguments, as the producer chose to show them: ids and a masked phone.
    assert started["ticket_id"] in str(tasks[job_ids[0]]["result"]), tasks[job_ids[0]]
    assert tasks[job_ids[1]]["kwargs"].count("*") >= 6, tasks[job_ids[1]]

    seen = {"flower /api/tasks": json.dumps(tasks)}
    for job_id in job_ids:
        for path in (f"/api/task/info/{job_id}", f"/api/task/result/{job_id}", f"/task/{job_id}"):
            status, body = flower.get(path)
            assert status == 200, (path, status)
            seen[f"flower {path}"] = body
    seen["flower /api/workers"] = flower.get("/api/workers?refresh=1")[1]
    seen["result backend"] = result_backend(system)
    seen["ps -efww"] = process_list()
    # The list holds the worker and Flower themselves, and no credentials option at all.
    assert f"--port={flower.port}" in seen["ps -efww"] and "secrets@%h" in seen["ps -efww"]
    assert "--basic-auth" not in seen["ps -efww"]

    leaks = []
    for where, text in seen.items():
        for secret in texts:
            if secret in text:
                leaks.append(f"{where}: {secret[:24]}...")
        if PNG_BASE64_PREFIX in text or "\\x89PNG" in text or "tg://login" in text:
            leaks.append(f"{where}: a QR image or login URL")
        for digits in (code, *(p.lstrip("+") for p in phones)):
            if digits_found(digits, text):
                leaks.append(f"{where}: {digits[:3]}... (a code or phone number)")
    assert not leaks, "\n".join(leaks)


def test_flower_logs_json_lines(flower: Flower) -> None:
    lines = [line for line in flower.log_path.read_text().splitlines() if line.strip()]
    assert lines
    for line in lines:
        assert isinstance(json.loads(line), dict), line
    assert FLOWER_PASSWORD not in "\n".join(lines)


def test_flower_refuses_credentials_on_its_command_line() -> None:
    refused = subprocess.run(
        [sys.executable, "-m", "integration_service.observability.flower", "--basic-auth=a:b"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert refused.returncode == 2
    assert "FLOWER_BASIC_AUTH" in refused.stderr and "a:b" not in refused.stderr
