"""Inbound: emulator messages -> event log -> RabbitMQ and webhooks, beside bare Telethon.

    .venv/bin/python bench/inbound_bench.py [--sessions 100,2000] [--messages 4000] [--quick]

One private world (scratch database, vhost, Redis db 12, emulator subprocess), one
`integration-service relay` process (publisher and webhook dispatcher, product defaults),
one webhook receiver process (tests/support/webhook_receiver.py, checks signatures), and a
RabbitMQ consumer in this process bound to the `events` exchange. Sessions are emulator
users with auth keys minted signed in, stored encrypted. Per session count N:

- system: a fresh `celery worker` (threads, concurrency 8) with LISTEN_CAPACITY=5000 holds
  all N listening sessions. RSS before and after it placed them gives memory per listening
  session. Peak: ``--messages`` messages from 20 emulator users round-robin to the N
  accounts, posted to the emulator's control API in batches of 200 as fast as it takes
  them. Rates: messages / (last arrival - first post), arrival being the row's
  ``created_at`` in the log (its transaction's start), ``published_at``, the consumer's
  clock and the receiver's ``received_at``. CPU per event: /proc/<pid>/stat CPU time of
  each process over the peak run, divided by the messages. Then the same count again at
  80 % of the end-to-end (webhook) peak, in batches posted 20 times a second; latency per
  message is from the wall time its batch was posted (Telegram's ``date`` has a resolution
  of one second) to each of the four arrivals.
- baseline: N bare Telethon clients (receive_updates on, an ``events.NewMessage`` handler
  that only timestamps) in one event loop of this process, on N other emulator users (the
  same message pattern, senders and emulator; the system's worker is stopped meanwhile so
  neither pays for the other's connections): its peak, then its latency at the system's
  80 % rate.

Then the login hand-off (issue 12, item 1), with the worker layout of `make run`: a `high`
worker (LISTEN_CAPACITY=0) and a bulk worker (`mid,low`, listening on 100 sessions); a
producer keeps at least ``--queued`` send jobs of those sessions waiting while ``--logins``
QR logins run one after another: approval (control API ``/qr/approve``) to the committed
``authorized`` transition, and to the new session being held by the bulk worker's listener.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy import text
from telethon import TelegramClient, events

from bench.benchlib import (
    bench_system,
    create_recipients,
    machine_load,
    percentile,
    rss_kib,
)
from integration_service.emulator.world.client_helper import (
    emulator_client,
    minted_session,
    random_phone,
)
from integration_service.store import SessionKey
from integration_service.webhooks import SubscriptionStore
from tests.support.emulator_control import ControlError
from tests.support.events_consumer import EventsConsumer
from tests.support.processes import running, wait_for
from tests.support.system import Provisioned, SystemUnderTest, WorkerProcess, free_port
from tests.support.webhook_receiver import Receiver, running_receiver

TENANT = "tenant-inbound-bench"
SETTINGS = {
    "LISTEN_CAPACITY": "5000",
    "PLACEMENT_INTERVAL": "0.5",
    # Set-up speed only: 2,000 sessions placed in a few rounds instead of 40.
    "PLACEMENT_BATCH": "500",
    "WEBHOOK_ALLOW_PRIVATE": "true",
}
SENDERS = 20
PEAK_BATCH = 200  # messages per POST /messages when sending as fast as the emulator takes
PACED_POSTS_PER_SECOND = 20
WAIT_SECONDS = 900.0
CLK_TCK = os.sysconf("SC_CLK_TCK")


# Processes' CPU time --------------------------------------------------------------------


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process (fields 14 and 15 of /proc/<pid>/stat)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError):
        return 0.0
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def pids_named(*names: str) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if (entry / "comm").read_text().strip() in names:
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


def pid_of_command(*parts: str) -> list[int]:
    """Processes whose command line holds every one of ``parts`` (the receiver process:
    its helper does not hand out its pid)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                words = (entry / "cmdline").read_bytes().decode(errors="replace").split("\0")
            except OSError:
                continue
            if all(part in words for part in parts):
                found.append(int(entry.name))
    return found


def machine_busy_seconds() -> float:
    """CPU time of the whole machine spent outside idle and iowait (all cores)."""
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    return (sum(values) - values[3] - values[4]) / CLK_TCK


