"""The audit trail over HTTP: every state-changing call is a row with its actor, target and
outcome; GET /api/integrations/audit filters and pages them, newest first; a tenant reads
its own rows only (the tenant role under row-level security); bad filters are a 422."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import text

from integration_service import audit
from integration_service.api.auth import ApiKeyStore
from integration_service.sessions.state_machine import transition
from tests.api.conftest import AccountMaker, KeyMaker
from tests.support.api_process import ApiProcess
from tests.support.processes import wait_for
from tests.support.system import SystemUnderTest

A = "tenant-audit-a"
B = "tenant-audit-b"
T = "/api/integrations/telegram"
AUDIT = "/api/integrations/audit"


def _actor(system: SystemUnderTest, tenant: str, key: str) -> str:
    (found,) = [r for r in ApiKeyStore(system.engine).list(tenant) if r.hint == key[-4:]]
    return f"api_key:{found.id}"


def _rows(api: ApiProcess, key: str, **query: Any) -> list[dict[str, Any]]:
    path = AUDIT + ("?" + "&".join(f"{k}={v}" for k, v in query.items()) if query else "")
    reply = api.call("GET", path, token=key)
    assert reply.status == 200, reply.body
    return list(reply.body["items"])


def test_calls_are_recorded_and_read_back_filtered_and_paged(
    api: ApiProcess, system: SystemUnderTest, make_key: KeyMaker, make_account: AccountMaker
) -> None:
    make_account(A, "audited")
    writer = make_key(A, "accounts:write", "channels:write")
    reader = make_key(A, "audit:read")
    actor = _actor(system, A, writer)
    assert api.call("POST", f"{T}/accounts/audited/validate", token=writer).status == 202
    made = api.call(
        "POST", f"{T}/channels", token=writer, body={"account_id": "audited", "peer": "@aud_chan"}
    )
    assert made.status == 202, made.body
    gone = api.call("DELETE", f"{T}/channels/{made.body['id']}", token=writer)
    assert gone.status == 204
    missing = api.call("POST", f"{T}/accounts/nobody/validate", token=writer)
    assert missing.status == 404

    def four() -> list[dict[str, Any]] | None:
        rows = _rows(api, reader, actor=actor)
        return rows if len(rows) == 4 else None

    mine = wait_for(four, timeout=10, what="four audit rows of the writer")
    # Newest first, each with what it did, to what, and how it ended.
    assert [(r["action"], r["status"], r["error"]) for r in mine] == [
        (f"POST {T}/accounts/{{account_id}}/validate", "error", "not_found"),
        (f"DELETE {T}/channels/{{channel_id}}", "success", None),
        (f"POST {T}/channels", "success", None),
        (f"POST {T}/accounts/{{account_id}}/validate", "success", None),
    ]
    assert mine[1]["target"] == f"channel:{made.body['id']}"
    assert mine[3]["target"] == "account:audited" and mine[3]["account_id"] == "audited"
    assert all(r["actor"] == actor for r in mine)
    assert [r["id"] for r in _rows(api, reader, actor=actor, status="error")] == [mine[0]["id"]]
    assert len(_rows(api, reader, actor=actor, account_id="audited")) == 1
    since = mine[1]["created_at"].replace("+", "%2B")
    assert {r["id"] for r in _rows(api, reader, actor=actor, since=since)} >= {
        mine[0]["id"],
        mine[1]["id"],
    }
    # Pages: two by two, the cursor going back in time.
    first = api.call("GET", f"{AUDIT}?actor={actor}&limit=2", token=reader).body
    rest = api.call(
        "GET", f"{AUDIT}?actor={actor}&limit=2&before={first['next']}", token=reader
    ).body
    assert [r["id"] for r in first["items"] + rest["items"]] == [r["id"] for r in mine]
    assert rest["next"] is None


def test_job_outcomes_and_families_are_filtered_by_action(
    api: ApiProcess, system: SystemUnderTest, make_key: KeyMaker, make_account: AccountMaker
) -> None:
    """A state change a job makes is recorded by the database in its own transaction."""
    key = make_account(A, "audit-states")
    reader = make_key(A, "audit:read")
    transition(
        system.store, key, "revoked", reason="test: revoked", lease_epoch=1, task_id="job-77"
    )
    rows = _rows(api, reader, action="session", account_id="audit-states")
    assert [(r["action"], r["actor"], r["target"]) for r in rows] == [
        ("session.revoked", "job:job-77", "account:audit-states")
    ]
    assert rows[0]["details"]["from_state"] == "authorized"


def test_a_tenant_reads_only_its_own_trail(
    api: ApiProcess, system: SystemUnderTest, make_key: KeyMaker, make_account: AccountMaker
) -> None:
    make_account(A, "audit-own")
    writer = make_key(A, "accounts:write")
    assert api.call("POST", f"{T}/accounts/audit-own/validate", token=writer).status == 202
    a_reader, b_reader = make_key(A, "audit:read"), make_key(B, "audit:read")
    wait_for(lambda: _rows(api, a_reader, account_id="audit-own"), timeout=10, what="A's audit row")
    assert _rows(api, b_reader, account_id="audit-own") == []
    assert all(r["actor"] != _actor(system, A, writer) for r in _rows(api, b_reader))


def test_bad_filters_are_refused(api: ApiProcess, make_key: KeyMaker) -> None:
    reader = make_key(A, "audit:read")
    for query in ("status=maybe", "before=0", "limit=501", "since=yesterday", "account_id=a%20b"):
        reply = api.call("GET", f"{AUDIT}?{query}", token=reader)
        assert reply.status == 422, (query, reply.body)


def test_rows_past_retention_are_pruned(
    system: SystemUnderTest, make_account: AccountMaker
) -> None:
    make_account(A, "audit-old")
    with system.engine.begin() as conn:
        for age in (91, 89):
            conn.execute(
                text(
                    "INSERT INTO integration_logs (tenant_id, app_id, actor, action, status, "
                    "created_at) VALUES (:t, 'audit-old', 'cli:old', 'tenant add', 'success', "
                    "now() - make_interval(days => :age))"
                ),
                {"t": A, "age": age},
            )
    assert audit.prune(system.engine, timedelta(days=90)) >= 1

    with system.engine.connect() as conn:
        left = conn.execute(
            text(
                "SELECT extract(day FROM now() - created_at)::int FROM integration_logs "
                "WHERE tenant_id = :t AND actor = 'cli:old'"
            ),
            {"t": A},
        ).scalars()
        assert list(left) == [89]
