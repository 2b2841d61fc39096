"""The public surface of supervisor.runtime and its import rule are pinned here."""

from __future__ import annotations

import ast
import pathlib
import sys

import supervisor.runtime as runtime

EXPECTED = {
    "AutoShutdown",
    "Backoff",
    "ChildContext",
    "ChildFunction",
    "ChildInfo",
    "ChildNotFoundError",
    "ChildSpec",
    "ChildStartError",
    "ChildState",
    "DuplicateChildError",
    "EventKind",
    "Mailbox",
    "MailboxStatistics",
    "NotSupervisedError",
    "Overflow",
    "Restart",
    "RestartIntensityExceeded",
    "RestartWindow",
    "StartTimeoutError",
    "Strategy",
    "Supervisor",
    "SupervisorError",
    "SupervisorEvent",
    "SupervisorInfo",
    "SupervisorStateError",
    "SupervisorStatistics",
    "current_child",
    "leaves",
}

PACKAGE = pathlib.Path(runtime.__file__).parent


def test_public_surface_is_pinned() -> None:
    assert set(runtime.__all__) == EXPECTED
    assert len(runtime.__all__) == len(EXPECTED)
    for name in EXPECTED - {"ChildFunction"}:  # a type alias
        assert getattr(runtime, name).__module__.startswith("supervisor.runtime")


def test_every_module_has_all_and_future_annotations() -> None:
    for path in PACKAGE.glob("*.py"):
        tree = ast.parse(path.read_text())
        names = {
            target.id
            for node in tree.body
            if isinstance(node, ast.Assign)
            for target in node.targets
            if isinstance(target, ast.Name)
        }
        assert "__all__" in names, path.name
        assert any(
            isinstance(node, ast.ImportFrom)
            and node.module == "__future__"
            and any(alias.name == "annotations" for alias in node.names)
            for node in tree.body
        ), path.name


def test_imports_only_anyio_trio_and_the_standard_library() -> None:
    allowed = {"anyio", "trio", "__future__"} | set(sys.stdlib_module_names)
    for path in PACKAGE.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                roots = {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom):
                if node.level:  # relative: inside the package
                    continue
                roots = {(node.module or "").split(".")[0]}
            else:
                continue
            assert roots <= allowed, f"{path.name} imports {roots - allowed}"


def test_public_callables_have_docstrings() -> None:
    for name in runtime.__all__:
        obj = getattr(runtime, name)
        if callable(obj) and not name.endswith("Function"):
            assert obj.__doc__, name
    for method in ("run", "stop", "start_child", "terminate_child", "restart_child"):
        doc = getattr(runtime.Supervisor, method).__doc__
        assert doc, method
    assert "Raises" in (runtime.Supervisor.run.__doc__ or "")
    assert "Raises" in (runtime.Mailbox.send_nowait.__doc__ or "")
