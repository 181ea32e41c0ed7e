"""Output and exit codes shared by every command.

Scripts drive this CLI, so each outcome has its own exit code, and ``--json`` prints one
JSON document on stdout instead of the human text. A failure is one line on stderr: the
error's own message (errors of this service never carry a secret; the line is scrubbed
once more anyway), as JSON when ``--json`` was given.

Every command module imports this one, and ``--help`` must start fast: the libraries
that errors come from are imported when an error is mapped, not here.
"""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable
from enum import IntEnum
from typing import TYPE_CHECKING, Any, ParamSpec, TextIO, TypeVar, cast

import click

from integration_service.errors import ServiceError

if TYPE_CHECKING:
    from integration_service.dependencies import DependencyUnavailable

P = ParamSpec("P")
R = TypeVar("R")
JSON_META_KEY = "integration_service.json"


class ExitCode(IntEnum):
    """What the process exit status means (README's table)."""

    OK = 0
    FAILED = 1  # the operation ran and failed: login failed, session terminated, ...
    USAGE = 2  # bad arguments or input (click's own usage errors use 2 as well)
    NOT_FOUND = 3  # unknown tenant or session, missing source directory
    DEPENDENCY_DOWN = 4  # broker, Redis, PostgreSQL, Vault unreachable; health not ready
    TIMEOUT = 5  # waiting for a job or a state took longer than --timeout


class CommandFailure(ServiceError):
    """A failure with its exit code, shown as one line (or one JSON object) on stderr.

    Its ``code`` is ``error``: the name the JSON line carries.
    """

    code = "failed"

    def __init__(
        self, exit_code: ExitCode, message: str, *, error: str = "failed", scrub: bool = True
    ) -> None:
        # One line: drivers append hints and links after the line that names the failure.
        first_line = next((line for line in message.strip().splitlines() if line), "failed")
        if scrub:
            from integration_service.observability.scrubbing import scrub_text

            first_line = scrub_text(first_line)
        self.message = first_line
        super().__init__(self.message, code=error)
        self.exit_code = exit_code
        self.error = error

    def show(self) -> None:
        if json_requested():
            line = json.dumps(
                {"error": self.error, "message": self.message, "exit_code": int(self.exit_code)}
            )
        else:
            line = f"error: {self.message}"
        click.echo(line, err=True)


def json_requested() -> bool:
    context = click.get_current_context(silent=True)
    return bool(context is not None and context.find_root().meta.get(JSON_META_KEY))


def _remember_json(context: click.Context, _param: click.Parameter, value: bool) -> bool:
    context.find_root().meta[JSON_META_KEY] = value
    return value


json_option = click.option(
    "--json",
    "as_json",
    is_flag=True,
    is_eager=True,
    expose_value=True,
    callback=_remember_json,
    help="Print one JSON document on stdout instead of text.",
)


def table(rows: list[dict[str, Any]], columns: tuple[str, ...], headers: tuple[str, ...]) -> str:
    """Rows as aligned text columns (None shows as "-")."""
    cells = [[("-" if row.get(c) is None else str(row[c])) for c in columns] for row in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) for i, h in enumerate(headers)]
    return "\n".join(
        "  ".join(value.ljust(widths[i]) for i, value in enumerate(line)).rstrip()
        for line in [headers, *cells]
    )


def emit(data: dict[str, Any], text: str | Callable[[], str]) -> None:
    """Print ``data`` as JSON when --json was given, else the human ``text``."""
    if json_requested():
        click.echo(json.dumps(data, default=str, sort_keys=True))
    else:
        click.echo(text() if callable(text) else text)


