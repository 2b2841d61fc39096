"""Pins the import rule of the design: the runtime is generic, actors see only the runtime."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MAY_IMPORT_ACTORS = {"supervisor.config", "supervisor.app", "supervisor.cli"}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def _modules(package: str) -> list[Path]:
    return sorted((ROOT / package).rglob("*.py"))


def _top(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")


def test_runtime_imports_only_anyio_trio_and_stdlib() -> None:
    import sys

    allowed_third_party = {"anyio", "trio", "sniffio", "outcome"}
    for path in _modules("supervisor/runtime"):
        for name in _imports(path):
            top = name.split(".")[0]
            if top == "supervisor":
                assert _top(name, "supervisor.runtime"), f"{path}: imports {name}"
                continue
            assert top in allowed_third_party or top in sys.stdlib_module_names, (
                f"{path}: imports {name}"
            )


def test_actors_import_only_the_runtime_of_supervisor() -> None:
    for path in _modules("actors"):
        for name in _imports(path):
            if _top(name, "supervisor"):
                assert _top(name, "supervisor.runtime"), f"{path}: imports {name}"


def test_only_config_app_and_cli_import_actors() -> None:
    for path in _modules("supervisor"):
        module = _module_name(path)
        if any(_top(module, allowed) for allowed in MAY_IMPORT_ACTORS):
            continue
        for name in _imports(path):
            assert not _top(name, "actors"), f"{path} ({module}) imports {name}"
