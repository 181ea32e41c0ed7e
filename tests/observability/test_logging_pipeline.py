"""The real JSON pipeline: structlog and stdlib lines, job context, scrubbed output."""

from __future__ import annotations

import logging
import os
import threading

import structlog

from integration_service.observability.logging import (
    bind_job_context,
    clear_job_context,
    configure_logging,
)
from tests.observability.conftest import CapturedLog

BOT_TOKEN = "987654321:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw1"
PHONE = "+79161234512"


def test_every_line_is_json_with_the_common_fields(captured_log: CapturedLog) -> None:
    structlog.get_logger("integration_service.test").info("structlog_line", queue="high")
    logging.getLogger("celery.worker").info("celery line %s", "ready")
    logging.getLogger("kombu.connection").warning("kombu line")
    logging.getLogger("telethon.network.mtprotosender").info("telethon line")
    logging.getLogger().error("root line")

    lines = captured_log.lines()
    assert [line["event"] for line in lines] == [
        "structlog_line",
        "celery line ready",
        "kombu line",
        "telethon line",
        "root line",
    ]
    for line in lines:
        assert line["timestamp"].endswith("Z") and "T" in line["timestamp"]
        assert line["worker"] == "worker-test@host"
        assert {"level", "logger", "event"} <= line.keys()
    assert captured_log.by_event("structlog_line")["queue"] == "high"
    assert captured_log.by_event("celery line ready")["logger"] == "celery.worker"
    assert captured_log.by_event("kombu line")["level"] == "warning"


def test_job_context_appears_on_every_line_of_the_job(captured_log: CapturedLog) -> None:
    bind_job_context(tenant_id="tenant-1", app_id="app-1", task_id="task-1")
    structlog.get_logger("job").info("inside_job")
    logging.getLogger("telethon.client").info("library inside job")
    clear_job_context()
    structlog.get_logger("job").info("after_job")

    for event in ("inside_job", "library inside job"):
        line = captured_log.by_event(event)
        assert (line["tenant_id"], line["app_id"], line["task_id"]) == (
            "tenant-1",
            "app-1",
            "task-1",
        )
    after = captured_log.by_event("after_job")
    assert "tenant_id" not in after and "task_id" not in after


def test_job_context_is_per_thread(captured_log: CapturedLog) -> None:
    def job(tenant: str) -> None:
        bind_job_context(tenant_id=tenant, app_id="app", task_id=f"task-{tenant}")
        structlog.get_logger("job").info(f"running_{tenant}")
        clear_job_context()

    threads = [threading.Thread(target=job, args=(name,)) for name in ("a", "b")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)
    assert captured_log.by_event("running_a")["tenant_id"] == "a"
    assert captured_log.by_event("running_b")["task_id"] == "task-b"


def test_configure_twice_writes_each_line_once(captured_log: CapturedLog) -> None:
    configure_logging("INFO", worker="worker-test@host", stream=captured_log.stream)
    structlog.get_logger("x").info("once")
    logging.getLogger("celery").info("once stdlib")
    events = [line["event"] for line in captured_log.lines()]
    assert events.count("once") == 1 and events.count("once stdlib") == 1
    assert len(logging.getLogger().handlers) == 1


def test_level_filters_structlog_and_stdlib(captured_log: CapturedLog) -> None:
    configure_logging("WARNING", stream=captured_log.stream)
    structlog.get_logger("x").info("dropped")
    logging.getLogger("kombu").info("dropped too")
    structlog.get_logger("x").warning("kept")
    assert [line["event"] for line in captured_log.lines()] == ["kept"]


def test_no_secret_reaches_the_output(captured_log: CapturedLog, session_string: str) -> None:
    auth_key_hex = os.urandom(256).hex()
    log = structlog.get_logger("integration_service.sessions")
    bind_job_context(tenant_id="t1", app_id="a1", task_id="task-9")

    log.info(f"imported session {session_string} for {PHONE}")
    log.info("login_step", password="hunter2-pass", phone_code="24680", phone=PHONE)
    log.info("nested", payload={"items": [{"bot_token": BOT_TOKEN}, {"key": auth_key_hex}]})
    log.info("raw_key", key=os.urandom(256))
    logging.getLogger("telethon.client.auth").info("Login code: %s sent to %s", "13579", PHONE)
    logging.getLogger("celery.app.trace").info("vault token hvs.%s", "CAESIJ2kX3mNmM3aBcDeFgHiJk")
    try:
        raise ValueError(f"cannot use {session_string} with bot {BOT_TOKEN}")
    except ValueError:
        log.exception("structlog_traceback")
        logging.getLogger("celery.app.trace").exception("stdlib_traceback")
    clear_job_context()

    text = captured_log.text
    for secret in (
        session_string,
        session_string[1:60],
        auth_key_hex[:64],
        "hunter2-pass",
        "24680",
        "13579",
        BOT_TOKEN.split(":")[1],
        "CAESIJ2kX3mNmM3aBcDeFgHiJk",
        PHONE,
        PHONE[1:],
    ):
        assert secret not in text, secret
    for kind in ("session", "password", "code", "token", "auth_key"):
        assert f"[REDACTED:{kind}]" in text, kind
    assert "+*********12" in text

    for event in ("structlog_traceback", "stdlib_traceback"):
        line = captured_log.by_event(event)
        assert "Traceback" in line["exception"]
        assert (
            "ValueError: cannot use [REDACTED:session] with bot [REDACTED:token]"
            in line["exception"]
        )
        assert line["task_id"] == "task-9"
