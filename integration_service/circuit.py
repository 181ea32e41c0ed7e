"""A circuit breaker for a dependency: a Telegram data centre, the database.

After ``threshold`` consecutive failures the circuit opens: calls fail at once with a
retry time (jittered) instead of hammering a dependency that is down, and queued jobs
come back later rather than all at once. After the cool-down one trial call is let
through (half-open); its success closes the circuit.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable

from prometheus_client import Counter, Gauge

from integration_service.errors import RetryableError

CIRCUIT_OPEN = Gauge("circuit_open", "1 while the named circuit is open.", ["circuit"])
CIRCUIT_TRIPS = Counter("circuit_trips_total", "Times the named circuit opened.", ["circuit"])


class CircuitOpen(RetryableError):
    """Calls to a dependency are paused after repeated failures; retry after ``retry_after``."""

    code = "circuit_open"

    def __init__(self, name: str, retry_after: float) -> None:
        # A pause the breaker imposes, not a failure of the job: bounded by max_deferrals.
        super().__init__(
            f"{name} calls paused for {retry_after:.1f}s after repeated failures",
            retry_after=retry_after,
            counts_against_limit=False,
        )
        self.name = name


class CircuitBreaker:
    """Closed -> open after ``threshold`` failures -> half-open after ``cooldown``."""

    def __init__(
        self,
        name: str = "telegram",
        *,
        threshold: int = 5,
        cooldown: float = 10.0,
        max_cooldown: float = 120.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.name = name
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
            raise CircuitOpen(
                self.name, self._open_until - now + random.uniform(0, self._cooldown / 2)
            )
        if self._failures >= self._threshold:
            if self._trial_running:
                raise CircuitOpen(self.name, random.uniform(1.0, self._cooldown))
            self._trial_running = True

    def succeeded(self) -> None:
        self._failures = 0
        self._cooldown = self._base_cooldown
        self._trial_running = False
        CIRCUIT_OPEN.labels(circuit=self.name).set(0)

    def released(self) -> None:
        """The attempt ended for a reason unrelated to the data centre's health."""
        self._trial_running = False

    def failed(self) -> None:
        self._failures += 1
        self._trial_running = False
        if self._failures >= self._threshold:
            if self._open_until <= self._clock():
                CIRCUIT_TRIPS.labels(circuit=self.name).inc()
            self._open_until = self._clock() + self._cooldown
            # Each failed trial doubles the pause, up to the maximum.
            self._cooldown = min(self._max_cooldown, self._cooldown * 2)
            CIRCUIT_OPEN.labels(circuit=self.name).set(1)
