"""The connect circuit breaker, on an injected clock."""

from __future__ import annotations

import pytest

from integration_service.circuit import CircuitBreaker, CircuitOpen


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_opens_after_threshold_and_half_opens_after_cooldown() -> None:
    clock = Clock()
    breaker = CircuitBreaker(threshold=3, cooldown=10, clock=clock)
    for _ in range(3):
        breaker.before_connect()
        breaker.failed()
    assert breaker.is_open
    with pytest.raises(CircuitOpen) as caught:
        breaker.before_connect()
    assert caught.value.retry_after >= 10 - 0.001
    clock.now += 10.5
    breaker.before_connect()  # the one trial
    with pytest.raises(CircuitOpen):
        breaker.before_connect()  # no second trial while the first runs
    breaker.succeeded()
    breaker.before_connect()
    assert not breaker.is_open


def test_failed_trial_doubles_the_pause() -> None:
    clock = Clock()
    breaker = CircuitBreaker(threshold=1, cooldown=5, max_cooldown=15, clock=clock)
    breaker.before_connect()
    breaker.failed()
    clock.now += 5.1
    breaker.before_connect()
    breaker.failed()
    assert breaker.is_open
    clock.now += 9
    assert breaker.is_open
    clock.now += 1.2
    assert not breaker.is_open


def test_unrelated_failure_does_not_count() -> None:
    breaker = CircuitBreaker(threshold=1, cooldown=5, clock=Clock())
    breaker.before_connect()
    breaker.released()
    breaker.before_connect()
    assert not breaker.is_open


def test_database_guard_counts_only_connection_failures(settings: object) -> None:
    """A real unreachable database trips the guard; then calls fail fast without trying."""
    import socket

    from integration_service.store import SessionKey, SessionStore, StoreUnavailable, build_engine
    from integration_service.store.guard import DatabaseGuard

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"postgresql+psycopg://postgres@127.0.0.1:{port}/nothing"
    engine = build_engine(settings.model_copy(update={"database_url": url}))  # type: ignore[attr-defined]
    guard = DatabaseGuard(CircuitBreaker("database", threshold=2, cooldown=30))
    store = SessionStore(engine, guard=guard)
    try:
        for _ in range(2):
            with pytest.raises(StoreUnavailable):
                store.get(SessionKey("t", "a"))
        with pytest.raises(CircuitOpen) as caught:
            store.get(SessionKey("t", "a"))
        assert caught.value.retry_after > 0
    finally:
        engine.dispose()
