"""``integration-service api`` (the HTTP API under uvicorn) and ``api-key create|list|revoke``.

A key is printed once, by ``create``; only its hash is stored. Bad input (an unknown
scope, an empty name) exits 2 and stores nothing; an unknown tenant or key exits 3.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import click

from integration_service.cli.audit import audited
from integration_service.cli.output import CommandFailure, ExitCode, emit, guarded, json_option
from integration_service.cli.sessions import iso_utc
from integration_service.cli.wiring import DATABASE, open_client

if TYPE_CHECKING:
    from integration_service.api.auth import ApiKeyRecord, ApiKeyStore


@click.command("api")
@click.option("--host", default=None, help="Listen address (default API_HOST, 127.0.0.1).")
@click.option("--port", type=int, default=None, help="Listen port (default API_PORT, 8000).")
@click.option("--workers", type=click.IntRange(1, 64), default=1, show_default=True)
@guarded
def api(host: str | None, port: int | None, workers: int) -> None:
    """Serve the HTTP API (OpenAPI at /openapi.json, docs at /docs) until SIGTERM/Ctrl-C."""
    from integration_service.api.server import serve
    from integration_service.settings import get_settings

    serve(get_settings(), host=host, port=port, workers=workers)


@contextmanager
def _keys() -> Iterator[ApiKeyStore]:
    from integration_service.api.auth import ApiKeyStore
    from integration_service.api.errors import ApiError, ResourceNotFound

    with open_client(needs=DATABASE) as client:
        try:
            yield ApiKeyStore(client.engine)
        except ResourceNotFound as error:
            raise CommandFailure(ExitCode.NOT_FOUND, str(error), error="not_found") from None
        except ApiError as error:
            raise CommandFailure(
                ExitCode.USAGE, str(error), error=error.code, scrub=False
            ) from None


def _doc(record: ApiKeyRecord) -> dict[str, Any]:
    return {
        "id": str(record.id),
        "tenant_id": record.tenant_id,
        "name": record.name,
        "hint": f"...{record.hint}",
        "scopes": list(record.scopes),
        "created_at": iso_utc(record.created_at),
        "last_used_at": iso_utc(record.last_used_at) if record.last_used_at else None,
        "revoked_at": iso_utc(record.revoked_at) if record.revoked_at else None,
    }


@click.group("api-key")
def api_key() -> None:
    """Tenant API keys for the HTTP API: create (shown once), list, revoke."""


@api_key.command("create")
@click.option("--tenant", "tenant_id", required=True)
@click.option(
    "--scope",
    "scopes",
    multiple=True,
    required=True,
    help="Repeat for each: accounts:read accounts:write channels:read channels:write "
    "connect send messages:read webhooks:read webhooks:write events:read, or * for all.",
)
@click.option("--name", default="api key", show_default=True, help="What the key is for.")
@json_option
@audited("api-key create")
@guarded
def create(tenant_id: str, scopes: tuple[str, ...], name: str, as_json: bool) -> None:
    """Create a key and print it once: store it now, it cannot be shown again."""
    with _keys() as keys:
        created = keys.create(tenant_id, name, scopes)
    document = {**_doc(created.record), "key": created.key}
    emit(
        document,
        lambda: (
            f"{created.key}\n(key {created.record.id}, scopes "
            f"{' '.join(created.record.scopes)}: shown once, store it now)"
        ),
    )


@api_key.command("list")
@click.option("--tenant", "tenant_id", required=True)
@json_option
@guarded
def list_keys(tenant_id: str, as_json: bool) -> None:
    """The tenant's keys (never the keys themselves)."""
    with _keys() as keys:
        records = keys.list(tenant_id)
    documents = [_doc(r) for r in records]

    def text() -> str:
        if not documents:
            return "no API keys"
        return "\n".join(
            f"{d['id']}  {d['hint']}  {d['name']}  {' '.join(d['scopes'])}  "
            f"last used {d['last_used_at'] or '-'}{'  REVOKED' if d['revoked_at'] else ''}"
            for d in documents
        )

    emit({"keys": documents}, text)


@api_key.command("revoke")
@click.option("--tenant", "tenant_id", required=True)
@click.argument("key_id", type=click.UUID)
@json_option
@audited("api-key revoke")
@guarded
def revoke(tenant_id: str, key_id: uuid.UUID, as_json: bool) -> None:
    """Revoke a key: every API process refuses it within 5 seconds."""
    with _keys() as keys:
        record = keys.revoke(tenant_id, key_id)
    emit(_doc(record), f"revoked {record.id}")
