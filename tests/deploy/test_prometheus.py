"""Prometheus config and alert rules: structurally valid, and valid to promtool.

promtool (Debian package ``prometheus``) checks PromQL for real when it is installed;
without it the structural checks below still run (never a skip), including a parse-level
sanity check of every expression.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from typing import Any

import pytest

from tests.deploy.loading import ALERT_RULES, PROMETHEUS_CONFIG, alert_rules, load_yaml

DURATION = re.compile(r"^(?:\d+(?:ms|s|m|h|d|w|y))+$")
SEVERITIES = {"critical", "warning", "info"}
REQUIRED_ALERTS = {
    "TelegramSessionDown",
    "HighErrorRate",
    "QueueBacklog",
    "DeadLetterGrowth",
    "SessionLeaseChurn",
    "FloodWaitSurge",
    "WorkerDown",
    "SessionSaveErrors",
    "EventRelayBacklog",
    "WebhookFailureRate",
    "ListeningSessionUnowned",
    "SessionGaps",
}
REQUIRED_JOBS = {"worker-high", "worker-bulk", "beat", "relay", "flower", "rabbitmq"}


def _balanced(expr: str) -> bool:
    pairs = {")": "(", "]": "[", "}": "{"}
    stack: list[str] = []
    in_string = False
    for index, char in enumerate(expr):
        if char == '"' and (index == 0 or expr[index - 1] != "\\"):
            in_string = not in_string
        elif in_string:
            continue
        elif char in "([{":
            stack.append(char)
        elif char in pairs:
            if not stack or stack.pop() != pairs[char]:
                return False
    return not stack and not in_string


def structural_rule_problems(document: dict[str, Any]) -> list[str]:
    """What is wrong with a rule file, as Prometheus and our conventions see it."""
    problems: list[str] = []
    groups = document.get("groups")
    if not isinstance(groups, list) or not groups:
        return ["no groups"]
    names = [group.get("name") for group in groups]
    if len(set(names)) != len(names) or not all(names):
        problems.append(f"group names missing or repeated: {names}")
    for group in groups:
        for rule in group.get("rules") or []:
            alert = rule.get("alert", "?")
            if set(rule) - {"alert", "expr", "for", "labels", "annotations"}:
                problems.append(f"{alert}: unknown keys {set(rule)}")
            if not re.fullmatch(r"[A-Z][A-Za-z0-9]+", str(rule.get("alert", ""))):
                problems.append(f"{alert}: alert name is not CamelCase")
            expr = rule.get("expr")
            if not isinstance(expr, str) or not expr.strip() or not _balanced(expr):
                problems.append(f"{alert}: expr missing or unbalanced")
            if not DURATION.match(str(rule.get("for", ""))):
                problems.append(f"{alert}: for is not a duration")
            if rule.get("labels", {}).get("severity") not in SEVERITIES:
                problems.append(f"{alert}: severity label missing or unknown")
            annotations = rule.get("annotations", {})
            for key in ("summary", "description", "runbook"):
                if not str(annotations.get(key, "")).strip():
                    problems.append(f"{alert}: annotation {key} missing")
        if not group.get("rules"):
            problems.append(f"group {group.get('name')} has no rules")
    return problems


def test_alert_rules_are_structurally_valid() -> None:
    assert structural_rule_problems(load_yaml(ALERT_RULES)) == []


def test_structural_check_catches_broken_rules() -> None:
    rule = {"alert": "x", "expr": "rate(a[5m]", "for": "5"}
    broken = {"groups": [{"name": "g", "rules": [rule]}]}
    problems = structural_rule_problems(broken)
    assert any("CamelCase" in p for p in problems)
    assert any("unbalanced" in p for p in problems)
    assert any("duration" in p for p in problems)
    assert any("severity" in p for p in problems)


def test_required_alerts_exist() -> None:
    names = {rule["alert"] for rule in alert_rules()}
    assert names >= REQUIRED_ALERTS, REQUIRED_ALERTS - names


def test_queue_backlog_covers_every_job_queue() -> None:
    backlog = [rule["expr"] for rule in alert_rules() if rule["alert"] == "QueueBacklog"]
    for queue in ("high", "mid", "low"):
        assert any(f'queue="{queue}"' in expr for expr in backlog), queue


def test_alerts_never_group_by_tenant_or_session() -> None:
    for rule in alert_rules():
        annotations = str(rule.get("annotations", {}))
        assert not re.search(r"\b(tenant\w*|session_id|app_id)\b", rule["expr"]), rule["alert"]
        assert "$labels.tenant" not in annotations, rule["alert"]
        assert "$labels.session" not in annotations, rule["alert"]


def test_scrape_config_covers_every_process() -> None:
    config = load_yaml(PROMETHEUS_CONFIG)
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    assert set(jobs) >= REQUIRED_JOBS
    for name in ("worker-high", "worker-bulk", "beat", "relay"):
        ports = {sd["port"] for sd in jobs[name]["dns_sd_configs"]}
        assert ports == {9100}, name
    rabbit_targets = jobs["rabbitmq"]["static_configs"][0]["targets"]
    assert all(target.endswith(":15692") for target in rabbit_targets)
    rule_files = [PROMETHEUS_CONFIG.parent / path for path in config["rule_files"]]
    assert ALERT_RULES.resolve() in [path.resolve() for path in rule_files]


def test_worker_down_watches_jobs_that_are_scraped() -> None:
    config = load_yaml(PROMETHEUS_CONFIG)
    jobs = {job["job_name"] for job in config["scrape_configs"]}
    (expr,) = [rule["expr"] for rule in alert_rules() if rule["alert"] == "WorkerDown"]
    watched = re.search(r'job=~"([^"]+)"', expr)
    assert watched is not None
    assert set(watched.group(1).split("|")) <= jobs


def _promtool(*args: str) -> subprocess.CompletedProcess[str]:
    promtool = shutil.which("promtool")
    assert promtool is not None
    return subprocess.run(
        [promtool, *args], capture_output=True, text=True, timeout=60, check=False
    )


@pytest.mark.parametrize("what", ["rules", "config"])
def test_promtool_accepts_files_or_structural_fallback(what: str) -> None:
    if shutil.which("promtool") is None:
        # Fallback (promtool not installed): the same files through the structural check.
        assert structural_rule_problems(load_yaml(ALERT_RULES)) == []
        assert load_yaml(PROMETHEUS_CONFIG)["scrape_configs"]
        return
    target = ALERT_RULES if what == "rules" else PROMETHEUS_CONFIG
    result = _promtool("check", what, str(target))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout + result.stderr
