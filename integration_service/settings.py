"""One typed settings object, built once from the environment.

Names follow the seed documents where they exist (SESSION_LOCK_TTL, QR_TICKET_TTL, ...).
Defaults work against this machine's local services on loopback, so a fresh checkout
runs with no configuration at all. A malformed value fails at start-up with an error
that names the variable, never later in the middle of a job.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal

from pydantic import AliasChoices, Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from integration_service.errors import PermanentError


class SettingsError(PermanentError, ValueError):
    """A configuration variable is missing or malformed; the message names it."""

    code = "invalid_settings"


def _parse_octal_mode(value: object) -> object:
    # The seeds give permissions as decimal (384 == 0o600); operators also write "0600".
    if isinstance(value, str):
        text = value.strip()
        if text.startswith(("0o", "0O")):
            return int(text[2:], 8)
        if len(text) > 1 and text.startswith("0") and text.isdigit():
            return int(text, 8)
        return int(text)
    return value


class Settings(BaseSettings):
    """Everything the service reads from its environment."""

    model_config = SettingsConfigDict(
        env_prefix="",
        case_sensitive=False,
        extra="ignore",
        populate_by_name=True,
    )

    # Storage and coordination.
    database_url: str = "postgresql+psycopg://postgres@127.0.0.1:5432/integration_service"
    # Role the worker's connections switch to (SET ROLE); the service role bypasses RLS.
    database_role: str | None = "integration_service_worker"
    database_pool_size: int = Field(default=10, ge=1, le=200)
    database_max_overflow: int = Field(default=10, ge=0, le=200)
    database_connect_timeout: float = Field(default=5.0, gt=0)
    # How long a producer call (and so every CLI command) waits for PostgreSQL, Redis or
    # the broker before failing with DependencyUnavailable (integration_service/dependencies.py).
    dependency_timeout: float = Field(default=5.0, ge=2, le=300)
    redis_url: str = "redis://127.0.0.1:6379/0"
    broker_url: str = Field(
        default="amqp://guest:guest@127.0.0.1:5672//",
        validation_alias=AliasChoices("CELERY_BROKER_URL", "BROKER_URL", "broker_url"),
    )

    # Session ownership (DESIGN.md, "Session ownership").
    session_lock_ttl: int = Field(default=90, ge=2, le=3600)
    session_lock_heartbeat: int = Field(default=30, ge=1, le=1800)
    # Beaten with the lease heartbeat, so it must outlive one heartbeat period.
    worker_liveness_ttl: int = Field(default=75, ge=2, le=3600)
    worker_queue_message_ttl: int = Field(default=120, ge=1, le=86400)
    forward_max_hops: int = Field(default=3, ge=1, le=20)
    # Producers publish a warm session's jobs straight to its owner's queue (leases/owner.py).
    route_to_owner: bool = True
    client_pool_max: int = Field(default=500, ge=1, le=100000)
    client_idle_timeout: int = Field(default=600, ge=1, le=86400)
    task_timeout: float = Field(default=60.0, gt=0)
    # How long a finished job's outcome stays in the job journal (store/job_journal.py):
    # longer than any delivery can stay unacknowledged or deferred, so a redelivery is
    # always recognised.
    job_journal_retention: int = Field(default=7 * 86400, ge=3600, le=90 * 86400)

    # Inbound (listening sessions, placement, the event log and its relay).
    # How many listening sessions one worker may hold; 0: this worker does not listen
    # (the interactive `high` worker).
    listen_capacity: int = Field(default=5000, ge=0, le=100000)
    # How often placement claims and releases, and how many sessions per round at most
    # (paced: a dead worker's sessions spread over the others without a stampede).
    placement_interval: float = Field(default=5.0, gt=0, le=300)
    placement_batch: int = Field(default=50, ge=1, le=10000)
    event_retention_days: int = Field(default=7, ge=1, le=365)
    # The audit trail (integration_logs) is kept longer than events: it answers "who did
    # this" after the fact.
    audit_retention_days: int = Field(default=90, ge=1, le=3650)
    # The relay's poll period when the log has nothing new to publish.
    relay_poll_interval: float = Field(default=0.2, gt=0, le=60)
    relay_batch: int = Field(default=500, ge=1, le=10000)

    # Webhooks (Standard Webhooks signing; see integration_service/webhooks).
    webhook_max_age: int = Field(default=24 * 3600, ge=1, le=30 * 86400)
    webhook_timeout: float = Field(default=10.0, gt=0, le=300)
    webhook_allow_private: bool = False
    webhook_max_in_flight: int = Field(default=16, ge=1, le=1000)
    webhook_backoff_base: float = Field(default=1.0, gt=0, le=3600)
    webhook_backoff_max: float = Field(default=3600.0, gt=0, le=86400)
    # How long a rotated-out secret still signs (both signatures are sent meanwhile).
    webhook_secret_grace: int = Field(default=24 * 3600, ge=0, le=30 * 86400)
    # The dispatcher: its poll period when nothing is due, how many attempts one process
    # has in flight at most (over all subscriptions), and its fan-out batch.
    webhook_poll_interval: float = Field(default=0.05, gt=0, le=60)
    webhook_concurrency: int = Field(default=64, ge=1, le=10000)
    webhook_batch: int = Field(default=200, ge=1, le=10000)

    # The HTTP API (integration_service/api; `integration-service api`).
    api_host: str = "127.0.0.1"
    api_port: int = Field(default=8000, ge=1, le=65535)
    # Browser origins allowed to call the API, comma-separated (none by default).
    cors_origins: Annotated[list[str], NoDecode] = Field(default_factory=list)
    # Request bodies above this are refused with 413 before they are read whole.
    api_max_body_bytes: int = Field(default=4 * 1024 * 1024, ge=1024, le=256 * 1024 * 1024)
    # JWTs from the platform's user service: RS256/ES256 against the JWKS at
    # JWT_JWKS_URL, or HS256 with JWT_HS256_SECRET; audience and issuer checked when set.
    jwt_jwks_url: str | None = None
    jwt_hs256_secret: SecretStr | None = None
    jwt_audience: str | None = None
    jwt_issuer: str | None = None
    # The claims that carry the tenant and the scopes (space-separated, or a list).
    jwt_tenant_claim: str = "tenant_id"
    jwt_scope_claim: str = "scope"
    jwt_leeway: int = Field(default=30, ge=0, le=600)
    jwks_cache_seconds: int = Field(default=300, ge=1, le=86400)
    # Telegram Mini App initData (seed 000): the bot token of the Mini App's bot, whose
    # HMAC signs initData; how old an auth_date may be; the tenant its users connect to.
    miniapp_hmac_secret: SecretStr | None = None
    miniapp_timestamp_tolerance: int = Field(default=300, ge=1, le=86400)
    miniapp_tenant_id: str | None = None
    # Rate limits (GCRA in Redis): requests per second and burst, per API key or token
    # subject, and per tenant over all its callers.
    rate_limit_key_per_second: float = Field(default=50.0, gt=0, le=100000)
    rate_limit_key_burst: int = Field(default=100, ge=1, le=1000000)
    rate_limit_tenant_per_second: float = Field(default=200.0, gt=0, le=1000000)
    rate_limit_tenant_burst: int = Field(default=400, ge=1, le=1000000)

    # Login and validation.
    qr_ticket_ttl: int = Field(default=600, ge=30, le=86400)
    session_validation_interval: int = Field(default=300, ge=1, le=86400)
    session_stale_threshold: int = Field(default=3600, ge=1, le=30 * 86400)
    validation_batch_size: int = Field(default=500, ge=1, le=100000)
    # Channels: how old a check may get before the sweep refreshes it, and how many one
    # sweep enqueues.
    channel_refresh_interval: int = Field(default=3600, ge=1, le=30 * 86400)
    channel_refresh_batch: int = Field(default=500, ge=1, le=100000)

    # Session files (legacy import) and their permissions, as in the seeds.
    sessions_base_path: Path = Path("./.state/sessions")
    session_file_permissions: Annotated[int, NoDecode] = 0o600
    session_dir_permissions: Annotated[int, NoDecode] = 0o700

    # Secrets: which cipher encrypts session strings.
    session_cipher: Literal["local", "vault"] = "local"
    # Local AES-GCM keyring: "id1:base64key,id2:base64key"; the last one encrypts.
    local_keyring: SecretStr | None = None
    vault_addr: str = "http://127.0.0.1:8200"
    vault_token: SecretStr | None = None
    vault_transit_mount: str = "transit"
    vault_transit_key: str = "telegram-sessions"

    # Telegram: real credentials, or the emulator described by its emulator.json.
    telegram_api_id: int | None = None
    telegram_api_hash: SecretStr | None = None
    # Used when no real credentials are set; `make run` writes it there.
    telegram_emulator_config: Path = Path(".state/emulator/emulator.json")
    # 0: every FloodWait reaches the job layer, which retries at the named time instead
    # of sleeping a worker thread.
    flood_sleep_threshold: int = Field(default=0, ge=0, le=60)
    telegram_connect_timeout: float = Field(default=10.0, gt=0)

    # Send pacing (Telegram's documented bot limits as defaults; see messaging/pacing.py).
    pace_per_chat_per_second: float = Field(default=1.0, gt=0, le=1000)
    pace_per_group_per_minute: float = Field(default=20.0, gt=0, le=100000)
    pace_per_account_per_second: float = Field(default=30.0, gt=0, le=10000)

    # Operations.
    # Per process (each worker and beat): /metrics and /health/*; 0 disables it.
    metrics_port: int = Field(default=0, ge=0, le=65535)
    # Loopback by default; containers set 0.0.0.0 so Prometheus can scrape.
    metrics_host: str = "127.0.0.1"
    health_port: int = Field(default=0, ge=0, le=65535)
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    # OpenTelemetry: spans are exported over OTLP/HTTP when this is set (the exporter reads
    # OTEL_EXPORTER_OTLP_HEADERS, OTEL_SERVICE_NAME, OTEL_TRACES_SAMPLER and the rest of
    # the standard variables itself). Unset, trace ids still propagate and stamp the logs.
    otel_exporter_otlp_endpoint: str | None = None
    flower_basic_auth: SecretStr | None = None

    @field_validator("session_file_permissions", "session_dir_permissions", mode="before")
    @classmethod
    def _octal(cls, value: object) -> object:
        return _parse_octal_mode(value)

    @field_validator("session_file_permissions", "session_dir_permissions")
    @classmethod
    def _valid_mode(cls, value: int) -> int:
        if not 0 <= value <= 0o777:
            raise ValueError("must be a file mode between 0 and 0o777")
        return value

    @field_validator("session_lock_heartbeat")
    @classmethod
    def _heartbeat_below_ttl(cls, value: int, info: object) -> int:
        ttl = getattr(info, "data", {}).get("session_lock_ttl")
        if ttl is not None and value * 2 > ttl:
            # Two missed heartbeats must still fit inside the TTL, or a healthy owner
            # loses its lease on one slow renewal.
            raise ValueError(f"must be at most half of SESSION_LOCK_TTL ({ttl})")
        return value

    @field_validator("worker_liveness_ttl")
    @classmethod
    def _liveness_outlives_heartbeat(cls, value: int, info: object) -> int:
        heartbeat = getattr(info, "data", {}).get("session_lock_heartbeat")
        if heartbeat is not None and value <= heartbeat:
            raise ValueError(f"must be longer than SESSION_LOCK_HEARTBEAT ({heartbeat})")
        return value

    @field_validator("cors_origins", mode="before")
    @classmethod
    def _origins(cls, value: object) -> object:
        if isinstance(value, str):
            return [origin.strip() for origin in value.split(",") if origin.strip()]
        return value

    @field_validator("otel_exporter_otlp_endpoint")
    @classmethod
    def _otlp_url(cls, value: str | None) -> str | None:
        if value and not value.startswith(("http://", "https://")):
            raise ValueError("must be an http:// or https:// URL (OTLP over HTTP)")
        return value or None

    @field_validator("database_url")
    @classmethod
    def _postgres_url(cls, value: str) -> str:
        if not value.startswith(("postgresql://", "postgresql+psycopg://", "postgres://")):
            raise ValueError("must be a postgresql:// URL")
        if value.startswith("postgres://"):
            value = "postgresql://" + value[len("postgres://") :]
        if value.startswith("postgresql://"):
            value = "postgresql+psycopg://" + value[len("postgresql://") :]
        return value

    @field_validator("redis_url")
    @classmethod
    def _redis_url(cls, value: str) -> str:
        if not value.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError("must be a redis:// URL")
        return value

    @field_validator("broker_url")
    @classmethod
    def _amqp_url(cls, value: str) -> str:
        if not value.startswith(("amqp://", "amqps://", "pyamqp://")):
            raise ValueError("must be an amqp:// URL")
        return value

    @property
    def uses_real_telegram(self) -> bool:
        return self.telegram_api_id is not None and self.telegram_api_hash is not None


def _explain(error: ValidationError) -> SettingsError:
    problems = []
    for item in error.errors():
        field = str(item["loc"][0]) if item["loc"] else "?"
        variable = "CELERY_BROKER_URL/BROKER_URL" if field == "broker_url" else field.upper()
        problems.append(f"{variable}: {item['msg']}")
    return SettingsError("invalid configuration: " + "; ".join(problems))


def load_settings(**overrides: object) -> Settings:
    """Build settings from the environment (plus explicit overrides), naming bad variables."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as error:
        raise _explain(error) from None


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, built once on first use (never at import time)."""
    return load_settings()
