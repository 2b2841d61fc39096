"""Where an embedded monitor's configuration comes from: `resolve_config(source)`.

A `ConfigSource` is a validated `Config`, a file path, a TOML document held in a string, or
None (./config.toml if present, else the packaged default). The embedding entry points
(`initialize_monitoring`, `start_monitoring_thread`) accept any of them.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from supervisor.config import Config, load_config, parse_config, resolve_config_path

__all__ = ["ConfigSource", "resolve_config"]

ConfigSource = Config | str | os.PathLike[str] | None
"""A `Config`, a file path (`str` or `Path`), a TOML document (a `str` holding a newline, `=` or
starting with `[`), or None (./config.toml if present, else the packaged default)."""


def _looks_like_toml(text: str) -> bool:
    return "\n" in text or "=" in text or text.lstrip().startswith("[")


def resolve_config(
    config: ConfigSource, *, env: Mapping[str, str] | None = None
) -> tuple[Config, Path | None]:
    """The validated configuration of `config` (see `ConfigSource`) and the file it came from.

    Raises:
        supervisor.config.ConfigError: the configuration is invalid or the file cannot be read.
    """
    if isinstance(config, Config):
        return config, None
    if config is None:
        path = resolve_config_path(None)
        return load_config(path, env=env), path
    if isinstance(config, str) and _looks_like_toml(config):
        return parse_config(config, file="<config>", env=env), None
    path = Path(config)
    return load_config(path, env=env), path
