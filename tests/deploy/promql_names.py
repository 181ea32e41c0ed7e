"""Metric names: the ones the code exports, and the ones a PromQL expression reads.

The deploy files (alert rules, the Grafana dashboard) may only query series that exist;
a renamed metric would otherwise leave an alert that can never fire. Exported names are
collected from the metric constructors in the source (and the ``*MetricFamily`` ones of
custom collectors), with the suffixes
prometheus_client adds: ``_total`` for counters (only if missing), ``_bucket``/``_sum``/
``_count`` for histograms.
"""

from __future__ import annotations

import re
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
DEPLOY = REPO_ROOT / "deploy"
CODE_DIRS = (REPO_ROOT / "integration_service", REPO_ROOT / "tasks")

# Series that come from outside the code: Prometheus itself, RabbitMQ's plugin, Flower.
EXTERNAL_NAMES = frozenset({"up"})
EXTERNAL_PREFIXES = ("rabbitmq_", "flower_")

_CONSTRUCTOR = re.compile(
    r"\b(Counter|Gauge|Histogram|Summary)(?:MetricFamily)?\(\s*(?:name\s*=\s*)?"
    r"[\"']([A-Za-z_:][A-Za-z0-9_:]*)[\"']"
)
_STRING = re.compile(r"\"(?:[^\"\\]|\\.)*\"|'(?:[^'\\]|\\.)*'|`[^`]*`")
_MATCHERS = re.compile(r"\{[^{}]*\}")
_RANGE = re.compile(r"\[[^\[\]]*\]")
_GROUPING = re.compile(
    r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^()]*\)", re.IGNORECASE
)
_IDENTIFIER = re.compile(r"(?<![0-9A-Za-z_:.$])[A-Za-z_:][A-Za-z0-9_:]*")
_KEYWORDS = frozenset(
    {"and", "or", "unless", "bool", "offset", "by", "without", "on", "ignoring"}
    | {"group_left", "group_right", "inf", "nan", "atan2"}
)


def exported_names(name: str, kind: str) -> set[str]:
    """Series names prometheus_client exposes for a metric declared as ``kind(name)``."""
    if kind == "Counter":
        base = name.removesuffix("_total")
        return {f"{base}_total", f"{base}_created"}
    if kind == "Histogram":
        return {f"{name}_bucket", f"{name}_sum", f"{name}_count", f"{name}_created"}
    if kind == "Summary":
        return {name, f"{name}_sum", f"{name}_count", f"{name}_created"}
    return {name}


def code_metric_names(dirs: tuple[Path, ...] = CODE_DIRS) -> set[str]:
    """Every series name the service's metric constructors export."""
    names: set[str] = set()
    for directory in dirs:
        for path in sorted(directory.rglob("*.py")):
            for kind, name in _CONSTRUCTOR.findall(path.read_text(encoding="utf-8")):
                names |= exported_names(name, kind)
    return names


def metric_names_in(expr: str) -> set[str]:
    """Metric names an expression selects (functions, keywords and label names dropped)."""
    text = _STRING.sub('""', expr)
    # Innermost first, until nothing changes: subqueries nest ranges inside parentheses.
    for pattern in (_MATCHERS, _RANGE, _GROUPING):
        previous = None
        while previous != text:
            previous, text = text, pattern.sub(" ", text)
    names: set[str] = set()
    for match in _IDENTIFIER.finditer(text):
        token = match.group(0)
        following = text[match.end() :].lstrip()
        if following.startswith("(") or token.lower() in _KEYWORDS:
            continue  # a function or aggregation, or an operator keyword
        names.add(token)
    return names


def is_known(name: str, code_names: set[str]) -> bool:
    return name in code_names or name in EXTERNAL_NAMES or name.startswith(EXTERNAL_PREFIXES)
