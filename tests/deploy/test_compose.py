"""docker-compose.yml: complete, self-consistent, and free of literal secrets.

Docker does not run on this machine, so the file is checked as data: every reference
resolves, every port is on loopback, every credential is a required variable.
"""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.deploy.loading import COMPOSE, DEPLOY, DOCKERFILE, ENV_EXAMPLE, load_yaml

REQUIRED_SERVICES = {
    "rabbitmq",
    "postgres",
    "redis",
    "openbao",
    "migrate",
    "worker-high",
    "worker-bulk",
    "beat",
    "relay",
    "api",
    "flower",
    "prometheus",
    "grafana",
}
CONDITIONS = {"service_started", "service_healthy", "service_completed_successfully"}
SECRET_KEY = re.compile(r"PASSWORD|PASS$|TOKEN|SECRET|API_HASH|BASIC_AUTH|KEYRING", re.I)
REQUIRED_VARIABLE = re.compile(r"\$\{([A-Z0-9_]+):\?[^}]*\}")
ONLY_VARIABLES = re.compile(r"^(?:\$\{[A-Z0-9_]+(?::[?-][^}]*)?\}|[A-Za-z0-9_.-]*:)+$")
ANY_VARIABLE = re.compile(r"\$\{[^}]*\}")
URL_USERINFO = re.compile(r"://(?P<user>[^:@/]*):(?P<password>[^@/]*)@")


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return load_yaml(COMPOSE)


def _depends_on(service: dict[str, Any]) -> dict[str, dict[str, Any]]:
    raw = service.get("depends_on", {})
    if isinstance(raw, list):
        return {name: {"condition": "service_started"} for name in raw}
    return dict(raw)


def _environment(service: dict[str, Any]) -> dict[str, str]:
    raw = service.get("environment", {})
    if isinstance(raw, list):
        return dict(item.split("=", 1) for item in raw)
    return {key: "" if value is None else str(value) for key, value in raw.items()}


def test_all_services_are_defined(compose: dict[str, Any]) -> None:
    assert REQUIRED_SERVICES <= set(compose["services"])


def test_depends_on_names_defined_services_with_valid_conditions(
    compose: dict[str, Any],
) -> None:
    services = compose["services"]
    for name, service in services.items():
        for target, spec in _depends_on(service).items():
            assert target in services, f"{name} depends on undefined service {target}"
            condition = spec.get("condition", "service_started")
            assert condition in CONDITIONS, f"{name} -> {target}: {condition}"
            if condition == "service_healthy":
                assert "healthcheck" in services[target], f"{target} has no healthcheck"


def test_app_processes_wait_for_migrations_and_healthy_broker(compose: dict[str, Any]) -> None:
    for name in ("worker-high", "worker-bulk", "beat"):
        deps = _depends_on(compose["services"][name])
        assert deps["migrate"]["condition"] == "service_completed_successfully", name
        assert deps["rabbitmq"]["condition"] == "service_healthy", name
        assert deps["redis"]["condition"] == "service_healthy", name
    assert _depends_on(compose["services"]["migrate"])["postgres"]["condition"] == (
        "service_healthy"
    )


def test_long_running_services_have_healthchecks(compose: dict[str, Any]) -> None:
    one_shot = {"migrate", "openbao-init"}
    for name, service in compose["services"].items():
        if name in one_shot:
            assert service.get("restart") == "no", name
            continue
        check = service.get("healthcheck")
        assert check and check.get("test"), f"{name} has no healthcheck"


def test_named_volumes_are_declared_and_bind_mounts_exist(compose: dict[str, Any]) -> None:
    declared = set(compose.get("volumes") or {})
    used: set[str] = set()
    for name, service in compose["services"].items():
        for volume in service.get("volumes", []):
            source = volume.split(":", 1)[0]
            if source.startswith((".", "/")):
                assert (DEPLOY / source).resolve().exists(), f"{name}: {source} missing"
            else:
                assert source in declared, f"{name} uses undeclared volume {source}"
                used.add(source)
    assert used == declared, f"declared but unused volumes: {declared - used}"


