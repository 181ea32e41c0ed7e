"""``python -m integration_service.cli``."""

from integration_service.cli import main

main()
