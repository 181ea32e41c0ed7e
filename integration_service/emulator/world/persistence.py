"""The world on disk: one SQLite database in the emulator's ``--state-dir``.

Telegram keeps an account's authorisations server-side for as long as they live: an auth
key is "a 2048-bit key shared by the client device and the server", one per "permanent
session" on a device (core.telegram.org/mtproto/description#authorization-key-auth-key),
and a client that comes back with it is still signed in. So a restarted emulator must
know what it knew: every auth key with what it remembers per key (layer, initConnection,
burnt), which user each key is signed in as (or waits for a 2FA password, or how it was
revoked), users and bots, bans, 2FA verifiers, basic groups and channels, every message
box and channel post with its pts, the random_ids each sender used (so a repeat stays
RANDOM_ID_DUPLICATE), the delivery log, login codes and QR tokens in flight, and the
secrets access hashes and server salts derive from.

Not kept: open connections and MTProto sessions ("The server may unilaterally forget any
client sessions; clients should be able to handle this", core.telegram.org/mtproto/
description#session; clients get new_session_created), SRP challenges of an unfinished
2FA step (the client's checkPassword gets SRP_ID_INVALID and asks again), injected faults
and the connection counters of ``/stats`` (test instruments, not Telegram's state).

How it is written: the journal (emulator/journal.py) names what changed; ``save`` writes
exactly those rows in one transaction, before the answer of the call that made the change
leaves the emulator. The database runs in WAL mode with ``synchronous=NORMAL``: a commit is
one append to the write-ahead log, no fsync, so a send costs a few small row writes, and
a killed emulator (SIGKILL, a crash) loses nothing it answered; after a power cut or an
OS crash the database is still consistent but may miss the last commits. The file holds
auth keys and bot tokens: it is created 0600, in the 0700 state directory.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import sqlite3
import threading
from collections.abc import Hashable, Iterable
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

from telethon.extensions import BinaryReader
from telethon.tl import types

from integration_service.emulator.auth_keys import AUTH_KEYS_TABLE, AuthKeyStore
from integration_service.emulator.journal import Appended, Changed
from integration_service.emulator.world.accounts import (
    CHANNELS_TABLE,
    DEFAULT_ADMIN_RIGHTS,
    GROUPS_TABLE,
    Account,
    Channel,
    Group,
)
from integration_service.emulator.world.auth import LOGIN_CODES_TABLE, PendingCode
from integration_service.emulator.world.boxes import (
    CHANNEL_POSTS_DELETED,
    CHANNEL_POSTS_TABLE,
    CHANNEL_UPDATES_TABLE,
    USER_MESSAGES_DELETED,
    USER_MESSAGES_TABLE,
    USER_UPDATES_TABLE,
    ChannelEntry,
    ChannelPost,
    UserEntry,
)
from integration_service.emulator.world.delivery_log import DELIVERIES_TABLE, DeliveredMessage
from integration_service.emulator.world.keys import KEY_STATES_TABLE, KeyState
from integration_service.emulator.world.message_copies import MESSAGE_COPIES_TABLE
from integration_service.emulator.world.messaging import RANDOM_IDS_TABLE
from integration_service.emulator.world.qr import LOGIN_TOKENS_TABLE, LoginTokenRecord
from integration_service.emulator.world.settings import SETTINGS_TABLE
from integration_service.emulator.world.srp import PasswordRecord
from integration_service.emulator.world.state import ACCOUNTS_TABLE, PASSWORDS_TABLE

if TYPE_CHECKING:
    from integration_service.emulator.world.world import TelegramWorld

log = logging.getLogger(__name__)

WORLD_DB = "world.sqlite3"
SCHEMA_VERSION = 2
# schema 1, then each migration in turn (a fresh file takes the same path as an old one)
_SCHEMA = """
CREATE TABLE meta (name TEXT PRIMARY KEY, value BLOB NOT NULL);
CREATE TABLE auth_keys (
    key_id INTEGER PRIMARY KEY, key BLOB NOT NULL, created_at REAL NOT NULL, layer INTEGER,
    client_info TEXT NOT NULL, connection_inited INTEGER NOT NULL, duplicated INTEGER NOT NULL
);
CREATE TABLE key_states (
    key_id INTEGER PRIMARY KEY, user_id INTEGER, password_pending_user INTEGER,
    revoked_as TEXT, signed_in_at REAL NOT NULL
);
CREATE TABLE accounts (user_id INTEGER PRIMARY KEY, data TEXT NOT NULL);
CREATE TABLE groups (chat_id INTEGER PRIMARY KEY, data TEXT NOT NULL);
CREATE TABLE channels (channel_id INTEGER PRIMARY KEY, data TEXT NOT NULL);
CREATE TABLE passwords (
    user_id INTEGER PRIMARY KEY, salt1 BLOB NOT NULL, salt2 BLOB NOT NULL,
    verifier TEXT NOT NULL, hint TEXT
);
CREATE TABLE user_messages (
    user_id INTEGER NOT NULL, pts INTEGER NOT NULL, message BLOB NOT NULL,
    PRIMARY KEY (user_id, pts)
) WITHOUT ROWID;
CREATE TABLE channel_posts (
    channel_id INTEGER NOT NULL, pts INTEGER NOT NULL, message_id INTEGER NOT NULL,
    sender_id INTEGER NOT NULL, text TEXT NOT NULL, date REAL NOT NULL,
    PRIMARY KEY (channel_id, pts)
) WITHOUT ROWID;
CREATE TABLE random_ids (
    sender_id INTEGER NOT NULL, random_id INTEGER NOT NULL, PRIMARY KEY (sender_id, random_id)
) WITHOUT ROWID;
CREATE TABLE deliveries (
    log_id INTEGER PRIMARY KEY, sender_id INTEGER NOT NULL, peer_type TEXT NOT NULL,
    peer_id INTEGER NOT NULL, text TEXT NOT NULL, random_id INTEGER NOT NULL,
    date REAL NOT NULL, message_id INTEGER NOT NULL
);
CREATE TABLE login_codes (
    phone_code_hash TEXT PRIMARY KEY, phone TEXT NOT NULL, code TEXT NOT NULL,
    auth_key_id INTEGER NOT NULL, expires_at REAL NOT NULL, wrong_attempts INTEGER NOT NULL,
    usable INTEGER NOT NULL, newest INTEGER NOT NULL
);
CREATE TABLE login_tokens (
    token BLOB PRIMARY KEY, auth_key_id INTEGER NOT NULL, expires_at REAL NOT NULL,
    client_info TEXT NOT NULL, approved_by INTEGER
);
"""
_MIGRATIONS = {
    # 2: edits and deletions. user_messages / channel_posts hold each message as it reads
    # now under the pts it arrived with (an edit rewrites the row; a deletion leaves a
    # tombstone, messageEmpty / deleted = 1, so the box's steps stay as they were);
    # the edit and deletion steps of each box are rows of their own; which message in
    # each box is the same private/group message; the update settings.
    2: """
