"""A command's time budget: DEPENDENCY_TIMEOUT for the whole command, not per call.

A library call (``IntegrationClient``) gives each call DEPENDENCY_TIMEOUT. A command is a
process: it spends part of that time starting (imports, about 0.5 s here) and some more
printing its error and exiting. So the budget is counted from the start of the process
(Linux: ``/proc/self/stat``; elsewhere, or when the CLI runs inside another program such
as a test runner or a notebook, from entering the CLI), and the up-front dependency check
gets only what is left, less ``EXIT_RESERVE`` for printing and exiting.

When start-up ate nearly all of it (a loaded machine, DEPENDENCY_TIMEOUT at its minimum
of 2 s), the check still gets ``MIN_WAIT``: failing a healthy dependency because Python
started slowly would be worse than overrunning by a fraction of a second.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import click

STARTED_META_KEY = "integration_service.started"
# Closing the connections, printing the error line and interpreter exit (measured here:
# the line 0.05 s after the deadline, then 0.14 s of interpreter finalisation).
EXIT_RESERVE = 0.3
MIN_WAIT = 1.0
CONSOLE_SCRIPT = "integration-service"
MAIN_MODULE = "integration_service.cli.__main__"


def process_age() -> float | None:
    """Seconds since this process started, from /proc; None where that is unknown."""
    try:
        stat = Path("/proc/self/stat").read_text()
        # Field 22 (starttime, in clock ticks after boot); split after the command name,
        # which is in parentheses and may contain spaces.
        ticks = int(stat.rsplit(")", 1)[1].split()[19])
        hertz = os.sysconf("SC_CLK_TCK")
        uptime = time.clock_gettime(time.CLOCK_BOOTTIME)
    except (OSError, ValueError, IndexError, AttributeError):
        return None
    return max(0.0, uptime - ticks / hertz)


def started_for_the_cli() -> bool:
    """Whether this process is the CLI's own: ``integration-service ...`` or
    ``python -m integration_service.cli ...``, not a program that calls ``main``."""
    spec = getattr(sys.modules.get("__main__"), "__spec__", None)
    return Path(sys.argv[0]).name == CONSOLE_SCRIPT or getattr(spec, "name", None) == MAIN_MODULE


def start(context: click.Context) -> None:
    """Note when this command started (called by the CLI group for every invocation)."""
    now = time.monotonic()
    age = process_age() if started_for_the_cli() else None
    context.find_root().meta[STARTED_META_KEY] = now if age is None else now - age


def remaining(timeout: float) -> float:
    """Seconds the dependency check may still take, of ``timeout`` for the command.

    Outside a CLI invocation (no start noted), the whole ``timeout``.
    """
    context = click.get_current_context(silent=True)
    started = None if context is None else context.find_root().meta.get(STARTED_META_KEY)
    if not isinstance(started, float):
        return timeout
    left = timeout - (time.monotonic() - started) - EXIT_RESERVE
    return max(MIN_WAIT, left)
