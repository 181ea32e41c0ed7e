"""What goes into the wheel beyond pyproject.toml: the packages, with alembic/ inside.

The layout keeps ``alembic/`` (migrations) at the top of the repository. Shipped as a
top-level package named ``alembic`` it would shadow the Alembic library, so the wheel
carries it as ``integration_service/migrations/`` (``integration_service.cli.database``
finds it there). pyproject.toml cannot add a mapped directory to discovered packages,
hence this file; all other metadata lives in pyproject.toml.
"""

from setuptools import find_packages, setup

MIGRATIONS = "integration_service.migrations"

setup(
    packages=[
        *find_packages(include=["integration_service*", "tasks*"]),
        MIGRATIONS,
        f"{MIGRATIONS}.versions",
    ],
    package_dir={MIGRATIONS: "alembic"},
    # The events' JSON Schema (docs/EVENTS.md) ships beside the code that writes them.
    package_data={
        MIGRATIONS: ["script.py.mako"],
        "integration_service.inbound": ["event_schema.json"],
    },
)
