"""Fixtures for the CLI tests: the whole system (re-exported) and an in-process runner."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping

import pytest
from click.testing import CliRunner, Result

from integration_service.cli import main
from integration_service.settings import get_settings
from tests.e2e.conftest import emulator, system, system_overrides  # noqa: F401

Invoke = Callable[..., Result]


def run_cli(
    args: list[str], env: Mapping[str, str | None] | None = None, input: str | None = None
) -> Result:
    """Run ``integration-service ARGS`` in this process with ``env`` overriding os.environ.

    Settings are built from the environment once per process (lru_cache): cleared
    around each run so every invocation sees exactly its own environment.
    """
    get_settings.cache_clear()
    try:
        return CliRunner().invoke(main, args, env=dict(env or {}), input=input)
    finally:
        get_settings.cache_clear()


def assert_no_secret(result: Result, *secrets: str) -> None:
    for secret in secrets:
        assert secret not in result.stdout, "secret in stdout"
        assert secret not in result.stderr, "secret in stderr"


@pytest.fixture
def cli() -> Iterator[Invoke]:
    yield run_cli
