"""A Telethon session backed by PostgreSQL (in the manner of mautrix's PgSession).

- The auth key and data centre come from the stored, encrypted session material, as for
  every other client (telegram_sessions.session_string_enc).
- The entity cache (access hashes) is loaded from ``telegram_entities`` and what Telethon
  learns is collected here and written back by the feed, in the transaction that commits
  the events that introduced those peers: a takeover can address every peer seen before.
- Peers' phone numbers are never stored (personal data the service does not need).
- The update state is the event log's (``inbound_state``), read by the feed at start.
  Telethon's own copy is never written back: it runs ahead of what the log holds, and
  saving it would skip updates after a crash (``set_update_state`` is a no-op).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from telethon.sessions import StringSession

from integration_service.inbound.event_log import EntityRow


class PgSession(StringSession):  # type: ignore[misc]  # Telethon ships no type hints
    """Auth key from the stored material; entities from and to PostgreSQL."""

    def __init__(self, material: str, entities: Iterable[EntityRow] = ()) -> None:
        super().__init__(material)
        self._known: dict[int, tuple[Any, ...]] = {}
        self._unsaved: dict[int, EntityRow] = {}
        for row in entities:
            values = (row.entity_id, row.access_hash, row.username, row.phone, row.name)
            self._known[row.entity_id] = values
            self._entities.add(values)

    def process_entities(self, tlo: Any) -> None:
        for row in self._entities_to_rows(tlo):
            # Contacts' phone numbers are not ours to keep: peers are found by id/username.
            values = (row[0], row[1], row[2], None, row[4])
            entity_id = values[0]
            if self._known.get(entity_id) == values:
                continue
            old = self._known.get(entity_id)
            if old is not None:
                self._entities.discard(old)
            self._known[entity_id] = values
            self._entities.add(values)
            self._unsaved[entity_id] = EntityRow(*values)

    def take_unsaved(self) -> list[EntityRow]:
        """Entities learnt since the last call, to be written with the next commit."""
        rows = list(self._unsaved.values())
        self._unsaved.clear()
        return rows

    def give_back(self, rows: Iterable[EntityRow]) -> None:
        """A commit failed: keep its entities for the next one."""
        for row in rows:
            self._unsaved.setdefault(row.entity_id, row)

    def set_update_state(self, entity_id: int, state: Any) -> None:
        return None  # the event log owns the update state (module docstring)

    def get_update_state(self, entity_id: int) -> Any:
        return None

    def get_update_states(self) -> list[Any]:
        return []

    def save(self) -> str:
        # Telethon calls save() on disconnect; the material is stored by the login, and
        # a StringSession's save() would only render it (with the auth key) to a string.
        return ""
