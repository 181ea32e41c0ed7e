"""Flower's credentials file: read once at start, refused with one clear line when bad.

``python -m integration_service.observability.flower`` moves the content of the file
named by FLOWER_BASIC_AUTH_FILE into FLOWER_BASIC_AUTH (which Flower reads itself). A
file that is missing, unreadable, empty or not ``user:password`` stops it before Flower
starts: exit 2 and one stderr line naming the variable and the path, never the content.
``--basic-auth`` on the command line is refused the same way. (The running Flower with
a credentials file: tests/e2e/test_flower_credentials_file.py.)
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from integration_service.observability.flower import (
    AUTH_ENV,
    AUTH_FILE_ENV,
    CredentialsOnCommandLine,
    flower_argv,
    load_credentials,
)
from integration_service.settings import SettingsError

SECRET = "s3cret-pw-do-not-print"


def start_flower(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    full_env = {k: v for k, v in os.environ.items() if k not in (AUTH_ENV, AUTH_FILE_ENV)}
    return subprocess.run(
        [sys.executable, "-m", "integration_service.observability.flower", *args],
        env={**full_env, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


def assert_refused(run: subprocess.CompletedProcess[str], *needles: str) -> None:
    assert run.returncode == 2, run
    assert run.stdout == "", run
    assert run.stderr.startswith("error: ") and run.stderr.count("\n") == 1, run.stderr
    assert "Traceback" not in run.stderr
    for needle in needles:
        assert needle in run.stderr, run.stderr
    assert SECRET not in run.stderr


def secret_file(path: Path, content: str) -> Path:
    path.write_text(content, encoding="utf-8")
    path.chmod(0o600)
    return path


def test_a_missing_file_is_one_line(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere" / "flower-auth"
    run = start_flower({AUTH_FILE_ENV: str(missing)})
    assert_refused(run, AUTH_FILE_ENV, str(missing), "No such file or directory")


def test_an_unreadable_file_is_one_line(tmp_path: Path) -> None:
    # Tests may run as root, whom a 0000 mode does not stop: a directory cannot be read
    # as a file by anyone.
    directory = tmp_path / "flower-auth"
    directory.mkdir()
    run = start_flower({AUTH_FILE_ENV: str(directory)})
    assert_refused(run, AUTH_FILE_ENV, str(directory), "Is a directory")
    binary = tmp_path / "binary"
    binary.write_bytes(b"\xff\xfe" + SECRET.encode())
    assert_refused(start_flower({AUTH_FILE_ENV: str(binary)}), str(binary), "not UTF-8")


@pytest.mark.parametrize("content", ["", "  \n", SECRET, f":{SECRET}", f"a:b,{SECRET}"])
def test_an_empty_or_malformed_file_is_one_line(tmp_path: Path, content: str) -> None:
    path = secret_file(tmp_path / "flower-auth", content)
    run = start_flower({AUTH_FILE_ENV: str(path)})
    assert_refused(run, AUTH_FILE_ENV, str(path))


def test_credentials_on_the_command_line_are_refused() -> None:
    for option in (f"--basic-auth=operator:{SECRET}", "--basic_auth", "-basic-auth"):
        run = start_flower({}, option)
        assert_refused(run, AUTH_ENV, AUTH_FILE_ENV, "command line")


def test_the_file_becomes_flowers_environment_variable(tmp_path: Path) -> None:
    path = secret_file(tmp_path / "flower-auth", f"operator:{SECRET} x\nviewer:pw2\n")
    environ = {AUTH_FILE_ENV: str(path), AUTH_ENV: "decoy:decoy"}
    load_credentials(environ)
    # One pair per line or comma-separated; the file wins; spaces inside are kept.
    assert environ == {AUTH_ENV: f"operator:{SECRET} x,viewer:pw2"}
    untouched = {AUTH_ENV: "operator:pw"}
    load_credentials(untouched)
    assert untouched == {AUTH_ENV: "operator:pw"}


def test_the_errors_are_project_errors(tmp_path: Path) -> None:
    with pytest.raises(SettingsError) as caught:
        load_credentials({AUTH_FILE_ENV: str(tmp_path / "missing")})
    assert caught.value.code == "invalid_settings"
    with pytest.raises(CredentialsOnCommandLine) as refused:
        flower_argv(["--port=1", "--basic-auth=a:b"], "INFO")
    assert refused.value.code == "credentials_on_command_line"
    assert "a:b" not in str(refused.value)