class CpuMeter:
    """CPU seconds per named process (group) between ``start`` and ``stop``."""

    def __init__(self, groups: dict[str, list[int]]) -> None:
        self._groups = groups
        self._before: dict[str, float] = {}
        self.laps: dict[str, dict[str, float]] = {}

    def _sample(self) -> dict[str, float]:
        sample = {name: sum(cpu_seconds(p) for p in pids) for name, pids in self._groups.items()}
        sample["machine"] = machine_busy_seconds()
        return sample

    def start(self) -> None:
        self._before = self._sample()

    def lap(self, name: str) -> None:
        """CPU seconds per group from ``start`` to now, kept as ``laps[name]``."""
        after = self._sample()
        self.laps[name] = {group: after[group] - self._before[group] for group in after}


@dataclass(frozen=True)
class Profiler:
    """py-spy (not a project dependency: pass its binary) recording processes to files."""

    binary: str
    out_dir: Path

    @contextmanager
    def recording(self, label: str, pids: dict[str, int]) -> Iterator[None]:
        self.out_dir.mkdir(parents=True, exist_ok=True)
        spies = [
            subprocess.Popen(
                [
                    self.binary,
                    "record",
                    "--pid",
                    str(pid),
                    "--rate",
                    "200",
                    "--format",
                    "raw",
                    "--nonblocking",
                    "--output",
                    str(self.out_dir / f"{label}-{name}.txt"),
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            for name, pid in pids.items()
        ]
        try:
            yield
        finally:
            for spy in spies:
                spy.send_signal(signal.SIGINT)  # py-spy writes its file on SIGINT
            for spy in spies:
                spy.wait(timeout=30)


def top_frames(raw_file: Path, count: int = 12) -> list[tuple[float, str]]:
    """The functions with the most samples on the stack (inclusive), from py-spy's raw
    (collapsed) output: (share of samples, frame)."""
    inclusive: dict[str, int] = {}
    total = 0
    for line in raw_file.read_text().splitlines():
        stack, _, samples = line.rpartition(" ")
        if not stack:
            continue
        n = int(samples)
        total += n
        for frame in set(stack.split(";")):
            inclusive[frame] = inclusive.get(frame, 0) + n
    ranked = sorted(inclusive.items(), key=lambda item: -item[1])
    return [(n / total, frame) for frame, n in ranked[:count]] if total else []


# What arrives where -----------------------------------------------------------------------


class EventArrivals:
    """Arrival time per message text of the ``message.received`` events RabbitMQ hands
    the bench's consumer."""

    def __init__(self) -> None:
        self.arrived: dict[str, float] = {}

    def __call__(self, body: Any, _message: Any) -> None:
        stamp = time.time()
        if body.get("type") == "message.received":
            self.arrived.setdefault(body["data"]["text"], stamp)


class BareTelethon:
    """N plain Telethon clients in one event loop (a thread of this process)."""

    def __init__(self, endpoint: Any, strings: Sequence[str]) -> None:
        self.arrived: dict[str, float] = {}
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._clients: list[TelegramClient] = [
            emulator_client(endpoint, s, receive_updates=True) for s in strings
        ]

    def _run(self, coroutine: Any, timeout: float = 600) -> Any:
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(timeout)

    def __enter__(self) -> BareTelethon:
        self._thread.start()

        async def on_message(event: Any) -> None:
            self.arrived.setdefault(event.raw_text, time.time())

        async def connect_all() -> None:
            gate = asyncio.Semaphore(50)

            async def one(client: TelegramClient) -> None:
                async with gate:
                    client.add_event_handler(on_message, events.NewMessage(incoming=True))
                    await client.connect()

            await asyncio.gather(*(one(c) for c in self._clients))

        self._run(connect_all())
        return self

    def __exit__(self, *exc: object) -> None:
        async def disconnect_all() -> None:
            await asyncio.gather(*(c.disconnect() for c in self._clients), return_exceptions=True)

        try:
            self._run(disconnect_all(), timeout=120)
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=10)


# Sending ----------------------------------------------------------------------------------


def messages_for(
    tag: str, count: int, senders: list[int], recipients: Sequence[int]
) -> list[dict[str, Any]]:
    return [
        {
            "sender": senders[i % len(senders)],
            "peer": {"type": "user", "id": recipients[i % len(recipients)]},
            "text": f"{tag}-{i}",
        }
        for i in range(count)
    ]


def post(
    system: SystemUnderTest, messages: list[dict[str, Any]], rate: float | None
) -> dict[str, float]:
    """Post ``messages`` to the emulator (as fast as it answers, or at ``rate`` per
    second); the wall time each one's batch was posted, by text."""
    size = PEAK_BATCH if rate is None else max(1, round(rate / PACED_POSTS_PER_SECOND))
    posted: dict[str, float] = {}
    pause = threading.Event()
    begin = time.time()
    for start in range(0, len(messages), size):
        if rate is not None:
            pause.wait(max(0.0, begin + start / rate - time.time()))  # our own schedule
        batch = messages[start : start + size]
        stamp = time.time()
        system.control.call("POST", "/messages", {"messages": batch})
        for message in batch:
            posted[message["text"]] = stamp
    return posted


# The system's side ----------------------------------------------------------------------


@dataclass
class Arrivals:
    """Arrival times by message text at each stage."""

    committed: dict[str, float] = field(default_factory=dict)
    published: dict[str, float] = field(default_factory=dict)
    rabbit: dict[str, float] = field(default_factory=dict)
    webhook: dict[str, float] = field(default_factory=dict)


def log_times(system: SystemUnderTest, tag: str) -> tuple[dict[str, float], dict[str, float]]:
    with system.engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT data->>'text', extract(epoch FROM created_at), "
                "extract(epoch FROM published_at) FROM inbound_events "
                "WHERE tenant_id = :t AND type = 'message.received' AND data->>'text' LIKE :p"
            ),
            {"t": TENANT, "p": f"{tag}-%"},
        ).all()
    committed = {r[0]: float(r[1]) for r in rows}
    published = {r[0]: float(r[2]) for r in rows if r[2] is not None}
    return committed, published