def test_built_services_use_the_dockerfile(compose: dict[str, Any]) -> None:
    for name in ("migrate", "worker-high", "worker-bulk", "beat", "flower"):
        build = compose["services"][name]["build"]
        context = (DEPLOY / build["context"]).resolve()
        assert (context / build["dockerfile"]).resolve() == DOCKERFILE.resolve(), name
        assert (context / "pyproject.toml").is_file()


def test_published_ports_are_loopback_only(compose: dict[str, Any]) -> None:
    published = 0
    for name, service in compose["services"].items():
        for port in service.get("ports", []):
            assert str(port).startswith("127.0.0.1:"), f"{name} publishes {port} publicly"
            published += 1
    assert published >= 4  # flower, grafana, prometheus, rabbitmq management
    assert any(str(p).endswith(":5555") for p in compose["services"]["flower"]["ports"])


def test_worker_pools_consume_their_queues_with_threads(compose: dict[str, Any]) -> None:
    expected = {"worker-high": "--queues=high", "worker-bulk": "--queues=mid,low"}
    for name, queues in expected.items():
        service = compose["services"][name]
        command = service["command"]
        assert queues in command and "--pool=threads" in command, name
        assert "worker" in command and "integration_service.celery_app" in command
        assert _environment(service)["METRICS_PORT"] == "9100"
        # Warm shutdown releases leases after running jobs finish (TASK_TIMEOUT 60 s).
        grace = service["stop_grace_period"]
        assert grace.endswith("s") and int(grace[:-1]) >= 90, name
    assert "beat" in compose["services"]["beat"]["command"]


def test_no_literal_secrets_in_environment(compose: dict[str, Any]) -> None:
    checked = 0
    for name, service in compose["services"].items():
        for key, value in _environment(service).items():
            if SECRET_KEY.search(key):
                assert ONLY_VARIABLES.match(value), f"{name}.{key} holds a literal secret"
                assert REQUIRED_VARIABLE.search(value), f"{name}.{key} has no required variable"
                checked += 1
            # Variables masked first: their ":?message" part would confuse the URL parse.
            for match in URL_USERINFO.finditer(ANY_VARIABLE.sub("VARIABLE", value)):
                assert match.group("password") == "VARIABLE", (
                    f"{name}.{key} embeds a literal password in a URL"
                )
                checked += 1
    assert checked >= 10


def test_flower_has_basic_auth_from_the_environment(compose: dict[str, Any]) -> None:
    env = _environment(compose["services"]["flower"])
    assert REQUIRED_VARIABLE.fullmatch(env["FLOWER_BASIC_AUTH"])
    # Not on the command line, where `ps` and `docker inspect` would show it.
    assert not any("basic" in part for part in compose["services"]["flower"]["command"])


def _strings(node: Any) -> list[str]:
    if isinstance(node, dict):
        return [s for value in node.values() for s in _strings(value)]
    if isinstance(node, list):
        return [s for value in node for s in _strings(value)]
    return [node] if isinstance(node, str) else []


def test_env_example_covers_every_required_variable_with_placeholders(
    compose: dict[str, Any],
) -> None:
    required = {name for text in _strings(compose) for name in REQUIRED_VARIABLE.findall(text)}
    assert {"POSTGRES_PASSWORD", "RABBITMQ_PASSWORD", "FLOWER_BASIC_AUTH"} <= required
    example: dict[str, str] = {}
    for line in ENV_EXAMPLE.read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            key, _, value = line.partition("=")
            example[key.strip()] = value.strip()
    assert required <= set(example), f"missing from .env.example: {required - set(example)}"
    for key, value in example.items():
        if SECRET_KEY.search(key):
            assert "<replace-me>" in value, f".env.example {key} is not a placeholder"


def test_dockerfile_builds_a_non_root_python_311_image() -> None:
    lines = [line.strip() for line in DOCKERFILE.read_text(encoding="utf-8").splitlines()]
    assert "FROM python:3.11-slim" in lines
    users = [line.split()[1] for line in lines if line.startswith("USER ")]
    assert users, "no USER instruction"
    assert users[-1].split(":")[0] not in {"root", "0"}
    assert any(line.startswith("RUN pip install") for line in lines)
