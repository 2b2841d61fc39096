"""RE2 is loaded by the first regex matcher compiled, not by importing the monitor.

Each scenario runs in a fresh interpreter (`sys.executable -c`): in this process other tests have
compiled regex matchers long ago.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]

PARSE = """
import json, sys
from pathlib import Path
import supervisor.cli
from supervisor.config import parse_config

imported = "re2" in sys.modules
config = parse_config(Path(sys.argv[1]).read_text(), env={})
print(json.dumps([imported, "re2" in sys.modules]))
"""


def _loaded(tmp_path: Path, matchers: str) -> list[bool]:
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

            [channels.console]
            kind = "console"

            [[routing.routes]]
            matchers = [{matchers}]
            channels = ["console"]
            """
        )
    )
    done = subprocess.run(
        [sys.executable, "-c", PARSE, str(path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    result: list[bool] = json.loads(done.stdout.splitlines()[-1])
    return result


def test_equality_matchers_do_not_load_re2(tmp_path: Path) -> None:
    assert _loaded(tmp_path, '"severity=critical", "team!=db"') == [False, False]


def test_a_regex_matcher_loads_re2_when_the_config_is_parsed(tmp_path: Path) -> None:
    assert _loaded(tmp_path, '"service=~\\"api|web\\""') == [False, True]
