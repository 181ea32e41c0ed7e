"""The inbound control routes over real HTTP: POST /messages (one and a batch),
/messages/edit, /messages/delete, /updates_too_long and /settings, with the JSON shapes
docs/EMULATOR.md promises and Telegram's error names for refusals."""

from __future__ import annotations

import sqlite3
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
from telethon.tl import functions, types

from integration_service.emulator.control_api import start_control_api
from integration_service.emulator.world import TelegramWorld, persistence
from integration_service.emulator.world.persistence import WorldStorage
from tests.emulator_world.test_control_api import Api
from tests.emulator_world.world_support import Client, new_world, run

Scenario = Callable[[TelegramWorld, Api, Client, dict[str, int]], Awaitable[None]]


def _with_api(scenario: Scenario, **world_options: Any) -> None:
    async def main() -> None:
        world = new_world(**world_options)
        ids = {
            name: world.create_user(phone, name).user_id
            for name, phone in (("alice", "+79990000301"), ("bob", "+79990000302"))
        }
        bob = Client(world)
        await bob.login("+79990000302")
        await bob.call(functions.updates.GetStateRequest())
        runner, url = await start_control_api(world, "127.0.0.1", 0)
        try:
            async with aiohttp.ClientSession() as session:
                await scenario(world, Api(session, url), bob, ids)
        finally:
            await runner.cleanup()

    run(main())


def _to(kind: str, peer_id: int) -> dict[str, Any]:
    return {"type": kind, "id": peer_id}


def test_send_edit_delete_shapes() -> None:
    async def scenario(world: TelegramWorld, api: Api, bob: Client, ids: dict[str, int]) -> None:
        alice, bob_id = ids["alice"], ids["bob"]
        status, sent = await api.call(
            "POST", "/messages", {"sender": alice, "peer": _to("user", bob_id), "text": "привет"}
        )
        assert status == 200
        assert sent == {
            "message_id": 1,
            "date": 1_700_000_000,
            "pts": 1,
            "peer": {"type": "user", "id": bob_id},
            "recipients": {str(alice): 1, str(bob_id): 1},
        }
        status, reply = await api.call(
            "POST",
            "/messages",
            {"sender": bob_id, "peer": _to("user", alice), "text": "ответ", "reply_to": 1},
        )
        assert status == 200 and reply["recipients"] == {str(alice): 2, str(bob_id): 2}
        status, edited = await api.call(
            "POST",
            "/messages/edit",
            {"sender": alice, "peer": _to("user", bob_id), "message_id": 1, "text": "привет!"},
        )
        assert status == 200 and edited["edit_date"] == 1_700_000_000
        assert edited["recipients"] == {str(alice): 1, str(bob_id): 1} and edited["pts"] == 3
        status, deleted = await api.call(
            "POST",
            "/messages/delete",
            {"sender": alice, "peer": _to("user", bob_id), "message_ids": [1, 1]},
        )
        assert status == 200 and deleted["message_ids"] == [1]
        assert deleted["recipients"] == {str(alice): [1], str(bob_id): [1]}
        kinds = [
            type(u.update if isinstance(u, types.UpdateShort) else u).__name__
            for u in bob.pushed
            if not isinstance(u, types.Updates)
        ]
        assert kinds == ["UpdateShortMessage", "UpdateShortMessage", "UpdateDeleteMessages"]
        assert isinstance(bob.pushed[2], types.Updates)  # the edit, with its users
        assert isinstance(bob.pushed[2].updates[0], types.UpdateEditMessage)

        channel = world.create_channel("Канал", alice, {bob_id})
        status, post = await api.call(
            "POST",
            "/messages",
            {"sender": alice, "peer": _to("channel", channel.channel_id), "text": "пост"},
        )
        assert status == 200 and post["message_id"] == 1 and post["pts"] == 1
        assert post["recipients"] == {str(alice): 1, str(bob_id): 1}

    _with_api(scenario)


def test_a_batch_is_one_call_one_save_and_all_or_nothing(tmp_path: Path) -> None:
    async def scenario(world: TelegramWorld, api: Api, bob: Client, ids: dict[str, int]) -> None:
        alice, bob_id = ids["alice"], ids["bob"]
        world.attach_storage(WorldStorage.in_state_dir(tmp_path))
        storage, saves = world.storage, 0
        assert storage is not None

        def counted_save() -> None:  # the journal's save hook, counting its calls
            nonlocal saves
            saves += 1
            storage.save(world)

        world.state.journal.attach(counted_save)
        batch = [{"sender": alice, "peer": _to("user", bob_id), "text": f"m{n}"} for n in range(50)]
        status, answer = await api.call("POST", "/messages", {"messages": batch})
        assert status == 200 and [m["recipients"][str(bob_id)] for m in answer["messages"]] == list(
            range(1, 51)
        )
        assert saves == 1
        assert len([u for u in bob.pushed if isinstance(u, types.UpdateShortMessage)]) == 50
        with sqlite3.connect(tmp_path / persistence.WORLD_DB) as db:
            assert db.execute("SELECT COUNT(*) FROM user_messages").fetchone() == (100,)

        bad = [*batch[:2], {"sender": alice, "peer": _to("chat", 1), "text": "x"}]
        status, error = await api.call("POST", "/messages", {"messages": bad})
        assert (status, error) == (400, {"error": "PEER_ID_INVALID", "rpc_code": 400, "index": 2})
        assert world.directory.accounts[bob_id].pts == 50
        status, error = await api.call("POST", "/messages", {"messages": [{"sender": alice}]})
        assert status == 400 and error["error"].startswith("messages[0]: peer is required")
        status, error = await api.call("POST", "/messages", {"messages": []})
        assert status == 400 and "1 to 10000" in error["error"]
        assert world.storage is not None
        world.storage.close()

    _with_api(scenario)


