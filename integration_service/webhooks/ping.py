"""A test ping: one signed call to a subscription's URL now, outside the delivery queue
(nothing is stored, nothing is retried), so a receiver can check its signature code.

The body is an envelope of type ``webhook.test`` with a fresh id; it is signed and sent
exactly as a delivery is (the same SSRF check, timeout and headers)."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime

from integration_service.settings import Settings
from integration_service.webhooks.retry_policy import AttemptResult
from integration_service.webhooks.sender import attempt, http_session
from integration_service.webhooks.signing import body_of, signed_headers
from integration_service.webhooks.subscriptions import SubscriptionStore

TEST_EVENT = "webhook.test"


async def ping(
    settings: Settings, store: SubscriptionStore, tenant_id: str, subscription_id: uuid.UUID
) -> tuple[str, AttemptResult]:
    """The ping's id and what the receiver answered."""
    subscription = store.get(tenant_id, subscription_id)
    current, previous = store.signing_keys(tenant_id, subscription_id)
    ping_id = str(uuid.uuid4())
    body = body_of(
        {
            "id": ping_id,
            "type": TEST_EVENT,
            "tenant_id": tenant_id,
            "app_id": None,
            "sequence": 0,
            "occurred_at": datetime.now(UTC).isoformat(),
            "data": {"subscription_id": str(subscription_id)},
        }
    )
    headers = signed_headers(current, previous, ping_id, int(time.time()), body)
    async with http_session(1) as client:
        result = await attempt(
            client,
            subscription.url,
            body,
            headers,
            timeout=settings.webhook_timeout,
            allow_private=settings.webhook_allow_private,
        )
    return ping_id, result
