"""One error root, stable codes, and errors that cross Celery whole.

Every module of the library (the emulator aside: a separate program) is imported and
every exception class it defines is checked: it derives from ``ServiceError`` (or is
on the documented allow-list below), it declares its own ``code``, and an instance of
it, built from its own ``__init__`` signature, survives pickling and Celery's JSON result
format with its class, message, code and attributes.
"""

from __future__ import annotations

import importlib
import inspect
import pickle
import pkgutil
import re
import types
import typing
from collections.abc import Mapping
from enum import Enum
from typing import Any

import pytest
from celery import Celery, states
from celery.backends.redis import RedisBackend
from celery.utils.serialization import get_pickleable_exception

import integration_service
import tasks
from integration_service.errors import PermanentError, RetryableError, ServiceError
from integration_service.jobs.results import (
    SERVICE_ERROR_KEY,
    ServiceRedisBackend,
    decode_error,
    encode_error,
    results_backend,
)

# Exceptions the library defines that are not ServiceErrors, each with the reason it is
# documented as (errors.py). Empty: there are none today.
ALLOWED_OUTSIDE_THE_TREE: dict[str, str] = {}

CODE = re.compile(r"^[a-z][a-z0-9_]*$")
RESULTS_URL = "redis://127.0.0.1:6379/4"  # never connected to: encode/decode only


def library_modules() -> list[str]:
    names = []
    for package in (integration_service, tasks):
        for info in pkgutil.walk_packages(package.__path__, f"{package.__name__}."):
            if info.name.startswith("integration_service.emulator"):
                continue
            if info.name.endswith(".__main__"):
                continue
            names.append(info.name)
    return sorted(names)


def defined_exceptions() -> list[type[BaseException]]:
    found: dict[str, type[BaseException]] = {}
    for name in library_modules():
        module = importlib.import_module(name)
        for value in vars(module).values():
            if (
                inspect.isclass(value)
                and issubclass(value, BaseException)
                and value.__module__ == name
            ):
                found[f"{name}.{value.__qualname__}"] = value
    return [found[key] for key in sorted(found)]


EXCEPTIONS = defined_exceptions()
SERVICE_ERRORS = [cls for cls in EXCEPTIONS if issubclass(cls, ServiceError)]


