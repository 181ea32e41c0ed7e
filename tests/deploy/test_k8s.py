"""Kubernetes manifests: probes on the health paths, hardened pods, no plaintext secrets."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from tests.deploy.loading import K8S, k8s_documents, load_yaml

SECRET_KEY = re.compile(r"PASSWORD|TOKEN|SECRET|API_HASH|BASIC_AUTH|KEYRING|_URL$", re.I)
URL_WITH_PASSWORD = re.compile(r"://[^:@/\s]*:[^@/\s]+@")
APP_DEPLOYMENTS = ("worker-high", "worker-bulk", "beat", "relay")


@pytest.fixture(scope="module")
def documents() -> list[tuple[Path, dict[str, Any]]]:
    docs = k8s_documents()
    for path, doc in docs:
        assert {"apiVersion", "kind", "metadata"} <= set(doc), path
        assert doc["metadata"].get("name"), path
    return docs


def _by_kind(docs: list[tuple[Path, dict[str, Any]]], kind: str) -> dict[str, dict[str, Any]]:
    return {doc["metadata"]["name"]: doc for _, doc in docs if doc["kind"] == kind}


def _container(deployment: dict[str, Any]) -> dict[str, Any]:
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    return container


def _port_number(container: dict[str, Any], port: int | str) -> int:
    if isinstance(port, int):
        return port
    (number,) = [p["containerPort"] for p in container["ports"] if p["name"] == port]
    return int(number)


def test_expected_objects_exist(documents: list[tuple[Path, dict[str, Any]]]) -> None:
    kinds = {(doc["kind"], doc["metadata"]["name"]) for _, doc in documents}
    for name in (*APP_DEPLOYMENTS, "flower"):
        assert ("Deployment", name) in kinds
    for name in (
        "worker-high-metrics",
        "worker-bulk-metrics",
        "beat-metrics",
        "relay-metrics",
        "flower",
    ):
        assert ("Service", name) in kinds
    assert ("Job", "migrate") in kinds
    assert ("Namespace", "integration-service") in kinds
    assert ("ConfigMap", "integration-service") in kinds
    assert ("PodDisruptionBudget", "worker-high") in kinds
    assert ("PodDisruptionBudget", "worker-bulk") in kinds


def test_app_processes_probe_health_paths_on_9100(
    documents: list[tuple[Path, dict[str, Any]]],
) -> None:
    deployments = _by_kind(documents, "Deployment")
    for name in APP_DEPLOYMENTS:
        container = _container(deployments[name])
        live = container["livenessProbe"]["httpGet"]
        ready = container["readinessProbe"]["httpGet"]
        assert live["path"] == "/health/live", name
        assert ready["path"] == "/health/ready", name
        assert _port_number(container, live["port"]) == 9100, name
        assert _port_number(container, ready["port"]) == 9100, name


def test_pods_are_hardened_and_sized(documents: list[tuple[Path, dict[str, Any]]]) -> None:
    workloads = [
        *_by_kind(documents, "Deployment").values(),
        *_by_kind(documents, "Job").values(),
    ]
    assert len(workloads) == 7
    for workload in workloads:
        pod = workload["spec"]["template"]["spec"]
        container = _container(workload)
        name = workload["metadata"]["name"]
        assert pod["securityContext"]["runAsNonRoot"] is True, name
        context = container["securityContext"]
        assert context["readOnlyRootFilesystem"] is True, name
        assert context["allowPrivilegeEscalation"] is False, name
        assert context["capabilities"]["drop"] == ["ALL"], name
        resources = container["resources"]
        assert {"cpu", "memory"} <= set(resources["requests"]), name
        assert {"cpu", "memory"} <= set(resources["limits"]), name
        # A read-only root needs somewhere writable for /tmp (beat schedule, sessions).
        mounts = {m["mountPath"] for m in container.get("volumeMounts", [])}
        assert "/tmp" in mounts, name


def test_workers_shut_down_warm_and_consume_their_queues(
    documents: list[tuple[Path, dict[str, Any]]],
) -> None:
    deployments = _by_kind(documents, "Deployment")
    queues = {"worker-high": "--queues=high", "worker-bulk": "--queues=mid,low"}
    for name, flag in queues.items():
        pod = deployments[name]["spec"]["template"]["spec"]
        # Longer than TASK_TIMEOUT (60 s) plus releasing leases and disconnecting clients.
        assert pod["terminationGracePeriodSeconds"] >= 90, name
        args = _container(deployments[name])["args"]
        assert flag in args and "--pool=threads" in args, name
    assert deployments["beat"]["spec"]["replicas"] == 1
    # Several relays are safe (SKIP LOCKED) and keep the events flowing through a restart.
    assert deployments["relay"]["spec"]["replicas"] == 2
    assert _container(deployments["relay"])["args"] == ["integration-service", "relay"]


def test_flower_is_cluster_internal(documents: list[tuple[Path, dict[str, Any]]]) -> None:
    service = _by_kind(documents, "Service")["flower"]
    assert service["spec"].get("type", "ClusterIP") == "ClusterIP"
    container = _container(_by_kind(documents, "Deployment")["flower"])
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthcheck"
    env = {item["name"]: item for item in container.get("env", [])}
    assert "secretKeyRef" in env["FLOWER_BASIC_AUTH"]["valueFrom"]


def test_pdbs_select_the_worker_pools(documents: list[tuple[Path, dict[str, Any]]]) -> None:
    deployments = _by_kind(documents, "Deployment")
    for name, pdb in _by_kind(documents, "PodDisruptionBudget").items():
        selector = pdb["spec"]["selector"]["matchLabels"]
        labels = deployments[name]["spec"]["template"]["metadata"]["labels"]
        assert selector.items() <= labels.items(), name


def test_metrics_services_select_pods_on_port_9100(
    documents: list[tuple[Path, dict[str, Any]]],
) -> None:
    deployments = _by_kind(documents, "Deployment")
    for name in APP_DEPLOYMENTS:
        service = _by_kind(documents, "Service")[f"{name}-metrics"]
        labels = deployments[name]["spec"]["template"]["metadata"]["labels"]
        assert service["spec"]["selector"].items() <= labels.items(), name
        assert [p["port"] for p in service["spec"]["ports"]] == [9100], name


def test_no_plaintext_secrets(documents: list[tuple[Path, dict[str, Any]]]) -> None:
    secrets = [(path, doc) for path, doc in documents if doc["kind"] == "Secret"]
    assert [path.name for path, _ in secrets] == ["secret.example.yaml"]
    for _, secret in secrets:
        values = {**secret.get("stringData", {}), **secret.get("data", {})}
        assert values
        for key, value in values.items():
            assert "<replace-me>" in value, f"secret template {key} holds a real value"
    for key, value in _by_kind(documents, "ConfigMap")["integration-service"]["data"].items():
        assert not SECRET_KEY.search(key), f"ConfigMap carries secret-like {key}"
        assert not URL_WITH_PASSWORD.search(str(value)), key
    for _, doc in documents:
        if doc["kind"] not in {"Deployment", "Job"}:
            continue
        for item in _container(doc).get("env", []):
            if SECRET_KEY.search(item["name"]):
                assert "value" not in item, f"{doc['metadata']['name']}: {item['name']}"
                assert "secretKeyRef" in item["valueFrom"]


def test_secret_references_match_the_template(
    documents: list[tuple[Path, dict[str, Any]]],
) -> None:
    template = _by_kind(documents, "Secret")["integration-service"]
    keys = set(template["stringData"])
    for _, doc in documents:
        if doc["kind"] not in {"Deployment", "Job"}:
            continue
        container = _container(doc)
        for source in container.get("envFrom", []):
            if "secretRef" in source:
                assert source["secretRef"]["name"] == "integration-service"
        for item in container.get("env", []):
            ref = item.get("valueFrom", {}).get("secretKeyRef")
            if ref:
                assert ref["name"] == "integration-service" and ref["key"] in keys


def test_kustomization_lists_files_but_never_the_secret_template() -> None:
    kustomization = load_yaml(K8S / "kustomization.yaml")
    resources = kustomization["resources"]
    assert "secret.example.yaml" not in resources
    for resource in resources:
        assert (K8S / resource).is_file(), resource
    manifests = {p.name for p in K8S.glob("*.yaml")} - {"kustomization.yaml"}
    assert manifests - set(resources) == {"secret.example.yaml"}


def test_the_api_scales_and_probes_its_own_port(
    documents: list[tuple[Path, dict[str, Any]]],
) -> None:
    deployment = _by_kind(documents, "Deployment")["api"]
    container = _container(deployment)
    assert container["args"][:2] == ["integration-service", "api"]
    for probe, path in (("livenessProbe", "/health/live"), ("readinessProbe", "/health/ready")):
        assert container[probe]["httpGet"]["path"] == path
        assert _port_number(container, container[probe]["httpGet"]["port"]) == 8000
    service = _by_kind(documents, "Service")["api"]
    assert service["spec"]["selector"] == {"app.kubernetes.io/name": "api"}
    hpa = _by_kind(documents, "HorizontalPodAutoscaler")["api"]
    assert hpa["spec"]["scaleTargetRef"]["name"] == "api"
    assert 1 < hpa["spec"]["minReplicas"] < hpa["spec"]["maxReplicas"]