def failure_for(error: BaseException) -> CommandFailure:
    """The exit code and one-line message for an error a command let through."""
    unreachable = _unreachable_dependency(error)
    if unreachable is not None:
        # Names the dependency and its address (never credentials): "redis unreachable
        # at 127.0.0.1:6379/0: connection refused". Before the imports below: a command
        # out of budget should not spend a tenth of a second importing Celery to say so.
        return CommandFailure(ExitCode.DEPENDENCY_DOWN, str(unreachable), error=unreachable.code)
    import kombu.exceptions
    import redis.exceptions
    import sqlalchemy.exc
    from celery.exceptions import TimeoutError as CeleryTimeout

    from integration_service.client import UnknownTenant
    from integration_service.crypto import CipherMisconfigured, CipherUnavailable
    from integration_service.inputs import InvalidInput
    from integration_service.settings import SettingsError
    from integration_service.store import SessionNotFound, StoreError, StoreUnavailable
    from integration_service.telegram.terminated import SessionTerminated

    message = str(error) or type(error).__name__
    # Timeouts first: the builtin TimeoutError is also an OSError.
    if isinstance(error, TimeoutError | CeleryTimeout):
        return CommandFailure(ExitCode.TIMEOUT, f"timed out: {message}", error="timeout")
    if isinstance(error, InvalidInput | SettingsError):
        # Our own validation text: it names the field and never echoes the value, and the
        # scrubber would mistake "password: must be ..." for a password.
        return CommandFailure(ExitCode.USAGE, message, error="invalid_input", scrub=False)
    if isinstance(error, UnknownTenant | SessionNotFound):
        return CommandFailure(ExitCode.NOT_FOUND, message, error="not_found")
    if isinstance(error, SessionTerminated):
        return CommandFailure(ExitCode.FAILED, message, error=error.code)
    if isinstance(
        error,
        StoreUnavailable
        | CipherUnavailable
        | kombu.exceptions.OperationalError
        | redis.exceptions.ConnectionError
        | redis.exceptions.TimeoutError
        | sqlalchemy.exc.OperationalError
        | ConnectionError,
    ):
        return CommandFailure(
            ExitCode.DEPENDENCY_DOWN, f"dependency unreachable: {message}", error="unavailable"
        )
    if isinstance(error, StoreError):
        return CommandFailure(ExitCode.FAILED, message, error=error.error_code.value)
    if isinstance(error, CipherMisconfigured):
        return CommandFailure(ExitCode.FAILED, message, error="cipher_misconfigured")
    if isinstance(error, ServiceError):
        return CommandFailure(ExitCode.FAILED, message, error=error.code)
    # A job's own error, re-raised by the result backend: the operation failed.
    return CommandFailure(ExitCode.FAILED, f"{type(error).__name__}: {message}", error="job_failed")


class _CurrentStderr:
    """Writes to whatever ``sys.stderr`` is at the time (test runners swap it)."""

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()


def _unreachable_dependency(error: BaseException) -> DependencyUnavailable | None:
    """``error`` as ``DependencyUnavailable`` if it says a dependency is unreachable.

    The producer raises it itself; commands that use the store or an engine directly
    (``tenant add``, ``list``, the maintenance commands) let the libraries' errors
    through, and these are named here from the configured URLs.
    """
    from integration_service.dependencies import Dependencies, DependencyUnavailable
    from integration_service.settings import SettingsError, get_settings

    if isinstance(error, DependencyUnavailable):
        return error
    try:
        settings = get_settings()
    except SettingsError:
        return None
    dependencies = Dependencies.of(settings)
    dependency = dependencies.classify(error)
    return None if dependency is None else dependencies.unavailable(dependency, error)


def route_logs_to_stderr() -> None:
    """Keep stdout for results: library logs go to stderr, warnings and worse only.

    Left alone when the process configured logging already (a worker, a test session).
    """
    import structlog

    if not structlog.is_configured():
        from integration_service.observability.logging import configure_logging

        configure_logging("WARNING", stream=cast(TextIO, _CurrentStderr()))


def guarded(command: Callable[P, R]) -> Callable[P, R]:
    """Turn any error a command lets through into its exit code and one stderr line."""

    @functools.wraps(command)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        route_logs_to_stderr()
        try:
            return command(*args, **kwargs)
        except (click.ClickException, click.exceptions.Exit, click.Abort):
            raise
        except Exception as error:  # noqa: BLE001 - every error gets an exit code
            shown = error if isinstance(error, CommandFailure) else failure_for(error)
        shown.show()
        raise click.exceptions.Exit(int(shown.exit_code))

    return wrapper


def finish(code: ExitCode) -> None:
    """End the command with ``code`` after its output was printed."""
    if code != ExitCode.OK:
        raise click.exceptions.Exit(int(code))
