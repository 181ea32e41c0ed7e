"""A Telethon client whose calls to Telegram are spans of the trace that made them.

Every request goes through ``TelegramClient.__call__``: wrapping it covers our calls and
the ones Telethon makes for us (getting a file's data centre, getDifference). A call made
outside any trace (Telethon's keep-alive pings) opens no span: it would only be a root
span a minute per client, about nothing anyone asked for.
"""

from __future__ import annotations

from typing import Any

from opentelemetry import trace
from opentelemetry.trace import SpanKind
from telethon import TelegramClient

from integration_service.tracing.spans import span


def request_name(request: Any) -> str:
    """``messages.SendMessage`` for a SendMessageRequest; a list of requests by its first."""
    if isinstance(request, list):
        return f"{request_name(request[0])}+{len(request) - 1}" if request else "empty"
    kind = type(request)
    # telethon.tl.functions.messages -> "messages"; the top-level functions have no prefix.
    namespace = kind.__module__.removeprefix("telethon.tl.functions").lstrip(".")
    method = kind.__name__.removesuffix("Request")
    return f"{namespace}.{method}" if namespace else method


class TracedTelegramClient(TelegramClient):  # type: ignore[misc]  # Telethon ships no type hints
    async def __call__(
        self, request: Any, ordered: bool = False, flood_sleep_threshold: int | None = None
    ) -> Any:
        if not trace.get_current_span().get_span_context().is_valid:
            return await super().__call__(request, ordered, flood_sleep_threshold)
        name = request_name(request)
        with span(
            f"telegram {name}",
            kind=SpanKind.CLIENT,
            attributes={"rpc.system": "mtproto", "rpc.method": name},
        ):
            return await super().__call__(request, ordered, flood_sleep_threshold)
