"""Where a webhook may go: the URL rule and the SSRF guard.

A target is an absolute http(s) URL with a host and no credentials. Unless
WEBHOOK_ALLOW_PRIVATE is true, every address the host resolves to must be globally
routable: loopback, private, link-local, shared (CGNAT), multicast, reserved and
unspecified addresses are refused. The check runs when a subscription is added and again
before every attempt (DNS answers change), and the attempt connects to the address that
was checked (the host stays in the Host header and TLS SNI), so a second resolution
cannot slip another address in between (DNS rebinding).
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import SplitResult, urlsplit, urlunsplit

from integration_service.webhooks.errors import WebhookTargetForbidden, WebhookUrlInvalid

MAX_URL_LENGTH = 2048
DEFAULT_PORTS = {"http": 80, "https": 443}
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


@dataclass(frozen=True, slots=True)
class TargetUrl:
    """A URL that passed the URL rule (not yet the address rule)."""

    url: str
    scheme: str
    host: str
    port: int

    @property
    def host_header(self) -> str:
        shown = f"[{self.host}]" if ":" in self.host else self.host
        return shown if DEFAULT_PORTS[self.scheme] == self.port else f"{shown}:{self.port}"


def parse_url(value: object) -> TargetUrl:
    if not isinstance(value, str) or not value.strip():
        raise WebhookUrlInvalid("must be an http:// or https:// URL")
    text = value.strip()
    if len(text) > MAX_URL_LENGTH:
        raise WebhookUrlInvalid(f"must be at most {MAX_URL_LENGTH} characters")
    if any(ch.isspace() or ord(ch) < 0x20 for ch in text):
        raise WebhookUrlInvalid("must not contain spaces or control characters")
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError:
        raise WebhookUrlInvalid("is not a valid URL (bad host or port)") from None
    scheme = parts.scheme.lower()
    if scheme not in DEFAULT_PORTS:
        raise WebhookUrlInvalid("must be an http:// or https:// URL")
    if not parts.hostname:
        raise WebhookUrlInvalid("must name a host")
    if parts.username is not None or parts.password is not None:
        # They would sit in logs and listings; a receiver authenticates by signature.
        raise WebhookUrlInvalid("must not carry credentials (user:password@)")
    if parts.fragment:
        raise WebhookUrlInvalid("must not have a #fragment")
    return TargetUrl(
        url=text, scheme=scheme, host=parts.hostname, port=port or DEFAULT_PORTS[scheme]
    )


def forbidden_reason(address: IPAddress) -> str | None:
    """Why an address may not be a webhook target, or None if it is globally routable."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    if address.is_loopback:
        return "loopback"
    if address.is_link_local:
        return "link-local"
    if address.is_unspecified:
        return "unspecified"
    if address.is_multicast:
        return "multicast"
    if address.is_private:
        return "private"
    if not address.is_global:
        return "not globally routable"
    return None


def _addresses(infos: list[tuple[object, ...]]) -> list[IPAddress]:
    found: list[IPAddress] = []
    for info in infos:
        sockaddr = info[4]
        assert isinstance(sockaddr, tuple)
        # Scope ids ("fe80::1%eth0") are not part of the address.
        address = ipaddress.ip_address(str(sockaddr[0]).split("%", 1)[0])
        if address not in found:
            found.append(address)
    return found


def check_addresses(target: TargetUrl, addresses: list[IPAddress]) -> list[IPAddress]:
    if not addresses:
        raise WebhookTargetForbidden(f"host {target.host} resolves to no address")
    for address in addresses:
        reason = forbidden_reason(address)
        if reason is not None:
            raise WebhookTargetForbidden(
                f"host {target.host} resolves to {address}, a {reason} address "
                "(allowed only with WEBHOOK_ALLOW_PRIVATE=true)"
            )
    return addresses


def _literal(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


def resolve_checked(target: TargetUrl) -> list[IPAddress]:
    """Resolve now (blocking) and refuse a forbidden target; its addresses otherwise."""
    literal = _literal(target.host)
    if literal is not None:
        return check_addresses(target, [literal])
    try:
        infos = socket.getaddrinfo(target.host, target.port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError):
        raise WebhookTargetForbidden(f"host {target.host} does not resolve") from None
    return check_addresses(target, _addresses(list(infos)))


async def resolve_checked_async(target: TargetUrl) -> list[IPAddress]:
    """The same check on the running loop, before each delivery attempt."""
    literal = _literal(target.host)
    if literal is not None:
        return check_addresses(target, [literal])
    loop = asyncio.get_running_loop()
    try:
        infos = await loop.getaddrinfo(target.host, target.port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError):
        raise WebhookTargetForbidden(f"host {target.host} does not resolve") from None
    return check_addresses(target, _addresses(list(infos)))


@dataclass(frozen=True, slots=True)
class PinnedRequest:
    """Where to connect for one attempt: the checked address, with the original host in
    the Host header and (for https) as the TLS server name that certificates are checked
    against."""

    url: str
    headers: dict[str, str]
    # The TLS server name (https to a pinned address), else None.
    server_hostname: str | None


def pinned(target: TargetUrl, address: IPAddress | None) -> PinnedRequest:
    """The request for ``target`` sent to ``address`` (None: let the client resolve)."""
    if address is None or _literal(target.host) is not None:
        return PinnedRequest(target.url, {}, None)
    parts = urlsplit(target.url)
    shown = f"[{address}]" if address.version == 6 else str(address)
    netloc = f"{shown}:{target.port}"
    url = urlunsplit(SplitResult(parts.scheme, netloc, parts.path, parts.query, ""))
    server_hostname = target.host if target.scheme == "https" else None
    return PinnedRequest(url, {"Host": target.host_header}, server_hostname)
