"""Channels and groups a tenant's accounts post to: connected by @username, invite link
or id, checked with Telegram (what the chat is, and the account's rights in it), kept
fresh by a ``low`` refresh, listed and removed.

Doors: ``ChannelStore`` (the rows; the HTTP API runs it as the tenant under row-level
security) and ``channel_target`` (the one parser of what a tenant names a chat by). The
worker's door is ``integration_service.channels.check.check_channel`` (the job's body, on
the account's warm client), kept out of this package's import so the API process does not
load the worker runtime.
"""

from integration_service.channels.rights import Rights
from integration_service.channels.store import Channel, ChannelExists, ChannelFacts, ChannelStore
from integration_service.channels.targets import ChannelTarget, channel_target

__all__ = [
    "Channel",
    "ChannelExists",
    "ChannelFacts",
    "ChannelStore",
    "ChannelTarget",
    "Rights",
    "channel_target",
]
