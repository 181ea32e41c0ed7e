"""Subscriptions: add, list, get, remove, rotate the secret, enable and disable.

Secrets are stored encrypted by the session cipher, bound to the subscription
(``webhook/<tenant>/<id>``), so a ciphertext copied to another row does not decrypt. A
rotation keeps the previous secret signing for a grace period (WEBHOOK_SECRET_GRACE):
receivers switch over without dropping a call.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import timedelta

from sqlalchemy import text
from sqlalchemy.engine import Connection, Engine

from integration_service.crypto import SessionCipher
from integration_service.settings import Settings
from integration_service.store.guard import DatabaseGuard
from integration_service.webhooks.database import transaction
from integration_service.webhooks.errors import SubscriptionNotFound, WebhookTenantUnknown
from integration_service.webhooks.records import (
    SUBSCRIPTION_COLUMNS,
    NewSecret,
    Subscription,
    subscription_from,
)
from integration_service.webhooks.secret_keys import WebhookSecret, generate_secret, parse_secret
from integration_service.webhooks.validation import SubscriptionRequest, subscription_request


def secret_context(tenant_id: str, subscription_id: uuid.UUID) -> bytes:
    return f"webhook/{tenant_id}/{subscription_id}".encode()


class SubscriptionStore:
    """The tenant's subscriptions. Every call names the tenant: an id of another tenant's
    subscription is simply not found."""

    def __init__(
        self,
        settings: Settings,
        engine: Engine,
        cipher: SessionCipher,
        *,
        guard: DatabaseGuard | None = None,
    ) -> None:
        self._settings = settings
        self._engine = engine
        self._cipher = cipher
        self._guard = guard or DatabaseGuard()

    # Writing ---------------------------------------------------------------------------

    def add(
        self,
        tenant_id: str,
        url: str,
        event_types: Iterable[str] | str | None = None,
        *,
        secret: str | None = None,
        max_in_flight: int | None = None,
    ) -> NewSecret:
        """Validate, then store a new subscription; its secret (generated unless given)
        is returned once, in text form. Bad input raises before anything is stored."""
        request = subscription_request(
            tenant_id=tenant_id,
            url=url,
            types=event_types,
            secret=secret,
            in_flight=max_in_flight or self._settings.webhook_max_in_flight,
            allow_private=self._settings.webhook_allow_private,
        )
        return self.create(request)

    def create(self, request: SubscriptionRequest) -> NewSecret:
        """Store an already validated request."""
        subscription_id = uuid.uuid4()
        chosen = request.secret or generate_secret()
        ciphertext = self._cipher.encrypt(
            chosen.text, context=secret_context(request.tenant_id, subscription_id)
        )
        with transaction(self._engine, self._guard, "add webhook subscription") as conn:
            _require_tenant(conn, request.tenant_id)
            row = (
                conn.execute(
                    text(
                        "INSERT INTO webhook_subscriptions (id, tenant_id, url, event_types, "
                        "secret_enc, max_in_flight) VALUES (:id, :tenant_id, :url, :types, "
                        f":secret, :max_in_flight) RETURNING {SUBSCRIPTION_COLUMNS}"
                    ),
                    {
                        "id": subscription_id,
                        "tenant_id": request.tenant_id,
                        "url": request.target.url,
                        "types": list(request.event_types),
                        "secret": ciphertext.text,
                        "max_in_flight": request.max_in_flight,
                    },
                )
                .mappings()
                .one()
            )
        return NewSecret(subscription_from(row), chosen.text)

    def remove(self, tenant_id: str, subscription_id: uuid.UUID) -> None:
        """Delete the subscription with its deliveries and their attempts."""
        with transaction(self._engine, self._guard, "remove webhook subscription") as conn:
            removed = conn.execute(
                text("DELETE FROM webhook_subscriptions WHERE id = :id AND tenant_id = :tenant_id"),
                {"id": subscription_id, "tenant_id": tenant_id},
            ).rowcount
        if not removed:
            raise _not_found(tenant_id, subscription_id)

    def rotate_secret(
        self,
        tenant_id: str,
        subscription_id: uuid.UUID,
        *,
        secret: str | None = None,
        grace: timedelta | None = None,
    ) -> NewSecret:
        """Make a new secret current (generated unless given); the current one keeps
        signing for ``grace`` (WEBHOOK_SECRET_GRACE by default), then stops. A secret
        rotated out earlier and still in its grace period is dropped."""
        chosen = generate_secret() if secret is None else parse_secret(secret)
        period = (
            grace if grace is not None else timedelta(seconds=self._settings.webhook_secret_grace)
        )
        ciphertext = self._cipher.encrypt(
            chosen.text, context=secret_context(tenant_id, subscription_id)
        )
        with transaction(self._engine, self._guard, "rotate webhook secret") as conn:
            row = (
                conn.execute(
                    text(
                        "UPDATE webhook_subscriptions SET previous_secret_enc = secret_enc, "
                        "previous_secret_expires_at = now() + :grace, secret_enc = :secret, "
                        "updated_at = now() WHERE id = :id AND tenant_id = :tenant_id "
                        f"RETURNING {SUBSCRIPTION_COLUMNS}"
                    ),
                    {
                        "id": subscription_id,
                        "tenant_id": tenant_id,
                        "secret": ciphertext.text,
                        "grace": period,
                    },
                )
                .mappings()
                .first()
            )
        if row is None:
            raise _not_found(tenant_id, subscription_id)
        return NewSecret(subscription_from(row), chosen.text)

    def set_enabled(
        self,
        tenant_id: str,
        subscription_id: uuid.UUID,
        enabled: bool,
        *,
        reason: str | None = None,
    ) -> Subscription:
        """Enable (clearing the disabled reason) or disable. Deliveries of a disabled
        subscription wait; they are attempted again once it is enabled."""
        with transaction(self._engine, self._guard, "enable/disable webhook subscription") as conn:
            row = (
                conn.execute(
                    text(
                        "UPDATE webhook_subscriptions SET enabled = :enabled, "
                        "disabled_reason = :reason, updated_at = now() "
                        "WHERE id = :id AND tenant_id = :tenant_id "
                        f"RETURNING {SUBSCRIPTION_COLUMNS}"
                    ),
                    {
                        "id": subscription_id,
                        "tenant_id": tenant_id,
                        "enabled": enabled,
                        "reason": None if enabled else (reason or "disabled by an operator"),
                    },
                )
                .mappings()
                .first()
            )
        if row is None:
            raise _not_found(tenant_id, subscription_id)
        return subscription_from(row)

    # Reading ---------------------------------------------------------------------------

    def list_subscriptions(self, tenant_id: str) -> list[Subscription]:
        with transaction(self._engine, self._guard, "list webhook subscriptions") as conn:
            _require_tenant(conn, tenant_id)
            rows = conn.execute(
                text(
                    f"SELECT {SUBSCRIPTION_COLUMNS} FROM webhook_subscriptions "
                    "WHERE tenant_id = :tenant_id ORDER BY created_at, id"
                ),
                {"tenant_id": tenant_id},
            ).mappings()
            return [subscription_from(row) for row in rows]

    def get(self, tenant_id: str, subscription_id: uuid.UUID) -> Subscription:
        with transaction(self._engine, self._guard, "read webhook subscription") as conn:
            row = (
                conn.execute(
                    text(
                        f"SELECT {SUBSCRIPTION_COLUMNS} FROM webhook_subscriptions "
                        "WHERE id = :id AND tenant_id = :tenant_id"
                    ),
                    {"id": subscription_id, "tenant_id": tenant_id},
                )
                .mappings()
                .first()
            )
        if row is None:
            raise _not_found(tenant_id, subscription_id)
        return subscription_from(row)

    def signing_keys(
        self, tenant_id: str, subscription_id: uuid.UUID
    ) -> tuple[WebhookSecret, list[WebhookSecret]]:
        """The current secret and the rotated-out one still in its grace period, as keys
        (what a test ping signs with, like the dispatcher)."""
        with transaction(self._engine, self._guard, "read webhook secrets") as conn:
            row = conn.execute(
                text(
                    "SELECT secret_enc, CASE WHEN previous_secret_expires_at > now() "
                    "THEN previous_secret_enc END FROM webhook_subscriptions "
                    "WHERE id = :id AND tenant_id = :tenant_id"
                ),
                {"id": subscription_id, "tenant_id": tenant_id},
            ).first()
        if row is None:
            raise _not_found(tenant_id, subscription_id)
        current = decrypt_secret(self._cipher, tenant_id, subscription_id, row[0])
        previous = (
            []
            if row[1] is None
            else [decrypt_secret(self._cipher, tenant_id, subscription_id, row[1])]
        )
        return current, previous


def _require_tenant(conn: Connection, tenant_id: str) -> None:
    found = conn.execute(text("SELECT 1 FROM tenants WHERE id = :id"), {"id": tenant_id}).first()
    if found is None:
        raise WebhookTenantUnknown(f"tenant {tenant_id!r} is not registered")


def _not_found(tenant_id: str, subscription_id: uuid.UUID) -> SubscriptionNotFound:
    return SubscriptionNotFound(f"no webhook subscription {subscription_id} for tenant {tenant_id}")


def decrypt_secret(
    cipher: SessionCipher, tenant_id: str, subscription_id: uuid.UUID, ciphertext: str
) -> WebhookSecret:
    """A stored secret back in key form (the dispatcher signs with it)."""
    return parse_secret(
        cipher.decrypt(ciphertext, context=secret_context(tenant_id, subscription_id))
    )
