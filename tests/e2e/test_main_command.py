"""`integration-service run` (what `make run` starts), driven as an operator would.

Started in a subprocess on a clean state: every component reports healthy within 60 s;
a QR login and a send through the CLI succeed against it; metrics and Flower answer;
SIGINT stops every process and leaves no lease in Redis.
"""

from __future__ import annotations

import base64
import json
import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import pytest
import redis

from tests.support.database import scratch_database
from tests.support.emulator_control import EmulatorControl
from tests.support.processes import REPO_ROOT, wait_for
from tests.support.rabbitmq import private_vhost
from tests.support.system import free_block, http_get

REDIS_DB = 9
FLOWER_AUTH = "tester:flower-test-password"


def stop_everything(process: subprocess.Popen[bytes], log_path: Path) -> None:
    """honcho starts each child in its own session: stop honcho, then any child it left."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=45)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
    for pid in re.findall(r"started \(pid=(\d+)\)", log_path.read_text(errors="replace")):
        try:
            os.killpg(int(pid), signal.SIGKILL)
        except ProcessLookupError:
            pass


class RunningSystem:
    def __init__(self, env: dict[str, str], state_dir: Path, metrics_base: int, flower: int):
        self.env = env
        self.state_dir = state_dir
        self.metrics_base = metrics_base
        self.flower = flower

    def cli(self, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "integration_service.cli", *args],
            env=self.env,
            cwd=REPO_ROOT,
            input=stdin,
            capture_output=True,
            text=True,
            timeout=120,
        )

    def control(self) -> EmulatorControl:
        info = json.loads((self.state_dir / "emulator" / "emulator.json").read_text())
        return EmulatorControl(info["control_url"])


@pytest.fixture
def running(tmp_path: Path) -> Iterator[tuple[RunningSystem, subprocess.Popen[bytes]]]:
    cache = redis.Redis(db=REDIS_DB)
    cache.flushdb()
    with scratch_database("is_run") as database_url:  # `run` migrates it
        yield from _running(database_url, tmp_path, cache)


def _running(
    database_url: str, tmp_path: Path, cache: redis.Redis
) -> Iterator[tuple[RunningSystem, subprocess.Popen[bytes]]]:
    # Its own database: the bulk worker listens to every authorised session it finds.
    # One block for every port `run` listens on: ports picked one by one could collide.
    metrics_base = free_block(7)
    flower = metrics_base + 6
    with private_vhost() as broker_url:
        env = {
            **os.environ,
            "DATABASE_URL": database_url,
            "CELERY_BROKER_URL": broker_url,
            "REDIS_URL": f"redis://127.0.0.1:6379/{REDIS_DB}",
            "LOCAL_KEYRING": "k1:" + base64.b64encode(os.urandom(32)).decode(),
            "STATE_DIR": str(tmp_path / "state"),
            "EMULATOR_PORT": str(metrics_base + 5),
            "FLOWER_PORT": str(flower),
            "METRICS_BASE_PORT": str(metrics_base),
            "API_PORT": str(metrics_base + 7),
            "FLOWER_BASIC_AUTH": FLOWER_AUTH,
            "TELEGRAM_EMULATOR_CONFIG": str(tmp_path / "state" / "emulator" / "emulator.json"),
        }
        log = open(tmp_path / "run.log", "wb")
        process = subprocess.Popen(
            [sys.executable, "-m", "integration_service.cli", "run", "--concurrency", "4"],
            env=env,
            cwd=REPO_ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        system = RunningSystem(env, tmp_path / "state", metrics_base, flower)
        try:
            yield system, process
        finally:
            stop_everything(process, tmp_path / "run.log")
            log.close()
            cache.flushdb()


def test_run_serves_logins_and_sends_then_stops_cleanly(
    running: tuple[RunningSystem, subprocess.Popen[bytes]], tmp_path: Path
) -> None:
    system, process = running
    # Workers, beat and the relay.
    ready = [f"http://127.0.0.1:{system.metrics_base + i}/health/ready" for i in (1, 2, 3, 4)]

    def all_healthy() -> bool:
        return (
            all(http_get(url)[0] == 200 for url in ready)
            and http_get(f"http://127.0.0.1:{system.flower}/healthcheck")[0] == 200
            and http_get(f"http://127.0.0.1:{system.metrics_base + 7}/health/ready")[0] == 200
            and (system.state_dir / "emulator" / "emulator.json").exists()
        )

    wait_for(all_healthy, timeout=60, interval=0.5, what="every component healthy")
    wait_for(
        lambda: "integration-service is up" in (tmp_path / "run.log").read_text(),
        timeout=10,
        what="the readiness summary",
    )

    # A QR login through the CLI, approved on the emulator as a phone would.
    control = system.control()
    phone = "+79990001122"
    control.create_user(phone, "Cli", username="main_cmd_user")
    assert system.cli("tenant", "add", "acme").returncode == 0
    started = system.cli("qr-login", "acme", "shop", "--json")
    assert started.returncode == 0, started.stderr
    url = json.loads(started.stdout)["qr_url"]
    token = parse_qs(urlparse(url).query)["token"][0]
    control.call("POST", "/qr/approve", {"token": token, "phone": phone})
    final = system.cli("finalize", "acme", "shop", "--timeout", "30")
    assert final.returncode == 0, final.stdout + final.stderr

    control.create_user("+79990001133", "Rcpt", username="main_cmd_rcpt")
    sent = system.cli(
        "send",
        "acme",
        "shop",
        "--peer",
        "@main_cmd_rcpt",
        "--text",
        "hello from the CLI",
        "--wait",
        "--json",
    )
    assert sent.returncode == 0, sent.stderr
    assert json.loads(sent.stdout)["status"] == "sent"
    assert [m["text"] for m in control.messages()] == ["hello from the CLI"]

    # Metrics: the seeds' names, after those jobs.
    high = http_get(f"http://127.0.0.1:{system.metrics_base + 1}/metrics")[1]
    bulk = http_get(f"http://127.0.0.1:{system.metrics_base + 2}/metrics")[1]
    for name in (
        "session_state_transitions_total",
        "session_lock_acquired_total",
        "session_save_attempts_total",
        'celery_tasks_total{queue="high",status="success",task="tasks.connect.start_qr_login"}',
    ):
        assert name in high, name
    # The login handed the session to placement: the bulk worker listens to it and runs
    # its send; the interactive worker kept its role (it never sent anything).
    assert "session_get_client_latency_seconds_bucket" in bulk
    assert 'telegram_messages_sent_total{type="account"} 1.0' in bulk
    assert "tasks.messages.send_message" in "".join(
        line for line in bulk.splitlines() if line.startswith("celery_tasks_total")
    )
    assert "tasks.messages.send_message" not in "".join(
        line for line in high.splitlines() if line.startswith("celery_tasks_total")
    )
    assert 'rabbitmq_queue_messages{queue="dead_letter"}' in bulk
    assert "tenant" not in "".join(line for line in bulk.splitlines() if not line.startswith("#"))

    # Flower: the API with the configured credentials lists both workers.
    assert http_get(f"http://127.0.0.1:{system.flower}/api/workers")[0] == 401
    status, body = http_get(f"http://127.0.0.1:{system.flower}/api/workers?refresh=1", FLOWER_AUTH)
    assert status == 200
    assert any(w.startswith("high@") for w in json.loads(body))
    assert any(w.startswith("bulk@") for w in json.loads(body))

    # Ctrl-C: everything stops, no lease is left behind.
    assert redis.Redis(db=REDIS_DB).keys("session_lock:*")
    process.send_signal(signal.SIGINT)
    assert process.wait(timeout=60) is not None
    for url in ready:
        assert http_get(url)[0] != 200
    assert redis.Redis(db=REDIS_DB).keys("session_lock:*") == []