def delivered_count(system: SystemUnderTest, subscription_id: Any) -> int:
    with system.engine.connect() as conn:
        return int(
            conn.execute(
                text(
                    "SELECT count(*) FROM webhook_deliveries "
                    "WHERE subscription_id = :s AND status = 'delivered'"
                ),
                {"s": subscription_id},
            ).scalar_one()
        )


class SystemSide:
    """The relay, receiver and consumer shared by every run; a webhook endpoint per run."""

    def __init__(
        self, system: SystemUnderTest, receiver: Receiver, consumer: EventArrivals
    ) -> None:
        self.system = system
        self.receiver = receiver
        self.consumer = consumer
        self.subscriptions = SubscriptionStore(system.settings, system.engine, system.cipher)

    def run(
        self, tag: str, messages: list[dict[str, Any]], rate: float | None, meter: CpuMeter
    ) -> tuple[dict[str, float], Arrivals]:
        subscription = self.subscriptions.add(TENANT, self.receiver.url(tag), "message.received")
        self.receiver.configure(tag, secrets=[subscription.secret])
        count = len(messages)
        meter.start()
        posted = post(self.system, messages, rate)
        arrivals = Arrivals()

        def all_committed() -> bool:
            arrivals.committed, arrivals.published = log_times(self.system, tag)
            return len(arrivals.committed) >= count

        wait_for(all_committed, timeout=WAIT_SECONDS, interval=0.25, what=f"{tag} in the log")
        meter.lap("committed")  # the worker's share ends here
        wait_for(
            lambda: all_committed() and len(arrivals.published) >= count,
            timeout=WAIT_SECONDS,
            interval=0.25,
            what=f"{tag} published",
        )
        wait_for(
            lambda: delivered_count(self.system, subscription.subscription.id) >= count,
            timeout=WAIT_SECONDS,
            interval=0.25,
            what=f"{tag} delivered to the webhook",
        )
        meter.lap("delivered")  # the relay's, receiver's and services' share ends here
        wait_for(
            lambda: len({t for t in self.consumer.arrived if t.startswith(f"{tag}-")}) >= count,
            timeout=60,
            what=f"{tag} at the RabbitMQ consumer",
        )
        arrivals.rabbit = {
            t: s for t, s in self.consumer.arrived.items() if t.startswith(f"{tag}-")
        }
        records = self.receiver.records(tag)
        invalid = sum(1 for r in records if not r["valid"])
        if invalid:
            raise AssertionError(f"{invalid} webhook calls of {tag} failed signature checks")
        for record in records:
            body = json.loads(record["body"])
            arrivals.webhook.setdefault(body["data"]["text"], float(record["received_at"]))
        self.subscriptions.remove(TENANT, subscription.subscription.id)
        return posted, arrivals


