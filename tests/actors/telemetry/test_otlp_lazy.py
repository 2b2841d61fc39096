"""protobuf and the OTLP messages are loaded by the receiver's first request, not by building the
monitor; the protocol numbers written out in the ingest modules are the protocol's.

The import scenarios run in a fresh interpreter (`sys.executable -c`): in this process other
tests have imported protobuf long ago.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

from opentelemetry.proto.metrics.v1 import metrics_pb2
from opentelemetry.proto.trace.v1 import trace_pb2

from actors.telemetry import otlp_ingest, otlp_traces

ROOT = Path(__file__).resolve().parents[3]

BUILD_AND_POST = """
import json, sys
from pathlib import Path
import trio
from pydantic import SecretStr
from supervisor.app import App
from supervisor.config import parse_config
from actors.telemetry.otlp_api import create_otlp_blueprint
from actors.telemetry.otlp_ingest import MetricsIngest
from actors.clock import SystemClock
from actors.telemetry.store import MetricStore
from tests.actors.web.guarded import guarded_app

app = App(parse_config(Path(sys.argv[1]).read_text(), env={}), env={})
built = "google.protobuf" in sys.modules
store = MetricStore(clock=SystemClock())
receiver = guarded_app(
    create_otlp_blueprint(metrics=MetricsIngest(store)), api_token=SecretStr("t")
)

async def post():
    response = await receiver.test_client().post(
        "/v1/metrics",
        data=b"{}",
        headers={"Content-Type": "application/json", "Authorization": "Bearer t"},
    )
    return response.status_code

status = trio.run(post)
print(json.dumps([built, status, "google.protobuf" in sys.modules]))
"""


def test_the_monitor_loads_protobuf_with_the_first_otlp_request(tmp_path: Path) -> None:
    path = tmp_path / "monitor.toml"
    path.write_text(
        textwrap.dedent(
            f"""\
            [server]
            listen = "127.0.0.1:0"

            [storage]
            path = "{tmp_path / "m.db"}"

            [[checks]]
            name = "web"
            kind = "http"
            url = "http://127.0.0.1:9/"
            """
        )
    )
    done = subprocess.run(
        [sys.executable, "-c", BUILD_AND_POST, str(path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.splitlines()[-1]) == [False, 200, True]


def test_the_numbers_written_out_are_the_protocols() -> None:
    assert otlp_ingest._CUMULATIVE == metrics_pb2.AGGREGATION_TEMPORALITY_CUMULATIVE
    assert otlp_ingest._DELTA == metrics_pb2.AGGREGATION_TEMPORALITY_DELTA
    assert otlp_ingest._NO_RECORDED_VALUE == metrics_pb2.DATA_POINT_FLAGS_NO_RECORDED_VALUE_MASK
    assert otlp_traces._STATUS == {
        trace_pb2.Status.STATUS_CODE_OK: "ok",
        trace_pb2.Status.STATUS_CODE_ERROR: "error",
    }
