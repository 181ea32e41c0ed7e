"""Key rotation: re-wrap every stored session string under the newest key, online.

Sessions keep working throughout: every key version stays able to decrypt, so a row
read before its re-wrap still opens, and no lock is held while the cipher works. Rows
are read in short transactions, keyset-paginated on the session key (OFFSET would skip
rows as re-wrapped ones leave the filter), re-wrapped in one batch call, and written
back one by one through rewrap_session_material, a compare-and-set on the ciphertext:
when an owner saved the row after we read it, its save wins and the row is counted as
skipped (its new ciphertext is already under a current key, or the next run takes it).

A damaged row (undecryptable, bound to another context) is counted failed and the run
goes on. An unreachable cipher backend or database stops the run with a retryable
error; running it again is safe, as rows already re-wrapped no longer match.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Final

import structlog
from sqlalchemy import text
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import SQLAlchemyError

from integration_service.crypto import CipherError, Ciphertext, RewrapItem, SessionCipher
from integration_service.maintenance.metrics import KEY_ROTATION_ROWS
from integration_service.runtime.session_runtime import session_context
from integration_service.store import SessionKey, StoreError
from integration_service.store.errors import to_store_error

REWRAPPED: Final = "rewrapped"
SKIPPED_CONCURRENT_CHANGE: Final = "skipped_concurrent_change"
FAILED: Final = "failed"
# Enough to diagnose; the counts stay exact however many rows fail.
MAX_LISTED_FAILURES = 100
logger = structlog.get_logger(__name__)

_CANDIDATES = text(
    "SELECT tenant_id, app_id, session_string_enc FROM telegram_sessions "
    "WHERE session_string_enc IS NOT NULL AND key_id IS DISTINCT FROM :current "
    "AND (tenant_id, app_id) > (:after_tenant, :after_app) "
    "ORDER BY tenant_id, app_id LIMIT :limit"
)
_COMPARE_AND_SET = text(
    "SELECT rewrap_session_material(:tenant_id, :app_id, :expected, :new_enc, :new_key_id)"
)


@dataclass(frozen=True, slots=True)
class RotationFailure:
    """A row that could not be re-wrapped; ``reason`` names the error class or code only."""

    key: SessionKey
    reason: str


@dataclass(frozen=True, slots=True)
class RotationReport:
    """What one rotation run did."""

    key_id: str  # the key version rows were re-wrapped under
    rotated_key: bool  # whether this run created that key version
    examined: int
    rewrapped: int
    skipped_concurrent_change: int
    failed: int
    batches: int
    failures: tuple[RotationFailure, ...] = ()


@dataclass(frozen=True, slots=True)
class _Candidate:
    key: SessionKey
    ciphertext: str


def _read_batch(
    engine: Engine, current_key_id: str, after: tuple[str, str], limit: int
) -> list[_Candidate]:
    params = {
        "current": current_key_id,
        "after_tenant": after[0],
        "after_app": after[1],
        "limit": limit,
    }
    try:
        # A short read-only transaction: nothing is locked while the cipher works.
        with engine.connect() as conn:
            rows = conn.execute(_CANDIDATES, params).all()
    except SQLAlchemyError as error:
        raise to_store_error(error, "read rows for key rotation") from None
    return [_Candidate(SessionKey(r.tenant_id, r.app_id), r.session_string_enc) for r in rows]


def _compare_and_set(conn: Connection, candidate: _Candidate, result: Ciphertext) -> bool:
    params = {
        "tenant_id": candidate.key.tenant_id,
        "app_id": candidate.key.app_id,
        "expected": candidate.ciphertext,
        "new_enc": result.text,
        "new_key_id": result.key_id,
    }
    try:
        # One short transaction per row: a failing row rolls back alone.
        with conn.begin():
            return bool(conn.execute(_COMPARE_AND_SET, params).scalar_one())
    except SQLAlchemyError as error:
        raise to_store_error(error, f"re-wrap session {candidate.key}") from None


class _Tally:
    def __init__(self) -> None:
        self.counts = {REWRAPPED: 0, SKIPPED_CONCURRENT_CHANGE: 0, FAILED: 0}
        self.failures: list[RotationFailure] = []

    def count(self, outcome: str) -> None:
        self.counts[outcome] += 1
        KEY_ROTATION_ROWS.labels(outcome=outcome).inc()

    def fail(self, key: SessionKey, reason: str) -> None:
        self.count(FAILED)
        if len(self.failures) < MAX_LISTED_FAILURES:
            self.failures.append(RotationFailure(key, reason))


def _write_batch(
    engine: Engine,
    batch: Sequence[_Candidate],
    results: Sequence[Ciphertext | Exception],
    tally: _Tally,
    before_write: Callable[[SessionKey], None] | None,
) -> None:
    with engine.connect() as conn:
        for candidate, result in zip(batch, results, strict=True):
            if not isinstance(result, Ciphertext):
                tally.fail(candidate.key, type(result).__name__)
                continue
            if before_write is not None:
                before_write(candidate.key)
            try:
                written = _compare_and_set(conn, candidate, result)
            except StoreError as error:
                # Permanent and specific to this row (e.g. too long); StoreUnavailable,
                # the database going away, is not caught and stops the run.
                tally.fail(candidate.key, error.error_code.value)
                continue
            tally.count(REWRAPPED if written else SKIPPED_CONCURRENT_CHANGE)


def rotate_session_keys(
    engine: Engine,
    cipher: SessionCipher,
    *,
    batch_size: int = 500,
    rotate_key: bool = True,
    before_write: Callable[[SessionKey], None] | None = None,
) -> RotationReport:
    """Optionally create a new key version, then re-wrap every row not under it.

    ``engine`` is the service-role engine (it needs EXECUTE on rewrap_session_material).
    ``before_write`` is called with each row's key between its re-wrap and its write;
    it exists as an injection point for tests of concurrent saves, and is None in use.
    Raises CipherUnavailable / StoreUnavailable (retryable) when a backend is down, and
    CipherError (code ``cipher_answer_incomplete``) when the cipher answers a batch short.
    """
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1")
    key_id = cipher.rotate() if rotate_key else cipher.current_key_id()
    tally = _Tally()
    after = ("", "")
    batches = examined = 0
    while True:
        batch = _read_batch(engine, key_id, after, batch_size)
        if not batch:
            break
        batches += 1
        examined += len(batch)
        after = (batch[-1].key.tenant_id, batch[-1].key.app_id)
        results = cipher.rewrap_batch(
            [RewrapItem(text=c.ciphertext, context=session_context(c.key)) for c in batch]
        )
        if len(results) != len(batch):
            # Which answer belongs to which row is unknown: write none of the batch.
            raise CipherError(
                f"cipher answered {len(results)} of {len(batch)} re-wraps",
                code="cipher_answer_incomplete",
            )
        _write_batch(engine, batch, results, tally, before_write)
    report = RotationReport(
        key_id=key_id,
        rotated_key=rotate_key,
        examined=examined,
        rewrapped=tally.counts[REWRAPPED],
        skipped_concurrent_change=tally.counts[SKIPPED_CONCURRENT_CHANGE],
        failed=tally.counts[FAILED],
        batches=batches,
        failures=tuple(tally.failures),
    )
    logger.info(
        "session_key_rotation_finished",
        key_id=key_id,
        rotated_key=rotate_key,
        examined=examined,
        rewrapped=report.rewrapped,
        skipped_concurrent_change=report.skipped_concurrent_change,
        failed=report.failed,
    )
    return report