def set_listening(system: SystemUnderTest, sessions: Sequence[Provisioned]) -> None:
    """Exactly ``sessions`` listening (one statement; placement follows)."""
    with system.engine.begin() as conn:
        conn.execute(
            text(
                "UPDATE telegram_sessions SET listening = (app_id = ANY(:ids)) WHERE tenant_id = :t"
            ),
            {"t": TENANT, "ids": [p.key.app_id for p in sessions]},
        )


def lease_holders(system: SystemUnderTest) -> dict[str, str]:
    """app id -> worker id holding its lease (Redis)."""
    prefix = f"session_lock:{TENANT}:"
    held = {}
    for raw in system.redis.scan_iter(match=f"{prefix}*", count=1000):
        worker = system.redis.hget(raw, "worker")
        if worker is not None:
            name = raw.decode() if isinstance(raw, bytes) else str(raw)
            held[name[len(prefix) :]] = worker.decode() if isinstance(worker, bytes) else worker
    return held


def feeds_started(system: SystemUnderTest, sessions: Sequence[Provisioned]) -> int:
    with system.engine.connect() as conn:
        return int(
            conn.execute(
                text(
                    "SELECT count(*) FROM inbound_state WHERE tenant_id = :t "
                    "AND app_id = ANY(:ids) AND pts IS NOT NULL"
                ),
                {"t": TENANT, "ids": [p.key.app_id for p in sessions]},
            ).scalar_one()
        )


def place(system: SystemUnderTest, worker: WorkerProcess, sessions: Sequence[Provisioned]) -> float:
    """Turn listening on for ``sessions`` and wait until ``worker`` holds every one with its
    feed started; seconds it took."""
    started = time.perf_counter()
    set_listening(system, sessions)
    wanted = {p.key.app_id for p in sessions}

    def placed() -> bool:
        holders = lease_holders(system)
        return all(holders.get(a) == worker.worker_id for a in wanted)

    wait_for(placed, timeout=WAIT_SECONDS, interval=0.5, what=f"{len(sessions)} sessions placed")
    wait_for(
        lambda: feeds_started(system, sessions) == len(sessions),
        timeout=WAIT_SECONDS,
        interval=0.5,
        what="every feed started",
    )
    return time.perf_counter() - started


# One level --------------------------------------------------------------------------------


@dataclass
class Level:
    sessions: int
    placed_in: float = 0.0
    rss_before_kib: int = 0
    rss_after_kib: int = 0
    peak: dict[str, float] = field(default_factory=dict)  # stage -> events/s
    paced_rate: float = 0.0
    paced: dict[str, list[float]] = field(default_factory=dict)  # stage -> latencies (s)
    # process -> CPU seconds at peak: the worker's up to the last commit, the others' up
    # to the last webhook delivered, "machine" (all cores, everything) likewise.
    cpu: dict[str, float] = field(default_factory=dict)
    baseline_peak: float = 0.0
    baseline_paced: list[float] = field(default_factory=list)
    messages: int = 0

    @property
    def kib_per_session(self) -> float:
        return (self.rss_after_kib - self.rss_before_kib) / self.sessions

    @property
    def end_to_end(self) -> float:
        return min(self.peak.values())


def rate_of(posted: dict[str, float], arrived: dict[str, float]) -> float:
    return len(arrived) / (max(arrived.values()) - min(posted.values()))


def latencies(posted: dict[str, float], arrived: dict[str, float]) -> list[float]:
    return [arrived[t] - posted[t] for t in posted if t in arrived]


def stages(arrivals: Arrivals) -> dict[str, dict[str, float]]:
    return {
        "log": arrivals.committed,
        "published": arrivals.published,
        "rabbitmq": arrivals.rabbit,
        "webhook": arrivals.webhook,
    }


