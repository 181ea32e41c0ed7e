"""``code-login``, ``password`` and ``bot-login``: the steps that carry a secret.

A secret typed as an argument stays in shell history and in ``ps`` output for everyone
on the host, so passwords, bot tokens and login codes are only ever read from a hidden
prompt or from stdin (``code-login --code`` prompts, ``--code -`` reads stdin; a code
given as ``--code 12345`` is refused without being repeated). The value goes straight to
the producer API, which validates it and hands it to the worker through a one-time drop;
nothing here prints it.
"""

from __future__ import annotations

import sys

import click

from integration_service.cli.audit import audited
from integration_service.cli.login_output import report_step
from integration_service.cli.output import CommandFailure, ExitCode, guarded, json_option
from integration_service.cli.wiring import EVERYTHING, open_client

STDIN_MARKER = "-"

timeout_option = click.option(
    "--timeout",
    type=click.FloatRange(min=1, max=3600),
    default=60.0,
    show_default=True,
    help="Seconds to wait for the job's result.",
)


def _refuse_inline(
    _context: click.Context, _param: click.Parameter, value: tuple[str, ...]
) -> None:
    # Click would quote an unexpected argument in its error: that argument is most likely
    # the secret itself, so refuse it without repeating it.
    if value:
        raise click.UsageError("the secret is never taken as an argument; pipe it to stdin")


# Collects stray arguments only to refuse them (hidden from the usage line).
inline_secret_guard = click.argument(
    "stray", nargs=-1, metavar="", expose_value=False, callback=_refuse_inline
)
CODE_ON_COMMAND_LINE = (
    "the login code is never taken as an argument (ps and shell history show it): "
    "give --code alone to be prompted, or --code - and pipe it to stdin"
)


def _code_from_stdin_only(
    _context: click.Context, _param: click.Parameter, value: str | None
) -> str | None:
    # Refused while the arguments are parsed: before any connection or prompt, and
    # without repeating the value (it is most likely the real code).
    if value is not None and value != STDIN_MARKER:
        failure = CommandFailure(
            ExitCode.USAGE, CODE_ON_COMMAND_LINE, error="invalid_input", scrub=False
        )
        failure.show()
        raise click.exceptions.Exit(int(failure.exit_code))
    return value


def read_secret(prompt: str) -> str:
    """One line from stdin when it is piped, else a hidden prompt; never echoed."""
    if sys.stdin is not None and sys.stdin.isatty():
        return str(click.prompt(prompt, hide_input=True, err=True))
    return read_stdin_line()


def read_stdin_line() -> str:
    # Only the line break goes: spaces may be part of a password.
    return sys.stdin.readline().rstrip("\r\n")


@click.command("code-login")
@click.argument("tenant_id")
@click.argument("app_id")
@click.option("--phone", help="Request a login code for this number (E.164, e.g. +4915...).")
@click.option(
    "--code",
    is_flag=False,
    flag_value=STDIN_MARKER,
    default=None,
    metavar="[-]",
    callback=_code_from_stdin_only,
    help="Submit the code Telegram sent, typed at a hidden prompt, or read from stdin "
    "when piped ('--code -' says so explicitly). Never as an argument.",
)
@timeout_option
@json_option
@audited("code-login")
@guarded
def code_login(
    tenant_id: str,
    app_id: str,
    phone: str | None,
    code: str | None,
    timeout: float,
    as_json: bool,
) -> None:
    """Log in with a phone code: first --phone (sends the code), then --code.

    The code is typed at a hidden prompt or piped to stdin, never given as an argument.

    \b
    integration-service code-login acme shop-1 --phone +4915112345678
    integration-service code-login acme shop-1 --code          (prompts for it)
    integration-service code-login acme shop-1 --code -  < code.txt
    """
    if (phone is None) == (code is None):
        raise click.UsageError("give exactly one of --phone (request a code) or --code")
    from integration_service.store import SessionNotFound

    with open_client(needs=EVERYTHING) as client:
        if phone is not None:
            handle = client.request_code(tenant_id, app_id, phone)
        else:
            # As for the password: nobody should type a code for a session not there.
            if client.get_status(tenant_id, app_id).state is None:
                raise SessionNotFound(f"no session {tenant_id}/{app_id}")
            handle = client.submit_code(tenant_id, app_id, read_secret("Login code"))
        result = client.wait(handle, timeout=timeout)
    report_step(result, handle.job_id)


@click.command("password")
@click.argument("tenant_id")
@click.argument("app_id")
@inline_secret_guard
@timeout_option
@json_option
@audited("password")
@guarded
def password(tenant_id: str, app_id: str, timeout: float, as_json: bool) -> None:
    """Submit the 2FA password of a login that needs one.

    The password is read from a hidden prompt, or from stdin when piped; never from an
    argument.
    """
    from integration_service.store import SessionNotFound

    with open_client(needs=EVERYTHING) as client:
        # Checked before asking: nobody should type a password for a session that is
        # not there (the producer checks again when submitting).
        if client.get_status(tenant_id, app_id).state is None:
            raise SessionNotFound(f"no session {tenant_id}/{app_id}")
        handle = client.submit_password(tenant_id, app_id, read_secret("2FA password"))
        result = client.wait(handle, timeout=timeout)
    report_step(result, handle.job_id)


@click.command("bot-login")
@click.argument("tenant_id")
@click.argument("app_id")
@inline_secret_guard
@timeout_option
@json_option
@audited("bot-login")
@guarded
def bot_login(tenant_id: str, app_id: str, timeout: float, as_json: bool) -> None:
    """Connect a bot by its token (from a hidden prompt or stdin; never an argument)."""
    with open_client(needs=EVERYTHING) as client:
        handle = client.connect_bot(tenant_id, app_id, read_secret("Bot token"))
        result = client.wait(handle, timeout=timeout)
    report_step(result, handle.job_id)
