"""How the API answers, against the real process: RFC 9457 problems (a 422 lists every
problem), Idempotency-Key (a repeat, a conflict), the body limit, CORS, OpenAPI, and no
secret in any answer."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import text

from tests.api.conftest import AccountMaker, KeyMaker, queued_jobs
from tests.support.api_process import ApiProcess
from tests.support.system import SystemUnderTest

T = "/api/integrations/telegram"
TENANT = "tenant-behaviour"


@pytest.fixture(scope="module")
def api_overrides() -> dict[str, str]:
    return {"CORS_ORIGINS": "https://console.example", "API_MAX_BODY_BYTES": "4096"}


@pytest.fixture(scope="module")
def key(make_key: KeyMaker, make_account: AccountMaker) -> str:
    make_account(TENANT, "acct")
    return make_key(TENANT, "*")


def test_a_422_lists_every_problem_and_names_each_field(api: ApiProcess, key: str) -> None:
    reply = api.call(
        "POST",
        f"{T}/accounts/acct/send",
        token=key,
        body={"peer": "@example_user", "text": "", "colour": "red"},
    )
    assert reply.status == 422
    assert reply.headers["content-type"] == "application/problem+json"
    assert reply.body["type"] == "urn:integration-service:error:invalid_request"
    fields = sorted(problem["field"] for problem in reply.body["errors"])
    assert fields == ["body.colour", "body.text"], reply.body
    reply = api.call("GET", f"{T}/accounts?limit=0&state=zzz", token=key)
    assert sorted(p["field"] for p in reply.body["errors"]) == ["query.limit", "query.state"]


def test_the_library_s_own_validation_is_a_422_with_its_code(api: ApiProcess, key: str) -> None:
    reply = api.call("POST", f"{T}/accounts/acct/send", token=key, body={"peer": "!", "text": "x"})
    assert reply.status == 422
    (problem,) = reply.body["errors"]
    assert (problem["field"], problem["code"]) == ("body.peer", "invalid_peer")
    assert "@username" in problem["detail"]


def test_a_repeated_idempotency_key_gets_the_first_answer_and_enqueues_once(
    api: ApiProcess, system: SystemUnderTest, key: str
) -> None:
    header = {"Idempotency-Key": f"order-{uuid.uuid4().hex}"}
    body = {"peer": "@example_user", "text": "once"}
    before = queued_jobs(system)
    first = api.call("POST", f"{T}/accounts/acct/send", token=key, body=body, headers=header)
    again = api.call("POST", f"{T}/accounts/acct/send", token=key, body=body, headers=header)
    assert first.status == again.status == 202
    assert again.body == first.body
    assert again.headers.get("idempotent-replayed") == "true"
    assert "idempotent-replayed" not in first.headers
    assert queued_jobs(system) == before + 1
    # The same key with another request: 409, and nothing enqueued.
    other = api.call(
        "POST",
        f"{T}/accounts/acct/send",
        token=key,
        body={**body, "text": "twice"},
        headers=header,
    )
    assert other.status == 409
    assert other.code == "idempotency_key_reused"
    assert queued_jobs(system) == before + 1


def test_a_bad_idempotency_key_is_refused(api: ApiProcess, key: str) -> None:
    reply = api.call(
        "POST",
        f"{T}/accounts/acct/validate",
        token=key,
        headers={"Idempotency-Key": "has spaces and !"},
    )
    assert reply.status == 422 and reply.body["field"] == "idempotency_key"


def test_a_body_over_the_limit_is_413_and_changes_nothing(
    api: ApiProcess, system: SystemUnderTest, key: str
) -> None:
    before = queued_jobs(system)
    reply = api.call(
        "POST",
        f"{T}/accounts/acct/send",
        token=key,
        raw=b'{"peer": "@example_user", "text": "' + b"x" * 5000 + b'"}',
        headers={"Content-Type": "application/json"},
    )
    assert reply.status == 413 and reply.code == "payload_too_large"
    assert queued_jobs(system) == before


def test_cors_allows_the_configured_origin_only(api: ApiProcess) -> None:
    allowed = api.call(
        "OPTIONS",
        f"{T}/accounts",
        headers={
            "Origin": "https://console.example",
            "Access-Control-Request-Method": "GET",
            "Access-Control-Request-Headers": "Authorization",
        },
    )
    assert allowed.status == 200
    assert allowed.headers["access-control-allow-origin"] == "https://console.example"
    refused = api.call(
        "OPTIONS",
        f"{T}/accounts",
        headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "GET"},
    )
    assert "access-control-allow-origin" not in refused.headers


def test_openapi_3_1_and_docs_are_served(api: ApiProcess) -> None:
    spec = api.call("GET", "/openapi.json")
    assert spec.status == 200 and spec.body["openapi"].startswith("3.1")
    assert f"{T}/accounts/{{account_id}}/send" in spec.body["paths"]
    assert "HTTPBearer" in spec.body["components"]["securitySchemes"]
    assert api.call("GET", "/docs").status == 200


def test_no_secret_in_answers_or_rows(api: ApiProcess, system: SystemUnderTest, key: str) -> None:
    token = "123456:" + "A" * 35
    reply = api.call(
        "POST",
        f"{T}/connect",
        token=key,
        body={"method": "bot", "app_id": "bot-1", "bot_token": token},
        headers={"Idempotency-Key": f"bot-{uuid.uuid4().hex}"},
    )
    assert reply.status == 202
    assert token not in str(reply.body) and key not in str(reply.body)
    with system.engine.connect() as conn:
        stored = conn.execute(text("SELECT response::text, request_sha256 FROM api_idempotency"))
        for response, digest in stored:
            assert token not in response and token not in digest
        keys = conn.execute(text("SELECT key_sha256, hint FROM api_keys")).all()
    assert all(key not in row[0] for row in keys)
    assert key not in api.log() and token not in api.log()


def test_every_state_changing_call_leaves_an_audit_record(
    api: ApiProcess, system: SystemUnderTest, make_key: KeyMaker, key: str
) -> None:
    """(``key``: the module's account "acct" exists.)"""
    from integration_service.api.auth import ApiKeyStore
    from tests.support.processes import wait_for

    # Keys of their own, so that only this test's calls carry their actors.
    writer, reader = make_key(TENANT, "accounts:write"), make_key(TENANT, "accounts:read")
    ids = {r.hint: str(r.id) for r in ApiKeyStore(system.engine).list(TENANT)}
    writer_actor, reader_actor = f"api_key:{ids[writer[-4:]]}", f"api_key:{ids[reader[-4:]]}"
    assert api.call("POST", f"{T}/accounts/acct/validate", token=writer).status == 202
    assert api.call("POST", f"{T}/accounts/acct/validate", token=reader).status == 403

    def records() -> dict[str, dict[str, object]] | None:
        # The row is written after the answer is sent: wait for both.
        with system.engine.connect() as conn:
            rows = conn.execute(
                text(
                    "SELECT app_id, action, status, details, error_message FROM integration_logs "
                    "WHERE tenant_id = :t AND details->>'actor' = ANY(:actors)"
                ),
                {"t": TENANT, "actors": [writer_actor, reader_actor]},
            ).mappings()
            by_actor = {str(row["details"]["actor"]): dict(row) for row in rows}
        return by_actor if len(by_actor) == 2 else None

    found = wait_for(records, timeout=10, what="both audit records")
    done, refused = found[writer_actor], found[reader_actor]
    assert done["action"] == f"POST {T}/accounts/{{account_id}}/validate"
    assert (done["app_id"], done["status"], done["error_message"]) == ("acct", "success", None)
    assert done["details"] == {"actor": writer_actor, "status_code": 202}
    assert (refused["status"], refused["error_message"]) == ("error", "scope_missing")
    assert refused["details"] == {"actor": reader_actor, "status_code": 403}
