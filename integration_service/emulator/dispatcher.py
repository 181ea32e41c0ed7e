"""Answering one RPC query: connection-level rules first, then the core's own methods, then
the world.

Rules applied before the world sees a request, as on Telegram: a key must have sent
initConnection once (400 CONNECTION_NOT_INITED), and an authorised key used over two open TCP
connections at once is burnt (406 AUTH_KEY_DUPLICATED) for good.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from telethon.tl import functions, types

from .rpc import CallContext, RpcError
from .rpc_calls import rpc_error, rpc_result, serialize_result, unwrap

if TYPE_CHECKING:
    from .auth_keys import AuthKeyRecord
    from .connection import ClientConnection
    from .server import EmulatorServer
    from .session import MtprotoSession

log = logging.getLogger(__name__)

CONFIG_TTL_SECONDS = 3600


def build_config(host: str, port: int, dc_id: int) -> types.Config:
    """help.getConfig: one data centre, reachable where the emulator listens."""
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    return types.Config(
        date=now,
        expires=now + dt.timedelta(seconds=CONFIG_TTL_SECONDS),
        test_mode=False,
        this_dc=dc_id,
        dc_options=[types.DcOption(id=dc_id, ip_address=host, port=port, ipv6=":" in host)],
        dc_txt_domain_name="",
        chat_size_max=200,
        megagroup_size_max=200000,
        forwarded_count_max=100,
        online_update_period_ms=210000,
        offline_blur_timeout_ms=5000,
        offline_idle_timeout_ms=30000,
        online_cloud_timeout_ms=300000,
        notify_cloud_delay_ms=30000,
        notify_default_delay_ms=1500,
        push_chat_period_ms=60000,
        push_chat_limit=2,
        edit_time_limit=172800,
        revoke_time_limit=2147483647,
        revoke_pm_time_limit=2147483647,
        rating_e_decay=2419200,
        stickers_recent_limit=200,
        channels_read_media_period=604800,
        call_receive_timeout_ms=20000,
        call_ring_timeout_ms=90000,
        call_connect_timeout_ms=30000,
        call_packet_timeout_ms=10000,
        me_url_prefix="https://t.me/",
        caption_length_max=1024,
        message_length_max=4096,
        webfile_dc_id=dc_id,
    )


def _client_info(init: functions.InitConnectionRequest) -> dict[str, Any]:
    return {
        "api_id": init.api_id,
        "device_model": init.device_model,
        "system_version": init.system_version,
        "app_version": init.app_version,
        "system_lang_code": init.system_lang_code,
        "lang_pack": init.lang_pack,
        "lang_code": init.lang_code,
    }


class CallDispatcher:
    """Executes RPC queries for every connection of one server."""

    def __init__(self, server: EmulatorServer) -> None:
        self._server = server
        self._core_methods: dict[type, Callable[[Any], Any]] = {
            functions.help.GetConfigRequest: lambda _request: build_config(
                server.advertised_host, server.port, server.dc_id
            ),
            functions.help.GetNearestDcRequest: lambda _request: types.NearestDc(
                country="RU", this_dc=server.dc_id, nearest_dc=server.dc_id
            ),
        }

    async def execute(
        self, conn: ClientConnection, session: MtprotoSession, msg_id: int, request: Any
    ) -> bytes:
        """The rpc_result bytes (answer or rpc_error) for one parsed query."""
        stats = self._server.stats
        stats["rpc_calls"] += 1
        method = type(request).__name__
        try:
            call = unwrap(request)
            method = type(call.request).__name__
            for earlier in call.after_msg_ids:
                task = session.running.get(earlier)
                if task is not None and task is not asyncio.current_task():
                    await asyncio.wait([task])
            answer = await self._answer(conn, session, call.request, call)
            payload, gzipped = rpc_result(msg_id, serialize_result(answer, call.request))
            if gzipped:
                stats["gzipped_answers"] += 1
            return payload
        except RpcError as error:
            stats[f"rpc_error_{error.code}"] += 1
            return rpc_error(msg_id, error.code, error.message)
        except asyncio.CancelledError:
            raise
        except Exception:
            # The world failed; like Telegram, the client gets a 500 and the server lives on.
            log.exception("emulator world failed on %s", method)
            stats["internal_errors"] += 1
            return rpc_error(msg_id, 500, "INTERNAL_SERVER_ERROR")

    async def _answer(
        self, conn: ClientConnection, session: MtprotoSession, request: Any, call: Any
    ) -> Any:
        record = conn.key
        assert record is not None
        before = (record.layer, record.client_info, record.connection_inited)
        if call.layer is not None:
            record.layer = call.layer
        if call.init is not None:
            record.client_info = _client_info(call.init)
            record.connection_inited = True
        if (record.layer, record.client_info, record.connection_inited) != before:
            self._server.keys.changed(record)
        if not record.connection_inited:
            raise RpcError(400, "CONNECTION_NOT_INITED")
        self._check_duplicated(conn, record)
        delay = self._server.response_delays.get(record.key_id)
        if delay:
            await asyncio.sleep(delay)
        core_method = self._core_methods.get(type(request))
        if core_method is not None:
            return core_method(request)
        ctx = CallContext(
            auth_key_id=record.key_id,
            connection_id=conn.connection_id,
            session_id=session.session_id,
            layer=record.layer,
            client_info=dict(record.client_info),
            push=conn.push,
        )
        return await self._server.world.dispatch(request, ctx)

    def _check_duplicated(self, conn: ClientConnection, record: AuthKeyRecord) -> None:
        if record.duplicated:
            raise RpcError(406, "AUTH_KEY_DUPLICATED")
        if not self._server.has_parallel_connection(conn, record.key_id):
            return
        if not self._server.world.is_authorized(record.key_id):
            return
        record.duplicated = True
        self._server.keys.changed(record)
        self._server.stats["auth_key_duplicated"] += 1
        log.warning("auth key used over two connections at once; key %s burnt", conn.key_label)
        self._server.world.invalidate_key(record.key_id, "AUTH_KEY_DUPLICATED")
        raise RpcError(406, "AUTH_KEY_DUPLICATED")
