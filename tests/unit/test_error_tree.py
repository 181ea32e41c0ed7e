"""One error root, stable codes, and errors that cross Celery whole.

Every module of the library (the emulator aside: a separate program) is imported and
every exception class it defines is checked: it derives from ``ServiceError`` (or is
on the documented allow-list below), it declares its own ``code``, and an instance of
it, built from its own ``__init__`` signature, survives pickling and Celery's JSON result
format with its class, message, code and attributes.

Every ``raise`` statement of the library is read too (by AST, functions included): what
it raises must be a ``ServiceError`` subclass, a function declared to return one, or a
builtin / framework exception allowed for that module below, for a reason errors.py
documents (programming errors and control flow).
"""

from __future__ import annotations

import ast
import builtins
import importlib
import inspect
import pickle
import pkgutil
import re
import types
import typing
from collections.abc import Mapping
from enum import Enum
from pathlib import Path
from typing import Any

import pytest
from celery import Celery, states
from celery.backends.redis import RedisBackend
from celery.utils.serialization import get_pickleable_exception

import integration_service
import integration_service.errors
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

# (module, exception) pairs a module may raise although the exception is no ServiceError:
# the programming errors and control flow errors.py documents, each with its reason. Any
# other raise of a builtin or a library's exception fails test_every_raise_is_a_project_error.
ALLOWED_RAISES: dict[tuple[str, str], str] = {
    ("integration_service.settings", "ValueError"): (
        "pydantic validators refuse with ValueError; get_settings raises SettingsError"
    ),
    ("integration_service.crypto.cipher", "ValueError"): "argument: an empty context",
    ("integration_service.telegram.fingerprint", "ValueError"): (
        "argument: an auth key that is not 256 bytes (legacy files are checked before)"
    ),
    ("integration_service.leases.manager", "ValueError"): (
        "argument: an id with ':' or a ttl <= 0 (ids and settings are validated before)"
    ),
    ("integration_service.leases.liveness", "ValueError"): "argument: a ttl <= 0",
    ("integration_service.leases.heartbeat", "ValueError"): "argument: interval > ttl / 2",
    ("integration_service.leases.heartbeat", "RuntimeError"): "lifecycle: started twice",
    ("integration_service.observability.http_server", "RuntimeError"): (
        "lifecycle: the server's address read before it was started"
    ),
    ("integration_service.observability.logging", "ValueError"): (
        "argument: a log level settings and the CLI refuse before"
    ),
    ("integration_service.observability", "AttributeError"): "a module __getattr__'s protocol",
    ("integration_service.tracing", "AttributeError"): "a module __getattr__'s protocol",
    ("integration_service.maintenance.legacy_import", "ValueError"): (
        "argument: a tenant id the CLI refuses before (a guard against path traversal)"
    ),
    ("integration_service.maintenance.rotation", "ValueError"): (
        "argument: batch_size < 1 (the CLI's IntRange refuses it)"
    ),
    ("integration_service.cli.output", "click.exceptions.Exit"): "click: a command's exit code",
    ("integration_service.cli.sessions", "click.exceptions.UsageError"): "click: usage, exit 2",
    ("integration_service.cli.credentials", "click.exceptions.UsageError"): (
        "click: usage, exit 2"
    ),
    ("integration_service.cli.credentials", "click.exceptions.Exit"): (
        "click: exit 2 from a parameter callback, after its one line (a code given as an argument)"
    ),
    ("integration_service.jobs.base", "celery.exceptions.Ignore"): "Celery: a repeat's no-op",
    ("integration_service.jobs.base", "celery.exceptions.Reject"): (
        "Celery: the broker drops a job whose dead letter could not be published"
    ),
    ("integration_service.jobs.session_task", "celery.exceptions.Ignore"): (
        "Celery: a job forwarded to the session's owner"
    ),
    ("integration_service.devserver.demo", "SystemExit"): "a script exiting with its message",
    ("integration_service.api.models", "ValueError"): (
        "pydantic validators refuse with ValueError; FastAPI answers 422"
    ),
    ("integration_service.api.ratelimit", "ValueError"): (
        "argument: an empty identifier, no limit or one bucket twice in a check, a bad Limit "
        "(the settings are validated before)"
    ),
}

