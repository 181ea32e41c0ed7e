"""The producer path loads neither Telethon nor the worker runtime (each in a fresh process).

Telethon alone takes about a quarter of a second to import, and a service that only
enqueues has no use for it or for ``integration_service.runtime``; sys.modules of a
new interpreter shows what a path really imported.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator

import pytest
from sqlalchemy.engine import Engine

from integration_service.store import SessionKey, SessionMaterial, SessionStore

WORKER_SIDE = ("telethon", "integration_service.runtime", "integration_service.celery_app")
TENANT = "tenant-imports"

REPORT = """
import json, sys
print(json.dumps(sorted(
    name for name in sys.modules
    if name.split(".")[0] == "telethon" or name.startswith(
        ("integration_service.runtime", "integration_service.celery_app")
    )
)))
"""


def imported_after(code: str, env: dict[str, str] | None = None) -> list[str]:
    done = subprocess.run(
        [sys.executable, "-c", code + REPORT],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
        env=env,
    )
    loaded: list[str] = json.loads(done.stdout.strip().splitlines()[-1])
    return loaded


def test_the_report_sees_what_a_worker_imports() -> None:
    # The check itself can fail: the worker's app does load both.
    loaded = imported_after("import integration_service.celery_app")
    assert "telethon" in loaded and "integration_service.runtime" in loaded


def test_importing_the_client_loads_no_worker_side() -> None:
    assert imported_after("import integration_service.client") == []


@pytest.fixture
def environment(database_url: str, engine: Engine, broker_url: str) -> Iterator[dict[str, str]]:
    store = SessionStore(engine)
    store.ensure_tenant(TENANT)
    store.save(SessionMaterial(SessionKey(TENANT, "live"), "user", "authorized", lease_epoch=0))
    yield {
        **os.environ,
        "DATABASE_URL": database_url,
        "CELERY_BROKER_URL": broker_url,
        "REDIS_URL": "redis://127.0.0.1:6379/7",
    }


def test_enqueueing_and_reading_status_load_no_worker_side(environment: dict[str, str]) -> None:
    code = f"""
from integration_service.client import IntegrationClient
client = IntegrationClient()
client.get_status({TENANT!r}, "live")
handle = client.send_message({TENANT!r}, "live", "@someone", "hi")
assert handle.queue == "mid", handle
client.close()
"""
    assert imported_after(code, environment) == []
