"""Control API routes for chats: an admin's rights in a channel, and invite links
(docs/EMULATOR.md, "Channels, groups and invites")."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aiohttp import web

from integration_service.emulator.world import TelegramWorld
from integration_service.emulator.world.accounts import admin_rights
from integration_service.emulator.world.control_input import get_int, json_body

WorldOf = Callable[[web.Request], TelegramWorld]


def _rights(body: dict[str, Any]) -> frozenset[str]:
    value = body.get("rights")
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise ValueError("rights must be a list of admin right names ([] for none)")
    return admin_rights(value)


def _path_int(request: web.Request, name: str) -> int:
    raw = request.match_info[name]
    if not raw.isdigit():
        raise ValueError(f"{name} must be a number")
    return int(raw)


def chat_routes(world_of: WorldOf) -> list[web.RouteDef]:
    async def set_admin_rights(request: web.Request) -> web.Response:
        world, body = world_of(request), await json_body(request)
        channel_id = _path_int(request, "channel_id")
        user_id = get_int(body, "user_id", required=True) or 0
        rights = _rights(body)
        channel = world.set_admin_rights(channel_id, user_id, rights)
        held = channel.rights_of(user_id) or frozenset()
        return web.json_response(
            {"channel_id": channel_id, "user_id": user_id, "rights": sorted(held)}
        )

    async def export_invite(request: web.Request) -> web.Response:
        world, body = world_of(request), await json_body(request)
        channel_id, chat_id = get_int(body, "channel_id"), get_int(body, "chat_id")
        if (channel_id is None) == (chat_id is None):
            raise ValueError("give channel_id or chat_id")
        chat = (
            world.require_channel(channel_id)
            if channel_id is not None
            else world.require_group(chat_id or 0)
        )
        link = world.export_invite(chat)
        return web.json_response({"link": link, "hash": link.rsplit("+", 1)[1]}, status=201)

    return [
        web.post("/channels/{channel_id}/admins", set_admin_rights),
        web.post("/invites", export_invite),
    ]
