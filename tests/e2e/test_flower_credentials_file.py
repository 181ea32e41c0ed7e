"""A real Flower takes its credentials from FLOWER_BASIC_AUTH_FILE, and only from there.

Flower is started through the project's wrapper (``python -m
integration_service.observability.flower``) on a private vhost, with
FLOWER_BASIC_AUTH_FILE naming a 0600 file (a mounted secret) and a decoy
FLOWER_BASIC_AUTH beside it: the file's pair gets 200 on /api/workers, the decoy, a wrong
password and no credentials get 401, and neither the password nor the file's path is in
``ps -efww`` or in Flower's log. (Bad files: tests/observability/test_flower_credentials.py.)
"""

from __future__ import annotations

import base64
import json
import secrets
import subprocess
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.processes import running_flower
from tests.support.rabbitmq import private_vhost

REDIS_DB = 5  # as the other Flower test; nothing here writes to it
USER = "operator"
PASSWORD = f"file-pw-{secrets.token_hex(8)}"
DECOY = f"decoy:decoy-pw-{secrets.token_hex(4)}"


@dataclass
class RunningFlower:
    port: int
    pid: int
    log_path: Path
    auth_file: Path


def get(port: int, path: str, credentials: str | None) -> int:
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}")
    if credentials is not None:
        token = base64.b64encode(credentials.encode()).decode()
        request.add_header("Authorization", f"Basic {token}")
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:  # noqa: S310 - loopback
            return int(answer.status)
    except urllib.error.HTTPError as error:
        return int(error.code)


@pytest.fixture(scope="module")
def flower(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningFlower]:
    directory = tmp_path_factory.mktemp("flower-file")
    auth_file = directory / "flower-auth"
    auth_file.write_text(f"{USER}:{PASSWORD}\n", encoding="utf-8")
    auth_file.chmod(0o600)
    log_path = directory / "flower.log"
    with private_vhost() as broker_url:
        env = {
            "CELERY_BROKER_URL": broker_url,
            "REDIS_URL": f"redis://127.0.0.1:6379/{REDIS_DB}",
            "FLOWER_BASIC_AUTH_FILE": str(auth_file),
            "FLOWER_BASIC_AUTH": DECOY,
        }
        with running_flower(env, log_path) as (port, pid):
            yield RunningFlower(port, pid, log_path, auth_file)


def test_the_files_credentials_open_the_api_and_nothing_else_does(
    flower: RunningFlower,
) -> None:
    assert stat_mode(flower.auth_file) == 0o600
    assert get(flower.port, "/api/workers", f"{USER}:{PASSWORD}") == 200
    assert get(flower.port, "/api/workers", f"{USER}:{PASSWORD}x") == 401
    assert get(flower.port, "/api/workers", DECOY) == 401  # the file wins
    assert get(flower.port, "/api/workers", None) == 401


def test_neither_the_password_nor_the_file_is_in_the_process_list(flower: RunningFlower) -> None:
    listed = subprocess.run(
        ["ps", "-efww"], capture_output=True, text=True, check=True, timeout=30
    ).stdout
    ours = [line for line in listed.splitlines() if f"--port={flower.port}" in line]
    assert ours, "Flower's own line is not in ps -efww"
    assert str(flower.pid) in "\n".join(ours)
    assert PASSWORD not in listed and DECOY not in listed
    assert "--basic-auth" not in "\n".join(ours)
    assert str(flower.auth_file) not in listed


def test_flower_logs_json_without_the_password(flower: RunningFlower) -> None:
    lines = [line for line in flower.log_path.read_text().splitlines() if line.strip()]
    assert lines
    for line in lines:
        assert isinstance(json.loads(line), dict), line
    assert PASSWORD not in "\n".join(lines)


def stat_mode(path: Path) -> int:
    return path.stat().st_mode & 0o777
