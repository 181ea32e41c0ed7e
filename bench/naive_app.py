"""The naive baseline for send_bench: a Celery task that connects a Telethon client per job.

    celery -A bench.naive_app worker --pool=threads --queues=naive

What a first version of this service typically looks like: each job reads the session
row, decrypts it, runs ``asyncio.run`` with a fresh client (connect, send, disconnect)
and forgets everything. No lease, no warm client, no outbox, no pacing. It is here only
to be measured; it is also unsafe: two jobs of one session running at once use one auth
key over two connections, which Telegram (and the emulator) punish with
AUTH_KEY_DUPLICATED, so send_bench never runs it with more threads than sessions.

Configuration comes from the same environment as the real workers (DATABASE_URL,
CELERY_BROKER_URL, REDIS_URL, LOCAL_KEYRING, TELEGRAM_EMULATOR_CONFIG).
"""

from __future__ import annotations

import asyncio
import functools
import os
import time
from typing import Any

from celery import Celery
from kombu import Queue
from sqlalchemy import create_engine, text
from sqlalchemy.engine import Engine
from telethon import TelegramClient, functions
from telethon.sessions import StringSession

from integration_service.crypto import LocalKeyring
from integration_service.emulator.world.client_helper import EMULATOR_API_HASH, EMULATOR_API_ID
from integration_service.messaging.random_ids import random_id_for
from integration_service.runtime.session_runtime import session_context
from integration_service.store import SessionKey
from integration_service.telegram.endpoint import (
    TelegramEndpoint,
    apply_to_session,
    load_endpoint,
    register_rsa_key,
)

NAIVE_QUEUE = "naive"
NAIVE_TASK = "bench.naive_app.send_message"

app = Celery("naive-bench")
app.conf.update(
    broker_url=os.environ.get("CELERY_BROKER_URL", "amqp://guest:guest@127.0.0.1:5672//"),
    result_backend=os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/12"),
    task_queues=[Queue(NAIVE_QUEUE, durable=True)],
    task_default_queue=NAIVE_QUEUE,
    task_acks_late=True,
    worker_prefetch_multiplier=1,
    task_serializer="json",
    result_serializer="json",
    accept_content=["json"],
    worker_hijack_root_logger=False,
)


@functools.cache
def _engine() -> Engine:
    # Even the naive version pools its database connections; only the Telegram side is naive.
    return create_engine(os.environ["DATABASE_URL"], pool_size=8, max_overflow=0)


@functools.cache
def _keyring() -> LocalKeyring:
    return LocalKeyring.from_spec(os.environ["LOCAL_KEYRING"])


@functools.cache
def _endpoint() -> TelegramEndpoint:
    endpoint = load_endpoint(os.environ["TELEGRAM_EMULATOR_CONFIG"])
    register_rsa_key(endpoint)
    return endpoint


def _session_string(key: SessionKey) -> str:
    with _engine().connect() as conn:
        ciphertext = conn.execute(
            text(
                "SELECT session_string_enc FROM telegram_sessions "
                "WHERE tenant_id = :t AND app_id = :a"
            ),
            {"t": key.tenant_id, "a": key.app_id},
        ).scalar_one()
    return _keyring().decrypt(ciphertext, context=session_context(key))


async def _connect_and_send(session: str, peer: str, body: str, random_id: int) -> int:
    string_session = StringSession(session)
    apply_to_session(string_session, _endpoint())
    client = TelegramClient(string_session, EMULATOR_API_ID, EMULATOR_API_HASH)
    await client.connect()
    try:
        entity = await client.get_input_entity(peer)
        result = await client(
            functions.messages.SendMessageRequest(peer=entity, message=body, random_id=random_id)
        )
        return len(getattr(result, "updates", []) or [result])
    finally:
        await client.disconnect()


@app.task(name=NAIVE_TASK)
def send_message(
    *, tenant_id: str, app_id: str, peer: str, text: str, idempotency_key: str
) -> dict[str, Any]:
    key = SessionKey(tenant_id, app_id)
    session = _session_string(key)
    asyncio.run(_connect_and_send(session, peer, text, random_id_for(key, idempotency_key)))
    return {"status": "sent", "sent_at": time.time()}
