"""Every benchmark runs end to end with ``--quick`` and prints its result lines.

Speed is never asserted here (bench/ measures it); only that each benchmark builds its
world, measures, tears everything down and reports figures that are numbers.
"""

from __future__ import annotations

import math
import re
import subprocess
import sys

import pytest

from tests.support.processes import REPO_ROOT

# benchmark script -> how many RESULT lines its --quick run prints
BENCHMARKS = {
    "upsert_bench.py": 1,
    "enqueue_bench.py": 1,
    "send_bench.py": 2,
    "connect_bench.py": 4,
    "validation_bench.py": 1,
    "inbound_bench.py": 2,
    "api_bench.py": 2,
}
NUMBER = re.compile(r"=(-?[0-9.]+)")


@pytest.mark.timeout(150)
@pytest.mark.parametrize("script", sorted(BENCHMARKS))
def test_benchmark_quick_run_reports_figures(script: str) -> None:
    finished = subprocess.run(
        [sys.executable, str(REPO_ROOT / "bench" / script), "--quick"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=140,
    )
    assert finished.returncode == 0, finished.stdout[-3000:] + finished.stderr[-3000:]
    results = [line for line in finished.stdout.splitlines() if line.startswith("RESULT ")]
    assert len(results) == BENCHMARKS[script], finished.stdout
    for line in results:
        figures = [float(value) for value in NUMBER.findall(line)]
        assert figures, line
        assert all(math.isfinite(value) and value >= 0 for value in figures), line
