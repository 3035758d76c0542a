"""The layout's rules (docs/ARCHITECTURE.md), checked on the source rather than kept by hand."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest
from importlinter.cli import lint_imports

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("relay", "workers", "integrations")
SOURCES = sorted(p for pkg in PACKAGES for p in (ROOT / pkg).rglob("*.py")) + [ROOT / "app.py"]
# Process-wide by nature, not caches of the relay's data: Python keeps one audit hook list and one log record
# factory per process, Prometheus's multiprocess counters are files per process id, the others are pure
# functions of their arguments (or of a file shipped with the package).
PROCESS_WIDE = {
    ("integrations/netguard.py", "install_hook"): "sys.addaudithook cannot be undone: install it once",
    ("relay/metrics.py", "instruments"): "Prometheus counters of this process (multiprocess files per pid)",
    ("relay/security/users.py", "hasher"): "argon2 parameters, a constant",
    ("relay/security/users.py", "_decoy_hash"): "a constant derived from the constant above",
    ("relay/pairs/badges.py", "render_svg"): "pure: the same text always renders the same SVG",
    ("relay/pairs/badges.py", "_json"): "pure: the same text always renders the same JSON",
    ("relay/web/api/openapi.py", "spec"): "the YAML file shipped with the package and the registered integrations",
    ("relay/pairs/store.py", "_lock_rows"): "pure: the statement for a number of pair rows, a constant",
    ("relay/pairs/store.py", "_insert_rows"): "pure: the statement for a number of pair rows, a constant",
}
CACHE_DECORATORS = {"cache", "lru_cache", "cached"}
MUTABLE_FACTORIES = {"dict", "list", "set", "OrderedDict", "defaultdict", "KnownSecrets", "Runtime", "Settings"}


def rel(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def test_import_contracts_hold(monkeypatch):
    """Layers, pure integrations and the one door into RQ: the import-linter contracts in pyproject.toml."""
    monkeypatch.chdir(ROOT)
    assert lint_imports(config_filename=str(ROOT / "pyproject.toml"), no_cache=True, no_logo=True) == 0


def test_importing_app_does_no_io(tmp_path):
    """gunicorn's factory form makes the app; a bare import of app.py writes no key file, makes no directory."""
    env = {**os.environ, "RELAY_DATA_DIR": str(tmp_path / "data"), "PYTHONPATH": str(ROOT)}
    subprocess.run([sys.executable, "-c", "import app"], cwd=tmp_path, env=env, check=True, timeout=60)
    assert not (tmp_path / "data").exists()


@pytest.mark.parametrize("path", SOURCES, ids=rel)
def test_no_module_imports_another_modules_private_names(path: Path):
    tree = ast.parse(path.read_text())
    own = module_name(path)
    problems = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] in PACKAGES:
            if node.module != own:
                problems += [f"from {node.module} import {a.name}" for a in node.names if a.name.startswith("_")]
        if isinstance(node, ast.Import):
            problems += [a.name for a in node.names
                         if a.name.split(".")[0] in PACKAGES and any(p.startswith("_") for p in a.name.split("."))]
    assert problems == []


@pytest.mark.parametrize("path", SOURCES, ids=rel)
def test_no_process_global_mutable_state(path: Path):
    """No `global`, no module-level cache or mutable registry: caches live on the Runtime (Runtime.cache)."""
    tree = ast.parse(path.read_text())
    problems = []
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef):
            allowed = (rel(path), node.name) in PROCESS_WIDE
            names = {getattr(d.func if isinstance(d, ast.Call) else d, "id", None) or
                     getattr(d.func if isinstance(d, ast.Call) else d, "attr", None) for d in node.decorator_list}
            if names & CACHE_DECORATORS and not allowed:
                problems.append(f"{node.name}: a cache in a module global")
            if any(isinstance(n, ast.Global) for n in ast.walk(node)) and not allowed:
                problems.append(f"{node.name}: `global`")
    for node in tree.body:
        value = node.value if isinstance(node, (ast.Assign, ast.AnnAssign)) else None
        if isinstance(value, ast.Call):
            func = value.func.id if isinstance(value.func, ast.Name) else getattr(value.func, "attr", "")
            if func in MUTABLE_FACTORIES or func.endswith("Cache"):
                problems.append(f"line {node.lineno}: module-level {func}()")
    assert problems == []
