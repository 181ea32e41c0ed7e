"""MTProto TCP transports as a server speaks them: full, abridged, intermediate, obfuscated.

A client announces its transport with its first bytes (core.telegram.org/mtproto/mtproto-
transports): 0xef is abridged, 0xeeeeeeee intermediate, 0xdddddddd padded intermediate, a
first frame whose seq_no (bytes 4..8) is zero is full, and anything else must be the 64-byte
obfuscation header. A frame that breaks the rules raises ``TransportError``; the connection
is then closed, as Telegram does, because a byte stream cannot be re-synchronised.
"""

from __future__ import annotations

import asyncio
import struct
from zlib import crc32

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

# Telegram refuses frames above about 1 MiB (the client's container limit is 1044456 bytes).
MAX_FRAME_BYTES = 1024 * 1024 + 4096
ABRIDGED_TAG = b"\xef"
INTERMEDIATE_TAG = b"\xee\xee\xee\xee"
PADDED_INTERMEDIATE_TAG = b"\xdd\xdd\xdd\xdd"
OBFUSCATION_HEADER_BYTES = 64


class TransportError(Exception):
    """The peer broke the transport framing; the connection cannot continue."""


class ByteStream:
    """Reads exact byte counts from a socket, first serving bytes already consumed."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._reader = reader
        self._writer = writer
        self._prefix = b""

    def unread(self, data: bytes) -> None:
        self._prefix = data + self._prefix

    async def read_exactly(self, count: int) -> bytes:
        if self._prefix:
            taken, self._prefix = self._prefix[:count], self._prefix[count:]
            if len(taken) == count:
                return taken
            return taken + await self._reader.readexactly(count - len(taken))
        return await self._reader.readexactly(count)

    def write(self, data: bytes) -> None:
        self._writer.write(data)


class ObfuscatedByteStream(ByteStream):
    """AES-CTR over the socket, keyed by the client's 64-byte header ("obfuscated2")."""

    def __init__(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        header: bytes,
    ) -> None:
        super().__init__(reader, writer)
        reversed_middle = header[55:7:-1]
        self._decryptor = Cipher(algorithms.AES(header[8:40]), modes.CTR(header[40:56])).encryptor()
        self._encryptor = Cipher(
            algorithms.AES(reversed_middle[:32]), modes.CTR(reversed_middle[32:48])
        ).encryptor()
        # The client encrypted its whole header with the stream; stay in step with it.
        self.decrypted_header = self._decryptor.update(header)

    async def read_exactly(self, count: int) -> bytes:
        return self._decryptor.update(await super().read_exactly(count))

    def write(self, data: bytes) -> None:
        super().write(self._encryptor.update(data))


class PacketCodec:
    """Frames MTProto payloads on one connection."""

    name = "base"

    def __init__(self, stream: ByteStream) -> None:
        self.stream = stream

    async def read_packet(self) -> bytes:
        raise TransportError("no codec")

    def encode(self, payload: bytes) -> bytes:
        raise TransportError("no codec")

    def send(self, payload: bytes) -> None:
        self.stream.write(self.encode(payload))


def _check_size(length: int) -> None:
    if length <= 0 or length > MAX_FRAME_BYTES:
        raise TransportError(f"frame length {length} out of range")


class FullCodec(PacketCodec):
    """length + seq_no + payload + crc32; both directions count their own frames from 0."""

    name = "full"

    def __init__(self, stream: ByteStream) -> None:
        super().__init__(stream)
        self._recv_seq = 0
        self._send_seq = 0

    async def read_packet(self) -> bytes:
        header = await self.stream.read_exactly(8)
        length, seq = struct.unpack("<ii", header)
        if length < 12 or length % 4:
            raise TransportError(f"full frame length {length} invalid")
        _check_size(length - 12)
        if seq != self._recv_seq:
            raise TransportError("full frame out of sequence")
        self._recv_seq += 1
        rest = await self.stream.read_exactly(length - 8)
        payload, checksum = rest[:-4], struct.unpack("<I", rest[-4:])[0]
        if crc32(header + payload) != checksum:
            raise TransportError("full frame checksum mismatch")
        return payload

    def encode(self, payload: bytes) -> bytes:
        head = struct.pack("<ii", len(payload) + 12, self._send_seq) + payload
        self._send_seq += 1
        return head + struct.pack("<I", crc32(head))


class AbridgedCodec(PacketCodec):
    """One length byte in 4-byte words, or 0x7f and three bytes for long frames."""

    name = "abridged"

    async def read_packet(self) -> bytes:
        # The top bit asks for a quick ack, which this server does not send.
        first = (await self.stream.read_exactly(1))[0] & 0x7F
        if first == 0x7F:
            words = int.from_bytes(await self.stream.read_exactly(3), "little")
        else:
            words = first
        _check_size(words * 4)
        return await self.stream.read_exactly(words * 4)

    def encode(self, payload: bytes) -> bytes:
        words = len(payload) >> 2
        if words < 0x7F:
            return bytes((words,)) + payload
        return b"\x7f" + words.to_bytes(3, "little") + payload


class IntermediateCodec(PacketCodec):
    """A 4-byte little-endian length, then the payload (optionally with 0-3 padding bytes)."""

    name = "intermediate"

    def __init__(self, stream: ByteStream, *, padded: bool = False) -> None:
        super().__init__(stream)
        self._padded = padded
        if padded:
            self.name = "padded_intermediate"

    async def read_packet(self) -> bytes:
        length = struct.unpack("<I", await self.stream.read_exactly(4))[0] & 0x7FFFFFFF
        _check_size(length)
        if not self._padded and length % 4:
            raise TransportError("intermediate frame not word aligned")
        payload = await self.stream.read_exactly(length)
        if self._padded:
            payload = payload[: len(payload) - len(payload) % 4]
        return payload

    def encode(self, payload: bytes) -> bytes:
        return struct.pack("<I", len(payload)) + payload


def _codec_for_tag(stream: ByteStream, tag: bytes) -> PacketCodec:
    if tag == ABRIDGED_TAG * 4:
        return AbridgedCodec(stream)
    if tag == INTERMEDIATE_TAG:
        return IntermediateCodec(stream)
    if tag == PADDED_INTERMEDIATE_TAG:
        return IntermediateCodec(stream, padded=True)
    raise TransportError("unknown obfuscated transport tag")


async def open_codec(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> PacketCodec:
    """Detect the client's transport from its first bytes."""
    stream = ByteStream(reader, writer)
    first = await reader.readexactly(1)
    if first == ABRIDGED_TAG:
        return AbridgedCodec(stream)
    head = first + await reader.readexactly(3)
    if head == INTERMEDIATE_TAG:
        return IntermediateCodec(stream)
    if head == PADDED_INTERMEDIATE_TAG:
        return IntermediateCodec(stream, padded=True)
    head += await reader.readexactly(4)
    if head[4:8] == b"\0\0\0\0":
        stream.unread(head)
        return FullCodec(stream)
    header = head + await reader.readexactly(OBFUSCATION_HEADER_BYTES - len(head))
    obfuscated = ObfuscatedByteStream(reader, writer, header)
    codec = _codec_for_tag(obfuscated, obfuscated.decrypted_header[56:60])
    codec.name = f"obfuscated_{codec.name}"
    return codec


def transport_error_payload(code: int) -> bytes:
    """The 4-byte body Telegram sends instead of a message, e.g. -404 for an unknown key."""
    return struct.pack("<i", -abs(code))
