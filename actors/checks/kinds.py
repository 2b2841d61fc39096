"""The registry of check kinds: `KINDS`, one line per kind; everything else is derived from it.

A kind is its module `actors.checks.<kind>` (config model + probe) and one `CheckKind` line in
`KINDS`. From `KINDS` come the discriminated union users write ([[checks]], `CheckConfig`), the
factory (`kind_of`, used by `build_probe`), and the checks that docs/configuration.md documents
every kind and key (tests/actors/checks/test_kinds.py).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, TypeAlias

from pydantic import BaseModel

from actors.checks.agents import AgentsCheckConfig, AgentsProbe
from actors.checks.config import CheckBase
from actors.checks.dns import DnsCheckConfig, DnsProbe
from actors.checks.grpc import GrpcCheckConfig, GrpcProbe
from actors.checks.http import HttpCheckConfig, HttpProbe
from actors.checks.icmp import IcmpCheckConfig, IcmpProbe
from actors.checks.metric import MetricCheckConfig, MetricProbe
from actors.checks.postgres import PostgresCheckConfig, PostgresProbe
from actors.checks.probe import CheckContext, ConfigT, Probe
from actors.checks.redis import RedisCheckConfig, RedisProbe
from actors.checks.selfcheck import SelfCheckConfig, SelfProbe
from actors.checks.tcp import TcpCheckConfig, TcpProbe
from actors.checks.tls import TlsCheckConfig, TlsProbe
from actors.checks.websocket import WebSocketCheckConfig, WebSocketProbe
from actors.kinds import Kind, kind_union
from actors.kinds import kind_of as find_kind

__all__ = ["KINDS", "CheckConfig", "CheckKind", "check_union", "kind_of"]


@dataclass(frozen=True)
class CheckKind(Kind[ConfigT]):
    """One check kind: its `kind` value (`name`), config model (`config`), probe, what it checks
    (for the docs) and a small example.

    `probe(config, context)` builds the probe; a `KindProbe` subclass is one. `example` holds the
    kind's own keys of a small valid [[checks]] table (not `name` nor `kind`): the registry's
    tests parse it through the real union and build its probe. `keys()` lists the kind's keys
    beyond `CheckBase`'s.

    Raises:
        ValueError: (at construction) `name` is not the config model's `kind` literal.
    """

    family: ClassVar[str] = "check"
    common: ClassVar[type[BaseModel]] = CheckBase

    probe: Callable[[ConfigT, CheckContext], Probe]
    description: str
    example: Mapping[str, Any]


KINDS: tuple[CheckKind[Any], ...] = (
    CheckKind(
        "http",
        HttpCheckConfig,
        HttpProbe,
        "an HTTP(S) request whose answer meets the expectations",
        {"url": "http://127.0.0.1:9/"},
    ),
    CheckKind(
        "tcp", TcpCheckConfig, TcpProbe, "a TCP connection opens", {"host": "127.0.0.1", "port": 9}
    ),
    CheckKind(
        "postgres",
        PostgresCheckConfig,
        PostgresProbe,
        "PostgreSQL runs a query",
        {"dsn": "postgresql://127.0.0.1:9/db"},
    ),
    CheckKind(
        "redis", RedisCheckConfig, RedisProbe, "Redis answers PING", {"url": "redis://127.0.0.1:9"}
    ),
    CheckKind(
        "agents",
        AgentsCheckConfig,
        AgentsProbe,
        "the application's agents report in and mostly succeed",
        {"expected": ["planner"]},
    ),
    CheckKind(
        "metric",
        MetricCheckConfig,
        MetricProbe,
        "a condition over the recorded metrics does not hold",
        {"condition": {"metric": "agent_errors_total", "threshold": 5}},
    ),
    CheckKind(
        "self",
        SelfCheckConfig,
        SelfProbe,
        "the supervision tree: no actor failed or crash-looping",
        {},
    ),
    CheckKind(
        "dns",
        DnsCheckConfig,
        DnsProbe,
        "a DNS name resolves to the expected records",
        {"query_name": "example.com"},
    ),
    CheckKind(
        "tls",
        TlsCheckConfig,
        TlsProbe,
        "a TLS certificate verifies and is not about to expire",
        {"host": "example.com"},
    ),
    CheckKind(
        "grpc",
        GrpcCheckConfig,
        GrpcProbe,
        "a gRPC server's health service answers SERVING",
        {"target": "127.0.0.1:9"},
    ),
    CheckKind(
        "websocket",
        WebSocketCheckConfig,
        WebSocketProbe,
        "a WebSocket opens and answers with the expected message",
        {"url": "ws://127.0.0.1:9/", "send": "ping", "expect": "pong"},
    ),
    CheckKind(
        "icmp",
        IcmpCheckConfig,
        IcmpProbe,
        "a host answers ICMP echo requests (ping)",
        {"host": "127.0.0.1", "count": 2},
    ),
)
"""Every check kind, in the order error messages and docs list them. Adding a kind: one line."""


def check_union(kinds: Sequence[CheckKind[Any]]) -> Any:
    """The pydantic type of a [[checks]] table: `kinds`' config models, chosen by `kind`.

    An unknown `kind` is reported with the registered kinds (the union's tags, in order).

    Raises:
        ValueError: `kinds` is empty or names a kind twice.
    """
    return kind_union(kinds, "check")


if TYPE_CHECKING:
    CheckConfig: TypeAlias = CheckBase
else:
    CheckConfig = check_union(KINDS)
"""Any check's configuration, chosen by its `kind` key (statically: a `CheckBase`)."""


def kind_of(config: CheckBase, kinds: Sequence[CheckKind[Any]] = KINDS) -> CheckKind[Any]:
    """The registered kind whose config model `config` is.

    Raises:
        LookupError: no kind of `kinds` has `type(config)` as its model.
    """
    return find_kind(config, kinds, "check")
