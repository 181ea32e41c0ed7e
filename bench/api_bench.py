"""The HTTP API beside a bare FastAPI endpoint, same machine, same server settings.

    .venv/bin/python bench/api_bench.py [--clients 1,8,32] [--seconds 10] [--quick]

One private world (scratch database, vhost, Redis db 12, emulator), an
`integration-service api` process and bench/bare_api.py (FastAPI endpoints that do
nothing, uvicorn with the same settings). For each client count N: N asyncio clients
(aiohttp, keep-alive) in this process call as fast as they are answered for ``--seconds``:

- ``GET .../accounts/{id}`` (authenticated with an API key, rate limited, read as the
  tenant under RLS) against ``GET /noop/{id}``;
- ``POST .../accounts/{id}/send`` (validated, enqueued with a publisher confirm, recorded;
  no worker runs, the jobs wait in the queue) against ``POST /noop/{id}``.

Printed: requests/s and p50/p99 latency of each, and the API's rate as a ratio of the
bare endpoint's. Rate limits are set out of the way (the limiter's cost is measured, its
refusals are not).

``--bulk`` measures the bulk route instead: 10,000 messages over 100 sessions (keys
minted by the emulator), 100 requests of 100 from 8 clients, against the same 100 bodies
posted to the bare endpoint. The aim is all accepted in 2 s. Then two workers (pacing
off) deliver them, and the emulator is asked how many arrived: each exactly once.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import aiohttp
from sqlalchemy import text

from bench.benchlib import bench_system, machine_load, percentile
from integration_service.api.auth import ApiKeyStore
from tests.support.api_process import running_api
from tests.support.processes import running, wait_for
from tests.support.system import SystemUnderTest, free_port, http_get

TENANT = "tenant-api-bench"
ACCOUNT = "acct"
NO_LIMITS = {
    "RATE_LIMIT_KEY_PER_SECOND": "100000",
    "RATE_LIMIT_KEY_BURST": "1000000",
    "RATE_LIMIT_TENANT_PER_SECOND": "1000000",
    "RATE_LIMIT_TENANT_BURST": "1000000",
    "LOG_LEVEL": "WARNING",
}


@dataclass
class Run:
    rate: float
    latencies: list[float]
    errors: int


async def hammer(url: str, method: str, clients: int, seconds: float, **request: object) -> Run:
    latencies: list[float] = []
    errors = 0
    deadline = time.perf_counter() + seconds
    connector = aiohttp.TCPConnector(limit=clients)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def client(index: int) -> None:
            nonlocal errors
            sequence = 0
            while time.perf_counter() < deadline:
                sequence += 1
                body = request.get("json")
                if callable(body):
                    body = body(index, sequence)
                started = time.perf_counter()
                async with session.request(
                    method,
                    url,
                    json=body,
                    headers=request.get("headers"),  # type: ignore[arg-type]
                ) as answer:
                    await answer.read()
                    if answer.status >= 300:
                        errors += 1
                latencies.append(time.perf_counter() - started)

        began = time.perf_counter()
        await asyncio.gather(*(client(i) for i in range(clients)))
        elapsed = time.perf_counter() - began
    return Run(len(latencies) / elapsed, latencies, errors)


def ms(run: Run, fraction: float) -> str:
    return f"{percentile(run.latencies, fraction) * 1e3:.1f}"


BULK_SESSIONS = 100
BULK_PER_REQUEST = 100
BULK_CLIENTS = 8
NO_PACING = {
    "PACE_PER_CHAT_PER_SECOND": "1000",
    "PACE_PER_GROUP_PER_MINUTE": "100000",
    "PACE_PER_ACCOUNT_PER_SECOND": "10000",
}


async def post_all(url_of: list[str], bodies: list[object], headers: dict[str, str]) -> Run:
    """Every (url, body) once, from BULK_CLIENTS clients; the run's rate is requests/s."""
    latencies: list[float] = []
    errors = 0
    pending = list(zip(url_of, bodies, strict=True))
    connector = aiohttp.TCPConnector(limit=BULK_CLIENTS)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def client() -> None:
            nonlocal errors
            while pending:
                url, body = pending.pop()
                started = time.perf_counter()
                async with session.post(url, json=body, headers=headers) as answer:
                    await answer.read()
                    if answer.status != 202:
                        errors += 1
                latencies.append(time.perf_counter() - started)

        began = time.perf_counter()
        await asyncio.gather(*(client() for _ in range(BULK_CLIENTS)))
        elapsed = time.perf_counter() - began
    return Run(len(latencies) / elapsed, latencies, errors)


