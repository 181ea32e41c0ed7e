"""The FastAPI application: routes, error rendering, metrics, CORS and the body limit."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib.metadata import version

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware

from integration_service import tracing
from integration_service.api import problems
from integration_service.api.audit import AuditTrail
from integration_service.api.context import ApiContext
from integration_service.api.middleware import BodyLimit, RequestMetrics, RequestTracing
from integration_service.api.routes import (
    accounts,
    audit,
    bots,
    channels,
    events,
    logins,
    messages,
    operations,
    webhooks,
)
from integration_service.settings import Settings

DESCRIPTION = """Telegram accounts and bots as a service: connect accounts (QR, code, bot
token), send messages, read outcomes. Every route takes `Authorization: Bearer <token>`: a
tenant API key, a JWT from the platform's user service, or Telegram Mini App initData.
Errors are RFC 9457 problem+json with a stable `code`."""


def create_app(settings: Settings, context: ApiContext | None = None) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # Here, not in serve(): with several uvicorn workers each process runs this.
        tracing.configure_tracing(settings, "api")
        ctx = context or ApiContext.build(settings)
        app.state.context = ctx
        try:
            yield
        finally:
            if context is None:
                ctx.close()
                tracing.shutdown_tracing()

    app = FastAPI(
        title="integration-service",
        version=version("integration-service"),
        description=DESCRIPTION,
        lifespan=lifespan,
        openapi_url="/openapi.json",
        docs_url="/docs",
        redoc_url=None,
    )
    problems.install(app)
    for module in (
        logins,
        accounts,
        bots,
        channels,
        messages,
        webhooks,
        events,
        audit,
        operations,
    ):
        app.include_router(module.router)
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST", "DELETE", "PATCH"],
            allow_headers=["Authorization", "Content-Type", "Idempotency-Key", "Last-Event-ID"],
            expose_headers=["RateLimit", "RateLimit-Policy", "Retry-After"],
        )
    app.add_middleware(AuditTrail, engine_of=lambda: app.state.context.client.engine)
    app.add_middleware(BodyLimit, limit=settings.api_max_body_bytes)
    app.add_middleware(RequestMetrics)
    app.add_middleware(RequestTracing)
    return app
