"""`make demo`: drive a running `make run` system the way a product would.

Connects a user account by QR, one by code with 2FA and a bot (the emulator's control API
plays the person with the phone), sends a few hundred messages with a progress bar,
validates, revokes one account in the emulator and lets a sweep catch it, then reports.
"""

from __future__ import annotations

import argparse
import json
import secrets
import statistics
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

from integration_service.client import IntegrationClient
from integration_service.sessions.qr_image import qr_terminal
from integration_service.settings import get_settings
from integration_service.store import SessionStore, build_engine

TENANT = "demo"


class Control:
    """The emulator's control API (the demo's stand-in for people and their phones)."""

    def __init__(self, url: str) -> None:
        self.url = url.rstrip("/")

    def __call__(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        request = urllib.request.Request(  # noqa: S310 - the local emulator
            self.url + path,
            data=json.dumps(body).encode() if body is not None else None,
            method=method,
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=10) as answer:  # noqa: S310
            return json.loads(answer.read())


def phone() -> str:
    return "+7999" + "".join(secrets.choice("0123456789") for _ in range(7))


def progress(done: int, total: int, width: int = 40) -> None:
    filled = int(width * done / total)
    sys.stdout.write(f"\r  [{'#' * filled}{'.' * (width - filled)}] {done}/{total}")
    sys.stdout.flush()


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--state-dir", type=Path, default=Path(".state"))
    parser.add_argument("--messages", type=int, default=300)
    parser.add_argument("--timeout", type=float, default=120.0)
    args = parser.parse_args(argv)

    info = json.loads((args.state_dir / "emulator" / "emulator.json").read_text())
    control = Control(info["control_url"])
    client = IntegrationClient()
    SessionStore(build_engine(get_settings())).ensure_tenant(TENANT)
    run_id = secrets.token_hex(3)
    timings: dict[str, float] = {}

    print("1. QR login")
    qr_phone = phone()
    control(
        "POST", "/users", {"phone": qr_phone, "first_name": "Qr", "username": f"demoqr{run_id}"}
    )
    started = client.wait(client.start_qr_login(TENANT, f"qr-{run_id}"), timeout=args.timeout)
    # The job's result names the login ticket; the QR is read from it while pending.
    qr = client.qr_code(TENANT, f"qr-{run_id}", started["ticket_id"])
    if qr is None:
        raise SystemExit(f"QR login did not start: {started}")
    print(qr_terminal(qr.url))
    token = parse_qs(urlparse(qr.url).query)["token"][0]
    approved = time.monotonic()
    control("POST", "/qr/approve", {"token": token, "phone": qr_phone})
    client.wait_for_state(TENANT, f"qr-{run_id}", {"authorized"}, timeout=args.timeout)
    timings["qr login (approval to authorized)"] = time.monotonic() - approved

    print("2. Code login with 2FA")
    code_phone = phone()
    user = control(
        "POST", "/users", {"phone": code_phone, "first_name": "Code", "password": "demo-2fa"}
    )
    client.wait(client.request_code(TENANT, f"code-{run_id}", code_phone), timeout=args.timeout)
    code = control("GET", f"/codes/{code_phone}")["code"]
    typed = time.monotonic()
    client.wait(client.submit_code(TENANT, f"code-{run_id}", code), timeout=args.timeout)
    client.wait(client.submit_password(TENANT, f"code-{run_id}", "demo-2fa"), timeout=args.timeout)
    timings["code + 2FA (code typed to authorized)"] = time.monotonic() - typed

    print("3. Bot")
    bot = control("POST", "/bots", {"username": f"demo{run_id}bot"})
    pasted = time.monotonic()
    client.wait(client.connect_bot(TENANT, f"bot-{run_id}", bot["token"]), timeout=args.timeout)
    timings["bot login"] = time.monotonic() - pasted

    print(f"4. Sending {args.messages} messages")
    recipients = []
    for i in range(30):
        name = f"demorcpt{run_id}{i:02d}"
        control("POST", "/users", {"phone": phone(), "first_name": "R", "username": name})
        recipients.append(f"@{name}")
    senders = [f"qr-{run_id}", f"code-{run_id}", f"bot-{run_id}"]
    handles = []
    enqueued: dict[str, float] = {}
    for i in range(args.messages):
        handle = client.send_message(
            TENANT,
            senders[i % 3],
            recipients[(i // 3) % 30],
            f"demo message {i}",
            idempotency_key=f"demo-{run_id}-{i}",
        )
        enqueued[handle.job_id] = time.monotonic()
        handles.append(handle)
    latencies, statuses = [], []
    for done, handle in enumerate(handles, 1):
        statuses.append(client.wait(handle, timeout=args.timeout)["status"])
        latencies.append(time.monotonic() - enqueued[handle.job_id])
        progress(done, len(handles))
    print()

    print("5. Validating, then revoking the code-login account")
    for app_id in senders:
        client.wait(client.validate_session(TENANT, app_id), timeout=args.timeout)
    control("POST", "/revoke", {"user_id": user["user_id"]})
    client.app.send_task("tasks.validation.sweep", kwargs={"stale_after": 0})
    caught = client.wait_for_state(TENANT, f"code-{run_id}", {"revoked"}, timeout=args.timeout)

    print("\nReport")
    for app_id in senders:
        print(f"  {app_id:<16} {client.get_status(TENANT, app_id).state}")
    print(f"  sweep caught the revoked account: state {caught.state}")
    sent = statuses.count("sent")
    print(f"  messages: {sent} sent, {len(statuses) - sent} not sent")
    print(
        f"  send latency (enqueue to result): p50 {statistics.median(latencies):.3f}s, "
        f"p99 {percentile(latencies, 0.99):.3f}s"
    )
    for name, seconds in timings.items():
        print(f"  {name}: {seconds:.2f}s")
    print("  Flower:     http://127.0.0.1:5555 (credentials in .state/flower-auth)")
    print("  Prometheus: http://127.0.0.1:9101/metrics, :9102/metrics, :9103/metrics")
    client.close()
    return 0 if statuses.count("sent") == len(statuses) and caught.state == "revoked" else 1


if __name__ == "__main__":
    sys.exit(main())
