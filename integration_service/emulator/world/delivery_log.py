"""Every message the world delivered, for tests and the demo to count and inspect."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from integration_service.emulator.journal import Journal

DELIVERIES_TABLE = "deliveries"


@dataclass(frozen=True)
class DeliveredMessage:
    log_id: int
    sender_id: int
    peer_type: str  # "user" | "chat" | "channel"
    peer_id: int
    text: str
    random_id: int
    date: float
    message_id: int

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class DeliveryLog:
    def __init__(self, journal: Journal | None = None) -> None:
        self._entries: list[DeliveredMessage] = []
        self._journal = journal or Journal()

    def restore(self, entries: list[DeliveredMessage]) -> None:
        """Load saved entries (in log order)."""
        self._entries = list(entries)

    def record(
        self,
        *,
        sender_id: int,
        peer_type: str,
        peer_id: int,
        text: str,
        random_id: int,
        date: float,
        message_id: int,
    ) -> DeliveredMessage:
        entry = DeliveredMessage(
            len(self._entries) + 1, sender_id, peer_type, peer_id, text, random_id, date, message_id
        )
        self._entries.append(entry)
        self._journal.appended(DELIVERIES_TABLE, entry)
        return entry

    def query(
        self,
        *,
        sender_id: int | None = None,
        peer_type: str | None = None,
        peer_id: int | None = None,
        since: float | None = None,
        after_log_id: int | None = None,
    ) -> list[DeliveredMessage]:
        return [
            entry
            for entry in self._entries
            if (sender_id is None or entry.sender_id == sender_id)
            and (peer_type is None or entry.peer_type == peer_type)
            and (peer_id is None or entry.peer_id == peer_id)
            and (since is None or entry.date >= since)
            and (after_log_id is None or entry.log_id > after_log_id)
        ]

    def clear(self) -> None:
        self._entries.clear()
