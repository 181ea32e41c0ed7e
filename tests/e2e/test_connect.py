"""Connecting accounts through real workers: QR (with and without 2FA), code, bot."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest

from integration_service.client import IntegrationClient, QrCode
from integration_service.emulator.world.client_helper import random_phone
from integration_service.store import SessionKey
from tests.support.system import SystemUnderTest, WorkerProcess

TENANT = "tenant-connect"


@pytest.fixture(scope="module")
def worker(system: SystemUnderTest) -> WorkerProcess:
    system.store.ensure_tenant(TENANT)
    return system.start_worker("connect")


@pytest.fixture
def client(system: SystemUnderTest, worker: WorkerProcess) -> Iterator[IntegrationClient]:
    yield system.client()


def qr_token(url: str) -> str:
    return parse_qs(urlparse(url).query)["token"][0]


def pending_qr(client: IntegrationClient, app_id: str, started: dict[str, Any]) -> QrCode:
    """The QR of the login ``started`` names, read through the producer API."""
    qr = client.qr_code(TENANT, app_id, started["ticket_id"])
    assert qr is not None, started
    return qr


def assert_encrypted(system: SystemUnderTest, app_id: str) -> None:
    row = system.store.require(SessionKey(TENANT, app_id))
    assert row.state == "authorized"
    assert row.session_string_enc is not None and row.session_string_enc.startswith("local:")
    assert row.key_id == "k1" and row.fingerprint is not None and row.telegram_user_id


def test_qr_login_without_2fa(system: SystemUnderTest, client: IntegrationClient) -> None:
    phone = random_phone()
    user = system.control.create_user(phone, "Qr", username=f"qr{phone[-6:]}")
    started = client.wait(client.start_qr_login(TENANT, "qr-plain"), timeout=30)
    assert started["state"] == "qr_pending"
    # The result names the login ticket; the QR is not in it (results are not secret).
    assert "qr_url" not in started and "qr_png_base64" not in started
    qr = pending_qr(client, "qr-plain", started)
    assert qr.url.startswith("tg://login?token=")
    assert base64.b64decode(qr.png_base64()).startswith(b"\x89PNG")
    assert client.qr_code(TENANT, "qr-plain", "another-ticket") is None
    system.control.call("POST", "/qr/approve", {"token": qr_token(qr.url), "phone": phone})
    status = client.wait_for_state(TENANT, "qr-plain", {"authorized", "failed"}, timeout=30)
    assert status.state == "authorized", status
    assert status.login["method"] == "qr"
    # Signed in: the QR is gone from the ticket and from the status.
    assert client.qr_code(TENANT, "qr-plain") is None
    assert "url" not in status.login
    assert_encrypted(system, "qr-plain")
    assert user["user_id"]


def test_qr_login_with_2fa(system: SystemUnderTest, client: IntegrationClient) -> None:
    phone = random_phone()
    system.control.create_user(phone, "Qr2", password="correct horse")
    started = client.wait(client.start_qr_login(TENANT, "qr-2fa"), timeout=30)
    qr = pending_qr(client, "qr-2fa", started)
    system.control.call("POST", "/qr/approve", {"token": qr_token(qr.url), "phone": phone})
    status = client.wait_for_state(TENANT, "qr-2fa", {"password_required", "failed"}, timeout=30)
    assert status.state == "password_required", status
    assert client.qr_code(TENANT, "qr-2fa") is None  # scanned: the QR has done its work
    wrong = client.wait(client.submit_password(TENANT, "qr-2fa", "battery staple"), timeout=30)
    assert (wrong["state"], wrong["error"]) == ("password_required", "password_invalid")
    right = client.wait(client.submit_password(TENANT, "qr-2fa", "correct horse"), timeout=30)
    assert right["state"] == "authorized"
    assert_encrypted(system, "qr-2fa")


def test_code_login_wrong_then_right_code(
    system: SystemUnderTest, client: IntegrationClient
) -> None:
    phone = "+" + random_phone()
    system.control.create_user(phone, "Code")
    sent = client.wait(client.request_code(TENANT, "code-plain", phone), timeout=30)
    assert sent["state"] == "code_sent"
    code = system.control.login_code(phone)
    wrong_code = "00000" if code != "00000" else "11111"
    wrong = client.wait(client.submit_code(TENANT, "code-plain", wrong_code), timeout=30)
    assert (wrong["state"], wrong["error"]) == ("code_sent", "phone_code_invalid")
    right = client.wait(client.submit_code(TENANT, "code-plain", code), timeout=30)
    assert right["state"] == "authorized"
    assert_encrypted(system, "code-plain")


def test_code_login_with_2fa(system: SystemUnderTest, client: IntegrationClient) -> None:
    phone = "+" + random_phone()
    system.control.create_user(phone, "Code2", password="s3cret-pass")
    client.wait(client.request_code(TENANT, "code-2fa", phone), timeout=30)
    after_code = client.wait(
        client.submit_code(TENANT, "code-2fa", system.control.login_code(phone)), timeout=30
    )
    assert after_code["state"] == "password_required"
    done = client.wait(client.submit_password(TENANT, "code-2fa", "s3cret-pass"), timeout=30)
    assert done["state"] == "authorized"
    assert_encrypted(system, "code-2fa")


def test_bot_login_good_and_bad_token(system: SystemUnderTest, client: IntegrationClient) -> None:
    bot = system.control.call("POST", "/bots", {"username": f"conn{random_phone()[-6:]}bot"})
    good = client.wait(client.connect_bot(TENANT, "bot-good", bot["token"]), timeout=30)
    assert good["state"] == "authorized"
    row_kind = client.get_status(TENANT, "bot-good").kind
    assert row_kind == "bot"
    bad_token = bot["token"].split(":")[0] + ":" + "x" * 35
    bad = client.wait(client.connect_bot(TENANT, "bot-bad", bad_token), timeout=30)
    assert (bad["state"], bad["error"]) == ("failed", "access_token_invalid")


def test_a_fresh_worker_uses_every_connected_session(
    system: SystemUnderTest, worker: WorkerProcess, client: IntegrationClient
) -> None:
    connected = ["qr-plain", "qr-2fa", "code-plain", "code-2fa", "bot-good"]
    assert system.stop_worker(worker) == 0
    system.start_worker("fresh")
    for app_id in connected:
        result = client.wait(client.validate_session(TENANT, app_id), timeout=60)
        assert result["outcome"] == "authorized", (app_id, result)
