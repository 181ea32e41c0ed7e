"""Headers a re-published job carries: its own, never the broker's dead-letter history."""

from __future__ import annotations

from celery.app.task import Context

from integration_service.jobs.carried_headers import (
    BROKER_DEATH_HEADERS,
    carried_headers,
    request_header,
)
from integration_service.messaging.pacing import PACE_RESERVED_HEADER
from integration_service.runtime.forwarding import HOPS_HEADER


def test_dead_letter_history_is_dropped_and_the_jobs_own_headers_kept() -> None:
    request = Context(
        headers={
            "x-death": [{"queue": "celery_delayed_0", "reason": "expired", "count": 1}],
            "x-first-death-queue": "celery_delayed_1",
            "x-first-death-reason": "expired",
            "x-first-death-exchange": "celery_delayed_1",
            "x-last-death-queue": "celery_delayed_0",
            "x-last-death-reason": "expired",
            "x-last-death-exchange": "celery_delayed_0",
            HOPS_HEADER: 1,
            PACE_RESERVED_HEADER: "1",
        }
    )
    carried = carried_headers(request, **{HOPS_HEADER: 2})
    assert carried == {HOPS_HEADER: 2, PACE_RESERVED_HEADER: "1"}
    assert not BROKER_DEATH_HEADERS & carried.keys()
    # The request itself is left as it was.
    assert "x-death" in request.headers


def test_a_request_without_headers_carries_only_the_extra_ones() -> None:
    assert carried_headers(Context(headers=None)) == {}
    assert carried_headers(Context(), a=1) == {"a": 1}


def test_a_header_is_read_from_the_headers_or_the_requests_own_fields() -> None:
    # Celery keeps explicit publish headers in ``headers`` and merges a message's other
    # headers into the request's fields (message protocol 2).
    assert request_header(Context(headers={HOPS_HEADER: 2}), HOPS_HEADER) == 2
    assert request_header(Context({HOPS_HEADER: 3}), HOPS_HEADER) == 3
    assert request_header(Context({"x-failure-at": 1.5}), "x-failure-at") == 1.5
    assert request_header(Context(), HOPS_HEADER) is None
