"""The event envelope and the types of events the log holds (docs/EVENTS.md).

Every event has the same envelope: ``id`` (stable, also the webhook-id and the AMQP
message id), ``type``, ``tenant_id``, ``app_id``, ``sequence`` (per session, from 1, no
holes), ``occurred_at`` (Telegram's date, or when our side saw it happen) and ``data``.
"""

from __future__ import annotations

import uuid
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from opentelemetry.trace import Span, SpanKind

from integration_service.tracing.spans import continuing

MESSAGE_RECEIVED = "message.received"
MESSAGE_EDITED = "message.edited"
MESSAGE_DELETED = "message.deleted"
MESSAGE_SENT = "message.sent"
MESSAGE_FAILED = "message.failed"
SESSION_STATE_CHANGED = "session.state_changed"
GAP = "gap"
# Written by the channels package when a check finds the account's rights changed.
CHANNEL_RIGHTS_CHANGED = "channel.rights_changed"

EVENT_TYPES = frozenset(
    {
        MESSAGE_RECEIVED,
        MESSAGE_EDITED,
        MESSAGE_DELETED,
        MESSAGE_SENT,
        MESSAGE_FAILED,
        SESSION_STATE_CHANGED,
        GAP,
        CHANNEL_RIGHTS_CHANGED,
    }
)


@dataclass(frozen=True, slots=True)
class EventDraft:
    """An event before it is in the log: its dedup key says which update it is."""

    type: str
    # Made of Telegram's own ids (peer, message id, edit version): the same update seen
    # twice (live push, replay, takeover) has the same key and is stored once.
    dedup_key: str
    occurred_at: datetime
    data: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Event:
    """An event as stored: ``position`` orders the whole log (the tenant-wide cursor)."""

    id: uuid.UUID
    type: str
    tenant_id: str
    app_id: str
    sequence: int
    occurred_at: datetime
    data: dict[str, Any]
    position: int
    # The W3C trace context of the work that wrote the event; carried in the AMQP headers
    # and the webhook call (never part of the envelope).
    traceparent: str | None = None

    def envelope(self) -> dict[str, Any]:
        """The JSON form every consumer sees (RabbitMQ body, webhook body, replay)."""
        return {
            "id": str(self.id),
            "type": self.type,
            "tenant_id": self.tenant_id,
            "app_id": self.app_id,
            "sequence": self.sequence,
            "occurred_at": self.occurred_at.isoformat(),
            "data": self.data,
        }

    def span(self, name: str, kind: SpanKind) -> AbstractContextManager[Span | None]:
        """A span of the trace that wrote this event (none when it was not traced)."""
        if self.traceparent is None:
            # The relay asks for every event it publishes: untraced ones cost nothing.
            return nullcontext()
        return continuing(
            self.traceparent,
            name,
            kind=kind,
            attributes={
                "event.id": str(self.id),
                "event.type": self.type,
                "tenant_id": self.tenant_id,
            },
        )

    @property
    def routing_key(self) -> str:
        """The ``events`` exchange routing key: ``<tenant_id>.<app_id>.<type>``."""
        return f"{self.tenant_id}.{self.app_id}.{self.type}"
