"""The emulator's control API: JSON over loopback HTTP for tests and the demo.

It runs on the same asyncio loop as the MTProto core, so handlers touch the world's
plain dicts directly. Bad input answers 400 with a specific message, unknown objects
404; every endpoint is documented in docs/EMULATOR.md.
"""

from __future__ import annotations

import base64
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from integration_service.emulator.control_chats import chat_routes
from integration_service.emulator.control_inbound import inbound_routes
from integration_service.emulator.rpc import RpcError
from integration_service.emulator.world import TelegramWorld
from integration_service.emulator.world.accounts import Account
from integration_service.emulator.world.control_input import (
    NotFound,
    get_ids,
    get_int,
    get_number,
    get_str,
    json_body,
    query_int,
)
from integration_service.emulator.world.world_control import decode_login_token

WORLD_KEY = web.AppKey("world", TelegramWorld)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

# RPC errors of a QR approval, as HTTP statuses for the operator
_APPROVAL_STATUS = {
    "AUTH_TOKEN_INVALID": (404, "unknown login token"),
    "AUTH_TOKEN_EXPIRED": (400, "login token expired"),
    "AUTH_TOKEN_ALREADY_ACCEPTED": (409, "login token already approved"),
    "BOT_METHOD_INVALID": (400, "bots cannot approve login tokens"),
    "USER_DEACTIVATED_BAN": (400, "user is banned"),
}


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)