def system_level(
    side: SystemSide,
    sessions: Sequence[Provisioned],
    senders: list[int],
    count: int,
    extra_cpu: dict[str, list[int]],
    profiler: Profiler | None,
) -> Level:
    system = side.system
    n = len(sessions)
    level = Level(n, messages=count)
    set_listening(system, [])
    worker = system.start_worker(f"listen{n}", "high,mid,low", 8)
    try:
        time.sleep(1.0)  # let the fresh worker settle before its baseline RSS
        level.rss_before_kib = rss_kib(worker.process.pid)
        level.placed_in = place(system, worker, sessions)
        time.sleep(1.0)
        level.rss_after_kib = rss_kib(worker.process.pid)
        print(
            f"system, {n} sessions: placed on one worker in {level.placed_in:.1f} s, "
            f"RSS {level.rss_before_kib / 1024:.1f} -> {level.rss_after_kib / 1024:.1f} MiB",
            flush=True,
        )
        recipients = [p.user_id for p in sessions]
        meter = CpuMeter({"worker": [worker.process.pid], **extra_cpu})
        posted, arrivals = side.run(
            f"peak{n}", messages_for(f"peak{n}", count, senders, recipients), None, meter
        )
        level.peak = {name: rate_of(posted, got) for name, got in stages(arrivals).items()}
        level.cpu = {
            **meter.laps["delivered"],
            "worker": meter.laps["committed"]["worker"],
        }
        print(
            f"system, {n} sessions, peak: "
            + ", ".join(f"{k} {v:,.0f}/s" for k, v in level.peak.items()),
            flush=True,
        )
        level.paced_rate = 0.8 * level.end_to_end
        posted, arrivals = side.run(
            f"paced{n}",
            messages_for(f"paced{n}", count, senders, recipients),
            level.paced_rate,
            CpuMeter({}),
        )
        level.paced = {name: latencies(posted, got) for name, got in stages(arrivals).items()}
        print(
            f"system, {n} sessions, at {level.paced_rate:,.0f}/s: "
            + ", ".join(
                f"{k} p99 {percentile(v, 0.99) * 1e3:.0f} ms" for k, v in level.paced.items()
            ),
            flush=True,
        )
        if profiler is not None:
            # A third peak run, not measured: py-spy's sampling costs CPU of its own.
            pids = {"worker": worker.process.pid, "relay": extra_cpu["relay"][0]}
            with profiler.recording(f"peak{n}", pids):
                side.run(
                    f"profile{n}",
                    messages_for(f"profile{n}", count, senders, recipients),
                    None,
                    CpuMeter({}),
                )
            for name in pids:
                print(f"py-spy, {n} sessions, {name}: frames most on the stack")
                for share, frame in top_frames(profiler.out_dir / f"peak{n}-{name}.txt"):
                    print(f"  {share * 100:5.1f} %  {frame}")
    finally:
        system.stop_worker(worker)
    return level


def baseline_level(
    system: SystemUnderTest,
    level: Level,
    strings: Sequence[str],
    user_ids: Sequence[int],
    senders: list[int],
) -> None:
    n = level.sessions
    with BareTelethon(system.emulator.endpoint, strings) as bare:
        tag = f"bpeak{n}"
        posted = post(system, messages_for(tag, level.messages, senders, user_ids), None)
        wait_for(
            lambda: sum(1 for t in bare.arrived if t.startswith(f"{tag}-")) >= level.messages,
            timeout=WAIT_SECONDS,
            interval=0.25,
            what=f"{tag} at the bare clients",
        )
        level.baseline_peak = rate_of(
            posted, {t: s for t, s in bare.arrived.items() if t in posted}
        )
        tag = f"bpaced{n}"
        posted = post(
            system, messages_for(tag, level.messages, senders, user_ids), level.paced_rate
        )
        wait_for(
            lambda: sum(1 for t in bare.arrived if t.startswith(f"{tag}-")) >= level.messages,
            timeout=WAIT_SECONDS,
            interval=0.25,
            what=f"{tag} at the bare clients",
        )
        level.baseline_paced = latencies(posted, bare.arrived)
    print(
        f"bare Telethon, {n} sessions: peak {level.baseline_peak:,.0f}/s, at "
        f"{level.paced_rate:,.0f}/s p50 {percentile(level.baseline_paced, 0.5) * 1e3:.0f} ms "
        f"p99 {percentile(level.baseline_paced, 0.99) * 1e3:.0f} ms",
        flush=True,
    )


