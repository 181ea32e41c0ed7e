"""Database failures classified by SQLSTATE into precise, stable codes.

The seed post-mortem (003) traced every save failure to one "database_save_failed"
string matched on message text. Here the classification reads the SQLSTATE the server
sent (or its absence, for a connection that never opened), never the text, so it does
not break with a server locale or version.
"""

from __future__ import annotations

from enum import StrEnum

import psycopg
from sqlalchemy import exc as sa_exc

from integration_service.errors import PermanentError, RetryableError

# Raised by upsert_telegram_session when a write carries an older lease epoch.
STALE_EPOCH_SQLSTATE = "IS001"


class SaveErrorCode(StrEnum):
    SESSION_TOO_LONG = "session_too_long"
    MISSING_COLUMN = "missing_column"
    DUPLICATE_SESSION = "duplicate_session"
    INVALID_TENANT_OR_USER = "invalid_tenant_or_user"
    MISSING_REQUIRED_FIELD = "missing_required_field"
    INVALID_VALUE = "invalid_value"
    PERMISSION_DENIED = "permission_denied"
    CONNECTION_ERROR = "connection_error"
    STALE_EPOCH = "stale_epoch"
    DATABASE_ERROR = "database_error"


_BY_SQLSTATE: dict[str, SaveErrorCode] = {
    "22001": SaveErrorCode.SESSION_TOO_LONG,  # string_data_right_truncation
    "42703": SaveErrorCode.MISSING_COLUMN,  # undefined_column
    "23505": SaveErrorCode.DUPLICATE_SESSION,  # unique_violation
    "23503": SaveErrorCode.INVALID_TENANT_OR_USER,  # foreign_key_violation
    "23502": SaveErrorCode.MISSING_REQUIRED_FIELD,  # not_null_violation
    "23514": SaveErrorCode.INVALID_VALUE,  # check_violation
    "22P02": SaveErrorCode.INVALID_VALUE,  # invalid_text_representation
    "22003": SaveErrorCode.INVALID_VALUE,  # numeric_value_out_of_range
    "42501": SaveErrorCode.PERMISSION_DENIED,  # insufficient_privilege
    "28000": SaveErrorCode.PERMISSION_DENIED,  # invalid_authorization_specification
    "28P01": SaveErrorCode.PERMISSION_DENIED,  # invalid_password
    "57P01": SaveErrorCode.CONNECTION_ERROR,  # admin_shutdown
    "57P02": SaveErrorCode.CONNECTION_ERROR,  # crash_shutdown
    "57P03": SaveErrorCode.CONNECTION_ERROR,  # cannot_connect_now
    STALE_EPOCH_SQLSTATE: SaveErrorCode.STALE_EPOCH,
}

# Transient by nature: the same statement may succeed on a later attempt.
_RETRYABLE = {SaveErrorCode.CONNECTION_ERROR}
_RETRYABLE_SQLSTATES = {"40001", "40P01", "55P03", "53300"}  # serialization, deadlock, lock


class StoreError(PermanentError):
    """A database operation failed for good; ``code`` says why."""

    code = SaveErrorCode.DATABASE_ERROR.value

    def __init__(self, code: SaveErrorCode, message: str, sqlstate: str | None) -> None:
        super().__init__(message, code=code.value)
        self.sqlstate = sqlstate

    @property
    def error_code(self) -> SaveErrorCode:
        # Derived from ``code``, so it survives pickling and JSON results as it is.
        return SaveErrorCode(self.code)


class StoreUnavailable(RetryableError):
    """The database could not be reached or asked for a retry; try again later."""

    code = SaveErrorCode.CONNECTION_ERROR.value

    def __init__(self, code: SaveErrorCode, message: str, sqlstate: str | None) -> None:
        super().__init__(message, code=code.value)
        self.sqlstate = sqlstate

    @property
    def error_code(self) -> SaveErrorCode:
        return SaveErrorCode(self.code)


def sqlstate_of(error: BaseException) -> str | None:
    """The SQLSTATE psycopg received, looking through SQLAlchemy's wrapper."""
    original = getattr(error, "orig", error)
    state = getattr(original, "sqlstate", None)
    return state if isinstance(state, str) else None


def classify(error: BaseException) -> SaveErrorCode:
    """Map a database exception onto a SaveErrorCode by SQLSTATE, not by message text."""
    state = sqlstate_of(error)
    if state is not None:
        if state in _BY_SQLSTATE:
            return _BY_SQLSTATE[state]
        if state.startswith("08"):  # connection_exception class
            return SaveErrorCode.CONNECTION_ERROR
        return SaveErrorCode.DATABASE_ERROR
    original = getattr(error, "orig", error)
    # No SQLSTATE: the server never answered (refused, timed out, dropped mid-way).
    if isinstance(original, psycopg.OperationalError | sa_exc.TimeoutError):
        return SaveErrorCode.CONNECTION_ERROR
    if isinstance(error, sa_exc.DisconnectionError | sa_exc.TimeoutError):
        return SaveErrorCode.CONNECTION_ERROR
    return SaveErrorCode.DATABASE_ERROR


def to_store_error(error: BaseException, operation: str) -> StoreError | StoreUnavailable:
    """Wrap a database exception in the service's error tree without leaking parameters."""
    code = classify(error)
    state = sqlstate_of(error)
    original = getattr(error, "orig", error)
    # psycopg's primary message carries no bound parameters, unlike SQLAlchemy's str().
    diag = getattr(original, "diag", None)
    primary = getattr(diag, "message_primary", None) if diag is not None else None
    detail = primary or type(original).__name__
    message = f"{operation} failed: {code.value} (sqlstate {state or 'none'}): {detail}"
    if code in _RETRYABLE or state in _RETRYABLE_SQLSTATES:
        return StoreUnavailable(code, message, state)
    return StoreError(code, message, state)