@web.middleware
async def _errors_as_json(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except ValueError as exc:
        return _error(400, str(exc))
    except LookupError as exc:
        return _error(404, str(exc.args[0]) if exc.args else "not found")


@web.middleware
async def _saved(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Whatever a call changed is saved (with --state-dir) before it answers."""
    try:
        return await handler(request)
    finally:
        request.app[WORLD_KEY].save()


def _world(request: web.Request) -> TelegramWorld:
    return request.app[WORLD_KEY]


def _account(world: TelegramWorld, body: dict[str, Any]) -> Account:
    """The user named by ``user_id`` or ``phone`` in the body."""
    user_id = get_int(body, "user_id")
    phone = get_str(body, "phone", required=False)
    if user_id is None and phone is None:
        raise ValueError("user_id or phone is required")
    try:
        return world.find_user(user_id=user_id, phone=phone)
    except KeyError:
        raise NotFound("unknown user") from None


def _require_users(world: TelegramWorld, ids: set[int]) -> None:
    missing = sorted(i for i in ids if i not in world.directory.accounts)
    if missing:
        raise NotFound(f"unknown users: {missing}")


def _describe(world: TelegramWorld, account: Account) -> dict[str, Any]:
    return {
        "user_id": account.user_id,
        "phone": account.phone,
        "first_name": account.first_name,
        "last_name": account.last_name,
        "username": account.username,
        "is_bot": account.is_bot,
        "banned": account.banned,
        "has_password": account.user_id in world.state.passwords,
        "signed_in_keys": len(world.keys.keys_of(account.user_id)),
    }


async def health(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def create_user(request: web.Request) -> web.Response:
    world, body = _world(request), await json_body(request)
    account = world.create_user(
        phone=get_str(body, "phone") or "",
        first_name=get_str(body, "first_name") or "",
        last_name=get_str(body, "last_name", required=False) or "",
        username=get_str(body, "username", required=False),
        password=get_str(body, "password", required=False),
    )
    return web.json_response(_describe(world, account), status=201)


async def get_user(request: web.Request) -> web.Response:
    world = _world(request)
    raw = request.match_info["user_id"]
    if not raw.isdigit():
        raise ValueError("user_id must be an integer")
    account = world.directory.accounts.get(int(raw))
    if account is None:
        raise NotFound("unknown user")
    return web.json_response(_describe(world, account))


async def create_bot(request: web.Request) -> web.Response:
    world, body = _world(request), await json_body(request)
    bot = world.create_bot(
        get_str(body, "username") or "", get_str(body, "first_name", required=False)
    )
    return web.json_response(
        {"user_id": bot.user_id, "username": bot.username, "token": bot.bot_token}, status=201
    )


async def create_group(request: web.Request) -> web.Response:
    world, body = _world(request), await json_body(request)
    creator_id = get_int(body, "creator_id", required=True) or 0
    members = get_ids(body, "member_ids")
    _require_users(world, {creator_id, *members})
    group = world.create_group(get_str(body, "title") or "", creator_id, members)
    return web.json_response(
        {"chat_id": group.chat_id, "title": group.title, "members": sorted(group.members)},
        status=201,
    )


async def create_channel(request: web.Request) -> web.Response:
    world, body = _world(request), await json_body(request)
    creator_id = get_int(body, "creator_id", required=True) or 0
    members, admins = get_ids(body, "member_ids"), get_ids(body, "admin_ids")
    broadcast = body.get("broadcast", True)
    if not isinstance(broadcast, bool):
        raise ValueError("broadcast must be true or false")
    _require_users(world, {creator_id, *members, *admins})
    channel = world.create_channel(
        get_str(body, "title") or "",
        creator_id,
        members,
        username=get_str(body, "username", required=False),
        admin_ids=admins,
        broadcast=broadcast,
    )
    return web.json_response(
        {
            "channel_id": channel.channel_id,
            "title": channel.title,
            "username": channel.username,
            "broadcast": channel.broadcast,
            "members": sorted(channel.members),
        },
        status=201,
    )


async def set_password(request: web.Request) -> web.Response:
    world, body = _world(request), await json_body(request)
    account = _account(world, body)
    password = get_str(body, "password", required=False)
    if password == "":
        raise ValueError("password must not be empty (use null to remove it)")
    world.set_password(account.user_id, password, get_str(body, "hint", required=False))
    return web.json_response({"user_id": account.user_id, "has_password": password is not None})


async def last_code(request: web.Request) -> web.Response:
    world, phone = _world(request), request.match_info["phone"]
    found = world.last_login_code(phone)
    if found is None:
        raise NotFound("no login code was sent to this phone")
    code, expires_at = found
    return web.json_response({"code": code, "expires_at": expires_at})


async def approve_qr(request: web.Request) -> web.Response:
    world, body = _world(request), await json_body(request)
    token = decode_login_token(get_str(body, "token") or "")
    account = _account(world, body)
    try:
        await world.approve_login_token(token, account.user_id)
    except RpcError as exc:
        status, message = _APPROVAL_STATUS.get(exc.message, (400, exc.message))
        return _error(status, message)
    return web.json_response({"approved": True, "user_id": account.user_id})


async def revoke(request: web.Request) -> web.Response:
    world, body = _world(request), await json_body(request)
    account = _account(world, body)
    mode = get_str(body, "mode", required=False) or "AUTH_KEY_UNREGISTERED"
    revoked = world.revoke_authorizations(account.user_id, mode.upper())
    return web.json_response({"user_id": account.user_id, "revoked_keys": revoked})


async def mint_session(request: web.Request) -> web.Response:
    """A signed-in auth key for a user, without a login (set-up at scale)."""
    world, body = _world(request), await json_body(request)
    account = _account(world, body)
    key = world.mint_session(account.user_id)
    return web.json_response(
        {
            "user_id": account.user_id,
            "auth_key": base64.b64encode(key).decode(),
            "dc_id": world.help.dc_id,
        },
        status=201,
    )


async def forget_auth_keys(request: web.Request) -> web.Response:
    """The data centre forgets a user's auth keys: their next message gets -404 (a test
    facility mirroring a Telegram that lost a key)."""
    world, body = _world(request), await json_body(request)
    account = _account(world, body)
    forgotten = world.forget_auth_keys(account.user_id)
    return web.json_response({"user_id": account.user_id, "forgotten_keys": forgotten})


async def ban(request: web.Request) -> web.Response:
    world, body = _world(request), await json_body(request)
    account = _account(world, body)
    world.set_banned(account.user_id, True)
    return web.json_response({"user_id": account.user_id, "banned": True})


async def unban(request: web.Request) -> web.Response:
    world, body = _world(request), await json_body(request)
    account = _account(world, body)
    world.set_banned(account.user_id, False)
    return web.json_response({"user_id": account.user_id, "banned": False})


async def inject_fault(request: web.Request) -> web.Response:
    world, body = _world(request), await json_body(request)
    account = _account(world, body)
    options: dict[str, Any] = {"method": get_str(body, "method", required=False)}
    if "count" in body:
        options["count"] = get_int(body, "count")  # null: until cleared
    for name in ("seconds", "code"):
        value = get_int(body, name)
        if value is not None:
            options[name] = value
    delay = get_number(body, "delay")
    if delay is not None:
        options["delay"] = delay
    message = get_str(body, "message", required=False)
    if message is not None:
        options["message"] = message
    fault = world.inject_fault(account.user_id, get_str(body, "kind") or "", **options)
    return web.json_response(fault.as_dict(), status=201)


async def list_faults(request: web.Request) -> web.Response:
    faults = _world(request).faults.list(query_int(request, "user_id"))
    return web.json_response({"faults": [f.as_dict() for f in faults]})


async def clear_faults(request: web.Request) -> web.Response:
    cleared = _world(request).faults.clear(query_int(request, "user_id"))
    return web.json_response({"cleared": cleared})


async def drop_connections(request: web.Request) -> web.Response:
    world = _world(request)
    body = await json_body(request) if request.can_read_body else {}
    user_id = None
    if body.get("user_id") is not None or body.get("phone") is not None:
        user_id = _account(world, body).user_id
    if world.drop_connections is None:
        return _error(409, "the emulator runner has not wired connection dropping")
    return web.json_response({"dropped": await world.drop_user_connections(user_id)})


def _message_filter(request: web.Request) -> dict[str, Any]:
    peer_type = request.query.get("peer_type") or None
    if peer_type not in (None, "user", "chat", "channel"):
        raise ValueError("peer_type must be user, chat or channel")
    since_raw = request.query.get("since")
    try:
        since = float(since_raw) if since_raw else None
    except ValueError:
        raise ValueError("since must be a unix timestamp") from None
    return {
        "sender_id": query_int(request, "sender_id"),
        "peer_type": peer_type,
        "peer_id": query_int(request, "peer_id"),
        "since": since,
        "after_log_id": query_int(request, "after_id"),
    }


async def list_messages(request: web.Request) -> web.Response:
    found = _world(request).deliveries.query(**_message_filter(request))
    return web.json_response({"count": len(found), "messages": [m.as_dict() for m in found]})


async def count_messages(request: web.Request) -> web.Response:
    found = _world(request).deliveries.query(**_message_filter(request))
    return web.json_response({"count": len(found)})


async def stats(request: web.Request) -> web.Response:
    return web.json_response(_world(request).stats())


async def reset(request: web.Request) -> web.Response:
    _world(request).reset()
    return web.json_response({"reset": True})


def build_control_app(world: TelegramWorld) -> web.Application:
    app = web.Application(middlewares=[_errors_as_json, _saved])
    app[WORLD_KEY] = world
    app.router.add_get("/health", health)
    app.router.add_post("/users", create_user)
    app.router.add_get("/users/{user_id}", get_user)
    app.router.add_post("/bots", create_bot)
    app.router.add_post("/groups", create_group)
    app.router.add_post("/channels", create_channel)
    app.router.add_post("/password", set_password)
    app.router.add_get("/codes/{phone}", last_code)
    app.router.add_post("/qr/approve", approve_qr)
    app.router.add_post("/revoke", revoke)
    app.router.add_post("/sessions", mint_session)
    app.router.add_post("/auth_keys/forget", forget_auth_keys)
    app.router.add_post("/ban", ban)
    app.router.add_post("/unban", unban)
    app.router.add_post("/faults", inject_fault)
    app.router.add_get("/faults", list_faults)
    app.router.add_delete("/faults", clear_faults)
    app.router.add_post("/connections/drop", drop_connections)
    app.router.add_get("/messages", list_messages)
    app.router.add_get("/messages/count", count_messages)
    app.router.add_get("/stats", stats)
    app.router.add_post("/reset", reset)
    app.add_routes(inbound_routes(_world))
    app.add_routes(chat_routes(_world))
    return app


async def start_control_api(
    world: TelegramWorld, host: str = "127.0.0.1", port: int = 0
) -> tuple[web.AppRunner, str]:
    """Serve the control API on the running loop; returns the runner and base URL."""
    runner = web.AppRunner(build_control_app(world), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    # with port 0 the OS picked the port; the runner knows which
    bound_port = runner.addresses[0][1]
    return runner, f"http://{host}:{bound_port}"
