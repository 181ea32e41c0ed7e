"""What every request handler shares in one API process: settings, the producer library,
the stores, the authenticator and the rate limiter. Built once at start-up."""

from __future__ import annotations

from dataclasses import dataclass

import redis

from integration_service.api.auth import ApiKeyStore, Authenticator
from integration_service.api.auth.jwt_tokens import JwtVerifier
from integration_service.api.idempotency import IdempotentRequests
from integration_service.api.ratelimit import Limit, RateLimiter, limits_from_settings
from integration_service.api.tenant_db import TenantEngine, TenantReader
from integration_service.client import IntegrationClient
from integration_service.crypto import SessionCipher, build_cipher
from integration_service.settings import Settings
from integration_service.store.guard import DatabaseGuard
from integration_service.webhooks import DeliveryLog, SubscriptionStore


@dataclass
class ApiContext:
    settings: Settings
    client: IntegrationClient
    api_keys: ApiKeyStore
    authenticator: Authenticator
    reader: TenantReader
    idempotency: IdempotentRequests
    limiter: RateLimiter
    key_limit: Limit
    tenant_limit: Limit
    redis: redis.Redis
    # Reads through the library's stores, as the tenant (row-level security).
    tenant_engine: TenantEngine
    subscriptions: SubscriptionStore
    subscriptions_read: SubscriptionStore
    deliveries: DeliveryLog
    deliveries_read: DeliveryLog
    cipher: SessionCipher

    @classmethod
    def build(cls, settings: Settings, client: IntegrationClient | None = None) -> ApiContext:
        client = client or IntegrationClient(settings=settings)
        # Now, not on the first request: request threads must not race to build it.
        _ = client.app
        guard = DatabaseGuard.for_workers()
        api_keys = ApiKeyStore(client.engine, guard)
        key_limit, tenant_limit = limits_from_settings(settings)
        tenant_engine = TenantEngine(client.engine)
        cipher = build_cipher(settings)
        return cls(
            settings=settings,
            client=client,
            api_keys=api_keys,
            authenticator=Authenticator(settings, api_keys, JwtVerifier.from_settings(settings)),
            reader=TenantReader(client.engine, guard),
            idempotency=IdempotentRequests(client.engine, guard),
            limiter=RateLimiter(client.redis),
            key_limit=key_limit,
            tenant_limit=tenant_limit,
            redis=client.redis,
            tenant_engine=tenant_engine,
            subscriptions=SubscriptionStore(settings, client.engine, cipher),
            subscriptions_read=SubscriptionStore(settings, tenant_engine.engine, cipher),
            deliveries=DeliveryLog(client.engine),
            deliveries_read=DeliveryLog(tenant_engine.engine),
            cipher=cipher,
        )

    def close(self) -> None:
        self.client.close()
