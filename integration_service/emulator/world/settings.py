"""The data centre's tunable limits on how much of an update history it replays.

Telegram keeps a bounded history per message box: a client whose pts lags too far behind
gets ``updates.differenceTooLong`` (core.telegram.org/constructor/updates.differenceTooLong)
or ``updates.channelDifferenceTooLong``, which "usually happens for updates older than
latestPts - 100000" in channels (core.telegram.org/type/updates.ChannelDifference; "do not
rely on this value"), and it hands a long difference out in ``updates.differenceSlice``
pieces. Both numbers are settings here so tests can reach them with a few messages.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

SETTINGS_TABLE = "settings"
# the only figure Telegram documents (channels); used for accounts too
DEFAULT_DIFFERENCE_LIMIT = 100_000
# box entries per updates.differenceSlice (getChannelDifference takes the client's limit)
DEFAULT_DIFFERENCE_SLICE = 100
MAX_SETTING = 10_000_000


@dataclass
class UpdateSettings:
    # a box whose pts is more than this ahead of the client's answers ...TooLong
    difference_limit: int = DEFAULT_DIFFERENCE_LIMIT
    # at most this many box entries per updates.getDifference answer
    difference_slice: int = DEFAULT_DIFFERENCE_SLICE

    @classmethod
    def names(cls) -> tuple[str, ...]:
        return tuple(f.name for f in fields(cls))

    def set(self, name: str, value: int) -> None:
        if name not in self.names():
            raise ValueError(f"unknown setting {name!r} (known: {', '.join(self.names())})")
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_SETTING:
            raise ValueError(f"{name} must be an integer from 1 to {MAX_SETTING}")
        setattr(self, name, value)

    def as_dict(self) -> dict[str, int]:
        return {name: getattr(self, name) for name in self.names()}
