"""The wheel is the product: built, installed into a fresh venv, run from a temporary directory.

The wheel is built from a copy of the work tree (tracked and untracked files, as a fresh
clone plus local edits), installed into a new venv, and everything then runs from that
venv with the working directory a temporary one and no PYTHONPATH: migrate, the emulator,
a worker, beat and Flower (started with the commands ``integration-service run`` would
use), and a send through the CLI that the emulator must deliver exactly once.

To stay fast and offline, the temporary venv sees the project venv's installed
dependencies through a ``.pth`` line (a plain path: the project venv's own ``.pth`` files,
among them its editable install, are not processed), and the project itself comes from
the wheel; the test asserts so.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import sysconfig
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, text

from integration_service.cli.database import alembic_config
from integration_service.emulator.testing import EmulatorProcess
from integration_service.emulator.world.client_helper import random_phone
from tests.support.database import scratch_database
from tests.support.processes import stop_process, wait_for
from tests.support.rabbitmq import private_vhost
from tests.support.system import SystemUnderTest, free_block, http_get

pytestmark = pytest.mark.e2e

REPO_ROOT = Path(__file__).resolve().parents[2]
REDIS_DB = 8
FLOWER_AUTH = "tester:wheel-flower-password"
# What must never leak into a process that is meant to run from the installed package.
UNSET = ("PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP", "VIRTUAL_ENV")

# Run inside the temporary venv: where the project's modules come from, and the commands
# the `run` supervisor would start (devserver.processes.plan) for these ports.
PROBE = """
import json, sys
from importlib.resources import files
from pathlib import Path
import celeryconfig, integration_service, tasks
from integration_service.cli.database import migrations_dir
from integration_service.devserver.processes import Ports, plan
from integration_service.settings import get_settings

