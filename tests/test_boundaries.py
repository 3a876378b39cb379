"""Data flows one way: the traffic (load/) and the grader (grading/) know nothing of how a sandbox is started.
They import nothing from mlsandbox and read none of its state files; the model service neither."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from mlsandbox.layout import REPO_ROOT, RunLayout

PACKAGES = ["load", "grading", "model_service"]


def sources(package: str) -> list[Path]:
    return sorted((REPO_ROOT / package).rglob("*.py"))


def imported(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


@pytest.mark.parametrize("package", PACKAGES)
def test_the_package_imports_nothing_from_mlsandbox(package):
    offenders = {
        str(p.relative_to(REPO_ROOT)): sorted(n for n in imported(p) if n.split(".")[0] == "mlsandbox")
        for p in sources(package)
    }
    assert {k: v for k, v in offenders.items() if v} == {}


@pytest.mark.parametrize("package", PACKAGES)
def test_the_package_reads_no_state_file_of_the_sandbox(package):
    layout = RunLayout(Path("run"))
    names = {layout.state.name, "stack.json", "docker-stack.json", layout.lock.name}
    offenders = [str(p.relative_to(REPO_ROOT)) for p in sources(package) if any(n in p.read_text() for n in names)]
    assert offenders == []
