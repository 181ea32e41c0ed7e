"""Inbound metrics (Prometheus; never labelled by tenant or session)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

INBOUND_EVENTS = Counter(
    "inbound_events_total", "Events committed to the event log by listening sessions.", ["type"]
)
INBOUND_EVENT_LAG = Histogram(
    "inbound_event_lag_seconds",
    "From Telegram's date of a received message to its event being committed.",
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 300, 3600),
)
LISTENING_SESSIONS = Gauge(
    "listening_sessions", "Listening sessions this worker holds with updates on."
)
LISTENING_UNOWNED = Gauge(
    "listening_sessions_unowned",
    "Listening sessions no live worker holds, as this worker's placement last counted.",
)
SESSION_GAPS = Counter(
    "session_gaps_total",
    "Gaps Telegram reported (differenceTooLong, channelDifferenceTooLong): events lost.",
    ["box"],
)
PLACEMENT_MOVES = Counter(
    "listening_placement_total", "Listening sessions claimed or released by placement.", ["action"]
)