def bulk(system: SystemUnderTest, api_env: dict[str, str], bare: str) -> None:
    sessions = system.provision_minted(BULK_SESSIONS, TENANT)
    reader = system.control.create_user("+79990009999", "Reader", username="bulk_reader")
    key = ApiKeyStore(system.engine).create(TENANT, "bench", ["*"]).key
    auth = {"Authorization": f"Bearer {key}"}
    stamp = time.monotonic_ns()
    bodies: list[object] = [
        {
            "messages": [
                {
                    "peer": "@bulk_reader",
                    "text": f"bulk {s.key.app_id} {i}",
                    "idempotency_key": f"bulk-{stamp}-{s.key.app_id}-{i}",
                }
                for i in range(BULK_PER_REQUEST)
            ]
        }
        for s in sessions
    ]
    with running_api(system.env, system.state_dir / "api-bulk.log", **api_env) as api:
        base = f"{api.base}/api/integrations/telegram/accounts"
        urls = [f"{base}/{s.key.app_id}/send/bulk" for s in sessions]
        accepted = asyncio.run(post_all(urls, bodies, auth))
        baseline = asyncio.run(post_all([f"{bare}/noop/bulk"] * len(bodies), bodies, {}))
    total = BULK_SESSIONS * BULK_PER_REQUEST
    accept_seconds = len(bodies) / accepted.rate
    bare_seconds = len(bodies) / baseline.rate
    print(
        f"bulk: {total} messages in {len(bodies)} requests accepted in {accept_seconds:.2f} s "
        f"({total / accept_seconds:.0f} messages/s, {accepted.errors} errors; p99 "
        f"{ms(accepted, 0.99)} ms per request) vs bare {bare_seconds:.2f} s",
        flush=True,
    )
    started = time.perf_counter()
    workers = [system.start_worker(f"bulk-{n}", "high,mid,low", 8) for n in ("a", "b")]
    try:

        def delivered() -> int:
            with system.engine.connect() as conn:
                return int(
                    conn.execute(
                        text(
                            "SELECT count(*) FROM message_outbox WHERE tenant_id = :t "
                            "AND status = 'sent'"
                        ),
                        {"t": TENANT},
                    ).scalar_one()
                )

        wait_for(lambda: delivered() >= total, timeout=900, interval=1.0, what="all sent")
        deliver_seconds = time.perf_counter() - started
    finally:
        for worker in workers:
            system.stop_worker(worker)
    texts = Counter(m["text"] for m in system.control.messages(peer_id=int(reader["user_id"])))
    expected = {f"bulk {s.key.app_id} {i}" for s in sessions for i in range(BULK_PER_REQUEST)}
    arrived = sum(1 for t in expected if texts[t] >= 1)
    doubled = sum(1 for t in expected if texts[t] > 1)
    print(
        f"bulk: delivered in {deliver_seconds:.1f} s ({total / deliver_seconds:.0f}/s); "
        f"the emulator holds {arrived} of {total}, {doubled} more than once",
        flush=True,
    )
    print(
        f"RESULT api route=bulk messages={total} requests={len(bodies)} "
        f"accepted_s={accept_seconds:.2f} messages_per_s={total / accept_seconds:.0f} "
        f"bare_s={bare_seconds:.2f} ratio={bare_seconds / accept_seconds:.2f} "
        f"errors={accepted.errors} delivered_s={deliver_seconds:.1f} arrived={arrived} "
        f"doubled={doubled}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", default="1,8,32")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--quick", action="store_true", help="8 clients, 1 s")
    parser.add_argument("--bulk", action="store_true", help="the bulk route (see above)")
    options = parser.parse_args()
    if options.quick:
        options.clients, options.seconds = "8", 1.0
    levels = [int(n) for n in options.clients.split(",")]
    results: list[tuple[int, str, Run, Run]] = []
    if options.bulk:
        with bench_system({**NO_LIMITS, **NO_PACING}) as system:
            bare_port = free_port()
            bare_args = [
                sys.executable,
                str(Path(__file__).with_name("bare_api.py")),
                str(bare_port),
            ]
            with running(bare_args, env={}, log_path=system.state_dir / "bare.log"):
                bare = f"http://127.0.0.1:{bare_port}"
                wait_for(
                    lambda: http_get(f"{bare}/health/live")[0] == 200,
                    timeout=30,
                    what="the bare API",
                )
                bulk(system, {**NO_LIMITS, **NO_PACING}, bare)
        print(machine_load())
        return
    with bench_system(NO_LIMITS) as system:
        system.store.ensure_tenant(TENANT)
        from integration_service.store import SessionKey, SessionMaterial

        system.store.save(
            SessionMaterial(SessionKey(TENANT, ACCOUNT), "user", "authorized", lease_epoch=1)
        )
        key = ApiKeyStore(system.engine).create(TENANT, "bench", ["*"]).key
        auth = {"Authorization": f"Bearer {key}"}
        bare_port = free_port()
        bare_args = [sys.executable, str(Path(__file__).with_name("bare_api.py")), str(bare_port)]
        with (
            running_api(system.env, system.state_dir / "api.log", **NO_LIMITS) as api,
            running(bare_args, env={}, log_path=system.state_dir / "bare.log") as _bare,
        ):
            bare = f"http://127.0.0.1:{bare_port}"
            wait_for(
                lambda: http_get(f"{bare}/health/live")[0] == 200,
                timeout=30,
                what="the bare API",
            )
            account = f"{api.base}/api/integrations/telegram/accounts/{ACCOUNT}"

            def send_body(index: int, sequence: int) -> dict[str, object]:
                return {
                    "peer": "@bench_rcpt",
                    "text": f"bench {index}-{sequence}",
                    "idempotency_key": f"b-{index}-{sequence}-{time.monotonic_ns()}",
                }

            for clients in levels:
                for label, ours, theirs in (
                    (
                        "GET account",
                        hammer(account, "GET", clients, options.seconds, headers=auth),
                        hammer(f"{bare}/noop/{ACCOUNT}", "GET", clients, options.seconds),
                    ),
                    (
                        "POST send",
                        hammer(
                            f"{account}/send",
                            "POST",
                            clients,
                            options.seconds,
                            headers=auth,
                            json=send_body,
                        ),
                        hammer(
                            f"{bare}/noop/{ACCOUNT}",
                            "POST",
                            clients,
                            options.seconds,
                            json=send_body,
                        ),
                    ),
                ):
                    measured = asyncio.run(ours)
                    baseline = asyncio.run(theirs)
                    results.append((clients, label, measured, baseline))
                    print(
                        f"{label}, {clients} clients: {measured.rate:.0f}/s "
                        f"(p99 {ms(measured, 0.99)} ms, {measured.errors} errors) vs bare "
                        f"{baseline.rate:.0f}/s (p99 {ms(baseline, 0.99)} ms)",
                        flush=True,
                    )
    print(f"\nHTTP API vs a bare FastAPI endpoint, {options.seconds:g} s per run")
    print(
        f"{'route':<12} {'clients':>7} {'req/s':>7} {'p50 ms':>7} {'p99 ms':>7} "
        f"{'bare/s':>7} {'bare p99':>8} {'ratio':>6}"
    )
    for clients, label, measured, baseline in results:
        print(
            f"{label:<12} {clients:>7} {measured.rate:>7.0f} {ms(measured, 0.5):>7} "
            f"{ms(measured, 0.99):>7} {baseline.rate:>7.0f} {ms(baseline, 0.99):>8} "
            f"{measured.rate / baseline.rate:>6.2f}"
        )
    for clients, label, measured, baseline in results:
        name = label.split()[1]
        print(
            f"RESULT api route={name} clients={clients} rate={measured.rate:.0f}/s "
            f"p50={ms(measured, 0.5)}ms p99={ms(measured, 0.99)}ms errors={measured.errors} "
            f"bare={baseline.rate:.0f}/s bare_p99={ms(baseline, 0.99)}ms "
            f"ratio={measured.rate / baseline.rate:.2f}"
        )
    print(machine_load())


if __name__ == "__main__":
    main()