# Raises of a value the AST cannot name (a local variable, an attribute of an attribute),
# each reviewed: what it holds.
REVIEWED_RAISES: dict[tuple[str, str], str] = {
    ("integration_service.jobs.base", "error"): "to_service_error() or unexpected(): ServiceError",
    ("integration_service.jobs.base", "self.retry"): (
        "Celery's Task.retry, which raises celery.exceptions.Retry (control flow)"
    ),
    ("integration_service.store.sessions", "wrapped"): "to_store_error(): a StoreError",
    ("integration_service.client", "self.dependencies.unavailable"): (
        "Dependencies.unavailable: a DependencyUnavailable"
    ),
    ("integration_service.dependencies", "error"): (
        "a probe's own exception that is no connection failure, re-raised in the caller's "
        "thread as the library raised it: what reaching()'s bare raise does in-thread"
    ),
}

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
    if origin is list:
        return [sample(name, typing.get_args(hint)[0])]
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
    assert "integration_service.client.WaitTimedOut" in names
    assert "integration_service.runtime.loop_thread.LoopCallTimedOut" in names
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
    from integration_service.cli.database import MigrationsMissing
    from integration_service.client import WaitTimedOut
    from integration_service.maintenance.import_report import ReportDirectoryUnusable
    from integration_service.maintenance.legacy_import import LegacySourceMissing
    from integration_service.runtime.loop_thread import LoopCallTimedOut, LoopNotRunning
    from integration_service.settings import SettingsError
    from integration_service.telegram.endpoint import EndpointConfigError

    assert issubclass(SettingsError, ValueError) and issubclass(SettingsError, PermanentError)
    assert issubclass(EndpointConfigError, ValueError)
    assert issubclass(LoopNotRunning, RuntimeError) and issubclass(LoopNotRunning, RetryableError)
    # Timeouts stay `except TimeoutError`-able (and the CLI's exit 5), and retryable.
    for timed_out in (WaitTimedOut, LoopCallTimedOut):
        assert issubclass(timed_out, TimeoutError) and issubclass(timed_out, RetryableError)
    for missing in (LegacySourceMissing, MigrationsMissing):
        assert issubclass(missing, FileNotFoundError) and issubclass(missing, PermanentError)
    assert issubclass(ReportDirectoryUnusable, NotADirectoryError)


# Every raise ---------------------------------------------------------------------------

_UNNAMED = object()


def module_file(name: str) -> Path:
    source = inspect.getsourcefile(importlib.import_module(name))
    assert source is not None, name
    return Path(source)


def bound_names(module: types.ModuleType, tree: ast.AST) -> dict[str, Any]:
    """The module's globals, plus every name imported inside its functions."""
    names: dict[str, Any] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and not node.level:
            source = importlib.import_module(node.module)
            for alias in node.names:
                value = getattr(source, alias.name, None)
                if value is None:
                    value = importlib.import_module(f"{node.module}.{alias.name}")
                names[alias.asname or alias.name] = value
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.asname:
                    names[alias.asname] = importlib.import_module(alias.name)
                else:
                    top = alias.name.split(".")[0]
                    names[top] = importlib.import_module(top)
    names.update(vars(module))
    return names


def dotted(node: ast.expr) -> list[str] | None:
    if isinstance(node, ast.Name):
        return [node.id]
    if isinstance(node, ast.Attribute):
        base = dotted(node.value)
        return None if base is None else [*base, node.attr]
    return None


def resolve(node: ast.expr, names: dict[str, Any], cls: type | None) -> Any:
    parts = dotted(node)
    if not parts:
        return _UNNAMED
    head, *rest = parts
    if head == "self" and cls is not None:
        value: Any = cls
    elif head in names:
        value = names[head]
    elif hasattr(builtins, head):
        value = getattr(builtins, head)
    else:
        return _UNNAMED
    for part in rest:
        value = getattr(value, part, _UNNAMED)
        if value is _UNNAMED:
            return _UNNAMED
    return value


def exception_name(cls: type) -> str:
    return cls.__name__ if cls.__module__ == "builtins" else f"{cls.__module__}.{cls.__qualname__}"


