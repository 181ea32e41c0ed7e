"""A hand-rolled MTProto client over the intermediate transport, for sending what Telethon
never would (wrong nonces, bad msg_key, reused msg_ids, garbage)."""

from __future__ import annotations

import asyncio
import os
import struct
import time
from hashlib import sha256

from telethon.crypto import AES, AuthKey
from telethon.extensions import BinaryReader
from telethon.tl.tlobject import TLObject

INTERMEDIATE = b"\xee\xee\xee\xee"


def client_msg_id() -> int:
    now = time.time()
    return (int(now) << 32) | (int((now % 1) * 2**30) << 2)


class RawClient:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def open(cls, host: str, port: int, *, tag: bytes = INTERMEDIATE) -> RawClient:
        reader, writer = await asyncio.open_connection(host, port)
        writer.write(tag)
        return cls(reader, writer)

    def send_frame(self, payload: bytes) -> None:
        self.writer.write(struct.pack("<i", len(payload)) + payload)

    async def read_frame(self, timeout: float = 5.0) -> bytes:
        length = struct.unpack("<i", await asyncio.wait_for(self.reader.readexactly(4), timeout))
        return await asyncio.wait_for(self.reader.readexactly(length[0]), timeout)

    async def send(self, request: TLObject) -> object:
        """What Telethon's authenticator calls on its plain sender."""
        return await self.plain_call(request)

    async def plain_call(self, request: TLObject) -> object:
        body = bytes(request)
        self.send_frame(struct.pack("<qqi", 0, client_msg_id(), len(body)) + body)
        answer = await self.read_frame()
        return BinaryReader(answer[20:]).tgread_object()

    def send_encrypted(
        self,
        key: AuthKey,
        *,
        salt: int,
        session_id: int,
        msg_id: int,
        seq_no: int,
        body: bytes,
        corrupt_msg_key: bool = False,
    ) -> None:
        plain = struct.pack("<qqqii", salt, session_id, msg_id, seq_no, len(body)) + body
        plain += os.urandom(-(len(plain) + 12) % 16 + 12)
        msg_key = sha256(key.key[88:120] + plain).digest()[8:24]
        x = 0
        sha_a = sha256(msg_key + key.key[x : x + 36]).digest()
        sha_b = sha256(key.key[x + 40 : x + 76] + msg_key).digest()
        aes_key = sha_a[:8] + sha_b[8:24] + sha_a[24:32]
        aes_iv = sha_b[:8] + sha_a[8:24] + sha_b[24:32]
        if corrupt_msg_key:
            msg_key = bytes([msg_key[0] ^ 1]) + msg_key[1:]
        packet = struct.pack("<Q", key.key_id) + msg_key + AES.encrypt_ige(plain, aes_key, aes_iv)
        self.send_frame(packet)

    @staticmethod
    def decrypt(key: AuthKey, packet: bytes) -> tuple[int, object]:
        """(msg_id, object) of a server message."""
        msg_key = packet[8:24]
        x = 8
        sha_a = sha256(msg_key + key.key[x : x + 36]).digest()
        sha_b = sha256(key.key[x + 40 : x + 76] + msg_key).digest()
        aes_key = sha_a[:8] + sha_b[8:24] + sha_a[24:32]
        aes_iv = sha_b[:8] + sha_a[8:24] + sha_b[24:32]
        plain = AES.decrypt_ige(packet[24:], aes_key, aes_iv)
        assert sha256(key.key[96:128] + plain).digest()[8:24] == msg_key
        msg_id = struct.unpack_from("<q", plain, 16)[0]
        return msg_id, BinaryReader(plain[32:]).tgread_object()

    async def closed_by_server(self, timeout: float = 5.0) -> bool:
        """True once the server has closed the socket (EOF, or reset)."""
        try:
            while True:
                chunk = await asyncio.wait_for(self.reader.read(65536), timeout)
                if not chunk:
                    return True
        except (ConnectionError, asyncio.IncompleteReadError):
            return True
        except TimeoutError:
            return False

    async def close(self) -> None:
        self.writer.close()
        try:
            await self.writer.wait_closed()
        except ConnectionError:
            pass
