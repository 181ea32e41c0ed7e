"""Webhook metrics; labels never name a tenant or a subscription (cardinality, privacy)."""

from prometheus_client import Counter, Gauge, Histogram

DELIVERIES = Counter(
    "webhook_deliveries_total",
    "Webhook attempts and deliveries by outcome: delivered, failed_attempt (retried "
    "later), dead (given up after WEBHOOK_MAX_AGE), disabled (410 Gone).",
    ["status"],
)
ATTEMPT_SECONDS = Histogram(
    "webhook_delivery_seconds",
    "Duration of one webhook attempt (the HTTP call), whatever its outcome.",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
)
PENDING = Gauge(
    "webhook_deliveries_pending",
    "Webhook deliveries waiting for an attempt (all tenants), as last counted.",
)
IN_FLIGHT = Gauge(
    "webhook_deliveries_in_flight",
    "Webhook attempts this process is making right now.",
)

for status in ("delivered", "failed_attempt", "dead", "disabled"):
    DELIVERIES.labels(status=status)