def test_refusals_are_json_with_telegram_names() -> None:
    async def scenario(world: TelegramWorld, api: Api, bob: Client, ids: dict[str, int]) -> None:
        alice, bob_id = ids["alice"], ids["bob"]
        channel = world.create_channel("Канал", alice, {bob_id})
        to_bob = _to("user", bob_id)
        cases: list[tuple[str, dict[str, Any], int, dict[str, Any]]] = [
            (
                "/messages",
                {"sender": bob_id, "peer": _to("channel", channel.channel_id), "text": "x"},
                400,
                {"error": "CHAT_ADMIN_REQUIRED", "rpc_code": 400},
            ),
            (
                "/messages",
                {"sender": alice, "peer": to_bob, "text": "x" * 4097},
                400,
                {"error": "MESSAGE_TOO_LONG", "rpc_code": 400},
            ),
            (
                "/messages",
                {"sender": alice, "peer": to_bob, "text": "x", "reply_to": 7},
                400,
                {"error": "REPLY_MESSAGE_ID_INVALID", "rpc_code": 400},
            ),
            (
                "/messages",
                {"sender": 1, "peer": to_bob, "text": "x"},
                404,
                {"error": "unknown user 1"},
            ),
            (
                "/messages",
                {"sender": alice, "peer": {"type": "group", "id": 1}, "text": "x"},
                400,
                {"error": "peer.type must be one of user, chat, channel"},
            ),
            (
                "/messages/edit",
                {"sender": alice, "peer": to_bob, "message_id": 5, "text": "x"},
                400,
                {"error": "MESSAGE_ID_INVALID", "rpc_code": 400},
            ),
            (
                "/messages/delete",
                {"sender": alice, "peer": to_bob, "message_ids": "1"},
                400,
                {"error": "message_ids must be a list of message ids"},
            ),
        ]
        for path, body, status, error in cases:
            assert await api.call("POST", path, body) == (status, error), (path, body)
        world.set_banned(alice, True)
        assert await api.call(
            "POST", "/messages", {"sender": alice, "peer": to_bob, "text": "x"}
        ) == (
            400,
            {"error": "USER_DEACTIVATED_BAN", "rpc_code": 401},
        )
        assert world.directory.accounts[bob_id].pts == 0 and channel.pts == 0
        assert not bob.pushed

    _with_api(scenario)


def test_updates_too_long_and_settings() -> None:
    async def scenario(world: TelegramWorld, api: Api, bob: Client, ids: dict[str, int]) -> None:
        assert await api.call("POST", "/updates_too_long", {"user_id": ids["bob"]}) == (
            200,
            {"user_id": ids["bob"], "pushed_connections": 1},
        )
        assert isinstance(bob.pushed[-1], types.UpdatesTooLong)
        assert (await api.call("POST", "/updates_too_long", {"user_id": 1}))[0] == 404
        assert await api.call("GET", "/settings") == (
            200,
            {"difference_limit": 50, "difference_slice": 100},
        )
        assert await api.call("POST", "/settings", {"difference_slice": 10}) == (
            200,
            {"difference_limit": 50, "difference_slice": 10},
        )
        status, error = await api.call(
            "POST", "/settings", {"difference_slice": 20, "difference_limit": 0}
        )
        assert status == 400 and "difference_limit must be an integer" in error["error"]
        assert world.settings.difference_slice == 10  # nothing of a refused change is set
        status, error = await api.call("POST", "/settings", {"speed": 1})
        assert status == 400 and "unknown setting 'speed'" in error["error"]

    _with_api(scenario, difference_limit=50)


def test_a_schema_1_file_is_migrated(tmp_path: Path) -> None:
    """A world saved before edits existed opens with its posts and gets the new tables."""
    path = tmp_path / persistence.WORLD_DB
    with sqlite3.connect(path) as db:
        db.executescript(persistence._SCHEMA + "PRAGMA user_version=1;")
        db.execute("INSERT INTO channel_posts VALUES (5, 1, 1, 7, 'старый пост', 1.0)")
    storage = WorldStorage(path)
    try:
        with sqlite3.connect(path) as db:
            assert db.execute("PRAGMA user_version").fetchone() == (persistence.SCHEMA_VERSION,)
            assert db.execute("SELECT text, deleted FROM channel_posts").fetchall() == [
                ("старый пост", 0)
            ]
            assert db.execute("SELECT COUNT(*) FROM user_updates").fetchone() == (0,)
    finally:
        storage.close()
