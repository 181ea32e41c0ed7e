"""A replay request (``IntegrationClient.events``), validated once at the boundary.

``after`` is an event id (a UUID, or its string) anywhere in the tenant's log, or, with
``app_id``, a per-session sequence number (an int, or a string of digits). Each malformed
input is an ``InvalidInput`` naming its field; nothing is echoed but the field's name
and, for event types, the known ones.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable
from dataclasses import dataclass

from integration_service.inbound.events import EVENT_TYPES
from integration_service.inputs import InvalidInput, identifier

MAX_LIMIT = 1000
_DIGITS = re.compile(r"^[0-9]{1,18}$")


@dataclass(frozen=True, slots=True)
class EventQuery:
    tenant_id: str
    app_id: str | None
    after: uuid.UUID | int | None
    types: frozenset[str] | None
    limit: int

    @classmethod
    def parse(
        cls,
        tenant_id: object,
        *,
        app_id: object = None,
        after: object = None,
        types: Iterable[object] | None = None,
        limit: object = 100,
    ) -> EventQuery:
        tenant = identifier("tenant_id", tenant_id)
        app = None if app_id is None else identifier("app_id", app_id)
        return cls(tenant, app, cursor(after, app), event_types(types), page_limit(limit))

    def next_cursor(self, last: dict[str, object]) -> str:
        """The cursor that continues after ``last`` (an envelope): the same kind as
        ``after`` (a sequence stays a sequence), else the event id."""
        if isinstance(self.after, int):
            return str(last["sequence"])
        return str(last["id"])


def cursor(value: object, app_id: str | None) -> uuid.UUID | int | None:
    if value is None:
        return None
    if isinstance(value, uuid.UUID):
        return value
    if isinstance(value, bool):
        raise InvalidInput("after", "must be an event id or a sequence number")
    if isinstance(value, str) and _DIGITS.match(value):
        value = int(value)
    if isinstance(value, int):
        if app_id is None:
            raise InvalidInput("after", "a sequence number needs the app_id it belongs to")
        if value < 0:
            raise InvalidInput("after", "a sequence number is 0 or more")
        return value
    if isinstance(value, str):
        try:
            return uuid.UUID(value)
        except ValueError:
            pass
    raise InvalidInput("after", "must be an event id (UUID) or, with app_id, a sequence number")


def event_types(values: Iterable[object] | None) -> frozenset[str] | None:
    if values is None:
        return None
    if isinstance(values, str):
        values = [values]
    chosen = frozenset(values)
    unknown = sorted(str(v) for v in chosen - EVENT_TYPES)
    if unknown:
        raise InvalidInput(
            "types", f"unknown event type {unknown[0]!r}; known: {', '.join(sorted(EVENT_TYPES))}"
        )
    return frozenset(str(v) for v in chosen) or None


def page_limit(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_LIMIT:
        raise InvalidInput("limit", f"must be a whole number from 1 to {MAX_LIMIT}")
    return value
