"""``webhooks add|list|remove|enable|disable|rotate-secret|deliveries|redeliver``.

A secret is shown once, by ``add`` and ``rotate-secret``; one given by the operator is
read from stdin (``--secret-stdin``), never from the command line (ps shows arguments).
Bad input exits 2 with one line naming the field; nothing is stored. An unknown tenant,
subscription or delivery exits 3, like every other command.
"""

from __future__ import annotations

import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import click

from integration_service.cli.audit import audited
from integration_service.cli.output import (
    CommandFailure,
    ExitCode,
    emit,
    guarded,
    json_option,
    table,
)
from integration_service.cli.sessions import iso_utc
from integration_service.cli.wiring import DATABASE, open_client

if TYPE_CHECKING:
    from integration_service.webhooks import Delivery, DeliveryLog, Subscription, SubscriptionStore

STATUSES = ("pending", "in_flight", "delivered", "dead", "cancelled")


@contextmanager
def _stores() -> Iterator[tuple[SubscriptionStore, DeliveryLog]]:
    from integration_service.crypto import build_cipher
    from integration_service.webhooks import (
        DeliveryLog,
        DeliveryNotFound,
        SubscriptionNotFound,
        SubscriptionStore,
        WebhookTenantUnknown,
    )

    with open_client(needs=DATABASE) as client:
        cipher = build_cipher(client.settings)
        try:
            yield (
                SubscriptionStore(client.settings, client.engine, cipher),
                DeliveryLog(client.engine),
            )
        except (WebhookTenantUnknown, SubscriptionNotFound, DeliveryNotFound) as error:
            raise CommandFailure(ExitCode.NOT_FOUND, str(error), error="not_found") from None


def _tenant(value: str) -> str:
    from integration_service import inputs

    return inputs.identifier("tenant_id", value)


def _read_secret(from_stdin: bool) -> str | None:
    if not from_stdin:
        return None
    line = sys.stdin.readline().strip()
    if not line:
        raise CommandFailure(ExitCode.USAGE, "secret: nothing on stdin", error="invalid_input")
    return line


def _times(document: dict[str, Any]) -> dict[str, Any]:
    from datetime import datetime

    return {k: iso_utc(v) if isinstance(v, datetime) else v for k, v in document.items()}


def _subscription_doc(subscription: Subscription) -> dict[str, Any]:
    return _times(subscription.as_dict())


@click.group("webhooks")
def webhooks() -> None:
    """Webhook subscriptions (Standard Webhooks signing) and their delivery log."""


@webhooks.command("add")
@click.argument("tenant_id")
@click.argument("url")
@click.option(
    "--event",
    "--type",
    "events",
    multiple=True,
    metavar="TYPE",
    help="An event type to deliver (repeatable); default: * (all).",
)
@click.option(
    "--secret-stdin",
    is_flag=True,
    help="Read the secret (whsec_<base64>, at least 24 bytes) from stdin instead of "
    "generating one.",
)
@click.option("--max-in-flight", type=int, default=None, help="Calls in flight at most.")
@json_option
@audited("webhooks add")
@guarded
def add(
    tenant_id: str,
    url: str,
    events: tuple[str, ...],
    secret_stdin: bool,
    max_in_flight: int | None,
    as_json: bool,
) -> None:
    """Subscribe URL to tenant TENANT_ID's events; prints the id and the secret (once)."""
    tenant = _tenant(tenant_id)
    secret = _read_secret(secret_stdin)
    with _stores() as (subscriptions, _log):
        created = subscriptions.add(
            tenant, url, list(events) or None, secret=secret, max_in_flight=max_in_flight
        )
    document = {**_subscription_doc(created.subscription), "secret": created.secret}
    emit(
        document,
        lambda: (
            f"subscription {created.subscription.id}\n"
            f"secret {created.secret}\n"
            "(the secret is shown once: give it to the receiver now)"
        ),
    )


