"""The CLI's operations in the audit trail: ``@audited("channels connect")`` over a
state-changing command records who ran it (``cli:<OS user>``), on which tenant and target,
and how it ended (its exit code's name). Read commands are not recorded.

Placed above ``@guarded``, so it sees the command's exit code. Nothing heavy is imported
until a command ends (``--help`` stays fast), and a failed record never changes the
command's outcome; a tenant the database does not know has no trail to write to.
"""

from __future__ import annotations

import functools
import getpass
from collections.abc import Callable
from typing import Any, ParamSpec, TypeVar

import click

P = ParamSpec("P")
R = TypeVar("R")


def _record(action: str, params: dict[str, Any], exit_code: int) -> None:
    from integration_service.cli.output import ExitCode

    tenant = params.get("tenant_id")
    if not isinstance(tenant, str) or exit_code in (ExitCode.USAGE, ExitCode.DEPENDENCY_DOWN):
        return  # bad input changed nothing; with a dependency down there is nowhere to write
    try:
        from integration_service import audit
        from integration_service.cli.wiring import current_settings
        from integration_service.store import build_engine

        engine = build_engine(current_settings())
        try:
            account = params.get("app_id") or params.get("account_id")
            audit.record(
                engine,
                tenant_id=tenant,
                actor=f"cli:{getpass.getuser()}",
                action=action,
                ok=exit_code == ExitCode.OK,
                target=audit.target_of(params),
                app_id=account if isinstance(account, str) else None,
                error=None if exit_code == ExitCode.OK else ExitCode(exit_code).name.lower(),
            )
        finally:
            engine.dispose()
    except Exception:  # noqa: BLE001, S110 - an unknown tenant, or the database gone meanwhile
        pass


def audited(action: str) -> Callable[[Callable[P, R]], Callable[P, R]]:
    def wrap(command: Callable[P, R]) -> Callable[P, R]:
        @functools.wraps(command)
        def run(*args: P.args, **kwargs: P.kwargs) -> R:
            exit_code = 1
            try:
                result = command(*args, **kwargs)
                exit_code = 0
                return result
            except click.exceptions.Exit as ended:
                exit_code = ended.exit_code
                raise
            finally:
                _record(action, dict(kwargs), exit_code)

        return run

    return wrap
