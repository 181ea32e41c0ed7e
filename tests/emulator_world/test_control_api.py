"""The control API over real HTTP on loopback, against a world also driven by RPC calls."""

from __future__ import annotations

import base64
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
from telethon.tl import functions, types

from integration_service.emulator.control_api import start_control_api
from integration_service.emulator.world import TelegramWorld
from tests.emulator_world.world_support import API_HASH, API_ID, Client, new_world, run

Scenario = Callable[[TelegramWorld, "Api"], Awaitable[None]]


class Api:
    def __init__(self, session: aiohttp.ClientSession, base: str) -> None:
        self._session, self._base = session, base

    async def call(
        self, method: str, path: str, body: Any = None, **params: Any
    ) -> tuple[int, Any]:
        async with self._session.request(
            method, self._base + path, json=body, params=params or None
        ) as response:
            return response.status, await response.json()


def _with_api(scenario: Scenario) -> None:
    async def main() -> None:
        world = new_world()
        runner, url = await start_control_api(world, "127.0.0.1", 0)
        try:
            async with aiohttp.ClientSession() as session:
                await scenario(world, Api(session, url))
        finally:
            await runner.cleanup()

    run(main())


def test_health_and_users() -> None:
    async def scenario(world: TelegramWorld, api: Api) -> None:
        assert await api.call("GET", "/health") == (200, {"status": "ok"})
        status, user = await api.call(
            "POST",
            "/users",
            {"phone": "+7 999 100-00-01", "first_name": "Анна", "username": "anna_v"},
        )
        assert status == 201 and user["phone"] == "79991000001" and not user["has_password"]
        assert world.directory.by_username("anna_v") == ("user", user["user_id"])
        status, again = await api.call("GET", f"/users/{user['user_id']}")
        assert status == 200 and again["first_name"] == "Анна"
        assert (await api.call("GET", "/users/1"))[0] == 404
        status, err = await api.call(
            "POST", "/users", {"phone": "+7 999 100-00-01", "first_name": "Б"}
        )
        assert status == 400 and "already registered" in err["error"]
        status, err = await api.call("POST", "/users", {"phone": "+79991000002"})
        assert status == 400 and err["error"] == "first_name is required"
        status, err = await api.call("POST", "/users", ["not", "an", "object"])
        assert status == 400 and err["error"] == "body must be a JSON object"

    _with_api(scenario)


def test_bots_groups_channels() -> None:
    async def scenario(world: TelegramWorld, api: Api) -> None:
        status, bot = await api.call("POST", "/bots", {"username": "orders_bot"})
        assert status == 201 and bot["token"].startswith(f"{bot['user_id']}:")
        assert (await api.call("POST", "/bots", {"username": "orders"}))[0] == 400
        _, owner = await api.call("POST", "/users", {"phone": "79991000010", "first_name": "Олег"})
        status, group = await api.call(
            "POST",
            "/groups",
            {"title": "Команда", "creator_id": owner["user_id"], "member_ids": [bot["user_id"]]},
        )
        assert status == 201 and set(group["members"]) == {owner["user_id"], bot["user_id"]}
        status, err = await api.call(
            "POST", "/groups", {"title": "X", "creator_id": 5, "member_ids": []}
        )
        assert status == 404 and "unknown users" in err["error"]
        status, err = await api.call(
            "POST", "/groups", {"title": "X", "creator_id": owner["user_id"], "member_ids": "all"}
        )
        assert status == 400
        status, channel = await api.call(
            "POST",
            "/channels",
            {
                "title": "Акции",
                "creator_id": owner["user_id"],
                "username": "sales_channel",
                "broadcast": True,
            },
        )
        assert status == 201 and channel["username"] == "sales_channel"
        assert world.directory.channels[channel["channel_id"]].broadcast

    _with_api(scenario)


