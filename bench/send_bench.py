"""send-message throughput and enqueue-to-sent latency through the system, beside baselines.

    .venv/bin/python bench/send_bench.py [--sessions 1,10,100,1000] [--messages 200] [--quick]

One private world (scratch database, vhost, Redis db 12, emulator subprocess). Sessions are
emulator users, each with its own auth key minted signed in by the emulator (control API
``POST /sessions``; a real login per key would make 10,000 sessions take 15 minutes to set
up), stored encrypted. Per session count N:

- raw: N Telethon clients in this process sending in a loop, no queue (the ceiling);
- system: 2 `celery worker` processes (threads pool, concurrency 8) running
  `tasks.messages.send_message`, fed by 4 producer threads through IntegrationClient;
  latency = outbox ``sent_at`` minus the producer's enqueue time; then a second run at
  80 % of that peak rate (rate-limited producer) for its p99;
- naive: `bench/naive_app.py` (connect a client per job), worker concurrency
  max(1, min(8, N // 4)) to make two jobs of one auth key at once unlikely; sent time = the
  task's own clock. Jobs that fail (AUTH_KEY_DUPLICATED: a new connection opened while
  the emulator still sees the previous one) are counted and excluded from its rate.

Pacing: the system runs with PACE_PER_CHAT_PER_SECOND=1000 and
PACE_PER_ACCOUNT_PER_SECOND=10000 (Telegram's 1/s per chat would make this a benchmark of
the pacer); the baselines have no pacing at all.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy import text
from telethon import TelegramClient, functions
from telethon.sessions import StringSession

from bench.benchlib import (
    bench_system,
    create_recipients,
    machine_load,
    percentile,
)
from bench.naive_app import NAIVE_QUEUE, NAIVE_TASK
from bench.naive_app import app as naive_app
from integration_service.emulator.world.client_helper import (
    EMULATOR_API_HASH,
    EMULATOR_API_ID,
)
from integration_service.runtime.session_runtime import session_context
from integration_service.telegram.endpoint import apply_to_session
from tests.support.processes import REPO_ROOT, running, wait_for
from tests.support.system import Provisioned, SystemUnderTest

TENANT = "tenant-send-bench"
PACING = {"PACE_PER_CHAT_PER_SECOND": "1000", "PACE_PER_ACCOUNT_PER_SECOND": "10000"}
PRODUCER_THREADS = 4
Job = tuple[Provisioned, str, str]  # session, peer, idempotency key


def jobs_for(sessions: list[Provisioned], peers: list[str], count: int, tag: str) -> list[Job]:
    return [
        (sessions[i % len(sessions)], peers[i % len(peers)], f"{tag}-{i}") for i in range(count)
    ]


# Raw Telethon ---------------------------------------------------------------------------


async def raw_run(
    system: SystemUnderTest, sessions: list[Provisioned], peers: list[str], count: int
) -> float:
    endpoint = system.emulator.endpoint
    clients = []
    for p in sessions:
        row = system.store.require(p.key)
        assert row.session_string_enc is not None
        string = StringSession(
            system.cipher.decrypt(row.session_string_enc, context=session_context(p.key))
        )
        apply_to_session(string, endpoint)
        clients.append(TelegramClient(string, EMULATOR_API_ID, EMULATOR_API_HASH))
    gate = asyncio.Semaphore(50)

    async def connect(client: TelegramClient, peer: str) -> object:
        async with gate:
            await client.connect()
            return await client.get_input_entity(peer)

    targets = await asyncio.gather(
        *(connect(c, peers[i % len(peers)]) for i, c in enumerate(clients))
    )
    share = [
        count // len(clients) + (1 if i < count % len(clients) else 0) for i in range(len(clients))
    ]

    async def send_loop(index: int) -> None:
        for n in range(share[index]):
            await clients[index](
                functions.messages.SendMessageRequest(
                    peer=targets[index],
                    message=f"raw {n}",
                    random_id=int.from_bytes(uuid.uuid4().bytes[:8], "big") >> 1,
                )
            )

    started = time.perf_counter()
    await asyncio.gather(*(send_loop(i) for i in range(len(clients))))
    elapsed = time.perf_counter() - started
    await asyncio.gather(*(c.disconnect() for c in clients))
    return count / elapsed


# The system -------------------------------------------------------------------------------


def produce(send: Callable[[Job], object], jobs: list[Job], rate: float | None) -> dict[str, float]:
    """Enqueue ``jobs`` from PRODUCER_THREADS threads; returns enqueue time per key."""
    enqueued: dict[str, float] = {}
    lock = threading.Lock()
    begin = time.time()

    def one(index_job: tuple[int, Job]) -> None:
        index, job = index_job
        if rate is not None:
            delay = begin + index / rate - time.time()
            if delay > 0:
                time.sleep(delay)  # the producer's own schedule, not a wait on the system
        stamp = time.time()
        send(job)
        with lock:
            enqueued[job[2]] = stamp

    with ThreadPoolExecutor(PRODUCER_THREADS) as pool:
        list(pool.map(one, enumerate(jobs)))
    return enqueued


def system_run(
    system: SystemUnderTest, jobs: list[Job], tag: str, rate: float | None
) -> tuple[float, list[float]]:
    client = system.client()
    try:
        enqueued = produce(
            lambda job: client.send_message(
                TENANT, job[0].key.app_id, job[1], f"system {job[2]}", idempotency_key=job[2]
            ),
            jobs,
            rate,
        )
    finally:
        client.close()
    query = text(
        "SELECT idempotency_key, extract(epoch FROM sent_at) FROM message_outbox "
        "WHERE tenant_id = :t AND idempotency_key LIKE :p AND status = 'sent'"
    )

    def all_sent() -> dict[str, float] | None:
        with system.engine.connect() as conn:
            rows = conn.execute(query, {"t": TENANT, "p": f"{tag}-%"}).all()
        return {k: float(v) for k, v in rows} if len(rows) == len(jobs) else None

    sent = wait_for(all_sent, timeout=600, interval=0.2, what=f"{len(jobs)} sends of {tag}")
    latencies = [sent[k] - enqueued[k] for k in enqueued]
    throughput = len(jobs) / (max(sent.values()) - min(enqueued.values()))
    return throughput, latencies


# Naive ----------------------------------------------------------------------------------------


def naive_run(
    system: SystemUnderTest, jobs: list[Job], concurrency: int, log: Path
) -> tuple[float, list[float], Counter[str]]:
    args = [
        sys.executable,
        "-m",
        "celery",
        "-A",
        "bench.naive_app",
        "worker",
        "--pool=threads",
        f"--concurrency={concurrency}",
        f"--queues={NAIVE_QUEUE}",
        f"--hostname=naive{uuid.uuid4().hex[:6]}@%h",
        "--loglevel=WARNING",
        "--without-mingle",
        "--without-gossip",
    ]
    with running(args, env={**system.env, "PYTHONPATH": str(REPO_ROOT)}, log_path=log):
        results = produce_naive(system, jobs)
    return results


def produce_naive(
    system: SystemUnderTest, jobs: list[Job]
) -> tuple[float, list[float], Counter[str]]:
    naive_app.conf.broker_url = system.env["CELERY_BROKER_URL"]
    naive_app.conf.result_backend = system.env["REDIS_URL"]
    handles = {}

    def send(job: Job) -> None:
        handles[job[2]] = naive_app.send_task(
            NAIVE_TASK,
            queue=NAIVE_QUEUE,
            kwargs={
                "tenant_id": TENANT,
                "app_id": job[0].key.app_id,
                "peer": job[1],
                "text": f"naive {job[2]}",
                "idempotency_key": job[2],
            },
        )

    enqueued = produce(send, jobs, None)
    sent: dict[str, float] = {}
    failures: Counter[str] = Counter()
    for idem, handle in handles.items():
        outcome = handle.get(timeout=600, propagate=False)
        if handle.successful():
            sent[idem] = float(outcome["sent_at"])
        else:
            failures[type(outcome).__name__] += 1
    latencies = [sent[k] - enqueued[k] for k in sent]
    rate = len(sent) / (max(sent.values()) - min(enqueued.values())) if sent else float("nan")
    return rate, latencies, failures


# Main -------------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", default="1,10,100,1000", help="comma-separated levels")
    parser.add_argument("--messages", type=int, default=200, help="sends per run")
    parser.add_argument("--recipients", type=int, default=20)
    parser.add_argument("--quick", action="store_true", help="levels 1,10 and 60 sends per run")
    options = parser.parse_args()
    if options.quick:
        options.sessions, options.messages = "1,10", 60
    levels = sorted(int(n) for n in options.sessions.split(","))
    began = time.perf_counter()

    with bench_system(PACING) as system:
        started = time.perf_counter()
        sessions = system.provision_minted(levels[-1], TENANT)
        took = time.perf_counter() - started
        print(
            f"stored {len(sessions)} signed-in emulator users in {took:.1f} s "
            f"({len(sessions) / took:.1f}/s)",
            flush=True,
        )
        peers = create_recipients(system, options.recipients)
        raw: dict[int, float] = {}
        for n in levels:
            raw[n] = asyncio.run(raw_run(system, sessions[:n], peers, options.messages))
            print(f"raw, {n} sessions: {raw[n]:,.0f} sends/s", flush=True)

        workers = [system.start_worker(f"send{i}", "high,mid,low", 8) for i in range(2)]
        peak: dict[int, tuple[float, list[float]]] = {}
        paced: dict[int, tuple[float, list[float]]] = {}
        for n in levels:
            # Warm every client first: steady state is warm clients (cold starts: connect_bench).
            warm_rate, _ = system_run(
                system, jobs_for(sessions[:n], peers, n, f"warm{n}"), f"warm{n}", None
            )
            print(f"system, {n} sessions: warmed at {warm_rate:,.0f} sends/s", flush=True)
            peak[n] = system_run(
                system,
                jobs_for(sessions[:n], peers, options.messages, f"peak{n}"),
                f"peak{n}",
                None,
            )
            rate = 0.8 * peak[n][0]
            paced[n] = system_run(
                system,
                jobs_for(sessions[:n], peers, options.messages, f"paced{n}"),
                f"paced{n}",
                rate,
            )
            print(
                f"system, {n} sessions: peak {peak[n][0]:,.0f} sends/s, "
                f"at 80 % {paced[n][0]:,.0f} sends/s",
                flush=True,
            )
        for worker in workers:
            # The naive clients must not meet warm clients on the same auth keys.
            system.stop_worker(worker)
        # Largest first: if a small level burns a key, no larger level includes it later.
        naive = {
            n: naive_run(
                system,
                jobs_for(sessions[:n], peers, options.messages, f"naive{n}"),
                max(1, min(8, n // 4)),
                system.state_dir / f"naive-{n}.log",
            )
            for n in reversed(levels)
        }
        duplicated = system.control.stats().get("auth_key_duplicated", 0)
    report(options.messages, options.recipients, levels, raw, peak, paced, naive)
    print(machine_load())
    print(f"emulator auth_key_duplicated events (naive runs only): {duplicated}")
    print(f"total wall time {time.perf_counter() - began:.0f} s")


def ms(samples: list[float], fraction: float) -> str:
    return f"{percentile(samples, fraction) * 1e3:.0f}" if samples else "-"


def report(
    messages: int,
    recipients: int,
    levels: list[int],
    raw: dict[int, float],
    peak: dict[int, tuple[float, list[float]]],
    paced: dict[int, tuple[float, list[float]]],
    naive: dict[int, tuple[float, list[float], Counter[str]]],
) -> None:
    print(
        f"\nsend-message, {messages} sends per run, {recipients} recipients; "
        f"system pacing {PACING}; baselines unpaced; latency = enqueue -> sent; "
        f"a run touches min(N, {messages}) of the N warm sessions"
    )
    print(
        f"{'sessions':>8} {'raw/s':>7} {'system/s':>8} {'naive/s':>7} {'sys/raw':>7} "
        f"{'sys/naive':>9} {'p50ms':>6} {'p99ms':>6} {'80%rate':>7} {'80%p50':>6} {'80%p99':>6}"
    )
    for n in levels:
        rate, latencies = peak[n]
        paced_rate, paced_latencies = paced[n]
        naive_rate = naive[n][0]
        print(
            f"{n:>8} {raw[n]:>7.0f} {rate:>8.0f} {naive_rate:>7.0f} {rate / raw[n]:>7.2f} "
            f"{rate / naive_rate:>9.2f} {ms(latencies, 0.5):>6} {ms(latencies, 0.99):>6} "
            f"{paced_rate:>7.0f} {ms(paced_latencies, 0.5):>6} {ms(paced_latencies, 0.99):>6}"
        )
    for n in levels:
        naive_rate, naive_latencies, failures = naive[n]
        print(
            f"RESULT send sessions={n} system={peak[n][0]:.0f}/s raw={raw[n]:.0f}/s "
            f"naive={naive_rate:.0f}/s system/raw={peak[n][0] / raw[n]:.2f} "
            f"system/naive={peak[n][0] / naive_rate:.2f} p50={ms(peak[n][1], 0.5)}ms "
            f"p99={ms(peak[n][1], 0.99)}ms p99_at_80pct={ms(paced[n][1], 0.99)}ms "
            f"naive_p50={ms(naive_latencies, 0.5)}ms naive_failures={dict(failures) or 0}"
        )


if __name__ == "__main__":
    main()
