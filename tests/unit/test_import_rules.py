"""Domain packages never import Celery plumbing (DESIGN.md, house rules).

``messaging/`` and ``sessions/`` are plain functions the tests call directly; the jobs
that run them (``tasks/``, on ``jobs/``'s base task) depend on them, never the reverse.
Every import statement is checked, including those inside functions.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import integration_service

PACKAGE_ROOT = Path(integration_service.__file__).parent
DOMAIN_PACKAGES = ("messaging", "sessions")
FORBIDDEN = ("integration_service.jobs", "integration_service.celery_app", "tasks", "celery")


def domain_modules() -> list[Path]:
    return sorted(
        path for package in DOMAIN_PACKAGES for path in (PACKAGE_ROOT / package).rglob("*.py")
    )


def package_of(path: Path) -> list[str]:
    """The package a module file belongs to, as name parts (for relative imports)."""
    return list(path.relative_to(PACKAGE_ROOT.parent).parts[:-1])


def imported_names(source: str, package: list[str]) -> list[tuple[int, str]]:
    """Every module ``source`` imports, relative imports resolved against ``package``."""
    names: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names.extend((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - (node.level - 1)]
                module = ".".join([*base, *(node.module.split(".") if node.module else [])])
            else:
                module = node.module or ""
            names.append((node.lineno, module))
            # ``from integration_service import jobs`` imports the package too.
            names.extend((node.lineno, f"{module}.{alias.name}") for alias in node.names)
    return names


def forbidden(name: str) -> bool:
    return any(name == bad or name.startswith(f"{bad}.") for bad in FORBIDDEN)


def test_the_domain_packages_are_found() -> None:
    names = {path.relative_to(PACKAGE_ROOT).as_posix() for path in domain_modules()}
    assert {"messaging/send.py", "sessions/validation.py"} <= names


@pytest.mark.parametrize(
    "path", domain_modules(), ids=lambda path: path.relative_to(PACKAGE_ROOT).as_posix()
)
def test_domain_modules_do_not_import_celery_plumbing(path: Path) -> None:
    found = imported_names(path.read_text(encoding="utf-8"), package_of(path))
    bad = [f"line {line}: {name}" for line, name in found if forbidden(name)]
    assert bad == [], f"{path.name} imports Celery plumbing: {bad}"


def test_the_check_sees_every_import_form() -> None:
    source = (
        "import celery\n"
        "from integration_service.jobs.base import ServiceTask\n"
        "from integration_service import jobs\n"
        "from ..jobs import results\n"
        "from . import validation\n"
        "def later():\n"
        "    from tasks.messages import send_message_task\n"
    )
    package = package_of(PACKAGE_ROOT / "sessions" / "any.py")
    assert package == ["integration_service", "sessions"]
    names = [name for _line, name in imported_names(source, package) if forbidden(name)]
    assert names == [
        "celery",
        "integration_service.jobs.base",
        "integration_service.jobs.base.ServiceTask",
        "integration_service.jobs",
        "integration_service.jobs",
        "integration_service.jobs.results",
        "tasks.messages",
        "tasks.messages.send_message_task",
    ]
