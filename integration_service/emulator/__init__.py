"""A local Telegram data centre: an MTProto server for the unmodified Telethon client.

The core (transport, key exchange, encryption, sessions) lives in this package; the Telegram
behaviour behind it lives in ``world``. Start it with ``runner.start_emulator`` or
``python -m integration_service.emulator``.
"""
