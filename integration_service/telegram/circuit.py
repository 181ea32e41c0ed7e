"""A circuit breaker for connections to one Telegram data centre.

After ``threshold`` consecutive failed connects the circuit opens: connects fail at once
with a retry time (jittered) instead of hammering a data centre that is down, and
queued jobs come back later rather than all at once. After the cool-down one trial
connect is let through (half-open); its success closes the circuit.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable

from prometheus_client import Counter, Gauge

from integration_service.errors import RetryableError

CIRCUIT_OPEN = Gauge("telegram_circuit_open", "1 while the connect circuit is open.")
CIRCUIT_TRIPS = Counter("telegram_circuit_trips_total", "Times the connect circuit opened.")


class CircuitOpen(RetryableError):
    """Connects to Telegram are paused after repeated failures; retry after ``retry_after``."""

    code = "circuit_open"

    def __init__(self, retry_after: float) -> None:
        super().__init__(f"Telegram connects paused for {retry_after:.1f}s after failures")
        self.retry_after = retry_after


class CircuitBreaker:
    """Closed -> open after ``threshold`` failures -> half-open after ``cooldown``."""

    def __init__(
        self,
        *,
        threshold: int = 5,
        cooldown: float = 10.0,
        max_cooldown: float = 120.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._threshold = threshold
        self._base_cooldown = cooldown
        self._max_cooldown = max_cooldown
        self._clock = clock
        self._failures = 0
        self._open_until = 0.0
        self._cooldown = cooldown
        self._trial_running = False

    @property
    def is_open(self) -> bool:
        return self._clock() < self._open_until

    def before_connect(self) -> None:
        """Raise CircuitOpen while open; let one trial through once the cool-down ends."""
        now = self._clock()
        if now < self._open_until:
            raise CircuitOpen(self._open_until - now + random.uniform(0, self._cooldown / 2))
        if self._failures >= self._threshold:
            if self._trial_running:
                raise CircuitOpen(random.uniform(1.0, self._cooldown))
            self._trial_running = True

    def succeeded(self) -> None:
        self._failures = 0
        self._cooldown = self._base_cooldown
        self._trial_running = False
        CIRCUIT_OPEN.set(0)

    def released(self) -> None:
        """The attempt ended for a reason unrelated to the data centre's health."""
        self._trial_running = False

    def failed(self) -> None:
        self._failures += 1
        self._trial_running = False
        if self._failures >= self._threshold:
            if self._open_until <= self._clock():
                CIRCUIT_TRIPS.inc()
            self._open_until = self._clock() + self._cooldown
            # Each failed trial doubles the pause, up to the maximum.
            self._cooldown = min(self._max_cooldown, self._cooldown * 2)
            CIRCUIT_OPEN.set(1)
