"""A private RabbitMQ virtual host per test session, so runs never share messages."""

from __future__ import annotations

import subprocess
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from kombu import Connection

from integration_service.queues import dead_letter_queue

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


@dataclass(frozen=True)
class DeadLetter:
    task_id: str
    task: str
    reason: str


def _reason(headers: dict[str, Any]) -> str:
    death = (headers.get("x-death") or [{}])[0]
    return str(headers.get("x-failure-reason") or death.get("reason") or "")


def peek_dead_letters(broker_url: str) -> list[DeadLetter]:
    """The dead-letter queue of the URL's vhost, read and put back in place."""
    found: list[DeadLetter] = []
    with Connection(broker_url) as conn:
        channel = conn.channel()
        try:
            held = []
            # basic_get leaves bodies undecoded: a dead letter may be undecodable.
            while message := channel.basic_get(dead_letter_queue().name, no_ack=False):
                held.append(message)
                headers = message.headers or {}
                found.append(
                    DeadLetter(
                        str(headers.get("id") or "undecodable"),
                        str(headers.get("task") or ""),
                        _reason(headers),
                    )
                )
            for message in held:
                channel.basic_reject(message.delivery_tag, requeue=True)
        finally:
            channel.close()
    return found