def test_code_login_through_the_api_and_password() -> None:
    async def scenario(world: TelegramWorld, api: Api) -> None:
        _, user = await api.call("POST", "/users", {"phone": "79991000020", "first_name": "Ира"})
        assert (await api.call("GET", "/codes/79991000020"))[0] == 404
        client = Client(world)
        code_hash = await client.send_code("+79991000020")
        status, code = await api.call("GET", "/codes/79991000020")
        assert status == 200 and len(code["code"]) == 5
        await client.call(functions.auth.SignInRequest("79991000020", code_hash, code["code"]))
        assert world.is_authorized(client.auth_key_id)
        status, body = await api.call(
            "POST", "/password", {"user_id": user["user_id"], "password": "pw"}
        )
        assert status == 200 and body["has_password"]
        assert (await api.call("POST", "/password", {"phone": "000"}))[0] == 404
        assert (await api.call("POST", "/password", {"user_id": "x"}))[0] == 400

    _with_api(scenario)


def test_qr_approval() -> None:
    async def scenario(world: TelegramWorld, api: Api) -> None:
        _, user = await api.call("POST", "/users", {"phone": "79991000030", "first_name": "Лев"})
        client = Client(world)
        token = await client.call(functions.auth.ExportLoginTokenRequest(API_ID, API_HASH, []))
        encoded = base64.urlsafe_b64encode(token.token).decode().rstrip("=")
        assert (await api.call("POST", "/qr/approve", {"token": "%%%", "phone": "79991000030"}))[
            0
        ] == 400
        unknown = base64.urlsafe_b64encode(b"z" * 32).decode()
        assert (await api.call("POST", "/qr/approve", {"token": unknown, "phone": "79991000030"}))[
            0
        ] == 404
        status, body = await api.call(
            "POST", "/qr/approve", {"token": encoded, "phone": "+79991000030"}
        )
        assert status == 200 and body["user_id"] == user["user_id"]
        assert any(isinstance(u, types.UpdateShort) for u in client.pushed)
        assert (await api.call("POST", "/qr/approve", {"token": encoded, "phone": "79991000030"}))[
            0
        ] == 409
        success = await client.call(functions.auth.ExportLoginTokenRequest(API_ID, API_HASH, []))
        assert success.authorization.user.id == user["user_id"]

    _with_api(scenario)


def test_faults_revoke_ban_and_drop() -> None:
    async def scenario(world: TelegramWorld, api: Api) -> None:
        _, user = await api.call("POST", "/users", {"phone": "79991000040", "first_name": "Ян"})
        uid = user["user_id"]
        client = Client(world)
        await client.login("79991000040")
        status, fault = await api.call(
            "POST", "/faults", {"user_id": uid, "kind": "flood_wait", "seconds": 30, "count": 1}
        )
        assert status == 201 and fault["kind"] == "flood_wait"
        _, listed = await api.call("GET", "/faults", user_id=uid)
        assert len(listed["faults"]) == 1
        await client.fails(functions.updates.GetStateRequest(), 420, "FLOOD_WAIT_30")
        assert (await api.call("POST", "/faults", {"user_id": uid, "kind": "nope"}))[0] == 400
        assert (await api.call("POST", "/faults", {"user_id": uid, "kind": "slow", "delay": "x"}))[
            0
        ] == 400
        await api.call(
            "POST", "/faults", {"phone": "79991000040", "kind": "peer_flood", "count": None}
        )
        assert (await api.call("DELETE", "/faults"))[1] == {"cleared": 1}
        assert (await api.call("POST", "/connections/drop", {"user_id": uid}))[0] == 409

        async def drop(auth_key_id: int | None) -> int:
            return 2

        world.drop_connections = drop
        assert await api.call("POST", "/connections/drop", {"user_id": uid}) == (
            200,
            {"dropped": 2},
        )
        status, body = await api.call(
            "POST", "/revoke", {"user_id": uid, "mode": "session_revoked"}
        )
        assert status == 200 and body["revoked_keys"] == 1
        await client.fails(functions.updates.GetStateRequest(), 401, "SESSION_REVOKED")
        assert (await api.call("POST", "/revoke", {"user_id": uid, "mode": "bogus"}))[0] == 400
        assert (await api.call("POST", "/ban", {"user_id": 12}))[0] == 404
        assert (await api.call("POST", "/ban", {"user_id": uid}))[1]["banned"] is True
        assert world.directory.accounts[uid].banned
        assert (await api.call("POST", "/unban", {"phone": "79991000040"}))[1]["banned"] is False

    _with_api(scenario)


