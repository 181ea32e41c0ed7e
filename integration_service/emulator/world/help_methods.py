"""help.getConfig and help.getNearestDc: what a client asks right after connecting.

Telethon sends help.getConfig inside initConnection on every connect, signed in or not,
so these answer on any key. The emulator is one DC; its address is whatever the runner
listens on.
"""

from __future__ import annotations

from telethon.tl import functions, types

from integration_service.emulator.rpc import CallContext
from integration_service.emulator.world.peers import tl_date
from integration_service.emulator.world.state import WorldState

CONFIG_LIFETIME = 3600


class HelpMethods:
    def __init__(self, state: WorldState, dc_id: int, host: str, port: int) -> None:
        self._state = state
        self.dc_id = dc_id
        self.host = host
        self.port = port

    async def get_config(
        self, request: functions.help.GetConfigRequest, ctx: CallContext
    ) -> types.Config:
        now = self._state.now()
        return types.Config(
            date=tl_date(now),
            expires=tl_date(now + CONFIG_LIFETIME),
            test_mode=False,
            this_dc=self.dc_id,
            dc_options=[types.DcOption(id=self.dc_id, ip_address=self.host, port=self.port)],
            dc_txt_domain_name="",
            chat_size_max=200,
            megagroup_size_max=200_000,
            forwarded_count_max=100,
            online_update_period_ms=210_000,
            offline_blur_timeout_ms=5_000,
            offline_idle_timeout_ms=30_000,
            online_cloud_timeout_ms=300_000,
            notify_cloud_delay_ms=30_000,
            notify_default_delay_ms=1_500,
            push_chat_period_ms=60_000,
            push_chat_limit=2,
            edit_time_limit=172_800,
            revoke_time_limit=2_147_483_647,
            revoke_pm_time_limit=2_147_483_647,
            rating_e_decay=2_419_200,
            stickers_recent_limit=200,
            channels_read_media_period=604_800,
            call_receive_timeout_ms=20_000,
            call_ring_timeout_ms=90_000,
            call_connect_timeout_ms=30_000,
            call_packet_timeout_ms=10_000,
            me_url_prefix="https://t.me/",
            caption_length_max=1024,
            message_length_max=4096,
            webfile_dc_id=self.dc_id,
        )

    async def get_nearest_dc(
        self, request: functions.help.GetNearestDcRequest, ctx: CallContext
    ) -> types.NearestDc:
        return types.NearestDc(country="RU", this_dc=self.dc_id, nearest_dc=self.dc_id)
