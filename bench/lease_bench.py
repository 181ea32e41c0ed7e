"""Latency of session-lease operations against the local Redis, beside a plain-lock baseline.

    .venv/bin/python bench/lease_bench.py [--rounds 2000] [--redis redis://127.0.0.1:6379/0]

Measures acquire, renew and release of `LeaseManager` (Lua scripts: holder check, fencing
epoch, TTL) and, as the baseline, the cheapest possible lock: `SET NX PX` and `DEL`. The
ratio column is the price of atomic fencing over a lock that cannot fence. Also times a
pipelined renew of many leases, which is what the heartbeat does each beat. Everything
lives under a unique key prefix that is deleted at the end.
"""

from __future__ import annotations

import argparse
import statistics
import time
import uuid

import redis

from integration_service.leases import LeaseManager, LeaseMetrics

Timings = dict[str, list[float]]
OPERATIONS = ("acquire", "renew", "release")


def percentile(samples: list[float], fraction: float) -> float:
    ordered = sorted(samples)
    index = min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))
    return ordered[index]


def run_pair(
    client: redis.Redis,
    manager: LeaseManager,
    prefix: str,
    number: int,
    ours: Timings,
    plain: Timings,
) -> None:
    """One round of each: interleaved, so load from other processes hits both alike."""
    app = f"app{number}"
    key = f"{prefix}plain_lock:bench:{app}"
    clock = time.perf_counter

    started = clock()
    lease = manager.acquire("bench", app)
    ours["acquire"].append(clock() - started)
    started = clock()
    taken = client.set(key, "bench-worker", nx=True, px=90_000)
    plain["acquire"].append(clock() - started)
    assert lease is not None and taken

    started = clock()
    renewed = manager.renew(lease)
    ours["renew"].append(clock() - started)
    started = clock()
    extended = client.pexpire(key, 90_000)
    plain["renew"].append(clock() - started)
    assert renewed and extended

    started = clock()
    released = manager.release(lease)
    ours["release"].append(clock() - started)
    started = clock()
    deleted = client.delete(key)
    plain["release"].append(clock() - started)
    assert released and deleted


def bench_single(client: redis.Redis, prefix: str, rounds: int) -> tuple[Timings, Timings]:
    # A silent metrics sink: the benchmark measures Redis, not prometheus-client.
    manager = LeaseManager(
        client, "bench-worker", ttl=90, metrics=LeaseMetrics(), key_prefix=prefix
    )
    ours: Timings = {operation: [] for operation in OPERATIONS}
    plain: Timings = {operation: [] for operation in OPERATIONS}
    for number in range(rounds):
        run_pair(client, manager, prefix, number, ours, plain)
    return ours, plain


def bench_batch_renew(client: redis.Redis, prefix: str, size: int, repeats: int) -> list[float]:
    manager = LeaseManager(
        client, "bench-worker", ttl=90, metrics=LeaseMetrics(), key_prefix=prefix
    )
    leases = [manager.acquire("batch", f"app{n}") for n in range(size)]
    held = [lease for lease in leases if lease is not None]
    samples: list[float] = []
    for _ in range(repeats):
        started = time.perf_counter()
        renewed = manager.renew_many(held)
        samples.append(time.perf_counter() - started)
        assert all(renewed)
    manager.release_many(held)
    return samples


def cleanup(client: redis.Redis, prefix: str) -> None:
    stale = list(client.scan_iter(match=prefix + "*", count=1000))
    if stale:
        client.delete(*stale)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2000)
    parser.add_argument("--batch", type=int, default=500, help="leases per pipelined renew")
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/0")
    options = parser.parse_args()

    client = redis.Redis.from_url(options.redis)
    client.ping()
    prefix = f"bench:lease:{uuid.uuid4().hex}:"
    try:
        # Warm up connections and script caches so the first samples are not outliers.
        bench_single(client, prefix + "warm:", 100)
        leases, baseline = bench_single(client, prefix, options.rounds)
        batch = bench_batch_renew(client, prefix, options.batch, 50)
    finally:
        cleanup(client, prefix)

    print(f"Redis {options.redis}, {options.rounds} rounds per operation, times in microseconds")
    print(
        f"{'operation':<10}{'lease p50':>11}{'lease p99':>11}{'plain p50':>11}{'plain p99':>11}"
        f"{'ratio p50':>11}"
    )
    for operation in OPERATIONS:
        ours, plain = leases[operation], baseline[operation]
        ours_p50, plain_p50 = percentile(ours, 0.5), percentile(plain, 0.5)
        print(
            f"{operation:<10}{ours_p50 * 1e6:>11.0f}{percentile(ours, 0.99) * 1e6:>11.0f}"
            f"{plain_p50 * 1e6:>11.0f}{percentile(plain, 0.99) * 1e6:>11.0f}"
            f"{ours_p50 / plain_p50:>10.2f}x"
        )
    print(
        f"pipelined renew of {options.batch} leases: p50 {percentile(batch, 0.5) * 1e3:.2f} ms, "
        f"p99 {percentile(batch, 0.99) * 1e3:.2f} ms, "
        f"{statistics.mean(batch) / options.batch * 1e6:.1f} us per lease"
    )
    print("baseline: SET NX PX / PEXPIRE / DEL (no holder check, no fencing epoch)")


if __name__ == "__main__":
    main()
