"""A subscription's input, validated once at the boundary into a typed value."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from integration_service import inputs
from integration_service.inbound.events import EVENT_TYPES
from integration_service.webhooks.errors import MaxInFlightInvalid, UnknownEventType
from integration_service.webhooks.secret_keys import WebhookSecret, parse_secret
from integration_service.webhooks.targets import TargetUrl, parse_url, resolve_checked

ALL_EVENTS = "*"
MAX_IN_FLIGHT_LIMIT = 1000


@dataclass(frozen=True, slots=True)
class SubscriptionRequest:
    """Everything a new subscription needs, already checked. ``secret`` None: generate."""

    tenant_id: str
    target: TargetUrl
    event_types: tuple[str, ...]
    secret: WebhookSecret | None
    max_in_flight: int


def event_types(values: Iterable[str] | str | None) -> tuple[str, ...]:
    """Known types, sorted and without repeats; ``*`` (or nothing given) means all."""
    given = [values] if isinstance(values, str) else list(values or [])
    if not given:
        return (ALL_EVENTS,)
    unknown = sorted({str(v) for v in given if v != ALL_EVENTS and v not in EVENT_TYPES})
    if unknown:
        raise UnknownEventType(
            f"unknown event type {', '.join(unknown)}; known: "
            f"{', '.join(sorted(EVENT_TYPES))} or {ALL_EVENTS} for all"
        )
    if ALL_EVENTS in given:
        return (ALL_EVENTS,)
    return tuple(sorted(set(given)))


def max_in_flight(value: int) -> int:
    if (
        isinstance(value, bool)
        or not isinstance(value, int)
        or not 1 <= value <= MAX_IN_FLIGHT_LIMIT
    ):
        raise MaxInFlightInvalid(f"must be a whole number from 1 to {MAX_IN_FLIGHT_LIMIT}")
    return value


def subscription_request(
    *,
    tenant_id: str,
    url: str,
    types: Iterable[str] | str | None,
    secret: str | None,
    in_flight: int,
    allow_private: bool,
) -> SubscriptionRequest:
    """Check every field (the address last: it asks DNS) or raise the first refusal."""
    tenant = inputs.identifier("tenant_id", tenant_id)
    target = parse_url(url)
    checked_types = event_types(types)
    parsed_secret = None if secret is None else parse_secret(secret)
    bound = max_in_flight(in_flight)
    if not allow_private:
        resolve_checked(target)
    return SubscriptionRequest(tenant, target, checked_types, parsed_secret, bound)
