"""The session state machine: one table of states and allowed transitions.

Every transition is checked here, persisted with its reason through the store (a
compare-and-set on state and lease epoch) and counted. An illegal transition raises and
changes nothing.
"""

from __future__ import annotations

from prometheus_client import Counter

from integration_service.errors import PermanentError
from integration_service.store import SessionEvent, SessionKey, SessionStore, TransitionConflict

NEW = "new"
CODE_SENT = "code_sent"
PASSWORD_REQUIRED = "password_required"  # noqa: S105 - a state name
QR_PENDING = "qr_pending"
AUTHORIZED = "authorized"
DISCONNECTED = "disconnected"
REVOKED = "revoked"
EXPIRED = "expired"
BANNED = "banned"
DEACTIVATED = "deactivated"
DUPLICATED = "duplicated"
FAILED = "failed"

# Telegram ended the authorisation: no job but a fresh login may act on the session.
TERMINAL = frozenset({REVOKED, EXPIRED, BANNED, DEACTIVATED, DUPLICATED})
# The account itself is gone or blocked: not even a new login is attempted.
FINAL = frozenset({BANNED, DEACTIVATED})
LOGIN_STARTS = frozenset({CODE_SENT, QR_PENDING})
_TERMINATIONS = TERMINAL | {DISCONNECTED}

TRANSITIONS: dict[str, frozenset[str]] = {
    NEW: frozenset({CODE_SENT, QR_PENDING, AUTHORIZED, FAILED}),
    CODE_SENT: frozenset({CODE_SENT, QR_PENDING, PASSWORD_REQUIRED, AUTHORIZED, FAILED, BANNED}),
    QR_PENDING: frozenset({QR_PENDING, CODE_SENT, PASSWORD_REQUIRED, AUTHORIZED, FAILED}),
    PASSWORD_REQUIRED: frozenset({PASSWORD_REQUIRED, AUTHORIZED, FAILED, CODE_SENT, QR_PENDING}),
    AUTHORIZED: _TERMINATIONS | {AUTHORIZED},
    DISCONNECTED: _TERMINATIONS | {AUTHORIZED, FAILED},
    FAILED: LOGIN_STARTS | {NEW, AUTHORIZED},
    # A new login may follow a dead authorisation; bot logins go straight to authorized.
    REVOKED: LOGIN_STARTS | {NEW, AUTHORIZED},
    EXPIRED: LOGIN_STARTS | {NEW, AUTHORIZED},
    DUPLICATED: LOGIN_STARTS | {NEW, AUTHORIZED},
    BANNED: frozenset(),
    DEACTIVATED: frozenset(),
}
STATES = frozenset(TRANSITIONS)

STATE_TRANSITIONS = Counter(
    "session_state_transitions_total",
    "Persisted session state transitions.",
    ["from_state", "to_state"],
)


class IllegalTransition(PermanentError):
    """The state machine does not allow this transition."""

    code = "illegal_transition"


def check(from_state: str, to_state: str) -> None:
    if to_state not in STATES:
        raise IllegalTransition(f"unknown state {to_state!r}")
    if to_state not in TRANSITIONS.get(from_state, frozenset()):
        raise IllegalTransition(f"{from_state} -> {to_state} is not allowed")


def transition(
    store: SessionStore,
    key: SessionKey,
    to_state: str,
    *,
    reason: str,
    lease_epoch: int,
    task_id: str | None = None,
    attempts: int = 3,
    auth_error: str | None = None,
) -> SessionEvent:
    """Move ``key`` to ``to_state`` from whatever state it is in now, if allowed.

    The store's compare-and-set refuses the write if the state moved in between; the
    check is then made again against the new state, a bounded number of times.
    ``auth_error``: the stable reason a terminal state carries (kept on the row).
    """
    for _ in range(attempts):
        current = store.require(key).state
        check(current, to_state)
        try:
            event = store.record_transition(
                key,
                from_state=current,
                to_state=to_state,
                reason=reason,
                lease_epoch=lease_epoch,
                task_id=task_id,
                auth_error=auth_error,
            )
        except TransitionConflict:
            if store.require(key).lease_epoch > lease_epoch:
                raise
            continue
        STATE_TRANSITIONS.labels(from_state=current, to_state=to_state).inc()
        return event
    raise TransitionConflict(f"session {key} kept changing state; gave up after {attempts}")
