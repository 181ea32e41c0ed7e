"""Emulator benchmark: calls/s served to many concurrent authorised Telethon clients, and
connect time with a new auth key versus a reused one.

The emulator runs as its own process (as in production use), so its figures are not mixed
with the clients' CPU. Run: ``.venv/bin/python bench/emulator_bench.py [--clients 50]``.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import logging
import os
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from telethon import TelegramClient, functions
from telethon.sessions import StringSession

from integration_service.emulator.testing import EmulatorProcess
from integration_service.emulator.world.client_helper import (
    EMULATOR_API_HASH,
    EMULATOR_API_ID,
    authorized_client,
    control_call,
)
from integration_service.telegram.endpoint import TelegramEndpoint, apply_to_session

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def process_cpu_seconds(pid: int) -> float:
    """utime + stime of a process, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def client_for(endpoint: TelegramEndpoint, session: str | None = None) -> TelegramClient:
    string_session = StringSession(session)
    apply_to_session(string_session, endpoint)
    return TelegramClient(string_session, EMULATOR_API_ID, EMULATOR_API_HASH)


async def connect_times(
    endpoint: TelegramEndpoint, session: str | None, rounds: int
) -> list[float]:
    """Seconds from connect() to a usable client (key exchange when session is None)."""
    times = []
    for _ in range(rounds):
        client = client_for(endpoint, session)
        started = time.perf_counter()
        await client.connect()
        times.append(time.perf_counter() - started)
        await client.disconnect()
    return times


async def hammer(
    clients: list[TelegramClient],
    make_call: Callable[[int, TelegramClient], Awaitable[Any]],
    seconds: float,
) -> int:
    """Every client calls back-to-back for ``seconds``; returns how many calls completed."""
    deadline = time.perf_counter() + seconds
    done = 0

    async def loop(index: int, client: TelegramClient) -> None:
        nonlocal done
        while time.perf_counter() < deadline:
            await make_call(index, client)
            done += 1

    await asyncio.gather(*(loop(i, c) for i, c in enumerate(clients)))
    return done


def describe(label: str, samples: list[float]) -> str:
    ordered = sorted(samples)
    p95 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.95))]
    return (
        f"{label}: median {statistics.median(ordered) * 1000:.1f} ms, "
        f"p95 {p95 * 1000:.1f} ms over {len(ordered)}"
    )


async def bench(emulator: EmulatorProcess, client_count: int, seconds: float) -> None:
    endpoint, control_url = emulator.endpoint, emulator.control_url
    assert control_url is not None and emulator.process is not None
    server_pid = emulator.process.pid

    fresh = await connect_times(endpoint, None, 10)
    print(describe("connect, new auth key (key exchange + initConnection)", fresh))

    recipient_name = "bench_recipient"
    await control_call(
        control_url,
        "POST",
        "/users",
        {"phone": "79990000001", "first_name": "Получатель", "username": recipient_name},
    )
    started = time.perf_counter()
    clients = list(
        await asyncio.gather(
            *(authorized_client(control_url, endpoint) for _ in range(client_count))
        )
    )
    print(f"{client_count} clients signed in (code login) in {time.perf_counter() - started:.1f} s")
    reused_session = clients[0].session.save()
    peers = [await client.get_input_entity(recipient_name) for client in clients]
    random_ids = itertools.count(1)

    async def send_message(index: int, client: TelegramClient) -> Any:
        return await client(
            functions.messages.SendMessageRequest(
                peer=peers[index], message="Привет из бенчмарка", random_id=next(random_ids)
            )
        )

    async def get_state(_index: int, client: TelegramClient) -> Any:
        return await client(functions.updates.GetStateRequest())

    for name, call in (("messages.SendMessage", send_message), ("updates.GetState", get_state)):
        cpu_before = process_cpu_seconds(server_pid)
        wall = time.perf_counter()
        calls = await hammer(clients, call, seconds)
        wall = time.perf_counter() - wall
        server_cpu = process_cpu_seconds(server_pid) - cpu_before
        print(
            f"{name}: {calls / wall:,.0f} calls/s with {client_count} concurrent clients "
            f"({calls} calls in {wall:.1f} s); emulator CPU {server_cpu:.1f} s "
            f"-> {calls / max(server_cpu, 1e-9):,.0f} calls per emulator CPU-second"
        )

    delivered = await control_call(control_url, "GET", "/messages/count")
    print(f"deliveries recorded by the world: {delivered}")
    await asyncio.gather(*(client.disconnect() for client in clients))

    reused = await connect_times(endpoint, reused_session, 10)
    print(describe("connect, reused authorised key (initConnection + get_me + GetState)", reused))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=10.0)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    with (
        tempfile.TemporaryDirectory() as state_dir,
        EmulatorProcess(Path(state_dir) / "emulator") as emulator,
    ):
        from integration_service.telegram.endpoint import register_rsa_key

        register_rsa_key(emulator.endpoint)
        asyncio.run(bench(emulator, args.clients, args.seconds))


if __name__ == "__main__":
    main()