def mint_bare_users(system: SystemUnderTest, count: int) -> tuple[list[str], list[int]]:
    """Emulator users for the baseline (not stored: the system never sees them)."""

    def one(index: int) -> tuple[str, int]:
        for attempt in range(5):
            # Its own number range (provision_minted's is 7997...): random ones collide
            # by the thousand.
            phone = f"+7996{index:07d}" if attempt == 0 else "+" + random_phone()
            try:
                user = system.control.create_user(phone, f"Bare {index}")
                break
            except ControlError:
                continue  # taken in this world: another one
        else:
            raise RuntimeError(f"no free phone number for bare user {index}")
        minted = system.control.call("POST", "/sessions", {"user_id": int(user["user_id"])})
        string, _ = minted_session(minted, system.emulator.endpoint)
        return string, int(user["user_id"])

    with ThreadPoolExecutor(8) as pool:
        made = list(pool.map(one, range(count)))
    return [s for s, _ in made], [u for _, u in made]


# Login hand-off ---------------------------------------------------------------------------


@dataclass
class Handoff:
    authorized: list[float] = field(default_factory=list)
    listening: list[float] = field(default_factory=list)
    queued_at_approval: list[int] = field(default_factory=list)
    sends_done: int = 0
    high_sends: int = 0


class SendBacklog:
    """Keeps at least ``depth`` send jobs of ``sessions`` waiting (a producer thread)."""

    def __init__(
        self, system: SystemUnderTest, sessions: Sequence[Provisioned], peers: list[str], depth: int
    ) -> None:
        self._system = system
        self._sessions = sessions
        self._peers = peers
        self.depth = depth
        self.enqueued = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="send-backlog", daemon=True)
        self._client = system.client()

    def finished(self) -> int:
        with self._system.engine.connect() as conn:
            return int(
                conn.execute(
                    text(
                        "SELECT count(*) FROM message_outbox WHERE tenant_id = :t "
                        "AND idempotency_key LIKE 'backlog-%' AND status IN ('sent', 'failed')"
                    ),
                    {"t": TENANT},
                ).scalar_one()
            )

    def waiting(self) -> int:
        return self.enqueued - self.finished()

    def top_up(self) -> None:
        missing = self.depth - self.waiting()
        if missing <= 0:
            return
        first = self.enqueued

        def one(index: int) -> None:
            session = self._sessions[index % len(self._sessions)]
            self._client.send_message(
                TENANT,
                session.key.app_id,
                self._peers[index % len(self._peers)],
                f"backlog {index}",
                idempotency_key=f"backlog-{index}",
            )

        with ThreadPoolExecutor(4) as pool:
            list(pool.map(one, range(first, first + missing)))
        self.enqueued += missing

    def __enter__(self) -> SendBacklog:
        self.top_up()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=60)
        self._client.close()

    def _run(self) -> None:
        while not self._stop.wait(0.2):
            self.top_up()


def handoff_run(
    system: SystemUnderTest, sessions: Sequence[Provisioned], logins: int, queued: int
) -> Handoff:
    set_listening(system, [])
    result = Handoff()
    high = system.start_worker("high", "high", 8, LISTEN_CAPACITY="0")
    bulk = system.start_worker("bulk", "mid,low", 8)
    try:
        place(system, bulk, sessions)
        peers = create_recipients(system, 10)
        client = system.client()
        try:
            with SendBacklog(system, sessions, peers, queued) as backlog:
                for run in range(logins):
                    app_id = f"qr-{run}"
                    phone = f"7994{run:07d}"  # its own range: no collision with others
                    system.control.create_user(phone, "Qr")
                    started = client.wait(client.start_qr_login(TENANT, app_id), timeout=60)
                    qr = client.qr_code(TENANT, app_id, started["ticket_id"])
                    assert qr is not None, started
                    token = parse_qs(urlparse(qr.url).query)["token"][0]
                    result.queued_at_approval.append(backlog.waiting())
                    approved = time.time()
                    system.control.call("POST", "/qr/approve", {"token": token, "phone": phone})
                    result.authorized.append(authorized_at(system, app_id) - approved)
                    wait_for(
                        partial(held_by, system, app_id, bulk.worker_id),
                        timeout=60,
                        interval=0.02,
                        what=f"{app_id} listening on the bulk worker",
                    )
                    result.listening.append(time.time() - approved)
                result.sends_done = backlog.finished()
        finally:
            client.close()
        result.high_sends = sends_on(high)
    finally:
        system.stop_worker(high)
        system.stop_worker(bulk)
    return result


