"""Reaching Telegram (or the local emulator) from Telethon clients."""
