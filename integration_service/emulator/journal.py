"""What changed in the data centre since it was last saved, and the hook that saves it.

The core (auth keys) and the world (accounts, keys' sign-ins, boxes, ...) note every change
here as it happens: a row that changed (``changed``, by table and key; the saver reads its
current value) or a row that was added to an append-only table (``appended``). The saver
(``world/persistence.py``) drains the journal in one transaction. Until a saver attaches,
the journal records nothing, so an emulator that does not persist pays nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import Any

Changed = dict[str, set[Hashable]]
Appended = dict[str, list[Any]]


class Journal:
    def __init__(self) -> None:
        self.enabled = False
        self._changed: Changed = {}
        self._appended: Appended = {}
        self._save: Callable[[], None] | None = None

    def attach(self, save: Callable[[], None]) -> None:
        """Start recording; ``save`` writes everything pending (it calls ``drain``)."""
        self.enabled = True
        self._save = save

    def changed(self, table: str, key: Hashable) -> None:
        if self.enabled:
            self._changed.setdefault(table, set()).add(key)

    def appended(self, table: str, row: Any) -> None:
        if self.enabled:
            self._appended.setdefault(table, []).append(row)

    @property
    def pending(self) -> bool:
        return bool(self._changed or self._appended)

    def drain(self) -> tuple[Changed, Appended]:
        changed, appended = self._changed, self._appended
        self._changed, self._appended = {}, {}
        return changed, appended

    def requeue(self, changed: Changed, appended: Appended) -> None:
        """Put back what a failed save drained (before anything noted since)."""
        for table, keys in changed.items():
            self._changed.setdefault(table, set()).update(keys)
        for table, rows in appended.items():
            self._appended[table] = rows + self._appended.get(table, [])

    def clear(self) -> None:
        self._changed, self._appended = {}, {}

    def save(self) -> None:
        """Write what is pending now (a no-op when nothing changed or nothing persists)."""
        if self._save is not None and self.pending:
            self._save()
