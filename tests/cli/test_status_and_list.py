"""What ``status`` and ``list`` print: ISO-8601 UTC times, auth errors, and a QR URL only
while its login waits for the scan (real PostgreSQL and Redis DB 7, CLI in process)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator

import pytest
import redis

from integration_service.cli.output import ExitCode
from integration_service.sessions.tickets import LoginTickets
from integration_service.store import SessionKey, SessionMaterial, SessionStore
from tests.cli.conftest import run_cli

TENANT = "tenant-cli-status"
REDIS_URL = "redis://127.0.0.1:6379/7"
QR_URL = "tg://login?token=c2VjcmV0LXFyLXRva2Vu"
# 2026-12-02T13:00:05Z and ten minutes later, as the login ticket keeps them.
EXPIRES, DEADLINE = 1796216405.25, 1796217005.0
ISO_UTC = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")


@pytest.fixture
def env(database_url: str, store: SessionStore) -> Iterator[dict[str, str]]:
    store.ensure_tenant(TENANT)
    yield {"DATABASE_URL": database_url, "REDIS_URL": REDIS_URL}
    redis.Redis.from_url(REDIS_URL).flushdb()


@pytest.fixture
def tickets() -> LoginTickets:
    return LoginTickets(redis.Redis.from_url(REDIS_URL), ttl=600)


def status_lines(env: dict[str, str], app_id: str) -> dict[str, str]:
    result = run_cli(["status", TENANT, app_id], env=env)
    assert result.exit_code == ExitCode.OK, result.output
    lines = {}
    for line in result.stdout.splitlines():
        name, _, value = line.strip().rpartition("  ")
        lines[name.strip()] = value.strip()
    return lines


def status_json(env: dict[str, str], app_id: str) -> dict[str, object]:
    result = run_cli(["status", TENANT, app_id, "--json"], env=env)
    assert result.exit_code == ExitCode.OK, result.output
    document: dict[str, object] = json.loads(result.stdout)
    return document


def test_a_pending_qr_login_shows_its_url_and_times_in_iso_utc(
    env: dict[str, str], store: SessionStore, tickets: LoginTickets
) -> None:
    key = SessionKey(TENANT, "qr")
    store.save(SessionMaterial(key, "user", "qr_pending", lease_epoch=0))
    tickets.start(
        key, "qr", status="qr_pending", url=QR_URL, token_expires_at=EXPIRES, deadline=DEADLINE
    )
    lines = status_lines(env, "qr")
    assert lines["token_expires_at"] == "2026-12-02T13:00:05Z"
    assert lines["deadline"] == "2026-12-02T13:10:05Z"
    assert ISO_UTC.match(lines["started_at"]) and ISO_UTC.match(lines["last activity"])
    assert lines["qr_url"] == QR_URL
    assert status_json(env, "qr")["login"] == {
        "method": "qr",
        "status": "qr_pending",
        "started_at": lines["started_at"],
        "token_expires_at": "2026-12-02T13:00:05Z",
        "deadline": "2026-12-02T13:10:05Z",
        "qr_url": QR_URL,
    }


@pytest.mark.parametrize("outcome", ["authorized", "failed", "password_required"])
def test_once_the_login_moved_on_no_qr_url_or_token_is_shown(
    env: dict[str, str], store: SessionStore, tickets: LoginTickets, outcome: str
) -> None:
    key = SessionKey(TENANT, "qr-done")
    store.save(SessionMaterial(key, "user", outcome, lease_epoch=0))
    tickets.start(
        key, "qr", status="qr_pending", url=QR_URL, token_expires_at=EXPIRES, deadline=DEADLINE
    )
    tickets.finish(key, status=outcome)
    for args in (["status", TENANT, "qr-done"], ["status", TENANT, "qr-done", "--json"]):
        result = run_cli(args, env=env)
        assert result.exit_code == ExitCode.OK, result.output
        assert "tg://" not in result.stdout and "token=" not in result.stdout
        assert "token_expires_at" not in result.stdout
    lines = status_lines(env, "qr-done")
    assert lines["status"] == outcome and ISO_UTC.match(lines["finished_at"])


def test_even_a_stale_ticket_never_shows_a_url_outside_qr_pending(
    env: dict[str, str], store: SessionStore
) -> None:
    # A ticket written by an older worker, which left the URL behind after the scan.
    key = SessionKey(TENANT, "stale")
    store.save(SessionMaterial(key, "user", "authorized", lease_epoch=0))
    client = redis.Redis.from_url(REDIS_URL)
    client.hset(
        f"login_ticket:{TENANT}:stale",
        mapping={"method": "qr", "status": "authorized", "url": QR_URL, "token_expires_at": 1.0},
    )
    result = run_cli(["status", TENANT, "stale", "--json"], env=env)
    assert result.exit_code == ExitCode.OK, result.output
    assert "tg://" not in result.stdout and "token_expires_at" not in result.stdout


def test_the_text_keeps_a_space_between_every_name_and_value(
    env: dict[str, str], store: SessionStore, tickets: LoginTickets
) -> None:
    key = SessionKey(TENANT, "spaced")
    store.save(SessionMaterial(key, "user", "qr_pending", lease_epoch=0))
    tickets.start(key, "qr", status="qr_pending", url=QR_URL, token_expires_at=EXPIRES)
    result = run_cli(["status", TENANT, "spaced"], env=env)
    assert "token_expires_at  2026-12-02T13:00:05Z" in result.stdout
    assert not re.search(r"[a-z]\d{9,}", result.stdout)  # no name glued to a raw epoch


def test_a_revoked_session_shows_its_auth_error(env: dict[str, str], store: SessionStore) -> None:
    store.save(
        SessionMaterial(
            SessionKey(TENANT, "gone"),
            "user",
            "revoked",
            lease_epoch=0,
            auth_error="auth_key_unknown",
        )
    )
    assert status_lines(env, "gone")["auth error"] == "auth_key_unknown"
    assert status_json(env, "gone")["auth_error"] == "auth_key_unknown"


def test_a_session_revoked_without_a_stored_reason_shows_its_transition_reason(
    env: dict[str, str], store: SessionStore
) -> None:
    key = SessionKey(TENANT, "old-revoked")
    store.save(SessionMaterial(key, "user", "authorized", lease_epoch=0))
    store.record_transition(
        key, from_state="authorized", to_state="revoked", reason="SESSION_REVOKED", lease_epoch=0
    )
    assert status_lines(env, "old-revoked")["auth error"] == "SESSION_REVOKED"


def test_list_takes_the_tenant_as_status_does(env: dict[str, str], store: SessionStore) -> None:
    store.save(SessionMaterial(SessionKey(TENANT, "a1"), "user", "authorized", lease_epoch=0))
    store.save(SessionMaterial(SessionKey(TENANT, "b2"), "bot", "revoked", lease_epoch=0))
    positional = run_cli(["list", TENANT], env=env)
    assert positional.exit_code == ExitCode.OK, positional.output
    assert run_cli(["list", "--tenant", TENANT], env=env).stdout == positional.stdout
    assert run_cli(["list", TENANT, "--tenant", TENANT], env=env).stdout == positional.stdout
    rows = positional.stdout.splitlines()
    assert rows[0].split() == ["TENANT", "APP", "KIND", "STATE", "LAST", "ACTIVITY"]
    assert [row.split()[1] for row in rows[1:]] == ["a1", "b2"]
    assert all(ISO_UTC.match(row.split()[-1]) for row in rows[1:])

    document = json.loads(run_cli(["list", TENANT, "--state", "revoked", "--json"], env=env).stdout)
    assert [s["app_id"] for s in document["sessions"]] == ["b2"]
    assert ISO_UTC.match(document["sessions"][0]["last_activity_at"])


def test_list_refuses_two_different_tenants(env: dict[str, str]) -> None:
    result = run_cli(["list", TENANT, "--tenant", "other"], env=env)
    assert result.exit_code == ExitCode.USAGE
    assert "give the tenant once" in result.output


def test_list_of_an_unknown_tenant_exits_3(env: dict[str, str]) -> None:
    result = run_cli(["list", "no-such-tenant"], env=env)
    assert result.exit_code == ExitCode.NOT_FOUND
    assert result.stderr.strip() == "error: tenant 'no-such-tenant' is not registered"
