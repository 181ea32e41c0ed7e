"""Schema fuzzing: schemathesis generates requests from the API's own /openapi.json and
runs them against the real API process with a key of every scope: no answer is a 5xx,
and every answer matches the schema (status code, content type, headers, body).

The event stream is left out (it never ends: schemathesis would wait on it); its
behaviour has its own tests (test_events.py)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.api.conftest import AccountMaker, KeyMaker
from tests.support.api_process import ApiProcess

CHECKS = ",".join(
    [
        "not_a_server_error",
        "status_code_conformance",
        "content_type_conformance",
        "response_schema_conformance",
        "response_headers_conformance",
    ]
)


@pytest.mark.timeout(300)
def test_generated_requests_get_no_5xx_and_match_the_schema(
    api: ApiProcess, make_key: KeyMaker, make_account: AccountMaker, tmp_path: Path
) -> None:
    make_account("tenant-fuzz", "acct")
    key = make_key("tenant-fuzz", "*")
    args = [
        sys.executable,
        "-m",
        "schemathesis.cli",
        "run",
        f"{api.base}/openapi.json",
        "--checks",
        CHECKS,
        "--header",
        f"Authorization: Bearer {key}",
        "--exclude-path",
        "/api/integrations/events/stream",
        "--max-examples",
        "25",
        "--phases",
        "examples,coverage,fuzzing",
        "--seed",
        "1",
        # One worker: CPython 3.11's compile() is not thread-safe ("AST constructor
        # recursion depth mismatch", seen inside schemathesis with two).
        "--workers",
        "1",
        "--request-timeout",
        "20",
        "--generation-database",
        "none",
        "--report-dir",
        str(tmp_path / "report"),
    ]
    done = subprocess.run(
        args,
        capture_output=True,
        text=True,
        timeout=280,
        cwd=tmp_path,
        env={**os.environ, "SCHEMATHESIS_HOOKS": ""},
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-12000:]
