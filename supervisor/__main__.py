"""`python -m supervisor` is the same as the `blipee-monitor` command."""

from __future__ import annotations

import sys

from supervisor.cli import main

sys.exit(main())
