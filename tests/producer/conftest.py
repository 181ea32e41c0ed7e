"""A private RabbitMQ vhost with the job topology, shared by the producer tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from kombu import Connection

from integration_service.queues import declare_topology
from tests.support.rabbitmq import private_vhost


@pytest.fixture(scope="module")
def broker_url() -> Iterator[str]:
    with private_vhost() as url:
        with Connection(url) as conn:
            declare_topology(conn)
        yield url
