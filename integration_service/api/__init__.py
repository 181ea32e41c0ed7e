"""The HTTP API (FastAPI): its door is ``create_app`` and ``integration-service api``."""

from integration_service.api.app import create_app

__all__ = ["create_app"]
