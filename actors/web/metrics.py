"""The /metrics listener: an ASGI app over its own prometheus_client `CollectorRegistry`.

The registry holds the metric store's collector (the one metrics path), a `RuntimeCollector`
(actor_restarts_total{actor}, mailbox_dropped_total{mailbox}, read from the supervision tree and
the mailboxes' statistics at scrape time) and the process collector. The app negotiates the
Prometheus text / OpenMetrics format from `Accept` and gzips when the client accepts it (the
prometheus_client exposition functions do both), and asks the access guard (`actors.web.access`,
scope `metrics`: the CIDR allow-list `security.allow_from`, then the bearer token
`security.metrics_token`, empty = open) before anything is rendered.
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Awaitable, Callable, Iterator, Mapping, MutableMapping, Sequence
from typing import Any

from prometheus_client import CollectorRegistry, ProcessCollector
from prometheus_client.core import CounterMetricFamily, Metric
from prometheus_client.exposition import choose_encoder, gzip_accepted
from prometheus_client.registry import Collector

from actors.web.access import AccessGuard, Scope
from actors.web.config import SecurityConfig, ServerConfig

__all__ = ["RuntimeCollector", "build_registry", "create_metrics_app"]

AsgiScope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]


class RuntimeCollector(Collector):
    """actor_restarts_total{actor} from `tree()` (the root supervisor's snapshot: anything with
    `walk()` yielding (path, info with `.restarts`)), mailbox_dropped_total{mailbox} from
    `mailboxes()` ({mailbox name: dropped count})."""

    def __init__(
        self,
        *,
        tree: Callable[[], Any] | None = None,
        mailboxes: Callable[[], Mapping[str, int]] | None = None,
    ) -> None:
        self._tree = tree
        self._mailboxes = mailboxes

    def describe(self) -> Iterator[Metric]:
        """The two families, without samples."""
        yield CounterMetricFamily("actor_restarts", _RESTARTS_HELP, labels=("actor",))
        yield CounterMetricFamily("mailbox_dropped", _DROPPED_HELP, labels=("mailbox",))

    def collect(self) -> Iterator[Metric]:
        """Read the tree and the mailboxes now."""
        restarts = CounterMetricFamily("actor_restarts", _RESTARTS_HELP, labels=("actor",))
        snapshot = self._tree() if self._tree is not None else None
        if snapshot is not None:
            for path, info in snapshot.walk():
                restarts.add_metric([path], float(getattr(info, "restarts", 0)))
        yield restarts
        dropped = CounterMetricFamily("mailbox_dropped", _DROPPED_HELP, labels=("mailbox",))
        if self._mailboxes is not None:
            for name, count in sorted(self._mailboxes().items()):
                dropped.add_metric([name], float(count))
        yield dropped


_RESTARTS_HELP = "Restarts of each supervised actor (path in the supervision tree)."
_DROPPED_HELP = "Messages dropped by each bounded mailbox on overflow."


def build_registry(
    *,
    collectors: Sequence[Collector] = (),
    tree: Callable[[], Any] | None = None,
    mailboxes: Callable[[], Mapping[str, int]] | None = None,
    process: bool = True,
) -> CollectorRegistry:
    """A fresh registry with `collectors` (e.g. `store.collector()`), the runtime collector and
    (unless `process` is False) the process collector."""
    registry = CollectorRegistry(auto_describe=True)
    for collector in collectors:
        registry.register(collector)
    registry.register(RuntimeCollector(tree=tree, mailboxes=mailboxes))
    if process:
        ProcessCollector(registry=registry)
    return registry


def _json(status: int, message: str) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
    body = json.dumps({"error": message}).encode()
    return status, [(b"content-type", b"application/json")], body


def create_metrics_app(
    *,
    registry: CollectorRegistry,
    access: AccessGuard | None = None,
    path: str = "/metrics",
) -> Callable[[AsgiScope, Receive, Send], Awaitable[None]]:
    """The ASGI app serving `registry` on `path` (see the module docstring); `access` decides
    who may scrape (default: the defaults of `[security]`, open to everyone)."""
    guard = access or AccessGuard(SecurityConfig(), listen=ServerConfig().metrics_listen)

    def answer(scope: AsgiScope) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
        decision = guard.decide_asgi(Scope.METRICS, scope)
        if not decision.allowed:
            return decision.asgi()
        if scope["path"] != path:
            return _json(404, f"no route {scope['path']}; metrics are at {path}")
        if scope["method"] not in ("GET", "HEAD"):
            return _json(405, "use GET")
        headers: dict[str, str] = {}
        for key, value in scope.get("headers", ()):
            headers[key.decode("latin-1").lower()] = value.decode("latin-1")
        encoder, content_type = choose_encoder(headers.get("accept", ""))
        output: bytes = encoder(registry)
        head = [(b"content-type", content_type.encode())]
        if gzip_accepted(headers.get("accept-encoding", "")):
            output = gzip.compress(output, compresslevel=5)
            head.append((b"content-encoding", b"gzip"))
        head.append((b"vary", b"Accept, Accept-Encoding"))
        return 200, head, output

    async def app(scope: AsgiScope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        if scope["type"] != "http":
            return
        status, head, body = answer(scope)
        head.append((b"content-length", str(len(body)).encode()))
        await send({"type": "http.response.start", "status": status, "headers": head})
        if scope["method"] == "HEAD":
            body = b""
        await send({"type": "http.response.body", "body": body})

    return app
