"""One client TCP connection: transport, plain handshake messages, encrypted MTProto messages.

Everything a connection does runs inside its own task and its own ``try``; whatever a client
sends, the worst outcome is that *its* connection closes. Outgoing messages produced in one
event-loop turn are packed into one container and encrypted once.
"""

from __future__ import annotations

import asyncio
import logging
import struct
import time
from typing import TYPE_CHECKING, Any

from telethon.extensions import BinaryReader
from telethon.tl import TLObject, types

from .auth_keys import AuthKeyRecord
from .handshake import Handshake, HandshakeError
from .message_crypto import ClientMessage, decrypt_client_message, encrypt_server_message
from .packing import MSG_CONTAINER, Outbox, split_container
from .rpc import RpcError
from .rpc_calls import ProtocolViolation, gunzip, parse_request, rpc_error
from .service_messages import SERVICE_HANDLERS, ServiceContext, is_content_related
from .session import INVALID_CONTAINER, MtprotoSession
from .transport import PacketCodec, TransportError, open_codec, transport_error_payload

if TYPE_CHECKING:
    from .server import EmulatorServer

log = logging.getLogger(__name__)

GZIP_PACKED = 0x3072CFA1
CONTAINER_TAG = struct.pack("<I", MSG_CONTAINER)
FIRST_BYTES_TIMEOUT = 10.0
# A request still running after this long gets a msgs_ack first, as Telegram does.
ACK_DELAY_SECONDS = 0.5
# A client that stops reading must not make the server buffer without bound.
MAX_WRITE_BUFFER = 8 * 1024 * 1024
_PLAIN_HEADER = struct.Struct("<qqi")