@webhooks.command("list")
@click.argument("tenant_id")
@json_option
@guarded
def list_subscriptions(tenant_id: str, as_json: bool) -> None:
    """List tenant TENANT_ID's subscriptions (never their secrets)."""
    tenant = _tenant(tenant_id)
    with _stores() as (subscriptions, _log):
        found = [_subscription_doc(s) for s in subscriptions.list_subscriptions(tenant)]
    for row in found:
        row["events"] = ",".join(row["event_types"])
        row["state"] = "enabled" if row["enabled"] else f"disabled: {row['disabled_reason']}"
    emit(
        {"tenant_id": tenant, "count": len(found), "subscriptions": found},
        lambda: (
            table(
                found,
                ("id", "url", "events", "max_in_flight", "state"),
                ("ID", "URL", "EVENTS", "MAX IN FLIGHT", "STATE"),
            )
            if found
            else f"no webhook subscriptions for tenant {tenant}"
        ),
    )


@webhooks.command("remove")
@click.argument("tenant_id")
@click.argument("subscription_id", type=click.UUID)
@json_option
@audited("webhooks remove")
@guarded
def remove(tenant_id: str, subscription_id: uuid.UUID, as_json: bool) -> None:
    """Delete a subscription with its delivery log."""
    tenant = _tenant(tenant_id)
    with _stores() as (subscriptions, _log):
        subscriptions.remove(tenant, subscription_id)
    emit(
        {"tenant_id": tenant, "id": str(subscription_id), "removed": True},
        f"subscription {subscription_id} removed",
    )


def _set_enabled(tenant_id: str, subscription_id: uuid.UUID, enabled: bool) -> None:
    tenant = _tenant(tenant_id)
    with _stores() as (subscriptions, _log):
        changed = subscriptions.set_enabled(tenant, subscription_id, enabled)
    emit(
        _subscription_doc(changed),
        f"subscription {subscription_id} {'enabled' if enabled else 'disabled'}",
    )


@webhooks.command("enable")
@click.argument("tenant_id")
@click.argument("subscription_id", type=click.UUID)
@json_option
@audited("webhooks enable")
@guarded
def enable(tenant_id: str, subscription_id: uuid.UUID, as_json: bool) -> None:
    """Enable a subscription (after a 410, say); its waiting deliveries go out again."""
    _set_enabled(tenant_id, subscription_id, True)


@webhooks.command("disable")
@click.argument("tenant_id")
@click.argument("subscription_id", type=click.UUID)
@json_option
@audited("webhooks disable")
@guarded
def disable(tenant_id: str, subscription_id: uuid.UUID, as_json: bool) -> None:
    """Pause a subscription: nothing is sent until it is enabled."""
    _set_enabled(tenant_id, subscription_id, False)


@webhooks.command("rotate-secret")
@click.argument("tenant_id")
@click.argument("subscription_id", type=click.UUID)
@click.option(
    "--grace",
    type=click.IntRange(0, 30 * 86400),
    default=None,
    help="Seconds the current secret keeps signing (default WEBHOOK_SECRET_GRACE, 24 h).",
)
@click.option("--secret-stdin", is_flag=True, help="Read the new secret from stdin.")
@json_option
@audited("webhooks rotate-secret")
@guarded
def rotate_secret(
    tenant_id: str,
    subscription_id: uuid.UUID,
    grace: int | None,
    secret_stdin: bool,
    as_json: bool,
) -> None:
    """Make a new secret current; calls carry both signatures until the grace ends."""
    from datetime import timedelta

    tenant = _tenant(tenant_id)
    secret = _read_secret(secret_stdin)
    with _stores() as (subscriptions, _log):
        rotated = subscriptions.rotate_secret(
            tenant,
            subscription_id,
            secret=secret,
            grace=None if grace is None else timedelta(seconds=grace),
        )
    until = iso_utc(rotated.subscription.previous_secret_expires_at)
    emit(
        {**_subscription_doc(rotated.subscription), "secret": rotated.secret},
        lambda: (
            f"subscription {subscription_id}\nsecret {rotated.secret}\n"
            f"(shown once; the previous secret signs too until {until})"
        ),
    )


