"""Which message in each account's box is the same private or basic-group message.

A private message or a basic group message has no shared id: every box files its own copy
under its own message id (core.telegram.org/api/updates: each account has its own pts and
message id sequence outside channels). An edit or a deletion by the sender must reach every
copy, and a reply must point at the recipient's id of the message replied to, so the world
remembers the copies of each message, keyed by the sender's id of it.
"""

from __future__ import annotations

from integration_service.emulator.journal import Journal

MESSAGE_COPIES_TABLE = "message_copies"

Copies = dict[int, int]  # user id -> that user's id of the message


class MessageCopies:
    def __init__(self, journal: Journal) -> None:
        self._journal = journal
        # (user id, their message id) -> every copy of that message (one dict, shared)
        self._copies: dict[tuple[int, int], Copies] = {}

    def reset(self) -> None:
        self._copies.clear()

    def record(self, sender_id: int, sender_message_id: int, copies: Copies) -> None:
        shared = dict(copies)
        for user_id, message_id in shared.items():
            self._copies[(user_id, message_id)] = shared
            self._journal.appended(
                MESSAGE_COPIES_TABLE, (sender_id, sender_message_id, user_id, message_id)
            )

    def copies_of(self, user_id: int, message_id: int) -> Copies:
        """Every copy of the message ``user_id`` knows as ``message_id`` (at least itself)."""
        return self._copies.get((user_id, message_id)) or {user_id: message_id}

    def restore(self, rows: list[tuple[int, int, int, int]]) -> None:
        """Load saved (sender id, sender's message id, user id, user's message id) rows."""
        self.reset()
        by_origin: dict[tuple[int, int], Copies] = {}
        for sender_id, sender_message_id, user_id, message_id in rows:
            shared = by_origin.setdefault((sender_id, sender_message_id), {})
            shared[user_id] = message_id
            self._copies[(user_id, message_id)] = shared