def held_by(system: SystemUnderTest, app_id: str, worker_id: str) -> bool:
    return lease_holders(system).get(app_id) == worker_id


def sends_on(worker: WorkerProcess) -> int:
    """How many send jobs a worker ran (its celery_tasks_total for send_message)."""
    total = 0.0
    for line in worker.metrics().splitlines():
        if line.startswith("celery_tasks_total{") and "tasks.messages.send_message" in line:
            total += float(line.rsplit(" ", 1)[1])
    return int(total)


def authorized_at(system: SystemUnderTest, app_id: str) -> float:
    def found() -> float | None:
        for event in reversed(system.store.events(SessionKey(TENANT, app_id))):
            if event.to_state == "authorized":
                return event.created_at.timestamp()
        return None

    return wait_for(found, timeout=60, interval=0.02, what=f"{app_id} authorized")


# Main -------------------------------------------------------------------------------------


@contextmanager
def running_relay(system: SystemUnderTest) -> Iterator[int]:
    env = {**system.env, "METRICS_PORT": str(free_port())}
    args = [sys.executable, "-m", "integration_service.cli", "relay"]
    with running(args, env=env, log_path=system.state_dir / "relay.log") as process:
        yield process.pid


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", default="100,2000", help="comma-separated levels")
    parser.add_argument("--messages", type=int, default=4000, help="messages per run")
    parser.add_argument("--logins", type=int, default=20, help="QR logins in the hand-off run")
    parser.add_argument("--queued", type=int, default=1000, help="send jobs kept waiting")
    parser.add_argument("--quick", action="store_true", help="20 sessions, 200 messages")
    parser.add_argument("--py-spy", help="py-spy binary: profile worker and relay in an extra run")
    parser.add_argument("--profile-dir", default="inbound-profiles", help="py-spy's output")
    options = parser.parse_args()
    if options.quick:
        options.sessions, options.messages, options.logins, options.queued = "20", 200, 3, 100
    levels = sorted(int(n) for n in options.sessions.split(","))
    profiler = Profiler(options.py_spy, Path(options.profile_dir)) if options.py_spy else None
    began = time.perf_counter()

    with bench_system(SETTINGS) as system:
        started = time.perf_counter()
        sessions = system.provision_minted(levels[-1], TENANT)
        set_listening(system, [])
        bare_strings, bare_users = mint_bare_users(system, levels[-1])
        senders = [
            int(system.control.create_user(f"+7995{i:07d}", f"Sender {i}")["user_id"])
            for i in range(SENDERS)
        ]
        print(
            f"stored {len(sessions)} sessions and minted {len(bare_users)} bare users in "
            f"{time.perf_counter() - started:.1f} s",
            flush=True,
        )
        results: list[Level] = []
        arrivals = EventArrivals()
        with (
            running_receiver(system.state_dir / "receiver.log") as receiver,
            EventsConsumer(
                system.env["CELERY_BROKER_URL"],
                "inbound-bench-events",
                f"{TENANT}.#",
                arrivals,
                ack=False,
            ),
            running_relay(system) as relay_pid,
        ):
            assert system.emulator.process is not None
            extra_cpu = {
                "relay": [relay_pid],
                "emulator": [system.emulator.process.pid],
                "receiver": pid_of_command("tests.support.webhook_receiver", str(receiver.port)),
                "bench": [os.getpid()],
                "postgres": pids_named("postgres"),
                "rabbitmq": pids_named("beam.smp"),
                "redis": pids_named("redis-server"),
            }
            side = SystemSide(system, receiver, arrivals)
            for n in levels:
                level = system_level(
                    side, sessions[:n], senders, options.messages, extra_cpu, profiler
                )
                baseline_level(system, level, bare_strings[:n], bare_users[:n], senders)
                results.append(level)
            handoff = handoff_run(
                system, sessions[: min(100, len(sessions))], options.logins, options.queued
            )
    report(results, handoff, options)
    print(machine_load())
    print(f"total wall time {time.perf_counter() - began:.0f} s")


def ms(samples: list[float], fraction: float) -> str:
    return f"{percentile(samples, fraction) * 1e3:.0f}" if samples else "-"


