"""Channels and groups a tenant's accounts post to: connected by peer, listed, removed.

The door is ``ChannelStore``. It runs on whatever engine it is given; the HTTP API gives
it the tenant-scoped engine, so every statement runs as the tenant under row-level
security. Resolving the peer and checking the account's rights come with the resources
issue; today a channel is an account plus the peer it posts to.
"""

from integration_service.channels.store import Channel, ChannelExists, ChannelStore

__all__ = ["Channel", "ChannelExists", "ChannelStore"]
