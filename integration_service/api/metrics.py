"""Seed 004's API metrics, labelled by route template (``/api/.../accounts/{account_id}``),
never by an id, so the label set stays bounded."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

REQUEST_SECONDS = Histogram(
    "api_request_duration_seconds",
    "HTTP API request duration by route template",
    ["endpoint"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
REQUESTS = Counter("api_request_total", "HTTP API requests", ["endpoint", "status"])
ERRORS = Counter("api_request_error_total", "HTTP API requests answered 5xx", ["endpoint"])
UNMATCHED = "unmatched"
