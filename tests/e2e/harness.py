"""What the acceptance tests drive: the monitor as a subprocess, and peers the tests control.

- `Monitor`: `python -m supervisor run -c FILE` with the checkout on PYTHONPATH (after a command
  `prefix` when given, e.g. one that drops privileges); both listeners
  on `127.0.0.1:0`, their bound ports read from the process's own "Running on" log lines (so no
  port is ever guessed); stopped with SIGTERM (SIGKILL only if that fails) in teardown.
- `HttpPeer`: a threaded `http.server` on 127.0.0.1 that records every request and answers
  with a status the test switches (`set_status`), optionally holding requests until `release()`.
  It is the webhook receiver and the target of `http` checks.
- `wait_until`: polling with a deadline; the only waiting the tests do.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TypeVar

import pytest

__all__ = [
    "PYTHON",
    "ROOT",
    "HttpPeer",
    "Monitor",
    "Recorded",
    "cli",
    "require_binary",
    "wait_until",
]

ROOT = Path(__file__).resolve().parents[2]
_VENV_PYTHON = ROOT / ".venv" / "bin" / "python"
PYTHON = str(_VENV_PYTHON) if _VENV_PYTHON.exists() else sys.executable

T = TypeVar("T")


def wait_until(
    probe: Callable[[], T | None], what: str, timeout: float = 10.0, step: float = 0.05
) -> T:
    """Call `probe` until it returns something truthy; fail the test after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout}s waiting for {what}")
        time.sleep(step)


def require_binary(name: str) -> str:
    """The path of `name`; a failure under CI=true, a skip elsewhere, when it is missing."""
    path = shutil.which(name) or (f"/usr/bin/{name}" if Path(f"/usr/bin/{name}").exists() else None)
    if path is None:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"{name} is not installed")
        pytest.skip(f"{name} is not installed")
    return path


def _base_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("BLIPEE_", "SLACK_", "SMTP_", "PAGERDUTY_", "OTEL_", "WEBHOOK_"))
    }
    env["PYTHONPATH"] = str(ROOT)
    env.update(extra or {})
    return env


def cli(
    *args: str, cwd: Path, env: Mapping[str, str] | None = None, timeout: float = 30.0
) -> subprocess.CompletedProcess[str]:
    """Run `python -m supervisor ARGS` to completion."""
    return subprocess.run(
        [PYTHON, "-m", "supervisor", *args],
        cwd=cwd,
        env=_base_env(env),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


class Monitor:
    """One `python -m supervisor run` process (see the module docstring)."""

    def __init__(
        self, config: Path, *, env: Mapping[str, str] | None = None, prefix: Sequence[str] = ()
    ) -> None:
        self.config = config
        self._prefix = list(prefix)
        self.log_path = config.with_suffix(".log")
        self._env = _base_env(env)
        self.proc: subprocess.Popen[bytes] | None = None
        self.api = ""
        self.metrics = ""

    def start(self, timeout: float = 20.0) -> Monitor:
        """Start the process and wait until both listeners are bound."""
        with self.log_path.open("ab") as out:
            self.proc = subprocess.Popen(
                [*self._prefix, PYTHON, "-m", "supervisor", "run", "-c", str(self.config)],
                cwd=self.config.parent,
                env=self._env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
            )

        def bound() -> tuple[str, str] | None:
            if self.proc is not None and self.proc.poll() is not None:
                pytest.fail(f"the monitor exited with {self.proc.returncode}:\n{self.log()}")
            urls: dict[str, str] = {}
            for entry in self.log_entries():
                msg = str(entry.get("msg", ""))
                if msg.startswith("Running on "):
                    urls[str(entry.get("actor"))] = msg.split()[2]
            if "web" in urls and "metrics" in urls:
                return urls["web"], urls["metrics"]
            return None

        self.api, self.metrics = wait_until(bound, "the monitor's listeners", timeout)
        return self

    def log(self) -> str:
        """Everything the process wrote so far (stdout and stderr)."""
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def log_entries(self) -> list[dict[str, object]]:
        """The JSON log lines (the configs here use `[log] format = "json"`)."""
        entries = []
        for line in self.log().splitlines():
            try:
                entry = json.loads(line)
            except ValueError:
                continue
            if isinstance(entry, dict):
                entries.append(entry)
        return entries

    def signal(self, signum: int) -> None:
        """Send `signum` to the process."""
        assert self.proc is not None
        self.proc.send_signal(signum)

    def wait(self, timeout: float) -> int:
        """Wait for the exit status (fails the test on timeout, killing the process)."""
        assert self.proc is not None
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            pytest.fail(f"the monitor did not exit within {timeout}s:\n{self.log()[-4000:]}")

    def stop(self) -> int | None:
        """SIGTERM (SIGKILL after 15 s); the exit status, None if it was not started."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode


@dataclass(frozen=True)
class Recorded:
    """One request an `HttpPeer` received."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    at: float = 0.0
    """When it arrived (`time.monotonic()` of the test process)."""

    def json(self) -> object:
        """The body as JSON."""
        return json.loads(self.body)


class HttpPeer:
    """A threaded HTTP server on 127.0.0.1 (see the module docstring)."""

    def __init__(self) -> None:
        self.requests: list[Recorded] = []
        self.status = 200
        self._lock = threading.Lock()
        self._gate = threading.Event()
        self._gate.set()
        peer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _answer(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                with peer._lock:
                    peer.requests.append(
                        Recorded(
                            self.command,
                            self.path,
                            {k.lower(): v for k, v in self.headers.items()},
                            body,
                            time.monotonic(),
                        )
                    )
                    status = peer.status
                peer._gate.wait(timeout=30)
                payload = b"ok" if status < 400 else b"failing"
                self.send_response(status)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = do_PUT = _answer

            def log_message(self, format: str, *args: object) -> None:
                return

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.port = int(self._server.server_address[1])
        self.url = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> HttpPeer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._gate.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def set_status(self, status: int) -> None:
        """Answer every following request with `status`."""
        with self._lock:
            self.status = status

    def hold(self) -> None:
        """Hold every following request until `release()`."""
        self._gate.clear()

    def release(self) -> None:
        """Answer the held requests."""
        self._gate.set()

    def received(self, path: str | None = None) -> list[Recorded]:
        """A copy of the requests so far (only those to `path` when given)."""
        with self._lock:
            return [r for r in self.requests if path is None or r.path == path]
