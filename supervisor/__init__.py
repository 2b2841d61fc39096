"""blipee-monitor: the supervisor process.

`supervisor.runtime` is the generic OTP-style runtime; `supervisor.config`, `supervisor.app` and
`supervisor.cli` turn a TOML file into a running supervision tree of the actors in `actors`.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("blipee-monitor")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0"

__all__ = ["__version__"]
