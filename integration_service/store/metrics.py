"""Save metrics named as in the seed post-mortem (003); labels never name a tenant."""

from prometheus_client import Counter, Histogram

SAVE_ATTEMPTS = Counter(
    "session_save_attempts_total",
    "Calls of upsert_telegram_session, by outcome.",
    ["status"],
)
SAVE_DURATION = Histogram(
    "session_save_duration_seconds",
    "Time spent in upsert_telegram_session, by outcome.",
    ["status"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
)
SAVE_ERRORS = Counter(
    "session_save_errors_total",
    "Failed session saves, by classified error type.",
    ["error_type"],
)
