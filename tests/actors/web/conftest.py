"""Helpers for the web tests."""

from __future__ import annotations

from actors.models import CheckResult, CheckStatus


def result(
    name: str,
    status: CheckStatus = CheckStatus.PASS,
    *,
    critical: bool = False,
    message: str | None = None,
    latency: float = 0.045,
    details: dict[str, object] | None = None,
) -> CheckResult:
    """A check result as a check actor would publish it."""
    return CheckResult(
        check=name,
        status=status,
        message=message if message is not None else f"{name} {status.value}",
        latency_seconds=latency,
        timestamp=1_752_580_800.0,
        observed=status,
        critical=critical,
        details=details or {},
    )


def require_binary(path: str) -> str:
    """The binary's path; skipped when missing, except under CI=true where that fails."""
    import os
    import shutil

    import pytest

    found = shutil.which(path) or (path if os.path.exists(path) else None)
    if found is None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"{path} is not installed (required under CI)")
        pytest.skip(f"{path} is not installed (scripts/install-system-deps.sh installs it)")
    return found


def free_port() -> int:
    """A TCP port that was free a moment ago on 127.0.0.1."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port
