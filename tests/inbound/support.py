"""What the inbound tests share: rows appended the one way the log takes them, a consumer
bound to the ``events`` exchange, a broker link that can be cut, a relay process."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import amqp
from kombu import Connection
from sqlalchemy import text
from sqlalchemy.engine import Connection as DbConnection
from sqlalchemy.engine import Engine

from integration_service.inbound.events import MESSAGE_RECEIVED, Event
from integration_service.inbound.relay import EXCHANGE
from integration_service.store import SessionKey
from tests.support.processes import REPO_ROOT, stop_process, wait_for
from tests.support.unreachable import loopback_server

SCHEMA_PATH = REPO_ROOT / "integration_service" / "inbound" / "event_schema.json"
_APPEND = text(
    "SELECT append_inbound_event(:tenant_id, :app_id, :type, :dedup_key, :occurred_at, "
    "CAST(:data AS jsonb))"
)


def received_data(message_id: int, *, text_body: str | None = None) -> dict[str, Any]:
    """``message.received`` data as the feed writes it (docs/EVENTS.md)."""
    return {
        "chat": {"type": "private", "id": 777000, "title": None, "username": "alice"},
        "message_id": message_id,
        "sender": {"type": "user", "id": 777000, "username": "alice", "name": "Alice"},
        "text": text_body if text_body is not None else f"message {message_id}",
        "reply_to_message_id": None,
        "media": None,
        "date": datetime.now(UTC).isoformat(),
        "edit_date": None,
        "out": False,
    }


def append_in(
    conn: DbConnection,
    key: SessionKey,
    message_ids: range | list[int],
    *,
    event_type: str = MESSAGE_RECEIVED,
) -> list[uuid.UUID]:
    """Append one ``message.received`` per message id inside ``conn``'s transaction."""
    ids = []
    for message_id in message_ids:
        new_id = conn.execute(
            _APPEND,
            {
                "tenant_id": key.tenant_id,
                "app_id": key.app_id,
                "type": event_type,
                "dedup_key": f"msg:{message_id}",
                "occurred_at": datetime.now(UTC),
                "data": json.dumps(received_data(message_id)),
            },
        ).scalar()
        assert new_id is not None, f"message {message_id} was in the log already"
        ids.append(uuid.UUID(str(new_id)))
    return ids


def append_events(engine: Engine, key: SessionKey, message_ids: range | list[int]) -> list[str]:
    """Append and commit; the new event ids as strings (what consumers see)."""
    with engine.begin() as conn:
        return [str(i) for i in append_in(conn, key, message_ids)]


def settled(engine: Engine, tenant_id: str) -> list[Event]:
    """Every stored event of the tenant, once replay can see them all.

    Replay reads only rows of transactions older than every transaction still running in
    the cluster (any database: transaction ids are cluster-wide), so a row just committed
    can stay out of sight while some other transaction is open. Tests wait for it.
    """
    from integration_service.inbound.event_log import EventLog

    def all_visible() -> list[Event] | None:
        with engine.connect() as conn:
            stored = {
                str(row[0])
                for row in conn.execute(
                    text("SELECT id FROM inbound_events WHERE tenant_id = :t"), {"t": tenant_id}
                )
            }
        events = EventLog(engine).read(tenant_id, limit=10_000)
        return events if stored and {str(e.id) for e in events} == stored else None

    return wait_for(all_visible, timeout=30, interval=0.05, what="the events visible to replay")


def unpublished(engine: Engine, tenant_id: str) -> int:
    with engine.connect() as conn:
        return int(
            conn.execute(
                text(
                    "SELECT count(*) FROM inbound_events "
                    "WHERE published_at IS NULL AND tenant_id = :t"
                ),
                {"t": tenant_id},
            ).scalar_one()
        )


class EventConsumer:
    """An exclusive queue bound to ``events`` (every routing key by default)."""

    def __init__(self, broker_url: str, binding: str = "#") -> None:
        self.connection = Connection(broker_url)
        self.channel: Any = self.connection.channel()
        self.channel.exchange_declare(EXCHANGE, "topic", durable=True, auto_delete=False)
        self.queue = f"test-events-{uuid.uuid4().hex[:8]}"
        self.channel.queue_declare(self.queue, exclusive=True, auto_delete=True)
        self.channel.queue_bind(self.queue, EXCHANGE, binding)
        self.messages: list[amqp.Message] = []

    def poll(self) -> list[amqp.Message]:
        """Everything that has arrived so far (kept in ``messages``)."""
        while (message := self.channel.basic_get(self.queue, no_ack=True)) is not None:
            self.messages.append(message)
        return self.messages

    def ids(self) -> Counter[str]:
        return Counter(str(m.properties["message_id"]) for m in self.poll())

    def bodies(self) -> list[dict[str, Any]]:
        return [json.loads(m.body) for m in self.poll()]

    def wait_for_ids(self, wanted: set[str], *, timeout: float = 30) -> Counter[str]:
        def all_seen() -> Counter[str] | None:
            seen = self.ids()
            return seen if wanted <= set(seen) else None

        return wait_for(
            all_seen,
            timeout=timeout,
            interval=0.1,
            what=f"{len(wanted)} event ids on the consumer",
        )

    def close(self) -> None:
        self.connection.release()


class SwitchableLink:
    """A loopback TCP proxy to RabbitMQ that can be cut (every connection closed, new ones
    refused) and restored: the broker going away and coming back, as the relay sees it."""

    def __init__(self, target: tuple[str, int] = ("127.0.0.1", 5672)) -> None:
        self.target = target
        self.up = True
        self._lock = threading.Lock()
        self._open: list[socket.socket] = []

    def _pump(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while chunk := source.recv(65536):
                sink.sendall(chunk)
        except OSError:
            pass
        finally:
            for end in (source, sink):
                try:
                    end.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def _accept(self, client: socket.socket) -> None:
        if not self.up:
            client.close()
            return
        upstream = socket.create_connection(self.target, timeout=5)
        upstream.settimeout(None)
        with self._lock:
            self._open += [client, upstream]
        for source, sink in ((client, upstream), (upstream, client)):
            threading.Thread(target=self._pump, args=(source, sink), daemon=True).start()

    def cut(self) -> None:
        self.up = False
        with self._lock:
            sockets, self._open = self._open, []
        for sock in sockets:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            sock.close()

    def restore(self) -> None:
        self.up = True

    @contextmanager
    def serving(self) -> Iterator[int]:
        with loopback_server(self._accept, name="switchable-link") as port:
            try:
                yield port
            finally:
                self.cut()


def vhost_url(broker_url: str, port: int) -> str:
    """``broker_url`` (a private vhost) reached through a proxy on ``port``."""
    vhost = broker_url.rsplit("/", 1)[-1]
    return f"amqp://guest:guest@127.0.0.1:{port}/{vhost}"


@contextmanager
def relay_process(
    env: dict[str, str], log_path: Path, *, metrics_port: int
) -> Iterator[subprocess.Popen[bytes]]:
    """``integration-service relay`` as a process; up once /health/ready answers 200."""
    from tests.support.system import http_get

    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "ab") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "integration_service.cli", "relay"],
            env={**os.environ, **env, "METRICS_PORT": str(metrics_port)},
            cwd=REPO_ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:

            def ready() -> bool:
                assert process.poll() is None, log_path.read_text(errors="replace")
                return http_get(f"http://127.0.0.1:{metrics_port}/health/ready")[0] == 200

            wait_for(ready, timeout=60, interval=0.2, what="the relay's /health/ready")
            yield process
        finally:
            stop_process(process)
