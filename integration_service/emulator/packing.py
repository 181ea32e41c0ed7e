"""msg_container both ways: splitting a client's container, and packing the server's answers.

Answers produced during one event-loop turn leave as one container (one encryption, one
TCP write), which is what keeps the emulator fast with many concurrent calls.
"""

from __future__ import annotations

import asyncio
import struct
from collections.abc import Callable
from typing import NamedTuple

from .session import MtprotoSession

MSG_CONTAINER = 0x73F1F8DC
MAX_CONTAINER_MESSAGES = 1024
MAX_CONTAINER_BYTES = 512 * 1024
MESSAGE_HEADER = struct.Struct("<qii")  # msg_id, seq_no, length

# Encrypts and writes one message: (session, msg_id, seq_no, body).
Sealer = Callable[[MtprotoSession, int, int, bytes], None]


class Outgoing(NamedTuple):
    session: MtprotoSession
    body: bytes
    content_related: bool
    response: bool


def split_container(body: bytes) -> list[tuple[int, int, bytes]] | None:
    """Inner (msg_id, seq_no, body) of a msg_container, or None if it is malformed."""
    if len(body) < 8:
        return None
    count = struct.unpack_from("<i", body, 4)[0]
    if not 0 < count <= MAX_CONTAINER_MESSAGES:
        return None
    position, messages = 8, []
    for _ in range(count):
        if position + MESSAGE_HEADER.size > len(body):
            return None
        msg_id, seq_no, length = MESSAGE_HEADER.unpack_from(body, position)
        position += MESSAGE_HEADER.size
        if length < 4 or length % 4 or position + length > len(body):
            return None
        inner = body[position : position + length]
        if struct.unpack_from("<I", inner)[0] == MSG_CONTAINER:
            return None  # containers never nest
        messages.append((msg_id, seq_no, inner))
        position += length
    return messages


class Outbox:
    """Collects one connection's outgoing messages and seals them per session."""

    def __init__(self, loop: asyncio.AbstractEventLoop, seal: Sealer) -> None:
        self._loop = loop
        self._seal = seal
        self._pending: list[Outgoing] = []
        self._flush_scheduled = False

    def queue(
        self, session: MtprotoSession, body: bytes, content_related: bool, response: bool
    ) -> None:
        self._pending.append(Outgoing(session, body, content_related, response))
        if not self._flush_scheduled:
            self._flush_scheduled = True
            self._loop.call_soon(self.flush)

    def send_alone(self, session: MtprotoSession, body: bytes) -> None:
        """bad_server_salt / bad_msg_notification go out at once and alone, never in a
        container: clients skip their clock check only for these at the top level."""
        self._send([Outgoing(session, body, False, True)])

    def flush(self) -> None:
        self._flush_scheduled = False
        pending, self._pending = self._pending, []
        by_session: dict[int, list[Outgoing]] = {}
        for item in pending:
            by_session.setdefault(item.session.session_id, []).append(item)
        for items in by_session.values():
            batch: list[Outgoing] = []
            size = 0
            for item in items:
                if batch and size + len(item.body) > MAX_CONTAINER_BYTES:
                    self._send(batch)
                    batch, size = [], 0
                batch.append(item)
                size += len(item.body) + MESSAGE_HEADER.size
            self._send(batch)

    def _send(self, batch: list[Outgoing]) -> None:
        session = batch[0].session
        if len(batch) == 1:
            only = batch[0]
            msg_id = session.next_msg_id(response=only.response)
            self._seal(session, msg_id, session.next_seq_no(only.content_related), only.body)
            return
        parts = [struct.pack("<Ii", MSG_CONTAINER, len(batch))]
        for item in batch:
            inner_id = session.next_msg_id(response=item.response)
            seq_no = session.next_seq_no(item.content_related)
            parts.append(MESSAGE_HEADER.pack(inner_id, seq_no, len(item.body)))
            parts.append(item.body)
        # The container is not content-related and gets the highest msg_id of the batch.
        container_id = session.next_msg_id(response=True)
        self._seal(session, container_id, session.next_seq_no(False), b"".join(parts))