ALTER TABLE channel_posts ADD COLUMN reply_to INTEGER;
ALTER TABLE channel_posts ADD COLUMN edit_date REAL;
ALTER TABLE channel_posts ADD COLUMN deleted INTEGER NOT NULL DEFAULT 0;
CREATE TABLE user_updates (
    user_id INTEGER NOT NULL, pts INTEGER NOT NULL, pts_count INTEGER NOT NULL,
    date REAL NOT NULL, update_tl BLOB NOT NULL, PRIMARY KEY (user_id, pts)
) WITHOUT ROWID;
CREATE TABLE channel_updates (
    channel_id INTEGER NOT NULL, pts INTEGER NOT NULL, pts_count INTEGER NOT NULL,
    date REAL NOT NULL, edited TEXT, deleted TEXT, PRIMARY KEY (channel_id, pts)
) WITHOUT ROWID;
CREATE TABLE message_copies (
    sender_id INTEGER NOT NULL, sender_message_id INTEGER NOT NULL, user_id INTEGER NOT NULL,
    message_id INTEGER NOT NULL, PRIMARY KEY (user_id, message_id)
) WITHOUT ROWID;
CREATE TABLE settings (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
""",
}
_TABLES = (
    "meta",
    "auth_keys",
    "key_states",
    "accounts",
    "groups",
    "channels",
    "passwords",
    "user_messages",
    "channel_posts",
    "random_ids",
    "deliveries",
    "login_codes",
    "login_tokens",
    "user_updates",
    "channel_updates",
    "message_copies",
)  # not settings: the operator's, kept across POST /reset
_SIGN = 1 << 63


class WorldStorageError(RuntimeError):
    """The saved world cannot be used (another schema version, a damaged file)."""


def _signed(key_id: int) -> int:
    """Auth key ids are unsigned 64-bit; SQLite integers are signed."""
    return key_id - (1 << 64) if key_id >= _SIGN else key_id


def _unsigned(stored: int) -> int:
    return stored + (1 << 64) if stored < 0 else stored


def _group_data(group: Group) -> str:
    return json.dumps({**asdict(group), "members": sorted(group.members)})


def _channel_data(channel: Channel) -> str:
    data = asdict(channel)
    data["members"] = sorted(channel.members)
    data["admins"] = {str(user_id): sorted(rights) for user_id, rights in channel.admins.items()}
    return json.dumps(data)


def _channel_admins(saved: list[int] | dict[str, list[str]]) -> dict[int, frozenset[str]]:
    # Files written before admin rights were modelled list the admins' ids only: each keeps
    # the rights an admin was given then.
    if isinstance(saved, list):
        return dict.fromkeys(saved, DEFAULT_ADMIN_RIGHTS)
    return {int(user_id): frozenset(rights) for user_id, rights in saved.items()}


class WorldStorage:
    """The world's SQLite file; ``load`` once at start, then ``save`` after each change."""

    def __init__(self, path: Path) -> None:
        self.path = path
        if not path.exists():
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        os.chmod(path, 0o600)
        # One connection, used on the emulator's loop; the lock covers callers from tests.
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._lock = threading.Lock()
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        version = self._db.execute("PRAGMA user_version").fetchone()[0]
        if not 0 <= version <= SCHEMA_VERSION:
            self._db.close()
            raise WorldStorageError(
                f"{path} holds world schema {version}, this emulator reads {SCHEMA_VERSION}: "
                "delete the file (or the state directory) to start an empty world"
            )
        if version < SCHEMA_VERSION:
            steps = [_SCHEMA] if version == 0 else []
            steps += [_MIGRATIONS[v] for v in range(max(version, 1) + 1, SCHEMA_VERSION + 1)]
            self._db.executescript(
                f"BEGIN; {''.join(steps)} PRAGMA user_version={SCHEMA_VERSION}; COMMIT;"
            )

    @classmethod
    def in_state_dir(cls, state_dir: Path) -> WorldStorage:
        return cls(state_dir / WORLD_DB)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    # Loading ---------------------------------------------------------------------------

    def load(self, world: TelegramWorld) -> None:
        """Put the saved world into ``world`` (fresh secrets are saved when there is none)."""
        with self._lock:
            meta = dict(self._db.execute("SELECT name, value FROM meta"))
            if not meta:
                self._write_meta(world)
                self._load_settings(world)
                return
            self._load_keys(world, bytes(meta["salt_secret"]))
            self._load_directory(world, bytes(meta["hash_secret"]))
            self._load_logins(world)
            self._load_messages(world)
            self._load_settings(world)
        log.info(
            "emulator world loaded from %s: %d users, %d auth keys",
            self.path,
            len(world.directory.accounts),
            len(world.auth_keys) if world.auth_keys is not None else 0,
        )

    def _rows(self, query: str) -> Iterable[Any]:
        return self._db.execute(query)

    def _load_keys(self, world: TelegramWorld, salt_secret: bytes) -> None:
        if world.auth_keys is not None:
            records = []
            for key_id, key, created_at, layer, info, inited, duplicated in self._rows(
                "SELECT key_id, key, created_at, layer, client_info, connection_inited, "
                "duplicated FROM auth_keys"
            ):
                records.append(
                    {
                        "key_id": _unsigned(key_id),
                        "key": bytes(key),
                        "created_at": created_at,
                        "layer": layer,
                        "client_info": json.loads(info),
                        "connection_inited": bool(inited),
                        "duplicated": bool(duplicated),
                    }
                )
            world.auth_keys.restore(salt_secret, records)
        world.keys.keys = {
            _unsigned(key_id): KeyState(
                _unsigned(key_id),
                user_id=user_id,
                password_pending_user=pending,
                revoked_as=revoked_as,
                signed_in_at=signed_in_at,
            )
            for key_id, user_id, pending, revoked_as, signed_in_at in self._rows(
                "SELECT key_id, user_id, password_pending_user, revoked_as, signed_in_at "
                "FROM key_states"
            )
        }

    def _load_directory(self, world: TelegramWorld, hash_secret: bytes) -> None:
        accounts = [
            Account(**json.loads(data)) for (data,) in self._rows("SELECT data FROM accounts")
        ]
        groups = []
        for (data,) in self._rows("SELECT data FROM groups"):
            fields = json.loads(data)
            groups.append(Group(**{**fields, "members": set(fields["members"])}))
        channels = []
        for (data,) in self._rows("SELECT data FROM channels"):
            fields = json.loads(data)
            fields["members"] = set(fields["members"])
            fields["admins"] = _channel_admins(fields["admins"])
            channels.append(Channel(**fields))
        world.directory.restore(hash_secret, accounts, groups, channels)
        world.state.passwords = {
            user_id: PasswordRecord(bytes(salt1), bytes(salt2), int(verifier, 16), hint)
            for user_id, salt1, salt2, verifier, hint in self._rows(
                "SELECT user_id, salt1, salt2, verifier, hint FROM passwords"
            )
        }

    def _load_logins(self, world: TelegramWorld) -> None:
        codes = []
        for code_hash, phone, code, key_id, expires_at, attempts, usable, newest in self._rows(
            "SELECT phone_code_hash, phone, code, auth_key_id, expires_at, wrong_attempts, "
            "usable, newest FROM login_codes"
        ):
            pending = PendingCode(phone, code, code_hash, _unsigned(key_id), expires_at, attempts)
            codes.append((pending, bool(usable), bool(newest)))
        world.codes.restore(codes)
        world.qr.restore(
            [
                LoginTokenRecord(
                    bytes(token), _unsigned(key_id), expires_at, json.loads(info), approved_by
                )
                for token, key_id, expires_at, info, approved_by in self._rows(
                    "SELECT token, auth_key_id, expires_at, client_info, approved_by "
                    "FROM login_tokens"
                )
            ]
        )

    def _load_messages(self, world: TelegramWorld) -> None:
        user_messages = []
        for user_id, pts, raw in self._rows(
            "SELECT user_id, pts, message FROM user_messages ORDER BY user_id, pts"
        ):
            message = BinaryReader(bytes(raw)).tgread_object()
            assert isinstance(message, types.Message | types.MessageEmpty)
            user_messages.append((user_id, pts, message))
        posts = [
            (row[0], ChannelPost(*row[1:-1]), bool(row[-1]))
            for row in self._rows(
                "SELECT channel_id, pts, message_id, sender_id, text, date, reply_to, edit_date, "
                "deleted FROM channel_posts ORDER BY channel_id, pts"
            )
        ]
        user_updates = []
        for user_id, pts, pts_count, date, raw in self._rows(
            "SELECT user_id, pts, pts_count, date, update_tl FROM user_updates "
            "ORDER BY user_id, pts"
        ):
            update = BinaryReader(bytes(raw)).tgread_object()
            assert isinstance(update, types.UpdateEditMessage | types.UpdateDeleteMessages)
            user_updates.append((user_id, UserEntry(pts, pts_count, date, update=update)))
        channel_updates = []
        for channel_id, pts, pts_count, date, edited, deleted in self._rows(
            "SELECT channel_id, pts, pts_count, date, edited, deleted FROM channel_updates "
            "ORDER BY channel_id, pts"
        ):
            entry = ChannelEntry(
                pts,
                pts_count,
                date,
                edited=None if edited is None else ChannelPost(**json.loads(edited)),
                deleted=tuple(json.loads(deleted)) if deleted is not None else (),
            )
            channel_updates.append((channel_id, entry))
        world.boxes.restore(user_messages, posts, user_updates, channel_updates)
        world.copies.restore(
            list(
                self._rows(
                    "SELECT sender_id, sender_message_id, user_id, message_id FROM message_copies"
                )
            )
        )
        world.messaging.restore_random_ids(
            list(self._rows("SELECT sender_id, random_id FROM random_ids"))
        )
        world.deliveries.restore(
            [
                DeliveredMessage(*row)
                for row in self._rows(
                    "SELECT log_id, sender_id, peer_type, peer_id, text, random_id, date, "
                    "message_id FROM deliveries ORDER BY log_id"
                )
            ]
        )

    def _load_settings(self, world: TelegramWorld) -> None:
        """Saved settings, except those the operator gave this run (they win; the world
        saves them once attached)."""
        for name, value in self._rows("SELECT name, value FROM settings"):
            if name in world.settings.names() and name not in world.explicit_settings:
                world.settings.set(name, value)

    # Saving ----------------------------------------------------------------------------

    def save(self, world: TelegramWorld) -> None:
        """Write what the journal names, in one transaction; on failure keep it pending."""
        journal = world.state.journal
        with self._lock:
            changed, appended = journal.drain()
            try:
                self._db.execute("BEGIN")
                self._write_changed(world, changed)
                self._write_appended(appended)
                self._db.execute("COMMIT")
            except sqlite3.Error:
                if self._db.in_transaction:
                    self._db.execute("ROLLBACK")
                journal.requeue(changed, appended)
                log.exception("emulator world not saved to %s (kept pending)", self.path)

    def wipe(self, world: TelegramWorld) -> None:
        """Forget everything saved (POST /reset); keep the new world's fresh secrets."""
        with self._lock:
            self._db.execute("BEGIN")
            for table in _TABLES:
                self._db.execute(f"DELETE FROM {table}")  # noqa: S608 - our table names
            self._write_meta(world, in_transaction=True)
            self._db.execute("COMMIT")
            self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")

    def _write_meta(self, world: TelegramWorld, *, in_transaction: bool = False) -> None:
        salt_secret = (
            world.auth_keys.salt_secret if world.auth_keys is not None else secrets.token_bytes(32)
        )
        rows = [("hash_secret", world.directory.hash_secret), ("salt_secret", salt_secret)]
        if not in_transaction:
            self._db.execute("BEGIN")
        self._db.executemany("INSERT OR REPLACE INTO meta (name, value) VALUES (?, ?)", rows)
        if not in_transaction:
            self._db.execute("COMMIT")

    def _write_changed(self, world: TelegramWorld, changed: Changed) -> None:
        db = self._db
        directory = world.directory
        for user_id in _ints(changed.get(ACCOUNTS_TABLE)):
            account = directory.accounts.get(user_id)
            if account is None:
                db.execute("DELETE FROM accounts WHERE user_id = ?", (user_id,))
            else:
                db.execute(
                    "INSERT OR REPLACE INTO accounts (user_id, data) VALUES (?, ?)",
                    (user_id, json.dumps(asdict(account))),
                )
        for chat_id in _ints(changed.get(GROUPS_TABLE)):
            group = directory.groups[chat_id]
            db.execute(
                "INSERT OR REPLACE INTO groups (chat_id, data) VALUES (?, ?)",
                (chat_id, _group_data(group)),
            )
        for channel_id in _ints(changed.get(CHANNELS_TABLE)):
            channel = directory.channels[channel_id]
            db.execute(
                "INSERT OR REPLACE INTO channels (channel_id, data) VALUES (?, ?)",
                (channel_id, _channel_data(channel)),
            )
        for user_id in _ints(changed.get(PASSWORDS_TABLE)):
            record = world.state.passwords.get(user_id)
            if record is None:
                db.execute("DELETE FROM passwords WHERE user_id = ?", (user_id,))
            else:
                db.execute(
                    "INSERT OR REPLACE INTO passwords (user_id, salt1, salt2, verifier, hint) "
                    "VALUES (?, ?, ?, ?, ?)",
                    (
                        user_id,
                        record.salt1,
                        record.salt2,
                        format(record.verifier, "x"),
                        record.hint,
                    ),
                )
        for key_id in _ints(changed.get(KEY_STATES_TABLE)):
            state = world.keys.peek(key_id)
            if state is None or not state.worth_keeping:
                db.execute("DELETE FROM key_states WHERE key_id = ?", (_signed(key_id),))
            else:
                db.execute(
                    "INSERT OR REPLACE INTO key_states (key_id, user_id, password_pending_user, "
                    "revoked_as, signed_in_at) VALUES (?, ?, ?, ?, ?)",
                    (
                        _signed(key_id),
                        state.user_id,
                        state.password_pending_user,
                        state.revoked_as,
                        state.signed_in_at,
                    ),
                )
        if AUTH_KEYS_TABLE in changed:
            self._write_auth_keys(world.auth_keys, _ints(changed[AUTH_KEYS_TABLE]))
        for name in changed.get(SETTINGS_TABLE, ()):
            db.execute(
                "INSERT OR REPLACE INTO settings (name, value) VALUES (?, ?)",
                (name, getattr(world.settings, str(name))),
            )
        if LOGIN_CODES_TABLE in changed:
            db.execute("DELETE FROM login_codes")
            db.executemany(
                "INSERT INTO login_codes (phone_code_hash, phone, code, auth_key_id, expires_at, "
                "wrong_attempts, usable, newest) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    (
                        code.phone_code_hash,
                        code.phone,
                        code.code,
                        _signed(code.auth_key_id),
                        code.expires_at,
                        code.wrong_attempts,
                        usable,
                        newest,
                    )
                    for code, usable, newest in world.codes.snapshot()
                ],
            )
        if LOGIN_TOKENS_TABLE in changed:
            db.execute("DELETE FROM login_tokens")
            db.executemany(
                "INSERT INTO login_tokens (token, auth_key_id, expires_at, client_info, "
                "approved_by) VALUES (?, ?, ?, ?, ?)",
                [
                    (
                        record.token,
                        _signed(record.auth_key_id),
                        record.expires_at,
                        json.dumps(record.client_info),
                        record.approved_by,
                    )
                    for record in world.qr.snapshot()
                ],
            )

    def _write_auth_keys(self, store: AuthKeyStore | None, key_ids: list[int]) -> None:
        if store is None:
            return
        for key_id in key_ids:
            record = store.get(key_id)
            if record is None:
                self._db.execute("DELETE FROM auth_keys WHERE key_id = ?", (_signed(key_id),))
                continue
            self._db.execute(
                "INSERT OR REPLACE INTO auth_keys (key_id, key, created_at, layer, client_info, "
                "connection_inited, duplicated) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    _signed(key_id),
                    record.key,
                    record.created_at,
                    record.layer,
                    json.dumps(record.client_info),
                    record.connection_inited,
                    record.duplicated,
                ),
            )

    def _write_appended(self, appended: Appended) -> None:
        db = self._db
        db.executemany(
            "INSERT OR REPLACE INTO user_messages (user_id, pts, message) VALUES (?, ?, ?)",
            [
                (user_id, pts, bytes(message))
                for user_id, pts, message in appended.get(USER_MESSAGES_TABLE, ())
            ],
        )
        db.executemany(
            "INSERT OR REPLACE INTO channel_posts (channel_id, pts, message_id, sender_id, text, "
            "date, reply_to, edit_date) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            [
                (
                    channel_id,
                    post.pts,
                    post.message_id,
                    post.sender_id,
                    post.text,
                    post.date,
                    post.reply_to,
                    post.edit_date,
                )
                for channel_id, post in appended.get(CHANNEL_POSTS_TABLE, ())
            ],
        )
        # deletions after the rows they delete (both can be in one save): a tombstone keeps
        # the pts step, not the content
        db.executemany(
            "UPDATE user_messages SET message = ? WHERE user_id = ? AND pts = ?",
            [
                (bytes(types.MessageEmpty(id=message_id, peer_id=None)), user_id, pts)
                for user_id, pts, message_id in appended.get(USER_MESSAGES_DELETED, ())
            ],
        )
        db.executemany(
            "UPDATE channel_posts SET deleted = 1, text = '' WHERE channel_id = ? AND pts = ?",
            appended.get(CHANNEL_POSTS_DELETED, ()),
        )
        db.executemany(
            "INSERT OR REPLACE INTO user_updates (user_id, pts, pts_count, date, update_tl) "
            "VALUES (?, ?, ?, ?, ?)",
            [
                (user_id, entry.pts, entry.pts_count, entry.date, bytes(entry.update))
                for user_id, entry in appended.get(USER_UPDATES_TABLE, ())
            ],
        )
        db.executemany(
            "INSERT OR REPLACE INTO channel_updates (channel_id, pts, pts_count, date, edited, "
            "deleted) VALUES (?, ?, ?, ?, ?, ?)",
            [
                (
                    channel_id,
                    entry.pts,
                    entry.pts_count,
                    entry.date,
                    None if entry.edited is None else json.dumps(asdict(entry.edited)),
                    json.dumps(list(entry.deleted)) if entry.deleted else None,
                )
                for channel_id, entry in appended.get(CHANNEL_UPDATES_TABLE, ())
            ],
        )
        db.executemany(
            "INSERT OR REPLACE INTO message_copies (sender_id, sender_message_id, user_id, "
            "message_id) VALUES (?, ?, ?, ?)",
            appended.get(MESSAGE_COPIES_TABLE, ()),
        )
        db.executemany(
            "INSERT OR IGNORE INTO random_ids (sender_id, random_id) VALUES (?, ?)",
            appended.get(RANDOM_IDS_TABLE, ()),
        )
        db.executemany(
            "INSERT OR REPLACE INTO deliveries (log_id, sender_id, peer_type, peer_id, text, "
            "random_id, date, message_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            [
                (
                    entry.log_id,
                    entry.sender_id,
                    entry.peer_type,
                    entry.peer_id,
                    entry.text,
                    entry.random_id,
                    entry.date,
                    entry.message_id,
                )
                for entry in appended.get(DELIVERIES_TABLE, ())
            ],
        )


def _ints(keys: set[Hashable] | None) -> list[int]:
    return [int(key) for key in keys or () if isinstance(key, int)]
