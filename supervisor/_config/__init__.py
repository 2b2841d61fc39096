"""Generic configuration machinery: TOML positions, `${VAR}` interpolation, error reporting.

Knows nothing of the monitor's schema (that is `supervisor.config`, which composes the models of
`actors`); everything here works on any pydantic model.
"""
