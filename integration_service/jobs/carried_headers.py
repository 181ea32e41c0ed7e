"""The headers a job carries into its re-published copy (a retry or a forward).

RabbitMQ records each dead-lettering in ``x-death`` (and ``x-first-death-*`` /
``x-last-death-*``). Retries travel through native delayed delivery, a cascade of TTL
queues that dead-letter into each other, and forwarded jobs return through their
per-worker queue's TTL. If a re-published copy still carried that history, the broker's
cycle detection would see the copy reach a queue it had already expired from, with no
rejection in between, and drop it silently: a lost job with a confirmed publish. Celery
filters these headers itself, but only from the headers it builds; any code that passes
the request's headers explicitly must go through ``carried_headers``.
"""

from __future__ import annotations

from typing import Any

from celery.app.task import Context

BROKER_DEATH_HEADERS = frozenset(
    {
        "x-death",
        "x-first-death-exchange",
        "x-first-death-queue",
        "x-first-death-reason",
        "x-last-death-exchange",
        "x-last-death-queue",
        "x-last-death-reason",
    }
)


def request_header(request: Context, name: str) -> object:
    """One header of the delivery, or None. Celery keeps a message's own headers in
    ``request.headers`` when it was published with explicit headers, and merges them into
    the request's fields otherwise (message protocol 2): look in both."""
    headers = request.headers
    if isinstance(headers, dict) and name in headers:
        return headers[name]
    return vars(request).get(name)


def carried_headers(request: Context, **extra: Any) -> dict[str, Any]:
    """The request's headers minus the broker's dead-letter history, plus ``extra``."""
    headers = request.headers
    carried = {
        key: value
        for key, value in (headers.items() if isinstance(headers, dict) else ())
        if key not in BROKER_DEATH_HEADERS
    }
    carried.update(extra)
    return carried


# What Flower and the logs show of a job's arguments (``argsrepr``/``kwargsrepr``, chosen
# by the producer: ids and a masked phone, never a phone, text or secret reference).
# Celery rebuilds both from the real arguments on every publish it is not given them for.
REPR_FIELDS = ("argsrepr", "kwargsrepr")


def carried_reprs(request: Context) -> dict[str, str]:
    """The delivery's argument reprs, for its re-published copy (a retry or a forward)."""
    carried = {}
    fields = vars(request)
    for name in REPR_FIELDS:
        value = fields.get(name)
        if isinstance(value, str):
            carried[name] = value
    return carried
