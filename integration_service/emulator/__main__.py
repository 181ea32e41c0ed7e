"""``python -m integration_service.emulator``: run the emulator until SIGTERM/SIGINT."""

from __future__ import annotations

import argparse
from pathlib import Path

from .runner import run


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Local Telegram data centre (MTProto emulator)")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    parser.add_argument("--port", type=int, default=0, help="TCP port; 0 picks a free one")
    parser.add_argument(
        "--state-dir",
        type=Path,
        default=Path(".state/emulator"),
        help="emulator.json and the world's database (world.sqlite3) go here",
    )
    parser.add_argument("--dc-id", type=int, default=2, help="data centre id to announce")
    parser.add_argument("--log-level", default="INFO", help="DEBUG, INFO, WARNING, ...")
    parser.add_argument(
        "--difference-limit",
        type=int,
        default=None,
        help="a box more than N pts ahead of a client answers updates.differenceTooLong / "
        "channelDifferenceTooLong (default: the saved setting, else 100000)",
    )
    parser.add_argument(
        "--difference-slice",
        type=int,
        default=None,
        help="box entries per updates.getDifference answer before differenceSlice "
        "(default: the saved setting, else 100)",
    )
    args = parser.parse_args(argv)
    from integration_service.observability.logging import configure_logging

    # One JSON object per line, scrubbed, like every other process of the system.
    configure_logging(args.log_level)
    world_options = {
        name: value
        for name, value in (
            ("difference_limit", args.difference_limit),
            ("difference_slice", args.difference_slice),
        )
        if value is not None
    }
    run(
        host=args.host,
        port=args.port,
        state_dir=args.state_dir,
        dc_id=args.dc_id,
        world_options=world_options,
    )


if __name__ == "__main__":
    main()
