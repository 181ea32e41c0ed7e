"""Signatures: every call verified by the independent ``standardwebhooks`` package, a
wrong secret rejected, and during a rotation both secrets verify."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from integration_service.inbound.event_log import EventLog
from integration_service.store import SessionStore
from integration_service.webhooks import SubscriptionStore
from integration_service.webhooks.secret_keys import generate_secret
from integration_service.webhooks.signing import body_of, signature, signed_headers
from tests.support.webhook_receiver import Receiver
from tests.webhooks.harness import add_session, append_messages, running_dispatcher


def test_own_signature_matches_the_independent_package() -> None:
    secret = generate_secret()
    body = body_of({"id": "e1", "data": {"text": "grüße"}})
    headers = signed_headers(secret, [], "msg_1", 1_700_000_000, body)
    at = datetime.fromtimestamp(1_700_000_000, UTC)
    reference = Webhook(secret.text).sign("msg_1", at, body.decode())
    assert headers["webhook-signature"] == reference
    assert signature(secret, "msg_1", 1_700_000_000, body) == reference


def test_delivered_calls_verify_and_a_wrong_secret_is_rejected(
    store: SessionStore,
    subscriptions: SubscriptionStore,
    event_log: EventLog,
    receiver: Receiver,
    dispatcher_env: dict[str, str],
    tmp_path: Path,
) -> None:
    key = add_session(store, "tenant-sign")
    created = subscriptions.add("tenant-sign", receiver.url("sign"), ["message.received"])
    assert created.secret.startswith("whsec_")
    receiver.configure("sign", secrets=[created.secret])
    ids = append_messages(event_log, key, 5)
    with running_dispatcher(dispatcher_env, tmp_path / "dispatcher.log"):
        calls = receiver.wait_for_calls("sign", 5)
    assert sorted(call["id"] for call in calls) == sorted(str(i) for i in ids)
    assert all(call["valid"] for call in calls), [c["verified_by"] for c in calls]
    wrong = Webhook(generate_secret().text)
    for call in calls:
        # The body is the event envelope, and webhook-id is the event id.
        envelope = json.loads(call["body"])
        assert envelope["id"] == call["id"] and envelope["tenant_id"] == "tenant-sign"
        assert set(envelope) == {
            "id",
            "type",
            "tenant_id",
            "app_id",
            "sequence",
            "occurred_at",
            "data",
        }
        with pytest.raises(WebhookVerificationError):
            wrong.verify(call["body"], call["headers"])


def test_during_a_rotation_both_secrets_verify_and_afterwards_only_the_new(
    store: SessionStore,
    subscriptions: SubscriptionStore,
    event_log: EventLog,
    receiver: Receiver,
    dispatcher_env: dict[str, str],
    tmp_path: Path,
) -> None:
    key = add_session(store, "tenant-rotate")
    created = subscriptions.add("tenant-rotate", receiver.url("rot"))
    old = created.secret
    rotated = subscriptions.rotate_secret("tenant-rotate", created.subscription.id)
    new = rotated.secret
    assert new != old and rotated.subscription.previous_secret_expires_at is not None
    # Index 0: the old secret, 1: the new one; both must verify every call.
    receiver.configure("rot", secrets=[old, new])
    append_messages(event_log, key, 3)
    with running_dispatcher(dispatcher_env, tmp_path / "dispatcher.log"):
        calls = receiver.wait_for_calls("rot", 3)
        for call in calls:
            assert call["verified_by"] == [0, 1], call["verified_by"]
            assert len(call["signature"].split(" ")) == 2
            Webhook(old).verify(call["body"], call["headers"])
            Webhook(new).verify(call["body"], call["headers"])
        # A rotation with no grace: the secret rotated out stops signing at once.
        latest = subscriptions.rotate_secret(
            "tenant-rotate", created.subscription.id, grace=timedelta(0)
        )
        receiver.configure("rot", secrets=[new, latest.secret])
        append_messages(event_log, key, 2)
        later = receiver.wait_for_calls("rot", 5)[3:]
    for call in later:
        assert call["verified_by"] == [1]
        assert len(call["signature"].split(" ")) == 1
