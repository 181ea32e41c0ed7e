"""The JSON Schema (draft 2020-12) of the event envelope and each type's ``data``.

Shipped in the package (``event_schema.json``, docs/EVENTS.md), so consumers, the API and
the tests all read the one copy the code is checked against.
"""

from __future__ import annotations

import json
from functools import lru_cache
from importlib.resources import files
from typing import Any

SCHEMA_FILE = "event_schema.json"


@lru_cache(maxsize=1)
def event_schema() -> dict[str, Any]:
    text = files("integration_service.inbound").joinpath(SCHEMA_FILE).read_text("utf-8")
    schema: dict[str, Any] = json.loads(text)
    return schema
