"""Control API routes for inbound traffic: other users' messages, edits and deletions,
``updatesTooLong`` pushes, and the update settings (docs/EMULATOR.md, "Inbound").

A refusal Telegram would give answers with Telegram's error name: HTTP status 400 or 403 as
Telegram's code (any other code, e.g. 401 USER_DEACTIVATED_BAN, as 400) and body
``{"error": "<NAME>", "rpc_code": <Telegram's code>}`` (a batch adds ``"index"``). Nothing
of a refused call is stored.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aiohttp import web

from integration_service.emulator.rpc import RpcError
from integration_service.emulator.world import TelegramWorld
from integration_service.emulator.world.control_input import NotFound, get_int, get_str, json_body
from integration_service.emulator.world.delivery import Delivered
from integration_service.emulator.world.inbound import (
    PEER_KINDS,
    InboundMessage,
    PeerRef,
    RefusedMessage,
)

WorldOf = Callable[[web.Request], TelegramWorld]
# one batch of POST /messages at most (a larger one is split by the caller)
MAX_BATCH = 10_000


def _refused(error: RpcError, **extra: Any) -> web.Response:
    status = error.code if error.code in (400, 403) else 400
    return web.json_response(
        {"error": error.message, "rpc_code": error.code, **extra}, status=status
    )


def _peer(body: dict[str, Any]) -> PeerRef:
    peer = body.get("peer")
    if not isinstance(peer, dict):
        raise ValueError('peer is required: {"type": "user"|"chat"|"channel", "id": <int>}')
    kind = get_str(peer, "type")
    if kind not in PEER_KINDS:
        raise ValueError(f"peer.type must be one of {', '.join(PEER_KINDS)}")
    return PeerRef(kind, get_int(peer, "id", required=True) or 0)


def _message(body: Any) -> InboundMessage:
    if not isinstance(body, dict):
        raise ValueError("each message must be a JSON object")
    return InboundMessage(
        sender_id=get_int(body, "sender", required=True) or 0,
        peer=_peer(body),
        text=get_str(body, "text") or "",
        reply_to=get_int(body, "reply_to"),
    )


def _as_json(delivered: Delivered, peer: PeerRef) -> dict[str, Any]:
    return {
        "message_id": delivered.message_id,
        "date": int(delivered.date),
        "pts": delivered.pts,
        "peer": {"type": peer.kind, "id": peer.peer_id},
        "recipients": {str(user_id): ids for user_id, ids in sorted(delivered.recipients.items())},
    }


def _known_sender(world: TelegramWorld, sender_id: int) -> None:
    if sender_id not in world.directory.accounts:
        raise NotFound(f"unknown user {sender_id}")


def inbound_routes(world_of: WorldOf) -> list[web.RouteDef]:
    async def send_messages(request: web.Request) -> web.Response:
        world, body = world_of(request), await json_body(request)
        batch = "messages" in body
        if batch:
            raw = body["messages"]
            if not isinstance(raw, list) or not 1 <= len(raw) <= MAX_BATCH:
                raise ValueError(f"messages must be a list of 1 to {MAX_BATCH} messages")
            messages = []
            for index, item in enumerate(raw):
                try:
                    messages.append(_message(item))
                except ValueError as exc:
                    raise ValueError(f"messages[{index}]: {exc}") from None
        else:
            messages = [_message(body)]
        for index, message in enumerate(messages):
            try:
                _known_sender(world, message.sender_id)
            except NotFound as exc:
                raise NotFound(f"messages[{index}]: {exc}" if batch else str(exc)) from None
        try:
            delivered = await world.inbound.send(messages)
        except RefusedMessage as error:
            return _refused(error, index=error.index) if batch else _refused(error)
        answers = [_as_json(d, m.peer) for d, m in zip(delivered, messages, strict=True)]
        return web.json_response({"messages": answers} if batch else answers[0])

    async def edit_message(request: web.Request) -> web.Response:
        world, body = world_of(request), await json_body(request)
        sender_id = get_int(body, "sender", required=True) or 0
        peer = _peer(body)
        message_id = get_int(body, "message_id", required=True) or 0
        text = get_str(body, "text") or ""
        _known_sender(world, sender_id)
        try:
            delivered = await world.inbound.edit(sender_id, peer, message_id, text)
        except RpcError as error:
            return _refused(error)
        answer = _as_json(delivered, peer)
        answer["edit_date"] = answer.pop("date")
        return web.json_response(answer)

    async def delete_messages(request: web.Request) -> web.Response:
        world, body = world_of(request), await json_body(request)
        sender_id = get_int(body, "sender", required=True) or 0
        peer = _peer(body)
        ids = body.get("message_ids")
        if not isinstance(ids, list) or not all(
            isinstance(i, int) and not isinstance(i, bool) for i in ids
        ):
            raise ValueError("message_ids must be a list of message ids")
        _known_sender(world, sender_id)
        try:
            delivered = await world.inbound.delete(sender_id, peer, ids)
        except RpcError as error:
            return _refused(error)
        answer = _as_json(delivered, peer)
        del answer["message_id"]
        answer["message_ids"] = list(dict.fromkeys(ids))
        return web.json_response(answer)

    async def updates_too_long(request: web.Request) -> web.Response:
        world, body = world_of(request), await json_body(request)
        user_id = get_int(body, "user_id")
        phone = get_str(body, "phone", required=False)
        if user_id is None and phone is None:
            raise ValueError("user_id or phone is required")
        try:
            account = world.find_user(user_id=user_id, phone=phone)
        except KeyError:
            raise NotFound("unknown user") from None
        pushed = await world.push_updates_too_long(account.user_id)
        return web.json_response({"user_id": account.user_id, "pushed_connections": pushed})

    async def get_settings(request: web.Request) -> web.Response:
        return web.json_response(world_of(request).settings.as_dict())

    async def change_settings(request: web.Request) -> web.Response:
        world, body = world_of(request), await json_body(request)
        if not body:
            raise ValueError(f"give one or more of {', '.join(world.settings.names())}")
        return web.json_response(world.change_settings(body))

    return [
        web.post("/messages", send_messages),
        web.post("/messages/edit", edit_message),
        web.post("/messages/delete", delete_messages),
        web.post("/updates_too_long", updates_too_long),
        web.get("/settings", get_settings),
        web.post("/settings", change_settings),
    ]