emulator, flower, metrics_base, state_dir = sys.argv[1:5]
ports = Ports(emulator=int(emulator), flower=int(flower), metrics_base=int(metrics_base))
processes = plan(get_settings(), Path(state_dir), ports, concurrency=2)
print(json.dumps({
    "files": [integration_service.__file__, tasks.__file__, celeryconfig.__file__,
              str(migrations_dir())],
    "sys_path": sys.path,
    "event_schema": files("integration_service.inbound").joinpath("event_schema.json").is_file(),
    "plan": {p.name: {"argv": p.argv, "env": p.env, "ready_url": p.ready_url}
             for p in processes},
}))
"""


@dataclass(frozen=True)
class Venv:
    root: Path

    @property
    def python(self) -> Path:
        return self.root / "bin" / "python"

    @property
    def cli(self) -> Path:
        return self.root / "bin" / "integration-service"


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in UNSET}
    return {**env, **extra}


def run(args: list[str | Path], *, cwd: Path, env: dict[str, str], timeout: float = 120) -> str:
    done = subprocess.run(
        [str(a) for a in args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout
    )
    assert done.returncode == 0, f"{args} exited {done.returncode}:\n{done.stdout}{done.stderr}"
    return done.stdout


def copy_work_tree(dest: Path) -> Path:
    """The repository's files as a fresh clone would have them, plus uncommitted ones.

    Building from a copy keeps setuptools' build/ and egg-info out of the work tree and
    stale build output out of the wheel.
    """
    listed = run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=REPO_ROOT,
        env=clean_env(),
    )
    for name in filter(None, listed.split("\0")):
        source = REPO_ROOT / name
        if source.is_file():  # deleted but not yet committed: absent
            target = dest / name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(source.read_bytes())
    return dest


def make_venv(root: Path, *install: str | Path) -> Venv:
    """A new venv with ``pip install --no-deps *install``, then the project venv's
    dependencies visible after its own site-packages (added last, so pip never sees the
    project venv's editable install as one to replace)."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(root)], check=True)
    venv = Venv(root)
    pip: list[str | Path] = [sys.executable, "-m", "pip", "--python", venv.python, "install"]
    run([*pip, "-q", "--no-deps", *install], cwd=root, env=clean_env())
    own = run(
        [venv.python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
        cwd=root,
        env=clean_env(),
    ).strip()
    shared = {sysconfig.get_path("purelib"), sysconfig.get_path("platlib")}
    (Path(own) / "_project_venv_dependencies.pth").write_text("\n".join(sorted(shared)) + "\n")
    return venv


@dataclass
class Started:
    name: str
    process: subprocess.Popen[bytes]
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_ready(self, url: str, *, timeout: float = 60, auth: str | None = None) -> None:
        wait_for(
            lambda: self.process.poll() is not None or http_get(url, auth)[0] == 200,
            timeout=timeout,
            interval=0.25,
            what=f"{self.name} ready at {url}",
        )
        assert self.process.poll() is None, f"{self.name} exited:\n{self.log()}"


@contextmanager
def started(name: str, argv: list[str], *, cwd: Path, env: dict[str, str]) -> Iterator[Started]:
    log_path = cwd / f"{name}.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(argv, cwd=cwd, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        yield Started(name, process, log_path)
    finally:
        stop_process(process, timeout=30)


@pytest.fixture(scope="module")
def source_tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return copy_work_tree(tmp_path_factory.mktemp("source"))


@pytest.fixture(scope="module")
def wheel_venv(source_tree: Path, tmp_path_factory: pytest.TempPathFactory) -> Venv:
    dist = tmp_path_factory.mktemp("dist")
    # setuptools is taken in an isolated build env from the configured package index, as
    # `pip install .` does: the project venv's own setuptools may be older than the
    # build-system's floor.
    run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", dist, source_tree],
        cwd=dist,
        env=clean_env(),
        timeout=300,
    )
    (wheel,) = dist.glob("integration_service-*.whl")
    return make_venv(tmp_path_factory.mktemp("wheel-venv") / "venv", wheel)


def head_revision() -> str:
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None
    return head


def schema_revision(url: str) -> str:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return str(conn.execute(text("SELECT version_num FROM alembic_version")).scalar_one())
    finally:
        engine.dispose()


def test_wheel_migrates_starts_every_process_and_sends_from_any_directory(
    wheel_venv: Venv, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    work = tmp_path / "work"
    work.mkdir()
    # In-process helpers (the emulator wrapper) start their subprocesses here too.
    monkeypatch.chdir(work)
    state_dir = work / "state"
    with ExitStack() as stack:
        database_url = stack.enter_context(scratch_database("is_wheel"))
        broker_url = stack.enter_context(private_vhost())

        migrated = run(
            [wheel_venv.cli, "migrate"], cwd=work, env=clean_env(DATABASE_URL=database_url)
        )
        assert "database at head" in migrated
        assert schema_revision(database_url) == head_revision()

        emulator = EmulatorProcess(state_dir / "emulator", env=clean_env())
        emulator.args = [
            str(wheel_venv.cli),
            "emulator",
            "--host",
            "127.0.0.1",
            "--port",
            "0",
            "--state-dir",
            str(state_dir / "emulator"),
            "--log-level",
            "WARNING",
        ]
        stack.enter_context(emulator)

        system = SystemUnderTest(
            database_url=database_url,
            broker_url=broker_url,
            state_dir=work / "harness",
            emulator=emulator,
            overrides={"REDIS_URL": f"redis://127.0.0.1:6379/{REDIS_DB}"},
        )
        stack.callback(system.close)
        env = clean_env(**system.env, FLOWER_BASIC_AUTH=FLOWER_AUTH)

        # One block of free ports: picked one by one, Flower's could be a metrics port.
        metrics_base = free_block(5)
        flower_port = metrics_base + 5
        probe: dict[str, Any] = json.loads(
            run(
                [
                    wheel_venv.python,
                    "-c",
                    PROBE,
                    str(emulator.endpoint.port),
                    str(flower_port),
                    str(metrics_base),
                    str(state_dir),
                ],
                cwd=work,
                env=env,
            )
        )
        # The project runs from the wheel: not from the repository, not from the cwd.
        for path in probe["files"]:
            assert Path(path).is_relative_to(wheel_venv.root), path
        assert not any(Path(p or ".").resolve() == REPO_ROOT for p in probe["sys_path"])
        assert probe["event_schema"], "docs/EVENTS.md's JSON Schema is missing from the wheel"
        plan = probe["plan"]
        for name in ("worker_bulk", "beat", "relay", "flower"):
            assert plan[name]["argv"][0] == str(wheel_venv.python), plan[name]["argv"]

        def start(name: str) -> Started:
            entry = plan[name]
            process = stack.enter_context(
                started(name, entry["argv"], cwd=work, env={**env, **entry["env"]})
            )
            return process

        worker, beat, flower = start("worker_bulk"), start("beat"), start("flower")
        relay = start("relay")
        worker.wait_ready(plan["worker_bulk"]["ready_url"])
        beat.wait_ready(plan["beat"]["ready_url"])
        relay.wait_ready(plan["relay"]["ready_url"])
        flower.wait_ready(plan["flower"]["ready_url"])

        # Flower loaded the app's configuration: it reaches our vhost and sees the worker.
        def flower_sees_worker() -> bool:
            status, body = http_get(
                f"http://127.0.0.1:{flower_port}/api/workers?refresh=1", FLOWER_AUTH
            )
            return status == 200 and any(name.startswith("bulk@") for name in json.loads(body))

        wait_for(flower_sees_worker, timeout=30, interval=0.5, what="Flower listing the worker")

        (sender,) = system.provision(1, tenant_id="wheel")
        recipient = f"wheelrcpt{random_phone()[-6:]}"
        recipient_id = int(
            system.control.create_user(random_phone(), "Rcpt", username=recipient)["user_id"]
        )
        body = "sent by the wheel"
        sent = run(
            [
                wheel_venv.cli,
                "send",
                sender.key.tenant_id,
                sender.key.app_id,
                "--peer",
                f"@{recipient}",
                "--text",
                body,
                "--wait",
                "--timeout",
                "60",
                "--json",
            ],
            cwd=work,
            env=env,
        )
        assert json.loads(sent)["status"] == "sent", sent
        delivered = system.control.messages()
        assert [(m["sender_id"], m["peer_id"], m["text"]) for m in delivered] == [
            (sender.user_id, recipient_id, body)
        ], worker.log()
        # The send's outcome became a message.sent event, which the relay published.
        relay_metrics = plan["relay"]["ready_url"].replace("/health/ready", "/metrics")
        wait_for(
            lambda: 'events_published_total{type="message.sent"} 1.0' in http_get(relay_metrics)[1],
            timeout=30,
            interval=0.25,
            what="the relay publishing message.sent",
        )

        for process in (relay, flower, beat, worker):
            stop_process(process.process, timeout=30)
            assert process.process.poll() is not None


def test_editable_install_works_from_any_directory(source_tree: Path, tmp_path: Path) -> None:
    venv = make_venv(tmp_path / "venv", "-e", source_tree)
    work = tmp_path / "work"
    work.mkdir()
    files = run(
        [
            venv.python,
            "-c",
            "import celeryconfig, integration_service.celery_app as a, tasks;"
            "from integration_service.cli.database import migrations_dir;"
            "print(celeryconfig.__file__, a.__file__, tasks.__file__, migrations_dir())",
        ],
        cwd=work,
        env=clean_env(),
    ).split()
    assert [Path(f) for f in files] == [
        source_tree / "celeryconfig.py",
        source_tree / "integration_service" / "celery_app.py",
        source_tree / "tasks" / "__init__.py",
        source_tree / "alembic",
    ]
    with scratch_database("is_editable") as url:
        run([venv.cli, "migrate"], cwd=work, env=clean_env(DATABASE_URL=url))
        assert schema_revision(url) == head_revision()
    # The repository's own way stays: `alembic upgrade head` from the root, with alembic.ini.
    with scratch_database("is_alembic_ini") as url:
        run(
            [venv.python, "-m", "alembic", "upgrade", "head"],
            cwd=source_tree,
            env=clean_env(DATABASE_URL=url),
        )
        assert schema_revision(url) == head_revision()
