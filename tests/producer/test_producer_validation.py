"""The producer API rejects bad input with specific errors and enqueues nothing."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import redis
from celery import Celery
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from kombu import Connection

from integration_service import inputs
from integration_service.client import IntegrationClient, UnknownTenant
from integration_service.queues import JOB_QUEUES, job_queue
from integration_service.settings import Settings
from integration_service.store import SessionKey, SessionMaterial, SessionNotFound, SessionStore
from integration_service.store.records import IDENTIFIER_PATTERN
from integration_service.telegram.errors import SessionTerminated

TENANT = "tenant-prod"
HYPOTHESIS = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@pytest.fixture
def client(
    broker_url: str, settings: Settings, engine: object, store: SessionStore
) -> Iterator[IntegrationClient]:
    app = Celery("producer-test")
    app.config_from_object("celeryconfig")
    app.conf.broker_url = broker_url
    app.conf.result_backend = "redis://127.0.0.1:6379/14"
    cache = redis.Redis(db=14)
    cache.flushdb()
    store.ensure_tenant(TENANT)
    store.save(SessionMaterial(SessionKey(TENANT, "live"), "user", "authorized", 1))
    store.save(SessionMaterial(SessionKey(TENANT, "dead"), "user", "revoked", 1))
    producer = IntegrationClient(settings=settings, app=app, engine=engine, redis_client=cache)  # type: ignore[arg-type]
    yield producer
    cache.flushdb()
    app.close()


def queued(broker_url: str) -> dict[str, int]:
    with Connection(broker_url) as conn:
        channel = conn.channel()
        try:
            return {q: channel.queue_declare(q, passive=True).message_count for q in JOB_QUEUES}
        finally:
            channel.close()


def purge(broker_url: str) -> None:
    with Connection(broker_url) as conn:
        channel = conn.channel()
        for q in JOB_QUEUES:
            channel.queue_purge(q)
        channel.close()


bad_identifiers = st.one_of(
    st.text(max_size=80).filter(lambda s: not IDENTIFIER_PATTERN.match(s)),
    st.integers(),
    st.none(),
)
bad_phones = st.one_of(
    st.text(max_size=30).filter(lambda s: not inputs.E164.match(s)), st.integers(), st.none()
)
bad_peers = st.one_of(
    st.text(max_size=40).filter(
        lambda s: not inputs.USERNAME.match(s) and not s.lstrip("-").isdigit()
    ),
    st.just(0),
    st.integers(min_value=2**63),
    st.booleans(),
)
bad_texts = st.one_of(
    st.text(alphabet=" \t\n", max_size=5),
    st.text(min_size=4097, max_size=4200),
    st.integers(),
)
bad_keys = st.one_of(
    st.text(max_size=200).filter(lambda s: not inputs.IDEMPOTENCY_KEY.match(s)), st.integers()
)


def test_valid_send_is_enqueued_once(client: IntegrationClient, broker_url: str) -> None:
    purge(broker_url)
    handle = client.send_message(TENANT, "live", "@some_user", "hello", idempotency_key="k1")
    assert handle.queue == "mid"
    assert queued(broker_url) == {"high": 0, "mid": 1, "low": 0}
    purge(broker_url)


@HYPOTHESIS
@given(tenant=bad_identifiers, app=bad_identifiers)
def test_bad_identifiers(
    client: IntegrationClient, broker_url: str, tenant: object, app: object
) -> None:
    for call in (
        lambda: client.start_qr_login(tenant, "app"),  # type: ignore[arg-type]
        lambda: client.send_message(TENANT, app, "@some_user", "x"),  # type: ignore[arg-type]
        lambda: client.validate_session(tenant, app),  # type: ignore[arg-type]
    ):
        with pytest.raises(inputs.InvalidInput) as caught:
            call()
        assert caught.value.field in {"tenant_id", "app_id"}
    assert sum(queued(broker_url).values()) == 0


@HYPOTHESIS
@given(phone=bad_phones)
def test_bad_phones(client: IntegrationClient, broker_url: str, phone: object) -> None:
    with pytest.raises(inputs.InvalidInput) as caught:
        client.request_code(TENANT, "new-app", phone)  # type: ignore[arg-type]
    assert caught.value.field == "phone"
    assert sum(queued(broker_url).values()) == 0


@HYPOTHESIS
@given(peer=bad_peers, text=bad_texts, key=bad_keys)
def test_bad_send_inputs(
    client: IntegrationClient, broker_url: str, peer: object, text: object, key: object
) -> None:
    with pytest.raises(inputs.InvalidInput) as bad_peer:
        client.send_message(TENANT, "live", peer, "fine")  # type: ignore[arg-type]
    assert bad_peer.value.field == "peer"
    with pytest.raises(inputs.InvalidInput) as bad_text:
        client.send_message(TENANT, "live", "@some_user", text)  # type: ignore[arg-type]
    assert bad_text.value.field == "text"
    with pytest.raises(inputs.InvalidInput) as bad_key:
        client.send_message(TENANT, "live", "@some_user", "fine", idempotency_key=key)  # type: ignore[arg-type]
    assert bad_key.value.field == "idempotency_key"
    assert sum(queued(broker_url).values()) == 0


@HYPOTHESIS
@given(code=st.text(max_size=10).filter(lambda s: not inputs.LOGIN_CODE.match(s)))
def test_bad_codes_leave_no_secret_behind(
    client: IntegrationClient, broker_url: str, code: str
) -> None:
    with pytest.raises(inputs.InvalidInput):
        client.submit_code(TENANT, "live", code)
    assert client.redis.keys("secret_drop:*") == []
    assert sum(queued(broker_url).values()) == 0


def test_unknown_tenant_session_and_terminal_session(
    client: IntegrationClient, broker_url: str
) -> None:
    with pytest.raises(UnknownTenant):
        client.start_qr_login("nobody", "app")
    with pytest.raises(SessionNotFound):
        client.send_message(TENANT, "missing", "@some_user", "x")
    with pytest.raises(SessionNotFound):
        client.submit_code(TENANT, "missing", "12345")
    with pytest.raises(SessionTerminated) as caught:
        client.send_message(TENANT, "dead", "@some_user", "x")
    assert caught.value.code == "session_revoked"
    assert client.redis.keys("secret_drop:*") == []
    assert sum(queued(broker_url).values()) == 0


def test_secrets_never_enter_the_job(client: IntegrationClient, broker_url: str) -> None:
    purge(broker_url)
    client.submit_password(TENANT, "live", "correct horse battery")
    with Connection(broker_url) as conn:
        message = conn.SimpleQueue(job_queue("high"), no_ack=True).get(timeout=5)
        body = message.body if isinstance(message.body, str) else message.body.decode()
    assert "correct horse battery" not in body
    assert "password_ref" in body
    (drop,) = client.redis.keys("secret_drop:*")
    assert client.redis.ttl(drop) > 0
