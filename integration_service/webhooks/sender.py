"""One HTTP attempt: the SSRF check, the POST, a hard cut at WEBHOOK_TIMEOUT.

At most RESPONSE_READ_LIMIT bytes of the response body are read and dropped (a receiver
could send gigabytes): a short body read to its end leaves the connection reusable, which
is what keeps a busy subscription on warm keep-alive connections instead of a new TCP
connection per event; a longer one is cut and its connection closed. Redirects are not
followed (a 3xx is a failure: following it could lead to an address the check never saw).
"""

from __future__ import annotations

import asyncio
import time

import aiohttp

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
READ_CHUNK = 16 * 1024


def http_session(concurrency: int) -> aiohttp.ClientSession:
    """The dispatcher's one client: ``concurrency`` connections at most, kept alive; no
    cookies (one receiver's cookie must never reach another tenant's), no proxy from the
    environment (the address checked is the one called), no decompression (the body is
    dropped). The hard cut is asyncio's (``attempt``)."""
    return aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=concurrency, limit_per_host=0),
        cookie_jar=aiohttp.DummyCookieJar(),
        trust_env=False,
        auto_decompress=False,
        timeout=aiohttp.ClientTimeout(total=None),
    )


async def attempt(
    client: aiohttp.ClientSession,
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
            async with client.post(
                request.url,
                data=body,
                headers=headers,
                allow_redirects=False,
                server_hostname=request.server_hostname,
            ) as response:
                status_code = response.status
                await _drain_bounded(response)
    except TimeoutError:
        return AttemptResult(None, f"timed out after {timeout:g}s", elapsed_ms())
    except WebhookInputInvalid as refused:
        return AttemptResult(None, f"refused: {refused.detail}", elapsed_ms())
    except aiohttp.ClientConnectorError as error:
        # The class and the socket's reason; never the request (URL, headers, body).
        return AttemptResult(
            None,
            f"{type(error).__name__}: {error.os_error.strerror or 'connect failed'}",
            elapsed_ms(),
        )
    except aiohttp.ClientError as error:
        return AttemptResult(None, type(error).__name__, elapsed_ms())
    except OSError as error:
        return AttemptResult(
            None, f"{type(error).__name__}: {error.strerror or error}", elapsed_ms()
        )
    return AttemptResult(status_code, None, elapsed_ms())


async def _drain_bounded(response: aiohttp.ClientResponse) -> None:
    """Read and drop the body, up to RESPONSE_READ_LIMIT bytes and RESPONSE_READ_SECONDS
    (see the module's note). A body that is too long, too slow or broken only costs the
    connection (leaving the response unread closes it): the status is the answer."""
    read = 0
    try:
        async with asyncio.timeout(RESPONSE_READ_SECONDS):
            while chunk := await response.content.read(READ_CHUNK):
                read += len(chunk)
                if read > RESPONSE_READ_LIMIT:
                    return
    except (TimeoutError, aiohttp.ClientError):
        return
