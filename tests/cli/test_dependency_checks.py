"""The up-front dependency check and the command's budget, without a CLI process.

``Dependencies.check`` runs its probes in parallel and stops waiting at its deadline; the
budget counts from the start of a CLI process, or from entering the CLI inside an older
one. Probes here are real sockets: a closed port refuses, a silent server never answers.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import time

import click
import psycopg.errors
import pytest

from integration_service.cli import budget
from integration_service.dependencies import Dependencies, DependencyUnavailable, reason_of
from tests.support.unreachable import closed_port, silent_server

DEPENDENCIES = Dependencies(
    "postgresql+psycopg://svc:pw@127.0.0.1:5432/app",
    "redis://:pw@127.0.0.1:6379/7",
    "amqp://guest:pw@127.0.0.1:5672//",
    timeout=5,
)


def refused() -> None:
    socket.create_connection(("127.0.0.1", closed_port()), timeout=5).close()


def waits_forever(port: int) -> None:
    with socket.create_connection(("127.0.0.1", port), timeout=30) as connection:
        connection.recv(1)  # a silent server never sends it


def test_a_probe_that_never_answers_is_abandoned_at_the_deadline() -> None:
    with silent_server() as port:
        started = time.monotonic()
        with pytest.raises(DependencyUnavailable) as raised:
            DEPENDENCIES.check(
                {"postgresql": lambda: None, "redis": lambda: waits_forever(port)}, within=0.5
            )
        elapsed = time.monotonic() - started
    assert 0.45 < elapsed < 1.5, elapsed
    error = raised.value
    assert (error.dependency, error.address) == ("redis", "127.0.0.1:6379/7")
    # The reason names the configured timeout: the setting to raise.
    assert error.reason == "no answer within 5s"


def test_a_refusal_is_reported_without_waiting_for_a_slower_probe() -> None:
    with silent_server() as port:
        started = time.monotonic()
        with pytest.raises(DependencyUnavailable) as raised:
            DEPENDENCIES.check(
                {"postgresql": lambda: waits_forever(port), "rabbitmq": refused}, within=4
            )
        elapsed = time.monotonic() - started
    assert elapsed < 1.0, elapsed
    assert (raised.value.dependency, raised.value.reason) == ("rabbitmq", "connection refused")


def test_a_probe_error_that_is_not_about_reaching_it_is_raised_as_it_is() -> None:
    def broken() -> None:
        raise KeyError("a bug, not an outage")

    with pytest.raises(KeyError):
        DEPENDENCIES.check({"redis": broken})


def test_all_probes_answering_is_quiet() -> None:
    DEPENDENCIES.check({"postgresql": lambda: None, "redis": lambda: "PONG"}, within=1)


@pytest.mark.parametrize(
    ("sqlstate", "reason"),
    [
        ("3D000", "database does not exist"),
        ("28P01", "authentication failed"),
        ("28000", "authentication failed"),
        ("53300", "too many connections"),
    ],
)
def test_a_server_sqlstate_gives_the_reason(sqlstate: str, reason: str) -> None:
    error = psycopg.errors.lookup(sqlstate)("text that says something else")
    assert reason_of(error, 5) == reason


def test_outside_a_cli_invocation_the_budget_is_the_whole_timeout() -> None:
    assert budget.remaining(5) == 5


def test_the_budget_shrinks_from_the_commands_start_down_to_the_floor() -> None:
    with click.Context(click.Command("x")) as context:
        context.meta[budget.STARTED_META_KEY] = time.monotonic() - 1.0
        left = budget.remaining(5)
        assert 5 - 1.0 - budget.EXIT_RESERVE - 0.2 < left <= 5 - 1.0 - budget.EXIT_RESERVE
        context.meta[budget.STARTED_META_KEY] = time.monotonic() - 4.9
        assert budget.remaining(5) == budget.MIN_WAIT


def test_a_cli_inside_an_older_process_counts_from_its_entry() -> None:
    # This test process started long ago: its budget must not be spent already.
    with click.Context(click.Command("x")) as context:
        budget.start(context)
        assert budget.remaining(5) > 5 - budget.EXIT_RESERVE - 0.2


def test_a_fresh_process_knows_its_age() -> None:
    code = "from integration_service.cli.budget import process_age; print(process_age())"
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    wall = time.monotonic() - started
    age = float(done.stdout)
    assert 0 < age <= wall + 0.02, (age, wall)  # /proc counts in clock ticks (10 ms)
