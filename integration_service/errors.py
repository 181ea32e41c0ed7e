"""The one error root of the service, with a retryable and a permanent branch.

Every failure a job can meet is one of these, so the task layer decides retry or
dead-letter from the class alone. Messages never carry secrets (session strings, auth
keys, codes, passwords, tokens): they say what failed and for which session key.

Rules every exception of the library follows (tests/unit/test_error_tree.py checks them):

- It derives from ``ServiceError`` and has a stable ``code``. Where callers rely on a
  builtin, it also derives from it (``SettingsError`` is a ``ValueError``,
  ``LoopNotRunning`` a ``RuntimeError``, ``WaitTimedOut`` and ``LoopCallTimedOut`` are
  ``TimeoutError``s, ``LegacySourceMissing`` a ``FileNotFoundError``).
- What a ``raise`` raises is such a class, or a function declared to return one; the only
  other exceptions raised are the programming errors and the control flow listed below
  (the test reads every ``raise`` and allows each only in the modules that need it).
- A ``RetryableError`` declares how it is retried (``retry_after``, ``exact``,
  ``retry_headers``, ``counts_against_limit``); the base task reads exactly these.
- It survives pickling and the JSON result format with its class, message, code and
  attributes, whatever its ``__init__`` takes (``__reduce__`` below,
  ``jobs/results.py``), so a producer waiting on a job gets the project error back.

Internal control flow that is still a ``ServiceError`` (caught before it can fail a job):
``runtime.ownership.OwnedElsewhere`` (the job is forwarded to the session's owner).

Programming errors are the only builtins the library raises on purpose; no class is
defined for them, and a job that meets one fails with ``UnexpectedError``:

- ``ValueError`` for an argument the boundary should have refused (a session id with a
  ``:`` given to the lease manager, a ttl or batch size below 1, an auth key that is not
  256 bytes, an unknown log level, a rate limit check without an identifier), and inside
  pydantic validators, which ``get_settings`` reports as ``SettingsError``;
- ``RuntimeError`` for an object used out of its lifecycle (a heartbeat started twice, a
  server's address read before it started);
- ``AttributeError`` from a module's ``__getattr__`` (the language's protocol).

Control flow, not failures: click's ``UsageError`` and ``Exit`` (the CLI's usage error and
exit codes), Celery's ``Ignore``, ``Reject`` and ``Retry`` (a job's no-op, drop and
retry), and ``SystemExit`` (the dev demo script). An operational fault is never a builtin:
a wait that gave up is ``WaitTimedOut``, a coroutine past its deadline on the worker's
loop ``LoopCallTimedOut``, a cipher's short answer a ``CipherError``, a missing directory
``LegacySourceMissing`` / ``MigrationsMissing``, a bad Flower credentials file a
``SettingsError``.
The emulator (``integration_service/emulator``) is a separate program with its own
errors and is not part of this tree.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

# What a retry may add to the job's headers (AMQP header values).
HeaderValue = str | int | float | bool


def restore(cls: type[ServiceError], message: str, state: Mapping[str, Any]) -> ServiceError:
    """Recreate an error from its message and ``error_state()``, without calling ``__init__``
    (whose signature varies): what unpickling and the JSON result format use."""
    error = cls.__new__(cls)
    Exception.__init__(error, message)
    error.__dict__.update(state)
    return error


class ServiceError(Exception):
    """Root of every error this service raises on purpose."""

    code: str = "service_error"

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        if code is not None:
            self.code = code

    @property
    def detail(self) -> str:
        """The message the error was raised with."""
        return str(self.args[0]) if self.args else ""

    @property
    def retryable(self) -> bool:
        """Whether the same job may succeed later (the retryable branch)."""
        return isinstance(self, RetryableError)

    def error_state(self) -> dict[str, Any]:
        """The attributes that travel with the error: the subclass's own, and ``code``
        when it was given at construction (else the class declares it)."""
        return dict(self.__dict__)

    def __reduce__(self) -> tuple[Any, ...]:
        # BaseException's default re-calls cls(*args), which breaks for every subclass
        # whose __init__ takes other arguments than the message (Celery would then wrap
        # it in UnpickleableExceptionWrapper).
        return (restore, (type(self), self.detail, self.error_state()))


class RetryableError(ServiceError):
    """A transient failure: the same job may succeed later."""

    code = "retryable"

    retry_after: float | None
    exact: bool
    retry_headers: dict[str, HeaderValue]
    counts_against_limit: bool

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        retry_after: float | None = None,
        exact: bool = False,
        retry_headers: Mapping[str, HeaderValue] | None = None,
        counts_against_limit: bool = True,
    ) -> None:
        """How to retry, as dramatiq's ``Retry(delay=)`` declares it.

        ``retry_after``: seconds until the retry (None: exponential backoff with jitter).
        ``exact``: retry at exactly ``retry_after`` (rounded up to a whole second), no
        jitter: a reserved slot. ``retry_headers``: headers the retried job carries.
        ``counts_against_limit``: False for waits Telegram or our own limits ask for
        (FloodWait, pacing, an open circuit); those are bounded by the task's
        ``max_deferrals`` instead of ``max_retries``.
        """
        super().__init__(message, code=code)
        # A slot already passed means "now"; an error must never fail to construct.
        self.retry_after = None if retry_after is None else max(0.0, float(retry_after))
        self.exact = exact
        self.retry_headers = dict(retry_headers or {})
        self.counts_against_limit = counts_against_limit


class PermanentError(ServiceError):
    """The job can never succeed as given; it goes to the dead-letter queue."""

    code = "permanent"


class UnexpectedError(ServiceError):
    """A job met an exception nothing classified (a bug or an unmapped library error).

    Neither branch: nobody knows whether a retry would help, so the job is dead-lettered
    with the original exception's type and message, and its traceback is logged.
    """

    code = "unexpected_error"

    def __init__(self, exception_type: str, detail: str) -> None:
        super().__init__(f"{exception_type}: {detail}" if detail else exception_type)
        self.exception_type = exception_type
