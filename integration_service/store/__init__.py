"""PostgreSQL persistence: the engine, the session store and its error codes."""

from integration_service.store.engine import build_engine
from integration_service.store.errors import (
    SaveErrorCode,
    StoreError,
    StoreUnavailable,
    classify,
)
from integration_service.store.records import (
    SessionEvent,
    SessionKey,
    SessionMaterial,
    SessionRow,
)
from integration_service.store.sessions import (
    SessionNotFound,
    SessionStore,
    TransitionConflict,
)

__all__ = [
    "SaveErrorCode",
    "SessionEvent",
    "SessionKey",
    "SessionMaterial",
    "SessionNotFound",
    "SessionRow",
    "SessionStore",
    "StoreError",
    "StoreUnavailable",
    "TransitionConflict",
    "build_engine",
    "classify",
]
