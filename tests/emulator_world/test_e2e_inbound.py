"""Inbound traffic through real MTProto: the unmodified Telethon client hears messages,
edits and deletions the control API makes other users send, replays what it missed with
updates.getDifference / getChannelDifference (slices and ...TooLong included), and
answers a pushed updatesTooLong by asking for the difference."""

from __future__ import annotations

import asyncio
import contextlib
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest
from telethon import TelegramClient, events
from telethon.tl import functions, types

from integration_service.emulator.runner import default_control_starter
from integration_service.emulator.testing import EmulatorProcess, InProcessEmulator
from integration_service.emulator.world import TelegramWorld
from integration_service.emulator.world.client_helper import (
    ControlApiError,
    authorized_client,
    control_call,
    emulator_client,
    random_phone,
)
from integration_service.telegram.endpoint import TelegramEndpoint

T = TypeVar("T")


class Emu:
    def __init__(self, control_url: str, endpoint: TelegramEndpoint) -> None:
        self.control_url, self.endpoint = control_url, endpoint

    async def api(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        return await control_call(self.control_url, method, path, body)


@pytest.fixture(scope="module")
def emu() -> Iterator[Emu]:
    with (
        tempfile.TemporaryDirectory() as state_dir,
        InProcessEmulator(
            state_dir, TelegramWorld(difference_slice=3), start_control=default_control_starter()
        ) as emulator,
    ):
        assert emulator.running is not None and emulator.running.control_url is not None
        yield Emu(emulator.running.control_url, emulator.endpoint)


def _run(scenario: Callable[[], Awaitable[None]]) -> None:
    asyncio.run(asyncio.wait_for(scenario(), 60))


async def _until(condition: Callable[[], Awaitable[T | None]], what: str, timeout: float = 10) -> T:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = await condition()
        if value:
            return value
        await asyncio.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


@contextlib.asynccontextmanager
async def _listening(emu: Emu) -> AsyncIterator[tuple[TelegramClient, int, list[Any]]]:
    """A signed-in client with handlers recording what Telethon delivers to them."""
    client = await authorized_client(emu.control_url, emu.endpoint)
    heard: list[Any] = []

    async def record(event: Any) -> None:
        heard.append(event)

    for kind in (events.NewMessage, events.MessageEdited, events.MessageDeleted):
        client.add_event_handler(record, kind())
    try:
        me = await client.get_me()
        await client(functions.updates.GetStateRequest())  # updates on for this connection
        yield client, me.id, heard
    finally:
        await client.disconnect()


async def _other_user(emu: Emu) -> int:
    user = await emu.api("POST", "/users", {"phone": random_phone(), "first_name": "Другой"})
    return int(user["user_id"])


def test_pushed_messages_edits_and_deletions_reach_telethon_handlers(emu: Emu) -> None:
    async def scenario() -> None:
        async with _listening(emu) as (_client, me, heard):
            alice = await _other_user(emu)
            to_me = {"type": "user", "id": me}
            await emu.api("POST", "/messages", {"sender": alice, "peer": to_me, "text": "привет"})
            await emu.api(
                "POST",
                "/messages/edit",
                {"sender": alice, "peer": to_me, "message_id": 1, "text": "привет!"},
            )
            await emu.api(
                "POST", "/messages/delete", {"sender": alice, "peer": to_me, "message_ids": [1]}
            )
            channel = await emu.api(
                "POST", "/channels", {"title": "Канал", "creator_id": alice, "member_ids": [me]}
            )
            await emu.api(
                "POST",
                "/messages",
                {
                    "sender": alice,
                    "peer": {"type": "channel", "id": channel["channel_id"]},
                    "text": "пост",
                },
            )

            async def all_heard() -> bool:
                return len(heard) >= 4

            await _until(all_heard, "four events")
            new, edited, deleted, post = heard[:4]
            assert isinstance(new, events.NewMessage.Event) and new.raw_text == "привет"
            assert new.sender_id == alice and not new.out
            assert isinstance(edited, events.MessageEdited.Event)
            assert edited.raw_text == "привет!"
            assert isinstance(deleted, events.MessageDeleted.Event) and deleted.deleted_ids == [1]
            assert isinstance(post, events.NewMessage.Event) and post.raw_text == "пост"
            assert post.chat_id == int(f"-100{channel['channel_id']}")

    _run(scenario)


def test_a_returning_client_gets_what_it_missed_over_mtproto(emu: Emu) -> None:
    async def scenario() -> None:
        alice = await _other_user(emu)
        async with _listening(emu) as (client, me, _heard):
            session = client.session.save()
            pts = (await client(functions.updates.GetStateRequest())).pts
        # offline: four messages, an edit and a deletion
        to_me = {"type": "user", "id": me}
        batch = [{"sender": alice, "peer": to_me, "text": f"m{n}"} for n in range(4)]
        sent = await emu.api("POST", "/messages", {"messages": batch})
        first = sent["messages"][0]["message_id"]
        await emu.api(
            "POST",
            "/messages/edit",
            {"sender": alice, "peer": to_me, "message_id": first, "text": "m0!"},
        )
        await emu.api(
            "POST",
            "/messages/delete",
            {"sender": alice, "peer": to_me, "message_ids": [first + 1]},
        )
        returning = emulator_client(emu.endpoint, session)
        await returning.connect()
        try:
            texts: list[str] = []
            others: list[tuple[str, int]] = []
            at = pts
            while True:
                diff = await returning(
                    functions.updates.GetDifferenceRequest(pts=at, date=None, qts=0)
                )
                texts += [m.message for m in diff.new_messages]
                others += [(type(u).__name__, u.pts) for u in diff.other_updates]
                if isinstance(diff, types.updates.Difference):
                    break
                assert isinstance(diff, types.updates.DifferenceSlice)  # slices of 3
                at = diff.intermediate_state.pts
            assert texts == ["m0!", "m2", "m3"]
            assert others == [("UpdateEditMessage", pts + 5), ("UpdateDeleteMessages", pts + 6)]
            assert diff.state.pts == pts + 6

            await emu.api("POST", "/settings", {"difference_limit": 2})
            try:
                too_long = await returning(
                    functions.updates.GetDifferenceRequest(pts=pts, date=None, qts=0)
                )
                assert isinstance(too_long, types.updates.DifferenceTooLong)
                assert too_long.pts == pts + 6
                username = f"feed{me}"
                channel = await emu.api(
                    "POST",
                    "/channels",
                    {
                        "title": "Лента",
                        "creator_id": alice,
                        "member_ids": [me],
                        "username": username,
                    },
                )
                posts = [
                    {
                        "sender": alice,
                        "peer": {"type": "channel", "id": channel["channel_id"]},
                        "text": f"p{n}",
                    }
                    for n in range(4)
                ]
                await emu.api("POST", "/messages", {"messages": posts})
                resolved = await returning(functions.contacts.ResolveUsernameRequest(username))
                [entity] = resolved.chats
                channel_too_long = await returning(
                    functions.updates.GetChannelDifferenceRequest(
                        channel=types.InputChannel(entity.id, entity.access_hash),
                        filter=types.ChannelMessagesFilterEmpty(),
                        pts=1,
                        limit=2,
                    )
                )
                assert isinstance(channel_too_long, types.updates.ChannelDifferenceTooLong)
                assert channel_too_long.dialog.pts == 4
                assert [m.message for m in channel_too_long.messages] == ["p3", "p2"]
            finally:
                await emu.api("POST", "/settings", {"difference_limit": 100_000})
        finally:
            await returning.disconnect()

    _run(scenario)


def test_updates_too_long_makes_telethon_ask_for_the_difference(emu: Emu) -> None:
    async def scenario() -> None:
        async with _listening(emu) as (_client, me, heard):
            # Telethon keeps no account state for pts 0 (its "no sequence"), so the account
            # first hears a message, then the push
            alice = await _other_user(emu)
            await emu.api(
                "POST",
                "/messages",
                {"sender": alice, "peer": {"type": "user", "id": me}, "text": "сначала"},
            )

            async def heard_it() -> bool:
                return bool(heard)

            await _until(heard_it, "the first message")
            # a fault that fires once on the client's next getDifference shows that it came
            await emu.api(
                "POST",
                "/faults",
                {"user_id": me, "kind": "slow", "delay": 0.01, "method": "updates.getDifference"},
            )
            pushed = await emu.api("POST", "/updates_too_long", {"user_id": me})
            assert pushed == {"user_id": me, "pushed_connections": 1}

            async def fault_used() -> bool:
                return not (await emu.api("GET", f"/faults?user_id={me}"))["faults"]

            await _until(fault_used, "Telethon's updates.getDifference after updatesTooLong")

    _run(scenario)


def test_the_command_line_limit_and_inbound_steps_survive_a_restart(tmp_path: Path) -> None:
    """The emulator as the CLI runs it: --difference-limit is applied and saved; messages,
    edits, deletions and which copy is whose are on disk when it comes back."""

    async def first_run(url: str) -> tuple[int, int]:
        assert (await control_call(url, "GET", "/settings"))["difference_limit"] == 3
        ids = [
            (await control_call(url, "POST", "/users", {"phone": random_phone(), "first_name": n}))[
                "user_id"
            ]
            for n in ("Аня", "Боря")
        ]
        to_b = {"type": "user", "id": ids[1]}
        texts = [{"sender": ids[0], "peer": to_b, "text": f"m{n}"} for n in range(3)]
        await control_call(url, "POST", "/messages", {"messages": texts})
        await control_call(
            url, "POST", "/messages/delete", {"sender": ids[0], "peer": to_b, "message_ids": [2]}
        )
        return ids[0], ids[1]

    async def second_run(url: str, a: int, b: int) -> None:
        assert (await control_call(url, "GET", "/settings"))["difference_limit"] == 3
        edited = await control_call(
            url,
            "POST",
            "/messages/edit",
            {"sender": a, "peer": {"type": "user", "id": b}, "message_id": 1, "text": "m0!"},
        )
        # Bob's copy was found after the restart; his pts: 3 messages + 1 deletion + 1 edit
        assert edited["recipients"] == {str(a): 1, str(b): 1} and edited["pts"] == 5
        with pytest.raises(ControlApiError, match="MESSAGE_ID_INVALID"):
            await control_call(
                url,
                "POST",
                "/messages/edit",
                {"sender": a, "peer": {"type": "user", "id": b}, "message_id": 2, "text": "x"},
            )

    state_dir = tmp_path / "emulator"
    with EmulatorProcess(state_dir, extra_args=["--difference-limit", "3"]) as first:
        assert first.control_url is not None
        a, b = asyncio.run(first_run(first.control_url))
    with EmulatorProcess(state_dir) as second:
        assert second.control_url is not None
        asyncio.run(second_run(second.control_url, a, b))
