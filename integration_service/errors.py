"""The one error root of the service, with a retryable and a permanent branch.

Every failure a job can meet is one of these, so the task layer decides retry or
dead-letter from the class alone. Messages never carry secrets (session strings, auth
keys, codes, passwords, tokens): they say what failed and for which session key.
"""

from __future__ import annotations


class ServiceError(Exception):
    """Root of every error this service raises on purpose."""

    code: str = "service_error"

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        if code is not None:
            self.code = code


class RetryableError(ServiceError):
    """A transient failure: the same job may succeed later."""

    code = "retryable"
    # False for waits a limit asks for (FloodWait, pacing): bounded separately.
    counts_against_limit = True


class PermanentError(ServiceError):
    """The job can never succeed as given; it goes to the dead-letter queue."""

    code = "permanent"
