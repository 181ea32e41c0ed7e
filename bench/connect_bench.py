"""Connect time through real workers: QR, phone code, 2FA password and bot login.

    .venv/bin/python bench/connect_bench.py [--runs 10] [--quick]

One private world (scratch database, vhost, Redis db 12, emulator subprocess) and one
`celery worker` (threads pool) consuming every queue, the way `make worker` runs it. Each
run is a fresh emulator user and a fresh session. The clock starts at the user's last
action and stops when the ``authorized`` transition is committed (its ``session_events``
row; the database and this process share one clock):

- qr: start_qr_login, then the clock starts at the approval through the control API
  (the phone scanning the code);
- code: request_code, then the clock starts at submit_code;
- password: code login of a user with 2FA, the clock starts at submit_password;
- bot: the clock starts at connect_bot.

Seeds target: authorised within 5 s of the user's last action.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path
from urllib.parse import parse_qs, urlparse

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.benchlib import bench_system, machine_load, percentile
from integration_service.client import IntegrationClient
from integration_service.emulator.world.client_helper import random_phone
from integration_service.store import SessionKey
from tests.support.processes import wait_for
from tests.support.system import SystemUnderTest

TENANT = "tenant-connect-bench"
TARGET_SECONDS = 5.0
PASSWORD = "correct horse battery"


def authorized_at(system: SystemUnderTest, app_id: str) -> float:
    """When the ``authorized`` transition was committed (epoch seconds)."""

    def found() -> float | None:
        for event in reversed(system.store.events(SessionKey(TENANT, app_id))):
            if event.to_state == "authorized":
                return event.created_at.timestamp()
        return None

    return wait_for(found, timeout=60, interval=0.02, what=f"{app_id} authorized")


def qr_run(system: SystemUnderTest, client: IntegrationClient, app_id: str) -> float:
    phone = random_phone()
    system.control.create_user(phone, "Qr")
    started = client.wait(client.start_qr_login(TENANT, app_id), timeout=60)
    qr = client.qr_code(TENANT, app_id, started["ticket_id"])
    assert qr is not None, started
    token = parse_qs(urlparse(qr.url).query)["token"][0]
    approved = time.time()
    system.control.call("POST", "/qr/approve", {"token": token, "phone": phone})
    return authorized_at(system, app_id) - approved


def code_run(system: SystemUnderTest, client: IntegrationClient, app_id: str) -> float:
    phone = "+" + random_phone()
    system.control.create_user(phone, "Code")
    client.wait(client.request_code(TENANT, app_id, phone), timeout=60)
    code = system.control.login_code(phone)
    submitted = time.time()
    client.submit_code(TENANT, app_id, code)
    return authorized_at(system, app_id) - submitted


def password_run(system: SystemUnderTest, client: IntegrationClient, app_id: str) -> float:
    phone = "+" + random_phone()
    system.control.create_user(phone, "Pass", password=PASSWORD)
    client.wait(client.request_code(TENANT, app_id, phone), timeout=60)
    after_code = client.wait(
        client.submit_code(TENANT, app_id, system.control.login_code(phone)), timeout=60
    )
    assert after_code["state"] == "password_required", after_code
    submitted = time.time()
    client.submit_password(TENANT, app_id, PASSWORD)
    return authorized_at(system, app_id) - submitted


def bot_run(system: SystemUnderTest, client: IntegrationClient, app_id: str) -> float:
    bot = system.control.call("POST", "/bots", {"username": f"bench{random_phone()[-7:]}bot"})
    submitted = time.time()
    client.connect_bot(TENANT, app_id, bot["token"])
    return authorized_at(system, app_id) - submitted


METHODS: dict[str, Callable[[SystemUnderTest, IntegrationClient, str], float]] = {
    "qr": qr_run,
    "code": code_run,
    "password": password_run,
    "bot": bot_run,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10, help="logins per method")
    parser.add_argument("--quick", action="store_true", help="3 logins per method")
    options = parser.parse_args()
    if options.quick:
        options.runs = 3

    samples: dict[str, list[float]] = {name: [] for name in METHODS}
    with bench_system() as system:
        system.store.ensure_tenant(TENANT)
        system.start_worker("connect", "high,mid,low", 8)
        client = system.client()
        try:
            # One unmeasured login warms imports, pools and the worker's event loop.
            code_run(system, client, "warm-up")
            for run in range(options.runs):
                for name, method in METHODS.items():
                    samples[name].append(method(system, client, f"{name}-{run}"))
        finally:
            client.close()

    print(machine_load())
    print(f"connect time through 1 worker (threads, concurrency 8), {options.runs} runs each")
    print(
        f"{'method':<10}{'p50 ms':>9}{'p95 ms':>9}{'max ms':>9}  target <= {TARGET_SECONDS:.0f} s"
    )
    for name, values in samples.items():
        p95 = percentile(values, 0.95)
        print(
            f"{name:<10}{percentile(values, 0.5) * 1e3:>9.0f}{p95 * 1e3:>9.0f}"
            f"{max(values) * 1e3:>9.0f}  {'met' if p95 <= TARGET_SECONDS else 'MISSED'}"
        )
    for name, values in samples.items():
        print(
            f"RESULT connect {name} p50={percentile(values, 0.5) * 1e3:.0f}ms "
            f"p95={percentile(values, 0.95) * 1e3:.0f}ms n={len(values)}"
        )


if __name__ == "__main__":
    main()
