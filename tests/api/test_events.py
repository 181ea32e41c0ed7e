"""Events over HTTP: pages after a cursor, and a Server-Sent Events stream that a client
resumes with Last-Event-ID across a restart of the API, losing and repeating nothing."""

from __future__ import annotations

import http.client
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from integration_service.inbound.event_log import EventLog
from tests.api.conftest import AccountMaker, KeyMaker
from tests.support.api_process import ApiProcess, running_api
from tests.support.system import SystemUnderTest
from tests.webhooks.harness import append_messages

TENANT = "tenant-api-events"
E = "/api/integrations/events"


@pytest.fixture(scope="module")
def log(system: SystemUnderTest, make_account: AccountMaker) -> EventLog:
    make_account(TENANT, "acct")
    return EventLog(system.engine)


def test_pages_follow_the_cursor_without_gaps_or_repeats(
    api: ApiProcess, system: SystemUnderTest, make_key: KeyMaker, log: EventLog
) -> None:
    key = make_key(TENANT, "events:read")
    from integration_service.store import SessionKey

    start = api.call("GET", f"{E}?limit=1000", token=key).body["next"]
    ids = [str(i) for i in append_messages(log, SessionKey(TENANT, "acct"), 5)]
    seen: list[str] = []
    cursor = start
    for _ in range(5):
        path = f"{E}?limit=2" + (f"&after={cursor}" if cursor else "")
        page = api.call("GET", path, token=key)
        assert page.status == 200, page.body
        seen += [e["id"] for e in page.body["items"] if e["type"] == "message.received"]
        cursor = page.body["next"]
        if not page.body["items"]:
            break
    assert seen[-5:] == ids
    bad = api.call("GET", f"{E}?after=00000000-0000-0000-0000-000000000000", token=key)
    assert bad.status == 422 and bad.body["field"] == "after"
    other = make_key("tenant-api-events-other", "events:read")
    assert api.call("GET", f"{E}?after={ids[0]}", token=other).status == 422


class SseReader:
    """A plain HTTP client reading an event stream frame by frame."""

    def __init__(self, base: str, token: str, last_event_id: str | None = None) -> None:
        host, port = base.removeprefix("http://").split(":")
        self.connection = http.client.HTTPConnection(host, int(port), timeout=30)
        headers = {"Authorization": f"Bearer {token}", "Accept": "text/event-stream"}
        if last_event_id is not None:
            headers["Last-Event-ID"] = last_event_id
        self.connection.request("GET", f"{E}/stream", headers=headers)
        self.response = self.connection.getresponse()
        assert self.response.status == 200, self.response.read()

    def events(self, count: int) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = []
        frame: dict[str, str] = {}
        while len(found) < count:
            line = self.response.readline().decode().rstrip("\n")
            if line.startswith(":"):
                continue
            if line == "":
                if "data" in frame:
                    found.append({**json.loads(frame["data"]), "_sse_id": frame.get("id")})
                frame = {}
                continue
            name, _, value = line.partition(": ")
            frame[name] = value
        return found

    def close(self) -> None:
        self.connection.close()


@pytest.fixture
def api_on_fixed_port(
    system: SystemUnderTest, tmp_path: Path
) -> Iterator[tuple[int, dict[str, str], Path]]:
    from tests.support.system import free_port

    yield free_port(), system.env, tmp_path


def test_a_stream_resumed_with_last_event_id_across_a_restart_loses_nothing(
    system: SystemUnderTest,
    make_key: KeyMaker,
    log: EventLog,
    api_on_fixed_port: tuple[int, dict[str, str], Path],
) -> None:
    from integration_service.store import SessionKey

    port, env, tmp = api_on_fixed_port
    key = make_key(TENANT, "events:read")
    session = SessionKey(TENANT, "acct")
    with running_api(env, tmp / "first.log", port=port) as first:
        reader = SseReader(first.base, key)
        sent = [str(i) for i in append_messages(log, session, 10)]
        got = reader.events(10)
        reader.close()
    assert [e["id"] for e in got] == sent
    assert all(e["_sse_id"] == e["id"] for e in got)
    # The API is down: these are committed meanwhile.
    sent += [str(i) for i in append_messages(log, session, 10)]
    with running_api(env, tmp / "second.log", port=port) as second:
        reader = SseReader(second.base, key, last_event_id=got[-1]["id"])
        more = [str(i) for i in append_messages(log, session, 5)]
        rest = reader.events(15)
        reader.close()
    sent += more
    received = [e["id"] for e in got + rest]
    assert received == sent
    assert len(set(received)) == len(received) == 25
