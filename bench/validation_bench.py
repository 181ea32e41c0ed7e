"""Validation sweep rate over 10,000 stored sessions, and memory per warm client.

    .venv/bin/python bench/validation_bench.py [--sessions 10000] [--quick]

Every stored session is its own emulator user with its own auth key. The keys are minted
already signed in by the emulator (control API ``POST /sessions``): 10,000 real sign-ins,
a key exchange each, would take some 15 minutes on the 2-core machine, and validation
never repeats the login, it connects with the stored key. One `celery worker` (threads
pool, concurrency 8) consumes every queue. The clock starts when ``tasks.validation.sweep``
(stale_after=0: every session is due) is published and stops when every row's
``last_activity_at`` is later than that moment, i.e. each session was validated with
updates.GetState and the result written. Memory: a fresh worker keeps every session's
client warm (``reconnect``); its RSS before and after, divided by the growth of its
``session_pool_clients`` gauge, is the memory one warm client costs.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy import text

from bench.benchlib import bench_system, machine_load, rss_kib
from tests.support.processes import wait_for
from tests.support.system import Provisioned, SystemUnderTest, WorkerProcess

TENANT = "tenant-validation-bench"
TARGET_SESSIONS = 10_000


def warm_clients(worker_log: str) -> int:
    """The worker's own count of connected clients (gauge session_pool_clients)."""
    for line in worker_log.splitlines():
        if '"observability_listening"' in line:
            url = json.loads(line)["url"]
            break
    else:
        raise RuntimeError("the worker did not log its metrics address")
    with urllib.request.urlopen(url + "/metrics", timeout=10) as response:  # noqa: S310 - loopback
        for metric in response.read().decode().splitlines():
            if metric.startswith("session_pool_clients "):
                return int(float(metric.split()[1]))
    raise RuntimeError("no session_pool_clients gauge in the worker's metrics")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=TARGET_SESSIONS, help="sessions to store")
    parser.add_argument("--quick", action="store_true", help="30 sessions")
    options = parser.parse_args()
    if options.quick:
        options.sessions = 30

    with bench_system({"CLIENT_POOL_MAX": "20000"}) as system:
        interval = system.settings.session_validation_interval
        started = time.perf_counter()
        sessions = system.provision_minted(options.sessions, TENANT)
        took = time.perf_counter() - started
        print(f"stored {len(sessions)} signed-in sessions in {took:.1f} s", flush=True)
        validator = system.start_worker("validator", "high,mid,low", 8)
        total, not_authorized, elapsed = timed_sweep(system, sessions)
        # A sweep leaves no client connected (validation evicts the ones it had to open),
        # so memory is measured on a fresh worker that keeps every client warm.
        system.stop_worker(validator)
        warmer = system.start_worker("warmer", "high,mid,low", 8)
        memory = warm_memory(system, warmer, sessions)

    rate = total / elapsed
    projected = TARGET_SESSIONS / rate
    rss_before, rss_after, warmed = memory
    per_client = (rss_after - rss_before) / max(warmed, 1)
    print(machine_load())
    print(f"validation sweep of {total} stored sessions through 1 worker (threads, concurrency 8)")
    print(
        f"sweep -> all validated: {elapsed:.2f} s, {rate:,.0f} sessions/s, "
        f"{not_authorized} not authorized"
    )
    how = "measured" if total >= TARGET_SESSIONS else "extrapolated linearly"
    print(
        f"{TARGET_SESSIONS:,} sessions ({how}): {projected:.0f} s; "
        f"SESSION_VALIDATION_INTERVAL {interval} s: "
        f"{'fits' if projected <= interval else 'does NOT fit'}"
    )
    print(
        f"worker RSS {rss_before / 1024:.1f} MiB -> {rss_after / 1024:.1f} MiB with {warmed} "
        f"more warm clients (gauge session_pool_clients): {per_client:.0f} KiB per warm client"
    )
    print(
        f"RESULT validation sessions={total} rate={rate:.0f}/s projected_10k={projected:.0f}s "
        f"fits_interval={projected <= interval} warm_clients={warmed} "
        f"kib_per_client={per_client:.0f}"
    )


def timed_sweep(system: SystemUnderTest, sessions: list[Provisioned]) -> tuple[int, int, float]:
    """Sweep with every session due; returns (sessions, not authorized, seconds)."""
    client = system.client()
    try:
        # One validation first: imports and pools are loaded before the clock starts.
        warm = client.validate_session(TENANT, sessions[0].key.app_id)
        assert client.wait(warm, timeout=60)["outcome"] == "authorized"
    finally:
        client.close()
    swept_at = time.time()
    started = time.perf_counter()
    system.producer.send_task("tasks.validation.sweep", kwargs={"stale_after": 0})
    query = text(
        "SELECT count(*) FILTER (WHERE last_activity_at > to_timestamp(:t)), count(*), "
        "count(*) FILTER (WHERE state <> 'authorized') FROM telegram_sessions "
        "WHERE tenant_id = :tenant"
    )

    def all_validated() -> tuple[int, int] | None:
        with system.engine.connect() as conn:
            done, total, not_authorized = conn.execute(
                query, {"t": swept_at, "tenant": TENANT}
            ).one()
        return (total, not_authorized) if done == total else None

    total, not_authorized = wait_for(
        all_validated, timeout=600, interval=0.1, what="every session validated"
    )
    return total, not_authorized, time.perf_counter() - started


def warm_memory(
    system: SystemUnderTest, worker: WorkerProcess, sessions: list[Provisioned]
) -> tuple[int, int, int]:
    """RSS (KiB) before and after warming every session's client, and how many warmed."""
    client = system.client()
    try:
        first = client.reconnect(TENANT, sessions[0].key.app_id)
        client.wait(first, timeout=60)
        rss_before, clients_before = rss_kib(worker.process.pid), warm_clients(worker.log())
        handles = [client.reconnect(TENANT, s.key.app_id) for s in sessions[1:]]
        for handle in handles:
            client.wait(handle, timeout=120)
        rss_after, clients_after = rss_kib(worker.process.pid), warm_clients(worker.log())
    finally:
        client.close()
    return rss_before, rss_after, clients_after - clients_before


if __name__ == "__main__":
    main()
