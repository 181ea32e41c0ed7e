"""Every YAML and JSON file under deploy/ parses, and the set of files is complete."""

from __future__ import annotations

import pytest

from tests.deploy.loading import DEPLOY, json_files, load_all_yaml, load_json, yaml_files

EXPECTED = [
    "docker-compose.yml",
    "Dockerfile",
    ".env.example",
    "README.md",
    "prometheus/prometheus.yml",
    "prometheus/alerts.yml",
    "grafana/dashboards/integration-service.json",
    "grafana/provisioning/datasources/prometheus.yml",
    "grafana/provisioning/dashboards/integration-service.yml",
    "k8s/kustomization.yaml",
]


@pytest.mark.parametrize("relative", EXPECTED)
def test_expected_file_exists(relative: str) -> None:
    path = DEPLOY / relative
    assert path.is_file(), f"missing deploy/{relative}"
    assert path.stat().st_size > 0


def test_every_yaml_file_parses() -> None:
    files = yaml_files()
    assert len(files) >= 15
    for path in files:
        documents = load_all_yaml(path)
        assert documents, f"{path} holds no YAML document"
        assert all(isinstance(doc, dict) for doc in documents), f"{path}: not a mapping"


def test_every_json_file_parses() -> None:
    files = json_files()
    assert files
    for path in files:
        assert isinstance(load_json(path), dict), f"{path}: not a JSON object"