class ClientConnection:
    """Serves one TCP connection until it closes."""

    def __init__(
        self,
        server: EmulatorServer,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        connection_id: int,
    ) -> None:
        self.server = server
        self.reader = reader
        self.writer = writer
        self.connection_id = connection_id
        self.codec: PacketCodec | None = None
        self.key: AuthKeyRecord | None = None
        self.session: MtprotoSession | None = None
        self.closed = False
        self.last_activity = time.monotonic()
        self._handshake: Handshake | None = None
        self._disconnect_timer: asyncio.TimerHandle | None = None
        self._loop = asyncio.get_running_loop()
        self._outbox = Outbox(self._loop, self._seal)

    @property
    def key_label(self) -> str:
        """A short, non-secret tag of the bound key for logs."""
        return f"…{self.key.key_id & 0xFFFF:04x}" if self.key else "-"

    @property
    def peer_gone(self) -> bool:
        """Closed by us, or the client already sent FIN (Telethon closes before reconnecting)."""
        return self.closed or self.reader.at_eof() or self.writer.is_closing()

    async def serve(self) -> None:
        try:
            self.codec = await asyncio.wait_for(
                open_codec(self.reader, self.writer), FIRST_BYTES_TIMEOUT
            )
            while not self.closed:
                packet = await self.codec.read_packet()
                self.last_activity = time.monotonic()
                self._handle_packet(packet)
                if self.writer.transport.get_write_buffer_size() > MAX_WRITE_BUFFER:
                    raise TransportError("client does not read its answers")
        except (asyncio.IncompleteReadError, ConnectionError, TimeoutError):
            pass
        except (TransportError, HandshakeError, ProtocolViolation) as exc:
            self.server.stats["protocol_violations"] += 1
            log.info("closing connection %d: %s", self.connection_id, exc)
        except Exception:  # one broken client must never take the server down
            log.exception("connection %d failed", self.connection_id)
        finally:
            self.close()

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        if self._disconnect_timer is not None:
            self._disconnect_timer.cancel()
        self.writer.close()
        self.server.forget_connection(self)

    def send_transport_error(self, code: int) -> None:
        if self.codec is not None and not self.closed:
            self.codec.send(transport_error_payload(code))

    # Incoming

    def _handle_packet(self, packet: bytes) -> None:
        if len(packet) < 8:
            raise TransportError("packet shorter than an auth_key_id")
        key_id = struct.unpack_from("<Q", packet)[0]
        if key_id == 0:
            self._handle_plain(packet)
            return
        record = self.server.keys.get(key_id)
        if record is None:
            # Telegram answers an unknown auth key with transport error -404 and hangs up.
            self.server.stats["unknown_auth_key"] += 1
            self.send_transport_error(404)
            raise TransportError("unknown auth key")
        if self.key is not None and self.key is not record:
            raise TransportError("second auth key on one connection")
        message = decrypt_client_message(record, packet)
        if message is None:
            raise TransportError("message failed msg_key or length checks")
        if self.key is None:
            self.key = record
            self.server.attach_key(self, record)
        self._handle_message(record, message)

    def _handle_plain(self, packet: bytes) -> None:
        if len(packet) < _PLAIN_HEADER.size + 4:
            raise TransportError("plain message too short")
        _, msg_id, length = _PLAIN_HEADER.unpack_from(packet)
        if length != len(packet) - _PLAIN_HEADER.size or msg_id & 3:
            raise HandshakeError("bad plain message envelope")
        try:
            request = BinaryReader(packet[_PLAIN_HEADER.size :]).tgread_object()
        except Exception as exc:  # garbage instead of a handshake step
            raise HandshakeError("undecodable plain message") from exc
        if self._handshake is None:
            self._handshake = Handshake(self.server.rsa_key, self.server.keys)
        answer, record = self._handshake.answer(request)
        if record is not None:
            self.server.stats["auth_keys_created"] += 1
        body = bytes(answer)
        now = time.time()
        server_msg_id = (int(now) << 32) | (int((now % 1) * 2**32) & ~3) | 1
        assert self.codec is not None
        self.codec.send(_PLAIN_HEADER.pack(0, server_msg_id, len(body)) + body)

    def _handle_message(self, record: AuthKeyRecord, message: ClientMessage) -> None:
        session = self.server.session_for(record, message.session_id)
        self.session = session
        is_container = message.body[:4] == CONTAINER_TAG
        code = session.check_msg_id(message.msg_id, container=is_container)
        if code is None and session.is_duplicate(message.msg_id):
            return  # a repeated msg_id is ignored, never executed twice
        if code is not None:
            self._bad_msg(session, message.msg_id, message.seq_no, code)
            return
        if not record.salt_is_valid(message.salt):
            self.server.stats["bad_server_salt"] += 1
            self._send_standalone(
                session,
                _service_bytes(
                    "BadServerSalt",
                    bad_msg_id=message.msg_id,
                    bad_msg_seqno=message.seq_no,
                    error_code=48,
                    new_server_salt=record.current_salts()[0],
                ),
            )
            return
        if not session.created_announced:
            session.created_announced = True
            self._queue(
                session,
                _service_bytes(
                    "NewSessionCreated",
                    first_msg_id=message.msg_id,
                    unique_id=session.unique_id,
                    server_salt=record.current_salts()[0],
                ),
                content_related=False,
                response=False,
            )
        session.remember(message.msg_id)
        self._handle_body(session, message.msg_id, message.seq_no, message.body, False)

    def _bad_msg(self, session: MtprotoSession, msg_id: int, seq_no: int, code: int) -> None:
        self.server.stats[f"bad_msg_{code}"] += 1
        self._send_standalone(
            session,
            _service_bytes(
                "BadMsgNotification", bad_msg_id=msg_id, bad_msg_seqno=seq_no, error_code=code
            ),
        )

    def _handle_body(
        self, session: MtprotoSession, msg_id: int, seq_no: int, body: bytes, inside: bool
    ) -> None:
        if len(body) < 4:
            raise ProtocolViolation("message body shorter than a constructor")
        constructor = struct.unpack_from("<I", body)[0]
        if constructor == GZIP_PACKED:
            reader = BinaryReader(body[4:])
            try:
                packed = reader.tgread_bytes()
            except Exception as exc:  # truncated gzip_packed envelope
                raise ProtocolViolation("truncated gzip_packed") from exc
            self.server.stats["gzipped_requests"] += 1
            self._handle_body(session, msg_id, seq_no, gunzip(packed), inside)
            return
        if constructor == MSG_CONTAINER:
            self._handle_container(session, msg_id, seq_no, body, inside)
            return
        code = session.check_seq_no(seq_no, is_content_related(constructor))
        if code is not None:
            self._bad_msg(session, msg_id, seq_no, code)
            return
        handler = SERVICE_HANDLERS.get(constructor)
        if handler is not None:
            try:
                handler(ServiceContext(self, session, msg_id), body)
            except Exception as exc:  # a malformed service message is a broken client
                raise ProtocolViolation("malformed service message") from exc
            return
        self._start_rpc(session, msg_id, body)

    def _handle_container(
        self, session: MtprotoSession, msg_id: int, seq_no: int, body: bytes, inside: bool
    ) -> None:
        messages = split_container(body) if not inside and not seq_no & 1 else None
        if messages is None:
            self._bad_msg(session, msg_id, seq_no, INVALID_CONTAINER)
            return
        self.server.stats["containers"] += 1
        for inner_id, inner_seq, inner_body in messages:
            code = session.check_msg_id(inner_id)
            if code is None and session.is_duplicate(inner_id):
                continue
            if code is not None:
                self._bad_msg(session, inner_id, inner_seq, code)
                continue
            session.remember(inner_id)
            self._handle_body(session, inner_id, inner_seq, inner_body, True)

    def _start_rpc(self, session: MtprotoSession, msg_id: int, body: bytes) -> None:
        try:
            request = parse_request(body)
        except RpcError as error:
            self.server.stats[f"rpc_error_{error.code}"] += 1
            self._queue(session, rpc_error(msg_id, error.code, error.message))
            return
        task = self._loop.create_task(self._run_rpc(session, msg_id, request))
        session.running[msg_id] = task
        self.server.track_task(task)

    async def _run_rpc(self, session: MtprotoSession, msg_id: int, request: Any) -> None:
        ack = self._loop.call_later(ACK_DELAY_SECONDS, self._ack, session, msg_id)
        try:
            answer = await self.server.dispatcher.execute(self, session, msg_id, request)
        finally:
            ack.cancel()
            session.running.pop(msg_id, None)
            session.finished.append(msg_id)
        self._queue(session, answer)

    def _ack(self, session: MtprotoSession, msg_id: int) -> None:
        self.server.stats["early_acks"] += 1
        self._queue(session, _service_bytes("MsgsAck", msg_ids=[msg_id]), content_related=False)

    # Outgoing

    async def push(self, update: Any) -> None:
        """Send a server-initiated object (Updates) to this connection's current session."""
        if self.session is not None and not self.closed:
            self._queue(self.session, bytes(update), response=False)

    def queue_object(self, session: MtprotoSession, obj: TLObject, content: bool = True) -> None:
        self._queue(session, bytes(obj), content_related=content)

    def queue_raw(self, session: MtprotoSession, body: bytes) -> None:
        self._queue(session, body)

    def _send_standalone(self, session: MtprotoSession, body: bytes) -> None:
        if not self.closed:
            self._outbox.send_alone(session, body)

    def _queue(
        self,
        session: MtprotoSession,
        body: bytes,
        content_related: bool = True,
        response: bool = True,
    ) -> None:
        if not self.closed:
            self._outbox.queue(session, body, content_related, response)

    def _seal(self, session: MtprotoSession, msg_id: int, seq_no: int, body: bytes) -> None:
        """Encrypt one outgoing message (or container) and hand it to the transport."""
        if self.closed or self.key is None or self.codec is None:
            return
        salt = self.key.current_salts()[0]
        self.codec.send(
            encrypt_server_message(self.key, salt, session.session_id, msg_id, seq_no, body)
        )

    def arm_disconnect(self, delay: float) -> None:
        """ping_delay_disconnect: close unless another such ping arrives within ``delay``."""
        if self._disconnect_timer is not None:
            self._disconnect_timer.cancel()
        self._disconnect_timer = self._loop.call_later(delay, self._disconnect_after_ping)

    def _disconnect_after_ping(self) -> None:
        self.server.stats["ping_delay_disconnects"] += 1
        self.close()


def _service_bytes(name: str, **fields: Any) -> bytes:
    return bytes(getattr(types, name)(**fields))
