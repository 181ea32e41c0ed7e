"""Replay: ``IntegrationClient.events`` and ``integration-service events replay|tail``.

The producer call and the CLI against the real database; ``tail`` runs as a real process
and is stopped by SIGINT, as a user's Ctrl-C stops it.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from click.testing import CliRunner, Result
from sqlalchemy.engine import Engine

from integration_service.cli import main
from integration_service.cli.output import ExitCode
from integration_service.client import IntegrationClient, UnknownTenant
from integration_service.inputs import InvalidInput
from integration_service.settings import get_settings, load_settings
from integration_service.store import SessionKey, SessionNotFound, SessionStore
from tests.inbound.conftest import TENANT, add_session
from tests.inbound.support import append_events, settled
from tests.support.processes import REPO_ROOT, wait_for


@pytest.fixture
def client(database_url: str) -> Iterator[IntegrationClient]:
    producer = IntegrationClient(settings=load_settings(database_url=database_url))
    yield producer
    producer.close()


def cli(database_url: str, *args: str) -> Result:
    get_settings.cache_clear()
    try:
        return CliRunner().invoke(main, list(args), env={"DATABASE_URL": database_url})
    finally:
        get_settings.cache_clear()


def test_events_pages_by_id_cursor_across_sessions(
    client: IntegrationClient, store: SessionStore, engine: Engine, session_key: SessionKey
) -> None:
    other = add_session(store, "second")
    ids = append_events(engine, session_key, range(1, 6)) + append_events(
        engine, other, range(1, 6)
    )
    settled(engine, TENANT)
    pages: list[list[dict[str, Any]]] = []
    cursor: str | None = None
    while page := client.events(TENANT, after=cursor, limit=3):
        pages.append(page)
        cursor = page[-1]["id"]
    assert [len(p) for p in pages] == [3, 3, 3, 1]
    assert [e["id"] for p in pages for e in p] == ids
    # A UUID works as well as its string.
    assert client.events(TENANT, after=uuid.UUID(ids[4]), limit=1)[0]["id"] == ids[5]


def test_events_by_session_sequence_and_type(
    client: IntegrationClient, store: SessionStore, engine: Engine, session_key: SessionKey
) -> None:
    other = add_session(store, "second")
    append_events(engine, other, range(1, 4))
    ids = append_events(engine, session_key, range(1, 8))
    settled(engine, TENANT)
    page = client.events(TENANT, app_id="main", after=4, limit=2)
    assert [(e["sequence"], e["id"]) for e in page] == [(5, ids[4]), (6, ids[5])]
    assert [e["sequence"] for e in client.events(TENANT, app_id="main", after="6")] == [7]
    assert client.events(TENANT, types=["message.sent"]) == []
    assert len(client.events(TENANT, types=["message.received"], limit=1000)) == 10


@pytest.mark.parametrize(
    ("kwargs", "error", "field"),
    [
        ({"after": "not-a-cursor"}, InvalidInput, "after"),
        ({"after": 3}, InvalidInput, "after"),  # a sequence needs its app_id
        ({"after": True, "app_id": "main"}, InvalidInput, "after"),
        ({"after": str(uuid.uuid4())}, InvalidInput, "after"),  # no such event
        ({"types": ["message.recieved"]}, InvalidInput, "types"),
        ({"limit": 0}, InvalidInput, "limit"),
        ({"limit": 1001}, InvalidInput, "limit"),
        ({"app_id": "bad:id"}, InvalidInput, "app_id"),
        ({"app_id": "nobody"}, SessionNotFound, None),
    ],
)
def test_events_refuses_bad_input(
    client: IntegrationClient,
    session_key: SessionKey,
    kwargs: dict[str, Any],
    error: type[Exception],
    field: str | None,
) -> None:
    with pytest.raises(error) as raised:
        client.events(TENANT, **kwargs)
    if field is not None:
        assert isinstance(raised.value, InvalidInput) and raised.value.field == field


def test_events_refuses_an_unknown_tenant_and_another_tenants_cursor(
    client: IntegrationClient, store: SessionStore, engine: Engine, session_key: SessionKey
) -> None:
    with pytest.raises(UnknownTenant):
        client.events("inbound-nobody")
    foreign = append_events(engine, add_session(store, "main", tenant_id="inbound-other"), [1])
    settled(engine, "inbound-other")
    with pytest.raises(InvalidInput):
        client.events(TENANT, after=foreign[0])


def test_replay_prints_a_page_and_the_next_cursor(
    database_url: str, engine: Engine, session_key: SessionKey
) -> None:
    ids = append_events(engine, session_key, range(1, 6))
    settled(engine, TENANT)
    result = cli(database_url, "events", "replay", TENANT, "--limit", "2")
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [e["id"] for e in lines] == ids[:2]
    assert f"next cursor: {ids[1]}" in result.stderr

    result = cli(database_url, "events", "replay", TENANT, "--after", ids[1], "--json")
    document = json.loads(result.stdout)
    assert [e["id"] for e in document["events"]] == ids[2:]
    assert document["next_cursor"] == ids[4] and document["count"] == 3

    result = cli(
        database_url, "events", "replay", TENANT, "--app", "main", "--after", "3", "--json"
    )
    document = json.loads(result.stdout)
    assert [e["sequence"] for e in document["events"]] == [4, 5]
    assert document["next_cursor"] == "5"


@pytest.mark.parametrize(
    ("args", "code"),
    [
        (["--after", "nonsense"], ExitCode.USAGE),
        (["--type", "message.nope"], ExitCode.USAGE),
        (["--limit", "0"], ExitCode.USAGE),
        (["--after", "7"], ExitCode.USAGE),
    ],
)
def test_replay_bad_input_exits_2(
    database_url: str, session_key: SessionKey, args: list[str], code: ExitCode
) -> None:
    result = cli(database_url, "events", "replay", TENANT, *args, "--json")
    assert result.exit_code == code, result.output
    assert json.loads(result.stderr)["error"] == "invalid_input"
    assert result.stdout == ""


def test_replay_unknown_tenant_exits_3_and_database_down_exits_4(
    database_url: str, session_key: SessionKey
) -> None:
    assert cli(database_url, "events", "replay", "inbound-nobody").exit_code == ExitCode.NOT_FOUND
    down = cli("postgresql://postgres@127.0.0.1:1/none", "events", "replay", TENANT)
    assert down.exit_code == ExitCode.DEPENDENCY_DOWN, down.output
    tail_down = cli("postgresql://postgres@127.0.0.1:1/none", "events", "tail", TENANT)
    assert tail_down.exit_code == ExitCode.DEPENDENCY_DOWN, tail_down.output


def _ignore_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)


class TailProcess:
    """``events tail`` as a process; its stdout lines collected by a reader thread."""

    def __init__(self, database_url: str, *args: str) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "integration_service.cli", "events", "tail", *args],
            env={**os.environ, "DATABASE_URL": database_url},
            cwd=REPO_ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            # Started as a non-interactive shell starts a background job: SIGINT ignored.
            # Ctrl-C (SIGINT) must still end the follow (seen in CI as a tail that never
            # stopped).
            preexec_fn=_ignore_sigint,
        )
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line)

    def events(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in list(self.lines)]

    def interrupt(self) -> int:
        self.process.send_signal(signal.SIGINT)
        code = self.process.wait(timeout=30)
        self._reader.join(timeout=10)
        return code

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)


def test_tail_follows_new_events_until_sigint(
    database_url: str, engine: Engine, session_key: SessionKey
) -> None:
    before = append_events(engine, session_key, range(1, 4))
    tail = TailProcess(database_url, TENANT, "--interval", "0.1")
    try:
        # Started from the end: the tail answers for the new events only. Appends go on
        # until the tail has printed one, so its start-up needs no guessing.
        new: list[str] = []

        def printed_a_new_one() -> bool:
            new.extend(append_events(engine, session_key, [100 + len(new)]))
            return bool(tail.events())

        wait_for(printed_a_new_one, timeout=60, interval=0.3, what="tail printing new events")
        new += append_events(engine, session_key, range(500, 505))
        wait_for(
            lambda: {e["id"] for e in tail.events()} >= set(new[-5:]),
            timeout=30,
            what="the last five events on the tail",
        )
        assert tail.interrupt() == 0
        printed = [e["id"] for e in tail.events()]
        assert not set(printed) & set(before)
        assert len(printed) == len(set(printed))
        assert printed == [i for i in new if i in printed]  # in log order
        assert set(new[-5:]) <= set(printed)
    finally:
        tail.stop()


def test_tail_after_a_cursor_prints_from_there_with_a_type_filter(
    database_url: str, engine: Engine, session_key: SessionKey
) -> None:
    ids = append_events(engine, session_key, range(1, 6))
    tail = TailProcess(
        database_url, TENANT, "--after", ids[1], "--type", "message.received", "--interval", "0.1"
    )
    try:
        wait_for(lambda: len(tail.events()) >= 3, timeout=60, what="three events on the tail")
        assert tail.interrupt() == 0
        assert [e["id"] for e in tail.events()] == ids[2:]
    finally:
        tail.stop()


def test_tail_refuses_bad_input_before_following(
    database_url: str, session_key: SessionKey
) -> None:
    tail = TailProcess(database_url, TENANT, "--type", "nope", "--json")
    try:
        assert tail.process.wait(timeout=60) == ExitCode.USAGE
        assert tail.process.stderr is not None
        assert json.loads(tail.process.stderr.read())["error"] == "invalid_input"
    finally:
        tail.stop()