def test_message_log_and_reset() -> None:
    async def scenario(world: TelegramWorld, api: Api) -> None:
        _, user = await api.call("POST", "/users", {"phone": "79991000050", "first_name": "Ева"})
        client = Client(world)
        await client.login("79991000050")
        for n in (1, 2):
            await client.call(
                functions.messages.SendMessageRequest(types.InputPeerSelf(), f"m{n}", random_id=n)
            )
        status, body = await api.call(
            "GET", "/messages", sender_id=user["user_id"], peer_type="user"
        )
        assert status == 200 and [m["text"] for m in body["messages"]] == ["m1", "m2"]
        assert body["messages"][0]["random_id"] == 1
        assert (await api.call("GET", "/messages/count", after_id=1))[1] == {"count": 1}
        assert (await api.call("GET", "/messages/count", peer_type="chat"))[1] == {"count": 0}
        assert (await api.call("GET", "/messages", peer_type="group"))[0] == 400
        assert (await api.call("GET", "/messages", since="yesterday"))[0] == 400
        assert (await api.call("POST", "/reset"))[1] == {"reset": True}
        assert (await api.call("GET", "/messages/count"))[1] == {"count": 0}
        assert (await api.call("GET", f"/users/{user['user_id']}"))[0] == 404

    _with_api(scenario)


def test_admin_rights_and_invite_links() -> None:
    async def scenario(world: TelegramWorld, api: Api) -> None:
        owner = world.create_user("+79991000031", "Owner")
        member = world.create_user("+79991000032", "Member")
        outsider = world.create_user("+79991000033", "Outsider")
        channel = world.create_channel("News", owner.user_id, {member.user_id})
        group = world.create_group("Team", owner.user_id, set())
        path = f"/channels/{channel.channel_id}/admins"
        status, answer = await api.call(
            "POST", path, {"user_id": member.user_id, "rights": ["post_messages", "edit_messages"]}
        )
        assert status == 200 and answer["rights"] == ["edit_messages", "post_messages"]
        assert channel.can_post(member.user_id)
        status, answer = await api.call("POST", path, {"user_id": member.user_id, "rights": []})
        assert status == 200 and answer["rights"] == []
        assert not channel.can_post(member.user_id)
        # Refused, and nothing changes.
        for body, code, words in (
            ({"user_id": member.user_id, "rights": ["rule_the_world"]}, 400, "unknown admin right"),
            ({"user_id": member.user_id}, 400, "rights must be a list"),
            ({"user_id": outsider.user_id, "rights": ["post_messages"]}, 400, "not a member"),
            ({"user_id": owner.user_id, "rights": []}, 400, "creator"),
            ({"user_id": 1, "rights": []}, 404, "unknown user"),
        ):
            status, err = await api.call("POST", path, body)
            assert status == code and words in err["error"], (body, err)
        status, err = await api.call("POST", "/channels/1/admins", {"user_id": 1, "rights": []})
        assert status == 404 and "unknown channel" in err["error"]
        assert channel.admins == {}
        status, link = await api.call("POST", "/invites", {"channel_id": channel.channel_id})
        assert status == 201 and link["link"] == "https://t.me/+" + link["hash"]
        assert channel.invite_hash == link["hash"]
        status, group_link = await api.call("POST", "/invites", {"chat_id": group.chat_id})
        assert status == 201 and group.invite_hash == group_link["hash"]
        for body in ({}, {"channel_id": 1, "chat_id": 2}):
            status, err = await api.call("POST", "/invites", body)
            assert status == 400 and err["error"] == "give channel_id or chat_id"
        assert (await api.call("POST", "/invites", {"chat_id": 5}))[0] == 404

    _with_api(scenario)
