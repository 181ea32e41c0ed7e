"""TelegramWorld: the emulated Telegram behind the MTProto core (the ``World`` of rpc.py).

``dispatch`` does what Telegram's front does before any method runs: a banned account
gets USER_DEACTIVATED_BAN on every call, injected faults fire, and a method that needs a
signed-in key answers AUTH_KEY_UNREGISTERED (or SESSION_REVOKED after such a revocation)
on a key without one. Everything runs on the caller's asyncio loop; state is plain dicts.

With storage attached (``attach_storage``, which the runner does for ``--state-dir``), every
change is noted in the state's journal and saved before the answer leaves ``dispatch``
(and before a control API call answers): a restarted data centre keeps its accounts, keys
and messages, as Telegram does.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from telethon.tl import functions

from integration_service.emulator.auth_keys import AuthKeyStore
from integration_service.emulator.rpc import CallContext, RpcError
from integration_service.emulator.world.auth import CodeLogin
from integration_service.emulator.world.boxes import MessageBoxes
from integration_service.emulator.world.chats import ChatMethods
from integration_service.emulator.world.delivery import Delivery
from integration_service.emulator.world.delivery_log import DeliveryLog
from integration_service.emulator.world.differences import Differences
from integration_service.emulator.world.faults import FaultBook
from integration_service.emulator.world.help_methods import HelpMethods
from integration_service.emulator.world.inbound import Inbound
from integration_service.emulator.world.message_copies import MessageCopies
from integration_service.emulator.world.messaging import Messaging
from integration_service.emulator.world.password_login import PasswordLogin
from integration_service.emulator.world.qr import QrLogin
from integration_service.emulator.world.settings import SETTINGS_TABLE, UpdateSettings
from integration_service.emulator.world.state import Clock, WorldState
from integration_service.emulator.world.world_control import WorldControl

if TYPE_CHECKING:
    from integration_service.emulator.world.persistence import WorldStorage

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class _Route:
    handler: Callable[..., Awaitable[Any]]
    # True: needs a signed-in key and receives the caller's Account as third argument
    needs_account: bool


class TelegramWorld(WorldControl):
    def __init__(
        self,
        *,
        login_token_ttl: float = 30.0,
        code_ttl: float = 300.0,
        dc_id: int = 2,
        dc_host: str = "127.0.0.1",
        dc_port: int = 443,
        clock: Clock = time.time,
        difference_limit: int | None = None,
        difference_slice: int | None = None,
    ) -> None:
        # Set by the runner: push an update to every connection of an auth key, and
        # close connections (of one auth key, or all with None) returning how many.
        self.push_to_key: Callable[[int, Any], Awaitable[int | None]] | None = None
        self.drop_connections: Callable[[int | None], Awaitable[int]] | None = None
        # Set by the runner: the server's connection counters (control API /stats).
        self.server_stats: Callable[[], dict[str, Any]] | None = None
        # Set by the runner: the data centre's auth key store (WorldControl.mint_session).
        self.auth_keys: AuthKeyStore | None = None
        self.state = WorldState(clock=clock)
        self.help = HelpMethods(self.state, dc_id, dc_host, dc_port)
        self.codes = CodeLogin(self.state, code_ttl)
        self.passwords = PasswordLogin(self.state)
        self.qr = QrLogin(self.state, self._push_key, login_token_ttl)
        self.boxes = MessageBoxes(self.state)
        # Settings given here win over saved ones (the operator's command line); the rest
        # come from storage or the defaults.
        self.settings = UpdateSettings()
        self.explicit_settings: dict[str, int] = {}
        for name, value in (
            ("difference_limit", difference_limit),
            ("difference_slice", difference_slice),
        ):
            if value is not None:
                self.settings.set(name, value)
                self.explicit_settings[name] = value
        self.differences = Differences(self.state, self.boxes, self.settings)
        self.copies = MessageCopies(self.state.journal)
        self.delivery = Delivery(self.state, self.boxes, self.copies, self._push_user)
        self.deliveries = DeliveryLog(self.state.journal)
        self.messaging = Messaging(self.state, self.boxes, self.deliveries, self.delivery)
        self.inbound = Inbound(self.state, self.boxes, self.delivery)
        self.chats = ChatMethods(self.state)
        self.faults = FaultBook()
        self._routes = self._build_routes()
        self.storage: WorldStorage | None = None

    def attach_storage(self, storage: WorldStorage) -> None:
        """Load the saved world from ``storage`` and save every change to it from now on.
        Call before the first client is served (the runner does, right after wiring)."""
        storage.load(self)
        self.storage = storage
        if self.auth_keys is not None:
            self.auth_keys.journal = self.state.journal
        self.state.journal.attach(lambda: storage.save(self))
        for name in self.explicit_settings:  # the command line's settings are kept too
            self.state.journal.changed(SETTINGS_TABLE, name)
        self.save()

    def save(self) -> None:
        """Write every pending change (no-op without storage or changes)."""
        self.state.journal.save()

    def _wipe_storage(self) -> None:
        if self.storage is not None:
            self.storage.wipe(self)

    def _build_routes(self) -> dict[type, _Route]:
        open_ = {
            functions.help.GetConfigRequest: self.help.get_config,
            functions.help.GetNearestDcRequest: self.help.get_nearest_dc,
            functions.auth.SendCodeRequest: self.codes.send_code,
            functions.auth.SignInRequest: self.codes.sign_in,
            functions.auth.ImportBotAuthorizationRequest: self.codes.import_bot_authorization,
            functions.auth.ExportLoginTokenRequest: self.qr.export_login_token,
            functions.account.GetPasswordRequest: self.passwords.get_password,
            functions.auth.CheckPasswordRequest: self.passwords.check_password,
        }
        signed_in = {
            functions.users.GetUsersRequest: self.messaging.get_users,
            functions.updates.GetStateRequest: self.differences.get_state,
            functions.updates.GetDifferenceRequest: self.differences.get_difference,
            functions.updates.GetChannelDifferenceRequest: self.differences.get_channel_difference,
            functions.contacts.ResolveUsernameRequest: self.messaging.resolve_username,
            functions.messages.SendMessageRequest: self.messaging.send_message,
            functions.channels.GetChannelsRequest: self.chats.get_channels,
            functions.channels.GetParticipantRequest: self.chats.get_participant,
            functions.channels.GetFullChannelRequest: self.chats.get_full_channel,
            functions.messages.GetFullChatRequest: self.chats.get_full_chat,
            functions.messages.CheckChatInviteRequest: self.chats.check_chat_invite,
            functions.messages.ImportChatInviteRequest: self.chats.import_chat_invite,
            functions.auth.AcceptLoginTokenRequest: self._accept_login_token,
            functions.auth.LogOutRequest: self._log_out,
        }
        routes = {cls: _Route(fn, needs_account=False) for cls, fn in open_.items()}
        routes.update({cls: _Route(fn, needs_account=True) for cls, fn in signed_in.items()})
        return routes

    async def dispatch(self, request: Any, ctx: CallContext) -> Any:
        try:
            return await self._dispatch(request, ctx)
        finally:
            # Saved before the answer (or the error) reaches the client.
            self.save()

    async def _dispatch(self, request: Any, ctx: CallContext) -> Any:
        keys = self.state.keys
        keys.note_connection(ctx.auth_key_id, ctx.connection_id, ctx.push)
        account = self.state.account_of_key(ctx.auth_key_id)
        if account is not None and account.banned:
            raise RpcError(401, "USER_DEACTIVATED_BAN")
        route = self._routes.get(type(request))
        if route is None:
            raise RpcError(400, "INPUT_METHOD_INVALID")
        subject = account
        if subject is None and isinstance(getattr(request, "phone_number", None), str):
            # faults on a phone also hit its login calls (e.g. FLOOD_WAIT on sendCode)
            subject = self.state.directory.by_phone(request.phone_number)
        if subject is not None:
            await self.faults.apply(subject.user_id, request)
        if not route.needs_account:
            return await route.handler(request, ctx)
        if account is None:
            revoked_as = keys.get(ctx.auth_key_id).revoked_as
            raise RpcError(401, revoked_as or "AUTH_KEY_UNREGISTERED")
        return await route.handler(request, ctx, account)

    def stats(self) -> dict[str, Any]:
        """Server counters joined with which user each auth key is signed in as."""
        raw = self.server_stats() if self.server_stats is not None else {}
        events = dict(raw.get("events", {}))
        keys = [
            {"auth_key_id": key_id, "user_id": self.state.keys.user_of(key_id), **stats}
            for key_id, stats in raw.get("auth_keys", {}).items()
        ]
        return {
            "open_connections": raw.get("open_connections", 0),
            "connections": events.get("connections", 0),
            "dropped_connections": events.get("dropped_connections", 0),
            "auth_key_duplicated": events.get("auth_key_duplicated", 0),
            "auth_keys": keys,
        }

    def connection_closed(self, auth_key_id: int, connection_id: int) -> None:
        self.state.keys.forget_connection(auth_key_id, connection_id)

    def is_authorized(self, auth_key_id: int) -> bool:
        return self.state.keys.user_of(auth_key_id) is not None

    def invalidate_key(self, auth_key_id: int, reason: str) -> None:
        log.info("auth key authorisation dropped", extra={"reason": reason})
        self.state.keys.unbind(auth_key_id)
        self.save()

    async def _accept_login_token(
        self, request: functions.auth.AcceptLoginTokenRequest, ctx: CallContext, account: Any
    ) -> Any:
        return await self.qr.accept_login_token(request, ctx)

    async def _log_out(
        self, request: functions.auth.LogOutRequest, ctx: CallContext, account: Any
    ) -> Any:
        return await self.codes.log_out(request, ctx)

    async def _push_key(self, auth_key_id: int, update: Any) -> int:
        """Push an update to an auth key's connections; returns how many were reached."""
        if self.push_to_key is not None:
            try:
                return await self.push_to_key(auth_key_id, update) or 0
            except Exception:  # noqa: BLE001 - a dead connection must not fail the caller
                log.debug("push to a closed connection skipped")
                return 0
        pushed = 0
        for push in self.state.keys.pushers(auth_key_id):
            try:
                await push(update)
                pushed += 1
            except Exception:  # noqa: BLE001 - a dead connection must not fail the caller
                log.debug("push to a closed connection skipped")
        return pushed

    async def _push_user(self, user_id: int, update: Any) -> None:
        await self.push_to_user(user_id, update)

    async def push_to_user(self, user_id: int, update: Any) -> int:
        """Push to every connection of every key signed in as the user; how many tried."""
        pushed = 0
        for auth_key_id in self.state.keys.keys_of(user_id):
            pushed += await self._push_key(auth_key_id, update)
        return pushed
