"""Injected trouble: FLOOD_WAIT_X, PEER_FLOOD, arbitrary RPC errors and slow answers.

A fault targets one account and optionally one method (``messages.sendMessage`` or the
Telethon class name ``SendMessageRequest``), and fires for the next ``count`` matching
calls (``None``: until cleared). Revocation and bans are account state, kept by the world.
"""

from __future__ import annotations

import asyncio
import itertools
import re
from dataclasses import asdict, dataclass
from typing import Any

from integration_service.emulator.rpc import RpcError

FAULT_KINDS = ("flood_wait", "peer_flood", "slow", "error")
ERROR_MESSAGE_RE = re.compile(r"^[A-Z][A-Z0-9_]*$")


def method_name(request: Any) -> str:
    """``functions.messages.SendMessageRequest`` -> ``messages.sendMessage``."""
    cls = type(request)
    namespace = cls.__module__.rsplit(".", 1)[-1]
    name = cls.__name__.removesuffix("Request")
    short = name[:1].lower() + name[1:]
    return short if namespace == "functions" else f"{namespace}.{short}"


@dataclass
class Fault:
    fault_id: int
    user_id: int
    kind: str
    method: str | None = None
    count: int | None = 1
    seconds: int = 0
    delay: float = 0.0
    code: int = 400
    message: str = ""

    def matches(self, user_id: int, request: Any) -> bool:
        if user_id != self.user_id:
            return False
        if self.method is None:
            return True
        return self.method in (method_name(request), type(request).__name__)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class FaultBook:
    def __init__(self) -> None:
        self._faults: list[Fault] = []
        self._ids = itertools.count(1)

    def add(
        self,
        user_id: int,
        kind: str,
        *,
        method: str | None = None,
        count: int | None = 1,
        seconds: int = 0,
        delay: float = 0.0,
        code: int = 400,
        message: str = "",
    ) -> Fault:
        if kind not in FAULT_KINDS:
            raise ValueError(f"kind must be one of {', '.join(FAULT_KINDS)}")
        if count is not None and count < 1:
            raise ValueError("count must be a positive integer or null")
        if kind == "flood_wait" and seconds < 0:
            raise ValueError("seconds must not be negative")
        if kind == "slow" and delay <= 0:
            raise ValueError("delay must be positive for a slow fault")
        if kind == "error" and (not ERROR_MESSAGE_RE.match(message) or not 300 <= code <= 599):
            raise ValueError("an error fault needs code 300-599 and an UPPER_CASE message")
        fault = Fault(next(self._ids), user_id, kind, method, count, seconds, delay, code, message)
        self._faults.append(fault)
        return fault

    def list(self, user_id: int | None = None) -> list[Fault]:
        return [f for f in self._faults if user_id is None or f.user_id == user_id]

    def clear(self, user_id: int | None = None) -> int:
        before = len(self._faults)
        self._faults = [f for f in self._faults if user_id is not None and f.user_id != user_id]
        return before - len(self._faults)

    async def apply(self, user_id: int, request: Any) -> None:
        """Sleep for slow faults, then raise the first matching error fault, if any."""
        matching = [f for f in self._faults if f.matches(user_id, request)]
        error: RpcError | None = None
        for fault in matching:
            if fault.kind != "slow" and error is not None:
                continue  # only one error per call; later ones keep their count
            self._consume(fault)
            if fault.kind == "slow":
                await asyncio.sleep(fault.delay)
            elif fault.kind == "flood_wait":
                error = RpcError(420, f"FLOOD_WAIT_{fault.seconds}")
            elif fault.kind == "peer_flood":
                error = RpcError(400, "PEER_FLOOD")
            else:
                error = RpcError(fault.code, fault.message)
        if error is not None:
            raise error

    def _consume(self, fault: Fault) -> None:
        if fault.count is None:
            return
        fault.count -= 1
        if fault.count <= 0:
            self._faults.remove(fault)
