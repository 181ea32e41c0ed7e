"""upsert_telegram_session calls/s from 8 threads beside a bare INSERT ... ON CONFLICT.

    .venv/bin/python bench/upsert_bench.py [--seconds 5] [--threads 8] [--quick]

Both sides run in this process, on the same pooled engine, against a scratch database
migrated by Alembic. The function side goes through ``SessionStore.save`` (the real
write path: the plpgsql function, its epoch fence, metrics and error mapping). The
baseline is a bare ``INSERT ... ON CONFLICT DO UPDATE`` of the same row shape into a
scratch table created ``LIKE telegram_sessions``. Each thread cycles over its own 50
keys, so the first pass inserts and the rest update, on both sides alike. Rounds
alternate (function, bare, function, bare) so background load hits both alike; the
ratio is the function's overhead per call.
"""

from __future__ import annotations

import argparse
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy import create_engine, text
from sqlalchemy.engine import Engine

from bench.benchlib import machine_load
from integration_service.store import SessionKey, SessionMaterial, SessionStore
from tests.support.database import migrate, scratch_database

TENANT = "tenant-upsert-bench"
KEYS_PER_THREAD = 50
CIPHERTEXT = "local:k1:" + "A" * 480  # the size of a real encrypted StringSession

_BARE = text(
    """
    INSERT INTO bench_sessions AS s (
        tenant_id, app_id, kind, state, lease_epoch, session_string_enc, key_id,
        api_key_alias, telegram_user_id, dc_id, fingerprint, auth_error, error_details,
        last_activity_at
    ) VALUES (
        :tenant_id, :app_id, :kind, :state, :lease_epoch, :session_string_enc, :key_id,
        :api_key_alias, :telegram_user_id, :dc_id, :fingerprint, :auth_error,
        :error_details, now()
    )
    ON CONFLICT (tenant_id, app_id) DO UPDATE SET
        kind = EXCLUDED.kind, state = EXCLUDED.state, lease_epoch = EXCLUDED.lease_epoch,
        session_string_enc = EXCLUDED.session_string_enc, key_id = EXCLUDED.key_id,
        telegram_user_id = EXCLUDED.telegram_user_id, dc_id = EXCLUDED.dc_id,
        fingerprint = EXCLUDED.fingerprint, auth_error = EXCLUDED.auth_error,
        error_details = EXCLUDED.error_details, last_activity_at = now()
    RETURNING s.id
    """
)


def material(thread: int, slot: int) -> SessionMaterial:
    return SessionMaterial(
        key=SessionKey(TENANT, f"app-{thread}-{slot}"),
        kind="user",
        state="authorized",
        lease_epoch=1,
        session_string_enc=CIPHERTEXT,
        key_id="k1",
        telegram_user_id=1_000_000 + thread * 1000 + slot,
        dc_id=2,
        fingerprint=f"{thread:04d}{slot:060d}",
    )


def bare_params(m: SessionMaterial) -> dict[str, object]:
    return {
        "tenant_id": m.key.tenant_id,
        "app_id": m.key.app_id,
        "kind": m.kind,
        "state": m.state,
        "lease_epoch": m.lease_epoch,
        "session_string_enc": m.session_string_enc,
        "key_id": m.key_id,
        "api_key_alias": m.api_key_alias,
        "telegram_user_id": m.telegram_user_id,
        "dc_id": m.dc_id,
        "fingerprint": m.fingerprint,
        "auth_error": m.auth_error,
        "error_details": m.error_details,
    }


def run_threads(threads: int, seconds: float, call: Callable[[int, int], None]) -> float:
    """``threads`` threads call back-to-back for ``seconds``; returns calls per second."""
    counts = [0] * threads
    start = threading.Barrier(threads + 1)
    deadline = 0.0

    def work(number: int) -> None:
        start.wait()
        slot = 0
        while time.perf_counter() < deadline:
            call(number, slot % KEYS_PER_THREAD)
            slot += 1
        counts[number] = slot

    workers = [threading.Thread(target=work, args=(n,)) for n in range(threads)]
    for worker in workers:
        worker.start()
    deadline = time.perf_counter() + seconds
    began = time.perf_counter()
    start.wait()
    for worker in workers:
        worker.join()
    return sum(counts) / (time.perf_counter() - began)


def prepare(engine: Engine) -> SessionStore:
    store = SessionStore(engine)
    store.ensure_tenant(TENANT)
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE bench_sessions (LIKE telegram_sessions INCLUDING ALL)"))
    return store


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=5.0, help="per round")
    parser.add_argument("--rounds", type=int, default=2, help="alternating rounds per side")
    parser.add_argument("--quick", action="store_true", help="1 s rounds, one each")
    options = parser.parse_args()
    if options.quick:
        options.seconds, options.rounds = 1.0, 1

    with scratch_database("is_bench") as url:
        migrate(url)
        engine = create_engine(url, pool_size=options.threads, max_overflow=0)
        try:
            store = prepare(engine)

            def through_function(thread: int, slot: int) -> None:
                store.save(material(thread, slot))

            def bare_insert(thread: int, slot: int) -> None:
                with engine.begin() as conn:
                    conn.execute(_BARE, bare_params(material(thread, slot))).scalar_one()

            # Warm the pool, plan caches and both tables' first inserts.
            run_threads(options.threads, 0.3, through_function)
            run_threads(options.threads, 0.3, bare_insert)
            function_rates, bare_rates = [], []
            for _ in range(options.rounds):
                function_rates.append(
                    run_threads(options.threads, options.seconds, through_function)
                )
                bare_rates.append(run_threads(options.threads, options.seconds, bare_insert))
        finally:
            engine.dispose()

    function_rate = sum(function_rates) / len(function_rates)
    bare_rate = sum(bare_rates) / len(bare_rates)
    print(machine_load())
    print(
        f"PostgreSQL upserts, {options.threads} threads, {options.rounds} x "
        f"{options.seconds:.0f} s alternating rounds per side"
    )
    print(f"upsert_telegram_session (SessionStore.save): {function_rate:,.0f} calls/s")
    print(f"bare INSERT ... ON CONFLICT DO UPDATE:       {bare_rate:,.0f} calls/s")
    overhead_us = (1 / function_rate - 1 / bare_rate) * options.threads * 1e6
    print(
        f"function overhead per call (latency at {options.threads} threads): {overhead_us:+.0f} us"
    )
    print(
        f"RESULT upsert function={function_rate:.0f}/s bare={bare_rate:.0f}/s "
        f"ratio={function_rate / bare_rate:.2f}"
    )


if __name__ == "__main__":
    main()
