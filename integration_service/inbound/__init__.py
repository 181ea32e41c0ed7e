"""Inbound: listening sessions, their update feed, the durable event log and its relay.

The door for other services is the ``events`` exchange on RabbitMQ and the producer
library's ``events(...)`` cursor over the log (DESIGN.md, "Never losing an update").
"""

from integration_service.inbound.event_log import EventLog
from integration_service.inbound.events import EVENT_TYPES, Event, EventDraft

__all__ = ["EVENT_TYPES", "Event", "EventDraft", "EventLog"]
