"""One HTTP attempt: the SSRF check, the POST, a hard cut at WEBHOOK_TIMEOUT.

At most RESPONSE_READ_LIMIT bytes of the response body are read and dropped (a receiver
could send gigabytes): a short body read to its end leaves the connection reusable, which
is what keeps a busy subscription on one warm keep-alive connection instead of a new TCP
connection per event; a longer one is cut and its connection closed. Redirects are not
followed (a 3xx is a failure: following it could lead to an address the check never saw).
"""

from __future__ import annotations

import asyncio
import time

import httpx

from integration_service.webhooks.errors import WebhookInputInvalid
from integration_service.webhooks.retry_policy import AttemptResult
from integration_service.webhooks.targets import (
    parse_url,
    pinned,
    resolve_checked_async,
)

USER_AGENT = "integration-service-webhooks/1"
RESPONSE_READ_LIMIT = 64 * 1024
# The answer is known once the status line is in; the body gets this long at most.
RESPONSE_READ_SECONDS = 1.0


async def attempt(
    client: httpx.AsyncClient,
    url: str,
    body: bytes,
    signed: dict[str, str],
    *,
    timeout: float,
    allow_private: bool,
) -> AttemptResult:
    started = time.perf_counter()

    def elapsed_ms() -> float:
        return (time.perf_counter() - started) * 1000.0

    try:
        async with asyncio.timeout(timeout):
            target = parse_url(url)
            address = None
            if not allow_private:
                address = (await resolve_checked_async(target))[0]
            request = pinned(target, address)
            headers = {
                **request.headers,
                **signed,
                "content-type": "application/json",
                "user-agent": USER_AGENT,
            }
            async with client.stream(
                "POST", request.url, content=body, headers=headers, extensions=request.extensions
            ) as response:
                status_code = response.status_code
                await _drain_bounded(response)
    except TimeoutError:
        return AttemptResult(None, f"timed out after {timeout:g}s", elapsed_ms())
    except WebhookInputInvalid as refused:
        return AttemptResult(None, f"refused: {refused.detail}", elapsed_ms())
    except httpx.HTTPError as error:
        # The class and the library's short text; never the request (headers, body).
        detail = str(error).splitlines()[0] if str(error) else ""
        return AttemptResult(None, f"{type(error).__name__}: {detail}".rstrip(": "), elapsed_ms())
    except OSError as error:
        return AttemptResult(
            None, f"{type(error).__name__}: {error.strerror or error}", elapsed_ms()
        )
    return AttemptResult(status_code, None, elapsed_ms())


async def _drain_bounded(response: httpx.Response) -> None:
    """Read and drop the body, up to RESPONSE_READ_LIMIT bytes and RESPONSE_READ_SECONDS
    (see the module's note). A body that is too long, too slow or broken only costs the
    connection (closing the stream unread drops it): the status is the answer."""
    read = 0
    try:
        async with asyncio.timeout(RESPONSE_READ_SECONDS):
            async for chunk in response.aiter_raw():
                read += len(chunk)
                if read > RESPONSE_READ_LIMIT:
                    return
    except (TimeoutError, httpx.HTTPError):
        return
