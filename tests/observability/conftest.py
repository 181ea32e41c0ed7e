"""Fixtures: the real JSON log pipeline captured in memory, restored after each test."""

from __future__ import annotations

import io
import json
import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import structlog
from telethon.crypto import AuthKey
from telethon.sessions import StringSession

from integration_service.observability.logging import (
    ROUTED_LOGGERS,
    configure_logging,
    set_worker_name,
)


@dataclass
class CapturedLog:
    """What configure_logging wrote, as raw text and as parsed JSON lines."""

    stream: io.StringIO = field(default_factory=io.StringIO)

    @property
    def text(self) -> str:
        return self.stream.getvalue()

    def lines(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.text.splitlines() if line.strip()]

    def by_event(self, event: str) -> dict[str, Any]:
        matches = [line for line in self.lines() if line.get("event") == event]
        assert len(matches) == 1, f"expected one {event!r} line, got {matches}"
        return matches[0]


@pytest.fixture
def captured_log() -> Iterator[CapturedLog]:
    """configure_logging into a StringIO; the process's previous logging comes back after."""
    root = logging.getLogger()
    saved_root = (list(root.handlers), root.level)
    saved_routed = {
        name: (list(logging.getLogger(name).handlers), logging.getLogger(name).level)
        for name in ROUTED_LOGGERS
    }
    saved_structlog = structlog.get_config()
    captured = CapturedLog()
    configure_logging("INFO", worker="worker-test@host", stream=captured.stream)
    try:
        yield captured
    finally:
        for handler in list(root.handlers):
            root.removeHandler(handler)
        for handler in saved_root[0]:
            root.addHandler(handler)
        root.setLevel(saved_root[1])
        for name, (handlers, level) in saved_routed.items():
            library_logger = logging.getLogger(name)
            library_logger.handlers = handlers
            library_logger.setLevel(level)
        structlog.configure(**saved_structlog)
        structlog.contextvars.clear_contextvars()
        set_worker_name(None)
        logging.captureWarnings(False)


@pytest.fixture
def session_string() -> str:
    """A real Telethon StringSession with a random 256-byte auth key."""
    session = StringSession()
    session.set_dc(2, "149.154.167.51", 443)
    session.auth_key = AuthKey(os.urandom(256))
    saved = session.save()
    assert saved.startswith("1") and len(saved) > 300
    return saved
