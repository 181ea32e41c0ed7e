"""Flower, the operators' dashboard: JSON logs, and no credentials on its command line.

``python -m integration_service.observability.flower [flower options]`` runs
``celery -A integration_service.celery_app flower [flower options]`` after routing every
logger of the process (Flower's, tornado's, Celery's) into the project's scrubbed JSON
pipeline: run bare, Flower logs tornado's plain-text lines.

Credentials never go on the command line, where ``ps`` shows them to every user of the
host: Flower reads ``FLOWER_BASIC_AUTH`` (``user:password``, comma-separated for more
than one) from its environment itself, and ``FLOWER_BASIC_AUTH_FILE`` names a file that
holds the same (a mounted secret) instead; it wins over ``FLOWER_BASIC_AUTH``. A file
that cannot be read, is empty or holds an entry that is not ``user:password`` stops the
start with one line naming the variable and the path (never the content). A
``--basic-auth`` option is refused.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from integration_service.errors import PermanentError
from integration_service.settings import SettingsError

AUTH_ENV = "FLOWER_BASIC_AUTH"
AUTH_FILE_ENV = "FLOWER_BASIC_AUTH_FILE"
CELERY_APP = "integration_service.celery_app"


class CredentialsOnCommandLine(PermanentError, ValueError):
    """``--basic-auth`` was given: it would show in every process list."""

    code = "credentials_on_command_line"


def load_credentials(environ: dict[str, str] | os._Environ[str]) -> None:
    """Move FLOWER_BASIC_AUTH_FILE's content into FLOWER_BASIC_AUTH (read by Flower).

    Raises ``SettingsError`` (one line: the variable, the path, what is wrong) for a file
    that cannot be read, is empty, or holds an entry that is not ``user:password``.
    """
    path = environ.pop(AUTH_FILE_ENV, None)
    if path:
        try:
            value = Path(path).read_text(encoding="utf-8").strip()
        except (OSError, UnicodeError) as error:
            reason = error.strerror if isinstance(error, OSError) else "not UTF-8 text"
            raise SettingsError(f"cannot read {AUTH_FILE_ENV} {path}: {reason}") from None
        if not value:
            raise SettingsError(f"{AUTH_FILE_ENV} names an empty file: {path}")
        # One pair per line is accepted too; Flower wants them comma-separated. Nothing
        # inside a line is stripped: spaces may belong to a password.
        entries = [e for line in value.splitlines() for e in line.split(",") if e]
        if not all(":" in entry and not entry.startswith(":") for entry in entries):
            raise SettingsError(
                f"{AUTH_FILE_ENV} {path}: every entry must be user:password (comma-separated)"
            )
        environ[AUTH_ENV] = ",".join(entries)


def flower_argv(args: list[str], log_level: str) -> list[str]:
    """The ``celery`` command line for Flower with ``args``; refuses credentials in it."""
    for arg in args:
        name = arg.split("=", 1)[0].lstrip("-").replace("_", "-")
        if name == "basic-auth":
            raise CredentialsOnCommandLine(
                f"pass Flower's credentials in {AUTH_ENV} or {AUTH_FILE_ENV}, "
                "not on the command line (every process list shows it)"
            )
    # Tornado sets the root logger's level from its own --logging option (default info):
    # start from ours; an explicit --logging in ``args`` comes later and wins.
    return ["celery", "-A", CELERY_APP, "flower", f"--logging={log_level.lower()}", *args]


def main(argv: list[str] | None = None) -> int:
    from integration_service.observability.logging import configure_logging
    from integration_service.settings import get_settings

    args = list(sys.argv[1:] if argv is None else argv)
    try:
        load_credentials(os.environ)
        command = flower_argv(args, get_settings().log_level)
    except (SettingsError, CredentialsOnCommandLine) as error:
        sys.stderr.write(f"error: {error}\n")
        return 2
    # Before Flower starts: with a handler on the root logger, tornado adds none of its own.
    configure_logging(get_settings().log_level)
    from celery.bin.celery import main as celery_main

    sys.argv = command
    return int(celery_main() or 0)


if __name__ == "__main__":
    sys.exit(main())
