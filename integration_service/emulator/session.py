"""Per-MTProto-session state: msg_id and seq_no rules, server message ids, running requests.

A session (client-chosen session_id under one auth key) outlives TCP connections, as on
Telegram. Checks follow core.telegram.org/mtproto/service_messages_about_messages; the
returned numbers are the bad_msg_notification error codes.
"""

from __future__ import annotations

import asyncio
import os
import struct
import time
from collections import deque

# A client msg_id may be at most 300 s older or 30 s newer than the server clock.
MSG_ID_MAX_AGE = 300
MSG_ID_MAX_AHEAD = 30
RECENT_IDS_KEPT = 1024

MSG_ID_TOO_LOW = 16
MSG_ID_TOO_HIGH = 17
MSG_ID_BAD_LOW_BITS = 18
CONTAINER_ID_REUSED = 19
MSG_TOO_OLD = 20
SEQNO_EXPECTED_EVEN = 34
SEQNO_EXPECTED_ODD = 35
BAD_SERVER_SALT = 48
INVALID_CONTAINER = 64


class MtprotoSession:
    """One client session of one auth key."""

    def __init__(self, session_id: int) -> None:
        self.session_id = session_id
        self.unique_id = int(struct.unpack("<q", os.urandom(8))[0])
        self.created_announced = False
        self.last_used = time.time()
        self._seen: set[int] = set()
        self._seen_order: deque[int] = deque()
        self._sent_content = 0
        self._last_server_msg_id = 0
        # Requests still running, by client msg_id (invokeAfterMsg, rpc_drop_answer).
        self.running: dict[int, asyncio.Task[None]] = {}
        self.finished: deque[int] = deque(maxlen=RECENT_IDS_KEPT)

    def check_msg_id(self, msg_id: int, *, container: bool = False) -> int | None:
        """The bad_msg_notification code for this client msg_id, or None if acceptable."""
        if msg_id & 3:
            return MSG_ID_BAD_LOW_BITS
        now = time.time()
        sent_at = msg_id >> 32
        if sent_at < now - MSG_ID_MAX_AGE:
            return MSG_ID_TOO_LOW
        if sent_at > now + MSG_ID_MAX_AHEAD:
            return MSG_ID_TOO_HIGH
        if msg_id in self._seen:
            return CONTAINER_ID_REUSED if container else None
        if len(self._seen_order) >= RECENT_IDS_KEPT and msg_id < self._seen_order[0]:
            # Older than everything remembered: the server cannot tell if it was processed.
            return MSG_TOO_OLD
        return None

    def is_duplicate(self, msg_id: int) -> bool:
        return msg_id in self._seen

    def remember(self, msg_id: int) -> None:
        self.last_used = time.time()
        self._seen.add(msg_id)
        self._seen_order.append(msg_id)
        if len(self._seen_order) > RECENT_IDS_KEPT:
            self._seen.discard(self._seen_order.popleft())

    @staticmethod
    def check_seq_no(seq_no: int, content_related: bool) -> int | None:
        if content_related and not seq_no & 1:
            return SEQNO_EXPECTED_ODD
        if not content_related and seq_no & 1:
            return SEQNO_EXPECTED_EVEN
        return None

    def next_msg_id(self, *, response: bool) -> int:
        """Server msg_ids are odd: 1 mod 4 for responses, 3 mod 4 for pushes."""
        now = time.time()
        msg_id = (int(now) << 32) | (int((now % 1) * 2**32) & ~3)
        msg_id |= 1 if response else 3
        if msg_id <= self._last_server_msg_id:
            msg_id = (self._last_server_msg_id & ~3) + 4 + (1 if response else 3)
        self._last_server_msg_id = msg_id
        return msg_id

    def next_seq_no(self, content_related: bool) -> int:
        if content_related:
            self._sent_content += 1
            return self._sent_content * 2 - 1
        return self._sent_content * 2

    def state_of(self, msg_id: int) -> int:
        """msgs_state_info byte: 4 received, 2 not received, 3 not received and too old."""
        if msg_id in self._seen or msg_id in self.finished:
            return 4
        if self._seen_order and msg_id < self._seen_order[0]:
            return 3
        return 2

    def cancel_running(self) -> None:
        for task in self.running.values():
            task.cancel()
        self.running.clear()
