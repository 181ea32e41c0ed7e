"""What the CLI imports to start: ``--help`` next to nothing, ``status`` no Celery or Telethon.

Start-up time is import time (docs/ARCHITECTURE.md, "CLI start-up"): each command module
imports its libraries inside the command. Checked in a fresh interpreter's sys.modules,
so an import added at module level anywhere on the path shows up here.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

from sqlalchemy.engine import Engine

from integration_service.store import SessionKey, SessionMaterial, SessionStore

TENANT = "tenant-cli-imports"
WORKER_SIDE = {"telethon", "integration_service.runtime", "integration_service.celery_app"}
# What --help must not pay for: the database, Redis, Celery, Alembic, settings parsing.
HEAVY = {"sqlalchemy", "psycopg", "redis", "celery", "kombu", "alembic", "pydantic"}


def loaded_by(args: list[str], env: dict[str, str] | None = None) -> set[str]:
    """Top-level packages (and our worker-side modules) in sys.modules after ``args``."""
    code = f"""
import json, sys
from integration_service.cli import main
try:
    main({args!r})
except SystemExit:
    pass
names = set()
for name in list(sys.modules):
    names.add(name.split(".")[0])
    if name.startswith("integration_service."):
        names.add(".".join(name.split(".")[:2]))
print(json.dumps(sorted(names)))
"""
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
        env=env,
    )
    return set(json.loads(done.stdout.strip().splitlines()[-1]))


def test_help_imports_neither_the_worker_side_nor_the_heavy_libraries() -> None:
    loaded = loaded_by(["--help"])
    assert "click" in loaded  # the check sees what was imported
    assert loaded.isdisjoint(WORKER_SIDE | HEAVY), loaded & (WORKER_SIDE | HEAVY)


def test_a_command_help_is_as_light() -> None:
    loaded = loaded_by(["send", "--help"])
    assert loaded.isdisjoint(WORKER_SIDE | HEAVY), loaded & (WORKER_SIDE | HEAVY)


def test_status_reads_without_celery_or_telethon(database_url: str, engine: Engine) -> None:
    store = SessionStore(engine)
    store.ensure_tenant(TENANT)
    store.save(SessionMaterial(SessionKey(TENANT, "live"), "user", "authorized", lease_epoch=0))
    env = {**os.environ, "DATABASE_URL": database_url, "REDIS_URL": "redis://127.0.0.1:6379/7"}
    loaded = loaded_by(["status", TENANT, "live", "--json"], env)
    assert {"sqlalchemy", "redis"} <= loaded  # it did read the database and Redis
    unwanted = WORKER_SIDE | {"celery", "kombu", "alembic"}
    assert loaded.isdisjoint(unwanted), loaded & unwanted