def report(results: list[Level], handoff: Handoff, options: argparse.Namespace) -> None:
    print(
        f"\ninbound, {options.messages} messages per run from {SENDERS} senders; one worker "
        f"holds every session; relay, webhook dispatcher and receiver at product defaults "
        f"(one subscription, max_in_flight {SETTINGS.get('WEBHOOK_MAX_IN_FLIGHT', 16)}); "
        "latency from the post to the emulator"
    )
    print(
        f"{'sessions':>8} {'log/s':>6} {'publ/s':>6} {'rmq/s':>6} {'hook/s':>6} "
        f"{'bare/s':>6} {'e2e/bare':>8} {'80%rate':>7} {'log p50/p99':>12} "
        f"{'rmq p50/p99':>12} {'hook p50/p99':>12} {'bare p50/p99':>12} {'KiB/sess':>8}"
    )
    for r in results:
        pair = {k: f"{ms(v, 0.5)}/{ms(v, 0.99)}" for k, v in r.paced.items()}
        bare = f"{ms(r.baseline_paced, 0.5)}/{ms(r.baseline_paced, 0.99)}"
        print(
            f"{r.sessions:>8} {r.peak['log']:>6.0f} {r.peak['published']:>6.0f} "
            f"{r.peak['rabbitmq']:>6.0f} {r.peak['webhook']:>6.0f} {r.baseline_peak:>6.0f} "
            f"{r.end_to_end / r.baseline_peak:>8.2f} {r.paced_rate:>7.0f} {pair['log']:>12} "
            f"{pair['rabbitmq']:>12} {pair['webhook']:>12} {bare:>12} "
            f"{r.kib_per_session:>8.1f}"
        )
    print("\nCPU per event at peak (ms of CPU time per message, up to the last commit):")
    for r in results:
        shares = ", ".join(
            f"{name} {seconds * 1e3 / r.messages:.2f}" for name, seconds in r.cpu.items()
        )
        print(f"  {r.sessions} sessions: {shares}")
    print(
        f"\nlogin hand-off: {len(handoff.authorized)} QR logins while >= {options.queued} "
        f"sends waited (waiting at approval: min {min(handoff.queued_at_approval)}, "
        f"max {max(handoff.queued_at_approval)}; {handoff.sends_done} sends done meanwhile, "
        f"{handoff.high_sends} of them on the high worker); approval -> authorized "
        f"p50 {ms(handoff.authorized, 0.5)} ms p95 {ms(handoff.authorized, 0.95)} ms; "
        f"approval -> listening on the bulk worker p50 {ms(handoff.listening, 0.5)} ms "
        f"p95 {ms(handoff.listening, 0.95)} ms"
    )
    for r in results:
        lat = r.paced
        print(
            f"RESULT inbound sessions={r.sessions} log={r.peak['log']:.0f}/s "
            f"published={r.peak['published']:.0f}/s rabbitmq={r.peak['rabbitmq']:.0f}/s "
            f"webhook={r.peak['webhook']:.0f}/s bare={r.baseline_peak:.0f}/s "
            f"e2e/bare={r.end_to_end / r.baseline_peak:.2f} paced={r.paced_rate:.0f}/s "
            f"log_p50={ms(lat['log'], 0.5)}ms log_p99={ms(lat['log'], 0.99)}ms "
            f"rabbitmq_p50={ms(lat['rabbitmq'], 0.5)}ms rabbitmq_p99={ms(lat['rabbitmq'], 0.99)}ms "
            f"webhook_p50={ms(lat['webhook'], 0.5)}ms webhook_p99={ms(lat['webhook'], 0.99)}ms "
            f"bare_p50={ms(r.baseline_paced, 0.5)}ms bare_p99={ms(r.baseline_paced, 0.99)}ms "
            f"held={r.sessions} rss_per_session={r.kib_per_session:.1f}KiB "
            f"worker_cpu_per_event={r.cpu['worker'] * 1e3 / r.messages:.2f}ms"
        )
    print(
        f"RESULT login_handoff qr_p50={ms(handoff.authorized, 0.5)}ms "
        f"qr_p95={ms(handoff.authorized, 0.95)}ms "
        f"listening_p50={ms(handoff.listening, 0.5)}ms "
        f"listening_p95={ms(handoff.listening, 0.95)}ms "
        f"queued_min={min(handoff.queued_at_approval)} n={len(handoff.authorized)}"
    )


if __name__ == "__main__":
    main()