def qualified(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def sample(name: str, hint: Any) -> Any:
    """A value of type ``hint`` for parameter ``name`` (not its default)."""
    if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union:
        options = [arg for arg in typing.get_args(hint) if arg is not type(None)]
        return sample(name, options[0])
    origin = typing.get_origin(hint) or hint
    if inspect.isclass(origin) and issubclass(origin, Enum):
        members = list(origin)
        return members[-1]
    if origin is bool:
        return True
    if origin is int:
        return 7
    if origin is float:
        return 2.5
    if origin is str:
        return f"sample {name}"
    if inspect.isclass(origin) and issubclass(origin, Mapping):
        return {"x-sample": 1}
    raise AssertionError(f"add a sample for {name}: {hint!r}")


def instance_of(cls: type[ServiceError]) -> ServiceError:
    """An instance built through the class's own __init__, every parameter given."""
    hints = typing.get_type_hints(cls.__init__)
    arguments: dict[str, Any] = {}
    positional: list[Any] = []
    for parameter in list(inspect.signature(cls.__init__).parameters.values())[1:]:
        value = sample(parameter.name, hints[parameter.name])
        if parameter.name == "code" and parameter.kind is parameter.KEYWORD_ONLY:
            value = "sample_code"
        if parameter.kind is parameter.KEYWORD_ONLY:
            arguments[parameter.name] = value
        else:
            positional.append(value)
    return cls(*positional, **arguments)


# One root -----------------------------------------------------------------------------


def test_the_discovery_finds_the_library_s_errors() -> None:
    names = {qualified(cls) for cls in EXCEPTIONS}
    assert "integration_service.settings.SettingsError" in names
    assert "integration_service.runtime.ownership.OwnedElsewhere" in names
    assert len(SERVICE_ERRORS) > 30


@pytest.mark.parametrize("cls", EXCEPTIONS, ids=qualified)
def test_every_exception_derives_from_service_error(cls: type[BaseException]) -> None:
    if qualified(cls) in ALLOWED_OUTSIDE_THE_TREE:
        return
    assert issubclass(cls, ServiceError), (
        f"{qualified(cls)} must derive from ServiceError (or its retryable/permanent "
        "branch), or be documented in errors.py and ALLOWED_OUTSIDE_THE_TREE"
    )


@pytest.mark.parametrize("cls", SERVICE_ERRORS, ids=qualified)
def test_every_error_declares_its_own_stable_code(cls: type[ServiceError]) -> None:
    assert "code" in vars(cls), f"{qualified(cls)} inherits its code; declare one"
    assert CODE.match(cls.code), cls.code


@pytest.mark.parametrize("cls", SERVICE_ERRORS, ids=qualified)
def test_no_error_is_both_retryable_and_permanent(cls: type[ServiceError]) -> None:
    assert not (issubclass(cls, RetryableError) and issubclass(cls, PermanentError))


def test_builtin_bases_are_kept_where_callers_rely_on_them() -> None:
    from integration_service.runtime.loop_thread import LoopNotRunning
    from integration_service.settings import SettingsError
    from integration_service.telegram.endpoint import EndpointConfigError

    assert issubclass(SettingsError, ValueError) and issubclass(SettingsError, PermanentError)
    assert issubclass(EndpointConfigError, ValueError)
    assert issubclass(LoopNotRunning, RuntimeError) and issubclass(LoopNotRunning, RetryableError)


# Crossing Celery ----------------------------------------------------------------------


def same_error(copy: BaseException, original: ServiceError) -> None:
    assert type(copy) is type(original)
    assert isinstance(copy, ServiceError)
    assert str(copy) == str(original)
    assert copy.code == original.code
    assert copy.args == original.args
    assert copy.__dict__ == original.__dict__


@pytest.mark.parametrize("cls", SERVICE_ERRORS, ids=qualified)
def test_every_error_survives_pickle(cls: type[ServiceError]) -> None:
    original = instance_of(cls)
    # Bytes this test made itself, so unpickling them is safe.
    same_error(pickle.loads(pickle.dumps(original)), original)  # noqa: S301
    # What Celery's worker does before storing a failure: no UnpickleableExceptionWrapper.
    assert get_pickleable_exception(original) is original


@pytest.fixture(scope="module")
def backend() -> ServiceRedisBackend:
    app = Celery("error-tree-test", set_as_current=False)
    app.conf.result_serializer = "json"
    return ServiceRedisBackend(app=app, url=RESULTS_URL)


def through_json_results(backend: Any, error: ServiceError) -> Any:
    """A failure stored the way a worker stores it, read the way a producer reads it."""
    payload = backend.encode(
        {"status": states.FAILURE, "result": backend.prepare_exception(error), "task_id": "j"}
    )
    assert isinstance(payload, str)  # JSON text, no pickle anywhere
    return backend.decode_result(payload)["result"]


def test_the_project_result_format_is_json() -> None:
    import celeryconfig

    assert celeryconfig.result_serializer == "json"
    assert celeryconfig.accept_content == ["json"]


@pytest.mark.parametrize("cls", SERVICE_ERRORS, ids=qualified)
def test_every_error_survives_the_json_result_format(
    cls: type[ServiceError], backend: ServiceRedisBackend
) -> None:
    original = instance_of(cls)
    copy = through_json_results(backend, original)
    assert type(copy) is type(original)
    assert str(copy) == str(original) and copy.code == original.code
    # JSON has no enums: an enum attribute comes back as its value (and equals it).
    assert copy.__dict__ == {
        k: (v.value if isinstance(v, Enum) else v) for k, v in original.__dict__.items()
    }


def test_the_worker_app_and_a_plain_app_both_read_project_errors() -> None:
    from integration_service.celery_app import app as worker_app
    from integration_service.telegram.terminated import SessionTerminated

    assert isinstance(worker_app.backend, ServiceRedisBackend)
    plain = Celery("another-service", set_as_current=False)
    plain.conf.result_backend = RESULTS_URL
    assert type(plain.backend) is RedisBackend
    adapted = results_backend(plain)
    assert isinstance(adapted, ServiceRedisBackend) and results_backend(plain) is adapted
    error = SessionTerminated("revoked", "AUTH_KEY_UNREGISTERED")
    copy = through_json_results(adapted, error)
    assert isinstance(copy, SessionTerminated) and copy.code == "session_revoked"
    assert copy.state == "revoked"
    plain.close()


def test_a_result_can_name_only_project_errors() -> None:
    # A result is data: it must never make the reader import or call anything else.
    stored = encode_error(PermanentError("bad", code="x_bad"))
    for module, name in [
        ("os", "system"),
        ("builtins", "ValueError"),
        ("integration_service.settings", "Settings"),
        ("integration_service.emulator.server", "EmulatorServer"),
        ("integration_service.nonexistent", "Nope"),
    ]:
        forged = {**stored, "exc_module": module, "exc_type": name}
        rebuilt = decode_error(forged)
        assert type(rebuilt) is PermanentError and rebuilt.code == "x_bad"


def test_an_unknown_class_comes_back_as_its_branch_with_its_code() -> None:
    for error, branch in [
        (RetryableError("later", code="x_later"), RetryableError),
        (PermanentError("never", code="x_never"), PermanentError),
        (ServiceError("odd", code="x_odd"), ServiceError),
    ]:
        stored = encode_error(error)
        stored["exc_type"] = "GoneSinceTheWorkerWasDeployed"
        rebuilt = decode_error(stored)
        assert type(rebuilt) is branch and rebuilt.code == error.code
        assert str(rebuilt) == str(error)
    assert SERVICE_ERROR_KEY in stored


def test_foreign_exceptions_keep_celery_s_own_format(backend: ServiceRedisBackend) -> None:
    copy = through_json_results(backend, ValueError("plain"))  # type: ignore[arg-type]
    assert type(copy) is ValueError and str(copy) == "plain"
