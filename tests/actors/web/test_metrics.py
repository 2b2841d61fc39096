"""/metrics: negotiation, gzip, token, allow-list, promtool lint, a real Prometheus scraping it."""

from __future__ import annotations

import gzip
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import trio
from pydantic import SecretStr

from actors.clock import SystemClock
from actors.models import CheckStatus
from actors.state import HealthState
from actors.telemetry.store import MetricStore
from actors.web.access import AccessGuard
from actors.web.config import SecurityConfig
from actors.web.metrics import build_registry, create_metrics_app
from actors.web.server import HttpServer

from .conftest import free_port, require_binary, result


@dataclass(frozen=True)
class _Child:
    restarts: int


class _Tree:
    def walk(self, prefix: str = "") -> Any:
        yield "root/web", _Child(2)
        yield "root/checks/database", _Child(0)


def _registry() -> Any:
    store = MetricStore(clock=SystemClock())
    state = HealthState(checks={"database": True}, recorder=store)
    state.publish(result("database", CheckStatus.PASS, critical=True))
    state.publish(result("database", CheckStatus.FAIL, critical=True))
    return build_registry(
        collectors=[store.collector()], tree=_Tree, mailboxes=lambda: {"rules": 3}
    )


async def _serve(nursery: trio.Nursery, app: Any) -> HttpServer:
    server = HttpServer(app=app, listen="127.0.0.1:0", name="metrics")
    await nursery.start(server.run)
    return server


async def test_exposition_negotiation_and_gzip(nursery: trio.Nursery) -> None:
    server = await _serve(nursery, create_metrics_app(registry=_registry()))
    url = f"http://127.0.0.1:{server.port}/metrics"
    async with httpx.AsyncClient() as client:
        plain = await client.get(url, headers={"Accept-Encoding": "identity"})
        assert plain.status_code == 200
        assert plain.headers["content-type"].startswith("text/plain")
        text = plain.text
        assert 'health_check_up{check="database"} 0.0' in text
        assert 'health_check_runs_total{check="database",result="fail"} 1.0' in text
        assert "health_check_duration_seconds_bucket" in text
        assert 'actor_restarts_total{actor="root/web"} 2.0' in text
        assert 'mailbox_dropped_total{mailbox="rules"} 3.0' in text
        assert "process_cpu_seconds_total" in text
        om = await client.get(
            url,
            headers={
                "Accept": "application/openmetrics-text;version=1.0.0",
                "Accept-Encoding": "gzip",
            },
        )
        assert om.headers["content-type"].startswith("application/openmetrics-text")
        assert om.headers["content-encoding"] == "gzip"
        assert om.text.rstrip().endswith("# EOF")
        async with client.stream("GET", url, headers={"Accept-Encoding": "gzip"}) as raw:
            body = b"".join([chunk async for chunk in raw.aiter_raw()])
        assert b"health_check_up" in gzip.decompress(body)
        missing = await client.get(f"http://127.0.0.1:{server.port}/other")
        assert missing.status_code == 404


def _access(metrics_token: str | None = "tok", **security: Any) -> AccessGuard:
    if metrics_token is not None:
        security["metrics_token"] = SecretStr(metrics_token)
    return AccessGuard(SecurityConfig(**security), listen="127.0.0.1:0")


async def test_token_and_allow_list(nursery: trio.Nursery) -> None:
    app = create_metrics_app(registry=_registry(), access=_access(allow_from=("127.0.0.0/8",)))
    server = await _serve(nursery, app)
    url = f"http://127.0.0.1:{server.port}/metrics"
    async with httpx.AsyncClient() as client:
        response = await client.get(url)
        assert response.status_code == 401
        assert response.json() == {"error": "missing or invalid bearer token"}
        response = await client.get(url, headers={"Authorization": "Bearer tok"})
        assert response.status_code == 200
    denied = create_metrics_app(
        registry=_registry(), access=_access(metrics_token=None, allow_from=("10.0.0.0/8",))
    )
    server = await _serve(nursery, denied)
    async with httpx.AsyncClient() as client:
        response = await client.get(f"http://127.0.0.1:{server.port}/metrics")
        assert response.status_code == 403


async def test_promtool_check_metrics_is_silent(nursery: trio.Nursery) -> None:
    promtool = require_binary("promtool")
    server = await _serve(nursery, create_metrics_app(registry=_registry()))
    async with httpx.AsyncClient() as client:
        text = (await client.get(f"http://127.0.0.1:{server.port}/metrics")).content
    done = await trio.run_process(
        [promtool, "check", "metrics"],
        stdin=text,
        capture_stdout=True,
        capture_stderr=True,
        check=False,
    )
    assert done.stdout + done.stderr == b""
    assert done.returncode == 0


async def test_real_prometheus_scrapes_us(nursery: trio.Nursery, tmp_path: Path) -> None:
    prometheus = require_binary("/usr/bin/prometheus")
    server = await _serve(nursery, create_metrics_app(registry=_registry(), access=_access()))
    port = free_port()
    (tmp_path / "token").write_text("tok")
    (tmp_path / "prometheus.yml").write_text(
        "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
        "scrape_configs:\n  - job_name: blipee\n"
        f"    authorization:\n      credentials_file: {tmp_path / 'token'}\n"
        f"    static_configs:\n      - targets: ['127.0.0.1:{server.port}']\n"
    )
    process = subprocess.Popen(
        [
            prometheus,
            f"--config.file={tmp_path / 'prometheus.yml'}",
            f"--storage.tsdb.path={tmp_path / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        api = f"http://127.0.0.1:{port}/api/v1/query"
        up: list[Any] = []
        series: list[Any] = []
        async with httpx.AsyncClient() as client:
            with trio.fail_after(25):
                while not (up and series):
                    await trio.sleep(0.25)  # waiting on another process: nothing to wake us
                    try:
                        up = (await client.get(api, params={"query": "up == 1"})).json()["data"][
                            "result"
                        ]
                        series = (
                            await client.get(api, params={"query": "health_check_up"})
                        ).json()["data"]["result"]
                    except (httpx.HTTPError, KeyError, ValueError):
                        continue
        assert up[0]["metric"]["job"] == "blipee"
        assert series[0]["metric"]["check"] == "database"
        assert series[0]["value"][1] == "0"
    finally:
        process.terminate()
        process.wait(10)
