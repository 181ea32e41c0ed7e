"""Loading the deploy files once per test module: YAML documents, the dashboard, rules."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from tests.deploy.promql_names import DEPLOY

COMPOSE = DEPLOY / "docker-compose.yml"
ENV_EXAMPLE = DEPLOY / ".env.example"
DOCKERFILE = DEPLOY / "Dockerfile"
PROMETHEUS_CONFIG = DEPLOY / "prometheus" / "prometheus.yml"
ALERT_RULES = DEPLOY / "prometheus" / "alerts.yml"
DASHBOARD = DEPLOY / "grafana" / "dashboards" / "integration-service.json"
K8S = DEPLOY / "k8s"


def yaml_files() -> list[Path]:
    return sorted(p for p in DEPLOY.rglob("*") if p.suffix in {".yml", ".yaml"})


def json_files() -> list[Path]:
    return sorted(DEPLOY.rglob("*.json"))


def load_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def load_all_yaml(path: Path) -> list[Any]:
    return [doc for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")) if doc]


def load_json(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


def dashboard_exprs() -> list[str]:
    """Every query expression of the dashboard, panels nested in rows included."""
    exprs: list[str] = []

    def walk(panels: list[dict[str, Any]]) -> None:
        for panel in panels:
            exprs.extend(t["expr"] for t in panel.get("targets", []) if t.get("expr"))
            walk(panel.get("panels", []))

    walk(load_json(DASHBOARD)["panels"])
    return exprs


def alert_rules() -> list[dict[str, Any]]:
    return [rule for group in load_yaml(ALERT_RULES)["groups"] for rule in group["rules"]]


def k8s_documents() -> list[tuple[Path, dict[str, Any]]]:
    """Kubernetes objects (kustomization.yaml is kustomize's input, not an object)."""
    paths = sorted(p for p in K8S.glob("*.yaml") if p.name != "kustomization.yaml")
    return [(path, doc) for path in paths for doc in load_all_yaml(path)]
