"""Project errors through Celery's JSON results, with their class, code and attributes.

Celery stores a failed job's exception as ``{exc_type, exc_module, exc_message: args}``
and rebuilds it on the reader's side as ``cls(*args)``, looking the class up only in the
modules the reader happened to import. Most of our errors take other arguments than
their message (``SessionTerminated(state, rpc_message)``), so a producer got a bare
``Exception`` (or a class Celery made up) without its ``code``. This module stores a
``ServiceError`` with its code, branch and attributes beside Celery's own keys, and
rebuilds it with ``errors.restore`` (no ``__init__`` call). Classes are only looked up in
``integration_service`` modules and must be ``ServiceError`` subclasses: a result is
data, never an instruction to import or call something else. A class the reader cannot
find comes back as the branch's base class (``RetryableError`` / ``PermanentError``)
with the same code and message.

The worker's app uses ``ServiceLoader`` (``celery_app.py``), so its Redis result backend
is ``ServiceRedisBackend``; the producer API reads results through ``results_backend``,
which gives any app's Redis backend the same reading.
"""

from __future__ import annotations

import importlib
import sys
import weakref
from collections.abc import Mapping
from enum import Enum
from typing import Any

from celery import Celery

# The serializers Celery stores exceptions natively with (celery-types leaves it out).
from celery.backends.base import EXCEPTION_ABLE_CODECS  # type: ignore[attr-defined]
from celery.backends.redis import RedisBackend
from celery.loaders.app import AppLoader

from integration_service.errors import (
    PermanentError,
    RetryableError,
    ServiceError,
    restore,
)

SERVICE_ERROR_KEY = "service_error"
_PACKAGE = "integration_service"
_NOT_ERRORS = f"{_PACKAGE}.emulator"


def _json_safe(value: object) -> object:
    if value is None or isinstance(value, bool | int | float | str):
        return value.value if isinstance(value, Enum) else value
    if isinstance(value, Enum):
        return _json_safe(value.value)
    if isinstance(value, Mapping):
        return {str(key): _json_safe(item) for key, item in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_json_safe(item) for item in value]
    return str(value)


def _branch(error: ServiceError) -> str:
    if isinstance(error, RetryableError):
        return "retryable"
    if isinstance(error, PermanentError):
        return "permanent"
    return "service"


def encode_error(error: ServiceError) -> dict[str, Any]:
    """The JSON form of ``error``: Celery's keys plus ours."""
    cls = type(error)
    return {
        "exc_type": cls.__qualname__,
        "exc_module": cls.__module__,
        # Celery's own reader (a foreign app, Flower) calls cls(*exc_message).
        "exc_message": [error.detail],
        SERVICE_ERROR_KEY: {
            "code": error.code,
            "branch": _branch(error),
            "state": _json_safe(error.error_state()),
        },
    }


def _error_class(module: object, qualname: object) -> type[ServiceError] | None:
    if not isinstance(module, str) or not isinstance(qualname, str):
        return None
    if not (module == _PACKAGE or module.startswith(f"{_PACKAGE}.")):
        return None
    if module == _NOT_ERRORS or module.startswith(f"{_NOT_ERRORS}."):
        return None
    try:
        found: object = sys.modules.get(module) or importlib.import_module(module)
    except ImportError:
        return None
    for part in qualname.split("."):
        found = getattr(found, part, None)
    if isinstance(found, type) and issubclass(found, ServiceError):
        return found
    return None


_FALLBACK: dict[str, type[ServiceError]] = {
    "retryable": RetryableError,
    "permanent": PermanentError,
    "service": ServiceError,
}


def decode_error(data: Mapping[str, Any]) -> ServiceError:
    """The project error ``encode_error`` stored (or its branch's base class)."""
    info = data.get(SERVICE_ERROR_KEY)
    info = info if isinstance(info, Mapping) else {}
    messages = data.get("exc_message")
    if isinstance(messages, list | tuple):
        message = str(messages[0]) if messages else ""
    else:
        message = str(messages or "")
    state = info.get("state")
    state = dict(state) if isinstance(state, Mapping) else {}
    code = str(info.get("code") or state.get("code") or ServiceError.code)
    cls = _error_class(data.get("exc_module"), data.get("exc_type"))
    if cls is None:
        cls = _FALLBACK.get(str(info.get("branch")), ServiceError)
    if code != cls.code:
        state["code"] = code
    return restore(cls, message, state)


class ServiceErrorResults:
    """Result-backend mixin: store and rebuild project errors as described above."""

    serializer: str

    def prepare_exception(self, exc: BaseException, serializer: str | None = None) -> Any:
        chosen = self.serializer if serializer is None else serializer
        if isinstance(exc, ServiceError) and chosen not in EXCEPTION_ABLE_CODECS:
            return encode_error(exc)
        return super().prepare_exception(exc, serializer)  # type: ignore[misc]

    def exception_to_python(self, exc: Any) -> Any:
        if isinstance(exc, Mapping) and SERVICE_ERROR_KEY in exc:
            return decode_error(exc)
        return super().exception_to_python(exc)  # type: ignore[misc]


class ServiceRedisBackend(ServiceErrorResults, RedisBackend):
    """Celery's Redis result backend, reading and writing project errors whole."""


_BACKEND = f"{__name__}:ServiceRedisBackend"


class ServiceLoader(AppLoader):
    """Celery's app loader, with ``redis://`` results going to ``ServiceRedisBackend``."""

    override_backends = {"redis": _BACKEND, "rediss": _BACKEND}


_ADAPTED: weakref.WeakKeyDictionary[Celery, Any] = weakref.WeakKeyDictionary()


def results_backend(app: Celery) -> Any:
    """``app``'s result backend, or a ``ServiceRedisBackend`` on the same URL when the
    app's own is Celery's plain Redis backend (an app built without ``ServiceLoader``,
    such as another service's). One per app."""
    backend = app.backend
    if isinstance(backend, ServiceErrorResults) or type(backend) is not RedisBackend:
        return backend
    adapted = _ADAPTED.get(app)
    if adapted is None:
        adapted = _ADAPTED[app] = ServiceRedisBackend(app=app, url=app.conf.result_backend)
    return adapted
