"""Running the API under uvicorn, with the service's JSON logging."""

from __future__ import annotations

import uvicorn

from integration_service.observability.logging import configure_logging
from integration_service.settings import Settings


def serve(
    settings: Settings, *, host: str | None = None, port: int | None = None, workers: int = 1
) -> None:
    configure_logging(settings.log_level)
    bind_host = host or settings.api_host
    bind_port = port or settings.api_port
    if workers == 1:
        from integration_service.api.app import create_app

        target: object = create_app(settings)
    else:
        # Each worker process builds its own app (and connections) from the environment.
        target = "integration_service.api.server:app_from_environment"
    uvicorn.run(
        target,  # type: ignore[arg-type]
        host=bind_host,
        port=bind_port,
        workers=workers if workers > 1 else None,
        factory=workers > 1,
        # The service's own JSON log lines; uvicorn's access log would repeat each request
        # in another format.
        log_config=None,
        access_log=False,
        proxy_headers=False,
        server_header=False,
        timeout_graceful_shutdown=10,
    )


def app_from_environment() -> object:
    from integration_service.api.app import create_app
    from integration_service.settings import get_settings

    return create_app(get_settings())
