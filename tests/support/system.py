"""The whole system for end-to-end tests: emulator, broker vhost, Redis db, real workers.

Each piece is real (subprocesses, RabbitMQ, Redis, PostgreSQL); everything started here
is stopped here. Sessions are provisioned the way a login would leave them: a user signs
in on the emulator, its session string is encrypted and saved through the store.
"""

from __future__ import annotations

import asyncio
import base64
import os
import signal
import socket
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import redis
from celery import Celery
from kombu import Connection
from telethon.sessions import StringSession

from integration_service.client import IntegrationClient
from integration_service.crypto import LocalKeyring
from integration_service.emulator.testing import EmulatorProcess
from integration_service.emulator.world.client_helper import (
    authorized_client,
    minted_session,
    random_phone,
)
from integration_service.runtime.forwarding import worker_queue_prefix
from integration_service.runtime.session_runtime import session_context
from integration_service.settings import Settings, load_settings
from integration_service.store import SessionKey, SessionMaterial, SessionStore, build_engine
from integration_service.telegram.fingerprint import fingerprint_of
from tests.support.emulator_control import ControlError, EmulatorControl
from tests.support.processes import celery_worker_args, stop_process, wait_for
from tests.support.rabbitmq import busy_queues, private_vhost

# The whole systems' Redis database; another one lets a second test session run beside
# this one on the same Redis (a system's teardown flushes its database).
E2E_REDIS_DB = int(os.environ.get("IS_TEST_E2E_REDIS_DB", "11"))
# Short lease and liveness so a takeover after a worker dies happens within seconds, not
# 90 s; jobs left in a dead worker's queue come back after 5 s.
FAST_TAKEOVER = {
    "SESSION_LOCK_TTL": "6",
    "SESSION_LOCK_HEARTBEAT": "2",
    "WORKER_LIVENESS_TTL": "4",
    "WORKER_QUEUE_MESSAGE_TTL": "5",
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _port_free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_block(size: int) -> int:
    """A port p such that p+1 .. p+size are free (`run`'s workers and beat listen on
    METRICS_BASE_PORT+1 .. +3)."""
    for _ in range(50):
        base = free_port()
        if base + size < 65000 and all(_port_free(base + i) for i in range(1, size + 1)):
            return base
    raise RuntimeError("no block of free ports")


def http_get(url: str, auth: str | None = None) -> tuple[int, str]:
    """Status and body of a GET on loopback (basic ``auth`` "user:password"); 0 when
    nothing listens."""
    request = urllib.request.Request(url)  # noqa: S310 - loopback only
    if auth is not None:
        request.add_header("Authorization", "Basic " + base64.b64encode(auth.encode()).decode())
    try:
        with urllib.request.urlopen(request, timeout=5) as answer:  # noqa: S310
            return answer.status, answer.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, ""
    except OSError:
        return 0, ""  # nothing listens (any more)


@dataclass(frozen=True)
class Provisioned:
    key: SessionKey
    user_id: int
    phone: str
    username: str

    @property
    def peer(self) -> str:
        return f"@{self.username}"


@dataclass
class WorkerProcess:
    name: str
    process: subprocess.Popen[bytes]
    log_path: Path
    metrics_port: int = 0
    # The process's lease identity (hostname plus a nonce), read from its liveness key.
    worker_id: str = ""

    def metrics(self) -> str:
        """The worker's Prometheus exposition (its /metrics endpoint)."""
        with urllib.request.urlopen(
            f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=5
        ) as answer:
            return str(answer.read().decode())

    def kill9(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


class SystemUnderTest:
    def __init__(
        self,
        *,
        database_url: str,
        broker_url: str,
        state_dir: Path,
        emulator: EmulatorProcess,
        overrides: dict[str, str] | None = None,
    ) -> None:
        self.state_dir = state_dir
        self.emulator = emulator
        self.control = EmulatorControl(str(emulator.control_url))
        keyring = base64.b64encode(os.urandom(32)).decode()
        self.env: dict[str, str] = {
            "DATABASE_URL": database_url,
            "CELERY_BROKER_URL": broker_url,
            "REDIS_URL": f"redis://127.0.0.1:6379/{E2E_REDIS_DB}",
            "LOCAL_KEYRING": f"k1:{keyring}",
            "TELEGRAM_EMULATOR_CONFIG": str(emulator.state_dir / "emulator.json"),
            "LOG_LEVEL": "INFO",
            # Workers listen only where a test asks for it (tests/listening): placement
            # would otherwise claim every authorised session of the shared database.
            "LISTEN_CAPACITY": "0",
            **(overrides or {}),
        }
        self.settings: Settings = load_settings(
            **{k.lower(): v for k, v in self.env.items() if k != "CELERY_BROKER_URL"},
            broker_url=broker_url,
        )
        self.engine = build_engine(self.settings)
        self.store = SessionStore(self.engine)
        self.cipher = LocalKeyring.from_spec(self.env["LOCAL_KEYRING"])
        self.redis = redis.Redis.from_url(self.env["REDIS_URL"])
        self.redis.flushdb()
        self._workers: list[WorkerProcess] = []
        self.producer = Celery("e2e-producer")
        self.producer.config_from_object("celeryconfig")
        self.producer.conf.broker_url = broker_url
        self.producer.conf.result_backend = self.env["REDIS_URL"]

    # Workers -------------------------------------------------------------------------

    def start_worker(
        self, name: str, queues: str = "high,mid,low", concurrency: int = 8, **env: str
    ) -> WorkerProcess:
        log_path = self.state_dir / f"worker-{name}-{len(self._workers)}.log"
        log = open(log_path, "wb")
        metrics_port = free_port()
        process = subprocess.Popen(
            celery_worker_args(name, queues, concurrency),
            env={**os.environ, **self.env, "METRICS_PORT": str(metrics_port), **env},
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        worker = WorkerProcess(name, process, log_path, metrics_port)
        self._workers.append(worker)
        hostname = f"{name}@{socket.gethostname()}"

        def consuming() -> bool:
            if process.poll() is not None:
                return False
            for raw in self.redis.scan_iter(match=f"worker_alive:{hostname}.*"):
                worker_id = raw.decode().split(":", 1)[1]
                if self._has_consumer(f"{worker_queue_prefix(worker_id)}_mid"):
                    worker.worker_id = worker_id
                    return True
            return False

        try:
            wait_for(consuming, timeout=60, what=f"worker {name} consuming")
        except TimeoutError:
            raise AssertionError(f"worker {name} did not start:\n{worker.log()}") from None
        return worker

    def _has_consumer(self, queue: str) -> bool:
        with Connection(self.env["CELERY_BROKER_URL"]) as conn:
            channel = conn.channel()
            try:
                return channel.queue_declare(queue, passive=True).consumer_count > 0
            except Exception:  # noqa: BLE001 - not declared yet
                return False
            finally:
                if channel.is_open:
                    channel.close()

    def start_beat(self, name: str) -> WorkerProcess:
        """A celery beat process (its leader lease decides whether it sends anything)."""
        log_path = self.state_dir / f"beat-{name}.log"
        log = open(log_path, "wb")
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "integration_service.celery_app",
                "beat",
                f"--schedule={self.state_dir / f'beat-{name}.db'}",
                "--loglevel=INFO",
            ],
            env={**os.environ, **self.env},
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        beat = WorkerProcess(name, process, log_path)
        self._workers.append(beat)
        return beat

    def busy_queues(self) -> list[str]:
        """The broker's queues in this system's vhost that hold messages (for diagnoses)."""
        return busy_queues(self.env["CELERY_BROKER_URL"])

    def stop_worker(self, worker: WorkerProcess) -> int:
        return stop_process(worker.process, timeout=30)

    # Sessions --------------------------------------------------------------------------

    def provision(self, count: int, tenant_id: str = "tenant-e2e") -> list[Provisioned]:
        """``count`` signed-in emulator users, stored as authorised, encrypted sessions."""
        self.store.ensure_tenant(tenant_id)
        return asyncio.run(self._provision(count, tenant_id))

    async def _provision(self, count: int, tenant_id: str) -> list[Provisioned]:
        made = []
        for index in range(count):
            phone = random_phone()
            username = f"user{phone[-7:]}x{index}"
            client = await authorized_client(
                str(self.emulator.control_url), self.emulator.endpoint, phone, username=username
            )
            try:
                me = await client.get_me()
                string = StringSession.save(client.session)
                auth_key = client.session.auth_key.key
            finally:
                await client.disconnect()
            key = SessionKey(tenant_id, f"app-{index:04d}-{phone[-4:]}")
            self.store_session(key, string, auth_key, int(me.id))
            made.append(Provisioned(key, int(me.id), phone, username))
        return made

    def provision_minted(
        self, count: int, tenant_id: str, *, threads: int = 8
    ) -> list[Provisioned]:
        """``count`` users whose auth keys the emulator mints already signed in, stored as
        sessions: set-up at a scale where real logins (a key exchange each) take too long.
        ``provision`` signs in for real."""
        self.store.ensure_tenant(tenant_id)
        stamp = os.urandom(3).hex()

        def one(index: int) -> Provisioned:
            for attempt in range(5):
                phone = f"7997{index:07d}" if attempt == 0 else random_phone()
                username = f"m{stamp}x{index}a{attempt}"
                try:
                    user = self.control.create_user(phone, "Minted", username=username)
                    break
                except ControlError:
                    continue  # the phone is taken in this world: another one
            else:
                raise AssertionError(f"no free phone number for user {index}")
            user_id = int(user["user_id"])
            minted = self.control.call("POST", "/sessions", {"user_id": user_id})
            string, auth_key = minted_session(minted, self.emulator.endpoint)
            key = SessionKey(tenant_id, f"app-m{index:05d}-{phone[-4:]}")
            self.store_session(key, string, auth_key, user_id)
            return Provisioned(key, user_id, phone, username)

        with ThreadPoolExecutor(threads) as pool:
            return list(pool.map(one, range(count)))

    def client(self) -> IntegrationClient:
        """The producer API, wired to this system's broker, database and Redis."""
        return IntegrationClient(
            settings=self.settings, app=self.producer, engine=self.engine, redis_client=self.redis
        )

    def store_session(
        self, key: SessionKey, session_string: str, auth_key: bytes, user_id: int
    ) -> None:
        """Save a signed-in session as a login leaves it: encrypted, authorized."""
        ciphertext = self.cipher.encrypt(session_string, context=session_context(key))
        self.store.save(
            SessionMaterial(
                key=key,
                kind="user",
                state="authorized",
                lease_epoch=0,
                session_string_enc=ciphertext.text,
                key_id=ciphertext.key_id,
                telegram_user_id=user_id,
                dc_id=self.emulator.endpoint.dc_id,
                fingerprint=fingerprint_of(auth_key),
            )
        )

    # Teardown --------------------------------------------------------------------------

    def close(self) -> None:
        for worker in self._workers:
            stop_process(worker.process, timeout=30)
        self.producer.close()
        self.redis.flushdb()
        self.redis.close()
        self.engine.dispose()


@contextmanager
def whole_system(
    *,
    database_url: str,
    emulator: EmulatorProcess,
    state_dir: Path,
    overrides: dict[str, str] | None = None,
) -> Iterator[SystemUnderTest]:
    """A system in a private vhost of its own; every process it started is stopped after."""
    with private_vhost() as broker_url:
        sut = SystemUnderTest(
            database_url=database_url,
            broker_url=broker_url,
            state_dir=state_dir,
            emulator=emulator,
            overrides=overrides,
        )
        try:
            yield sut
        finally:
            sut.close()


def send_kwargs(p: Provisioned, peer: Any, text: str, key: str) -> dict[str, Any]:
    return {
        "tenant_id": p.key.tenant_id,
        "app_id": p.key.app_id,
        "peer": peer,
        "text": text,
        "idempotency_key": key,
    }
