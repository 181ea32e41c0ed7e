"""``python -m integration_service.emulator``: run the emulator until SIGTERM/SIGINT."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from .runner import run


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Local Telegram data centre (MTProto emulator)")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    parser.add_argument("--port", type=int, default=0, help="TCP port; 0 picks a free one")
    parser.add_argument(
        "--state-dir", type=Path, default=Path(".state/emulator"), help="emulator.json goes here"
    )
    parser.add_argument("--dc-id", type=int, default=2, help="data centre id to announce")
    parser.add_argument("--log-level", default="INFO", help="DEBUG, INFO, WARNING, ...")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    run(host=args.host, port=args.port, state_dir=args.state_dir, dc_id=args.dc_id)


if __name__ == "__main__":
    main()
