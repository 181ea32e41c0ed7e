"""Building Telethon clients for real Telegram or the emulator, by configuration alone.

With TELEGRAM_API_ID and TELEGRAM_API_HASH set, clients talk to Telegram. Without them,
they talk to the emulator described by TELEGRAM_EMULATOR_CONFIG (its emulator.json): the
emulator's RSA key is registered with Telethon and every session is pointed at its
address. There is no other difference between the two paths.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from telethon import TelegramClient
from telethon.sessions import StringSession

from integration_service.errors import RetryableError
from integration_service.settings import Settings
from integration_service.telegram.endpoint import (
    EndpointConfigError,
    TelegramEndpoint,
    apply_to_session,
    load_endpoint,
    register_rsa_key,
)
from integration_service.telegram.traced_client import TracedTelegramClient

# The emulator accepts any application; these mark a client as one of ours in its logs.
EMULATOR_API_ID = 1
EMULATOR_API_HASH = "00000000000000000000000000000000"


class TelegramNotConfigured(RetryableError):
    """Neither Telegram credentials nor a readable emulator.json are configured.

    Retryable: under `make run` the emulator writes its emulator.json a moment after the
    workers start, and a job arriving in between must wait, not be dead-lettered.
    """

    code = "telegram_not_configured"


@dataclass(frozen=True)
class ClientFactory:
    """Creates unconnected clients; must be called on the loop that will own them."""

    api_id: int
    api_hash: str
    endpoint: TelegramEndpoint | None
    flood_sleep_threshold: int
    connect_timeout: float

    @classmethod
    def from_settings(cls, settings: Settings) -> ClientFactory:
        if settings.uses_real_telegram:
            assert settings.telegram_api_id is not None and settings.telegram_api_hash is not None
            return cls(
                api_id=settings.telegram_api_id,
                api_hash=settings.telegram_api_hash.get_secret_value(),
                endpoint=None,
                flood_sleep_threshold=settings.flood_sleep_threshold,
                connect_timeout=settings.telegram_connect_timeout,
            )
        try:
            endpoint = load_endpoint(settings.telegram_emulator_config)
        except EndpointConfigError as error:
            raise TelegramNotConfigured(
                "set TELEGRAM_API_ID and TELEGRAM_API_HASH, or TELEGRAM_EMULATOR_CONFIG to an "
                f"emulator.json ({error})"
            ) from None
        register_rsa_key(endpoint)
        return cls(
            api_id=EMULATOR_API_ID,
            api_hash=EMULATOR_API_HASH,
            endpoint=endpoint,
            flood_sleep_threshold=settings.flood_sleep_threshold,
            connect_timeout=settings.telegram_connect_timeout,
        )

    def create(
        self, session_string: str | None, *, receive_updates: bool = False
    ) -> TelegramClient:
        """A client for a stored session (or a new one when ``session_string`` is None).

        ``receive_updates`` stays off for ordinary jobs (no update stream to process);
        QR login turns it on because approval arrives as an update.
        """
        return self.create_on(StringSession(session_string), receive_updates=receive_updates)

    def create_on(
        self,
        session: StringSession,
        *,
        receive_updates: bool = False,
        client_class: type[TelegramClient] = TracedTelegramClient,
    ) -> TelegramClient:
        """A client on a given session object (a listening session's PgSession), of
        ``client_class`` (the listening client runs the feed as its update loop)."""
        if self.endpoint is not None:
            apply_to_session(session, self.endpoint)
        return client_class(
            session,
            self.api_id,
            self.api_hash,
            flood_sleep_threshold=self.flood_sleep_threshold,
            timeout=int(self.connect_timeout),
            connection_retries=2,
            # One attempt per call: server errors and RANDOM_ID_DUPLICATE reach the job
            # layer at once, which retries through the queue instead of sleeping here.
            request_retries=1,
            retry_delay=1,
            # The pool reconnects lazily, when a job needs the client, through a circuit
            # breaker and a bounded number of concurrent handshakes (no reconnect storms).
            auto_reconnect=False,
            receive_updates=receive_updates,
            # Telegram answers a repeated random_id with a 500 (RANDOM_ID_DUPLICATE);
            # without this Telethon would retry it and raise a bare ValueError.
            raise_last_call_error=True,
            device_model="integration-service",
            app_version="0.1",
        )


def settle_disconnection(client: TelegramClient) -> None:
    """Mark the error that ended ``client``'s connection as seen; call after it is done with.

    Telethon keeps that error (``AuthKeyNotFound`` after a -404, a failed reconnect) in a
    future nobody awaits, and asyncio logs such a future at ERROR when it is collected
    ("Future exception was never retrieved"). The caller already got the same error from
    its own call. Right after a failed call the sender may still be tearing down (the
    error is set a moment later): the shield Telethon hands out reads it then.
    """

    def seen(ended: asyncio.Future[None]) -> None:
        if not ended.cancelled():
            ended.exception()

    ended = client.disconnected
    if ended.done():
        seen(ended)
    else:
        ended.add_done_callback(seen)


class LazyClientFactory:
    """Resolves the ClientFactory on first use, then keeps it for the process."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._factory: ClientFactory | None = None

    def resolve(self) -> ClientFactory:
        if self._factory is None:
            self._factory = ClientFactory.from_settings(self._settings)
        return self._factory

    def create(
        self, session_string: str | None, *, receive_updates: bool = False
    ) -> TelegramClient:
        return self.resolve().create(session_string, receive_updates=receive_updates)

    def create_on(
        self,
        session: StringSession,
        *,
        receive_updates: bool = False,
        client_class: type[TelegramClient] = TracedTelegramClient,
    ) -> TelegramClient:
        return self.resolve().create_on(
            session, receive_updates=receive_updates, client_class=client_class
        )