def _delivery_doc(delivery: Delivery) -> dict[str, Any]:
    return _times(delivery.as_dict())


@webhooks.command("deliveries")
@click.argument("tenant_id")
@click.option("--subscription", "subscription_id", type=click.UUID, default=None)
@click.option("--status", "statuses", multiple=True, type=click.Choice(STATUSES))
@click.option("--limit", type=click.IntRange(1, 10000), default=50, show_default=True)
@click.option("--attempts", "with_attempts", is_flag=True, help="Show every attempt too.")
@json_option
@guarded
def deliveries(
    tenant_id: str,
    subscription_id: uuid.UUID | None,
    statuses: tuple[str, ...],
    limit: int,
    with_attempts: bool,
    as_json: bool,
) -> None:
    """The delivery log, newest first: status, attempts, latency, next attempt, reason."""
    tenant = _tenant(tenant_id)
    with _stores() as (subscriptions, log):
        if subscription_id is not None:
            subscriptions.get(tenant, subscription_id)  # SubscriptionNotFound: exit 3
        found = log.deliveries(
            tenant, subscription_id=subscription_id, statuses=statuses or None, limit=limit
        )
        logged = log.attempts(tenant, [d.id for d in found]) if with_attempts else []
    rows = [_delivery_doc(d) for d in found]
    by_delivery: dict[str, list[dict[str, Any]]] = {}
    for attempt in logged:
        by_delivery.setdefault(str(attempt.delivery_id), []).append(_times(attempt.as_dict()))
    for row in rows:
        if with_attempts:
            row["attempt_log"] = by_delivery.get(row["id"], [])
        row["reason"] = row["dead_reason"] or row["last_error"]

    def text() -> str:
        if not rows:
            return f"no webhook deliveries for tenant {tenant}"
        lines = [
            table(
                rows,
                (
                    "id",
                    "event_id",
                    "status",
                    "attempts",
                    "last_status_code",
                    "last_latency_ms",
                    "next_attempt_at",
                    "reason",
                ),
                ("ID", "EVENT", "STATUS", "ATTEMPTS", "CODE", "LATENCY MS", "NEXT", "REASON"),
            )
        ]
        for row in rows if with_attempts else []:
            lines.append(f"{row['id']}:")
            for attempt in row["attempt_log"]:
                outcome = attempt["error"] or f"HTTP {attempt['status_code']}"
                lines.append(
                    f"  {attempt['attempted_at']}  {outcome}  {attempt['latency_ms']:.0f} ms"
                )
        return "\n".join(lines)

    emit({"tenant_id": tenant, "count": len(rows), "deliveries": rows}, text)


@webhooks.command("redeliver")
@click.argument("tenant_id")
@click.argument("delivery_id", type=click.UUID, required=False)
@click.option(
    "--dead",
    "dead_of",
    type=click.UUID,
    default=None,
    metavar="SUBSCRIPTION_ID",
    help="Redeliver every dead delivery of this subscription.",
)
@json_option
@audited("webhooks redeliver")
@guarded
def redeliver(
    tenant_id: str, delivery_id: uuid.UUID | None, dead_of: uuid.UUID | None, as_json: bool
) -> None:
    """Attempt DELIVERY_ID again now (delivered, dead or cancelled), or with --dead every
    dead delivery of a subscription."""
    if (delivery_id is None) == (dead_of is None):
        raise CommandFailure(
            ExitCode.USAGE,
            "give DELIVERY_ID or --dead SUBSCRIPTION_ID (one of them)",
            error="invalid_input",
        )
    tenant = _tenant(tenant_id)
    with _stores() as (_subscriptions, log):
        if delivery_id is not None:
            again = log.redeliver(tenant, delivery_id)
            emit(_delivery_doc(again), f"delivery {delivery_id} is pending again")
            return
        assert dead_of is not None
        count = log.redeliver_dead(tenant, dead_of)
    emit(
        {"tenant_id": tenant, "subscription_id": str(dead_of), "redelivered": count},
        f"{count} dead deliveries of subscription {dead_of} are pending again",
    )
