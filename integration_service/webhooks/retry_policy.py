"""What an attempt's result means for its delivery: delivered, retried later, dead, or
(on 410 Gone) the subscription disabled.

Retries wait ``uniform(0, min(WEBHOOK_BACKOFF_MAX, WEBHOOK_BACKOFF_BASE * 2**n))`` after
the n-th failed attempt (n from 0: exponential backoff with full jitter, so receivers
recovering from an outage are not hit by every sender at once), until the event is older
than WEBHOOK_MAX_AGE; the delivery is then dead with the reason.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta

from integration_service.webhooks.records import CANCELLED, DEAD, DELIVERED, PENDING

GONE = 410


@dataclass(frozen=True, slots=True)
class AttemptResult:
    """One HTTP attempt: the status code (None: no answer) or the error, and its latency."""

    status_code: int | None
    error: str | None
    latency_ms: float

    @property
    def succeeded(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300

    @property
    def summary(self) -> str:
        if self.error is not None:
            return self.error
        return f"HTTP {self.status_code}"


@dataclass(frozen=True, slots=True)
class Outcome:
    """The delivery's new status; ``next_attempt_at`` for a retry, ``reason`` for the end."""

    status: str
    next_attempt_at: datetime | None = None
    reason: str | None = None
    disables_subscription: bool = False


def backoff_cap(attempts_before: int, base: float, maximum: float) -> float:
    """The longest wait after the attempt that had ``attempts_before`` failures before it."""
    # min() before the power would overflow: 2**1100 is fine for int, not for float.
    exponent = min(attempts_before, 64)
    return float(min(maximum, base * (2**exponent)))


def backoff_delay(
    attempts_before: int, base: float, maximum: float, rng: random.Random | None = None
) -> float:
    return (rng or random).uniform(0.0, backoff_cap(attempts_before, base, maximum))


def decide(
    result: AttemptResult,
    *,
    attempts_before: int,
    event_created_at: datetime,
    now: datetime,
    max_age: float,
    base: float,
    maximum: float,
) -> Outcome:
    if result.succeeded:
        return Outcome(DELIVERED)
    if result.status_code == GONE:
        return Outcome(
            CANCELLED,
            reason="subscription disabled: the receiver answered 410 Gone",
            disables_subscription=True,
        )
    deadline = event_created_at + timedelta(seconds=max_age)
    retry_at = now + timedelta(seconds=backoff_delay(attempts_before, base, maximum))
    if retry_at > deadline:
        return Outcome(
            DEAD,
            reason=(
                f"gave up after {attempts_before + 1} attempts: the event is older than "
                f"WEBHOOK_MAX_AGE ({max_age:g}s); last attempt: {result.summary}"
            ),
        )
    return Outcome(PENDING, next_attempt_at=retry_at)
