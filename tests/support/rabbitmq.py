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