def returned_types(function: Any) -> list[Any]:
    """What ``function`` is annotated to return, a union spread out."""
    hint = inspect.unwrap(function).__annotations__.get("return")
    if isinstance(hint, str):
        hint = eval(hint, inspect.unwrap(function).__globals__)  # noqa: S307 - our annotations
    if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union:
        return list(typing.get_args(hint))
    return [hint]


def raises_of(name: str) -> list[tuple[int, str, Any]]:
    """Every ``raise X`` / ``raise X(...)`` of module ``name``: line, X as written, X."""
    module = importlib.import_module(name)
    tree = ast.parse(module_file(name).read_text(encoding="utf-8"))
    names = bound_names(module, tree)
    found: list[tuple[int, str, Any]] = []

    def visit(node: ast.AST, cls: type | None) -> None:
        if isinstance(node, ast.ClassDef):
            inner = getattr(module if cls is None else cls, node.name, None)
            cls = inner if inspect.isclass(inner) else cls
        if isinstance(node, ast.Raise) and node.exc is not None:
            target = node.exc.func if isinstance(node.exc, ast.Call) else node.exc
            found.append((node.lineno, ast.unparse(target), resolve(target, names, cls)))
        for child in ast.iter_child_nodes(node):
            visit(child, cls)

    visit(tree, None)
    return found


def raise_problem(module: str, written: str, value: Any) -> str | None:
    """Why this raise breaks the one-root rule, or None if it does not."""
    if (module, written) in REVIEWED_RAISES:
        return None
    if value is _UNNAMED:
        return "cannot be named statically: add it to REVIEWED_RAISES with what it holds"
    if inspect.isclass(value):
        if issubclass(value, ServiceError) or (module, exception_name(value)) in ALLOWED_RAISES:
            return None
        return (
            f"{exception_name(value)} is no ServiceError: raise a project error, or document "
            "it in errors.py as a programming error and allow it in ALLOWED_RAISES"
        )
    if callable(value):
        returned = returned_types(value)
        if all(inspect.isclass(t) and issubclass(t, ServiceError) for t in returned):
            return None
        return f"{written}() is not annotated to return only ServiceErrors: {returned}"
    return f"{written} is {value!r}, not an exception"


def test_the_raise_check_reads_what_it_must() -> None:
    sites = {(line, written) for line, written, _ in raises_of("integration_service.client")}
    assert any(written == "WaitTimedOut" for _, written in sites), sites
    resolved = {w: v for _, w, v in raises_of("integration_service.dependencies")}
    assert returned_types(resolved["self.unavailable"])[0].__name__ == "DependencyUnavailable"
    # Names imported inside a function are followed (cli/login imports WaitTimedOut so).
    login = {w: v for _, w, v in raises_of("integration_service.cli.login")}
    assert login["WaitTimedOut"].__name__ == "WaitTimedOut"
    assert raise_problem("x", "RuntimeError", RuntimeError) is not None
    assert raise_problem("x", "TimeoutError", TimeoutError) is not None
    assert raise_problem("x", "somewhere", _UNNAMED) is not None


@pytest.mark.parametrize("name", library_modules())
def test_every_raise_is_a_project_error(name: str) -> None:
    problems = [
        f"{module_file(name).name}:{line}: raise {written}: {problem}"
        for line, written, value in raises_of(name)
        if (problem := raise_problem(name, written, value)) is not None
    ]
    assert not problems, "\n".join(problems)


def test_the_allowed_raises_are_documented_and_still_used() -> None:
    documented = integration_service.errors.__doc__ or ""
    used = {
        (name, exception_name(value) if inspect.isclass(value) else written)
        for name in library_modules()
        for _, written, value in raises_of(name)
    }
    used |= {(name, written) for name in library_modules() for _, written, _ in raises_of(name)}
    for module, exception in ALLOWED_RAISES:
        assert exception.rsplit(".", 1)[-1] in documented, f"errors.py must document {exception}"
        assert (module, exception) in used, f"stale ALLOWED_RAISES entry: {module} {exception}"
    for key in REVIEWED_RAISES:
        assert key in used, f"stale REVIEWED_RAISES entry: {key}"


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
    plain.conf["result_backend"] = RESULTS_URL
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
