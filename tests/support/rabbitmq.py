"""A private RabbitMQ virtual host per test session, so runs never share messages."""

from __future__ import annotations

import subprocess
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

BROKER_HOST = "guest:guest@127.0.0.1:5672"


def _rabbitmqctl(*args: str) -> None:
    subprocess.run(["rabbitmqctl", "-q", *args], check=True, capture_output=True, timeout=60)


@contextmanager
def private_vhost() -> Iterator[str]:
    """Create a vhost with full rights for guest; yield its AMQP URL; delete it after."""
    name = f"is-test-{uuid.uuid4().hex[:10]}"
    _rabbitmqctl("add_vhost", name)
    try:
        _rabbitmqctl("set_permissions", "-p", name, "guest", ".*", ".*", ".*")
        yield f"amqp://{BROKER_HOST}/{name}"
    finally:
        _rabbitmqctl("delete_vhost", name)


def busy_queues(broker_url: str) -> list[str]:
    """``name=ready/unacked`` of every queue holding messages in the URL's vhost."""
    vhost = broker_url.rsplit("/", 1)[-1] or "/"
    listed = subprocess.run(
        [
            "rabbitmqctl",
            "-q",
            "list_queues",
            "-p",
            vhost,
            "name",
            "messages_ready",
            "messages_unacknowledged",
            "--no-table-headers",
        ],
        check=True,
        capture_output=True,
        text=True,
        timeout=60,
    ).stdout
    busy = []
    for line in listed.splitlines():
        parts = line.split()
        if len(parts) == 3 and (parts[1] != "0" or parts[2] != "0"):
            busy.append(f"{parts[0]}={parts[1]}/{parts[2]}")
    return busy
