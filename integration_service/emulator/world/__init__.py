"""The emulated Telegram world: accounts, logins, messages and injected faults."""

from integration_service.emulator.world.delivery_log import DeliveredMessage
from integration_service.emulator.world.faults import Fault
from integration_service.emulator.world.world import TelegramWorld

__all__ = ["DeliveredMessage", "Fault", "TelegramWorld"]
