"""The /metrics listener: an ASGI app over the metric store and its own `CollectorRegistry`.

What it serves: the metric store (the one metrics path), and a prometheus_client registry
holding a `RuntimeCollector` (actor_restarts_total{actor}, mailbox_dropped_total{mailbox}, read
from the supervision tree and the mailboxes' statistics at scrape time) and the process
collector. The app negotiates the Prometheus text / OpenMetrics format from `Accept` and gzips
when the client accepts it, and asks the access guard (`actors.web.access`, scope `metrics`: the
CIDR allow-list `security.allow_from`, then the bearer token `security.metrics_token`, empty =
open) before anything is rendered.

A scrape never holds the event loop for long: on the loop it takes an immutable snapshot of the
store and writes its text in steps of `FREEZE_CHUNK` (250) series (`actors.telemetry.exposition`'s
`freeze_in_steps` and `render_in_steps`), the loop answering between steps, with the cyclic
garbage collector paused meanwhile (`actors.web.gcpause`: the snapshot's objects otherwise set
off a full collection of ~60 ms in one piece; overlapping renders never keep it off longer than
its bound); the registry's families are collected on the loop and encoded, with the gzip, in a
worker thread (one render at a time). The store's text is not
written in that thread: pure Python there would compete with the loop for the interpreter lock.

Scrapes that arrive while a render of the same format is in flight share it, and with
`reuse_for` a render is served again for that many seconds (two Prometheus replicas scraping
the same interval cost one render).
"""

from __future__ import annotations

import gzip
import json
from collections.abc import (
    Awaitable,
    Callable,
    Generator,
    Iterator,
    Mapping,
    MutableMapping,
    Sequence,
)
from typing import TYPE_CHECKING, Any, TypeVar

import trio
import trio.lowlevel
from prometheus_client import CollectorRegistry, ProcessCollector
from prometheus_client.core import CounterMetricFamily, Metric
from prometheus_client.exposition import choose_encoder, generate_latest, gzip_accepted
from prometheus_client.openmetrics.exposition import generate_latest as generate_openmetrics
from prometheus_client.registry import Collector

from actors.telemetry.exposition import freeze_in_steps, render_in_steps
from actors.web.access import AccessGuard, Scope
from actors.web.config import SecurityConfig, ServerConfig
from actors.web.gcpause import CollectorPause

if TYPE_CHECKING:
    from actors.telemetry.store import MetricStore

__all__ = ["MetricsRenderer", "RuntimeCollector", "build_registry", "create_metrics_app"]

_EOF = "# EOF\n"
T = TypeVar("T")

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


class _Collected(Collector):
    """Families collected on the loop, for prometheus_client's encoders in a worker thread."""

    def __init__(self, families: list[Metric]) -> None:
        self._families = families

    def collect(self) -> Iterator[Metric]:
        return iter(self._families)


def _encode(store_text: str, families: list[Metric], openmetrics: bool, compress: bool) -> bytes:
    """The body of one scrape: the store's text (rendered on the loop) and the registry's
    families (runs in a worker thread: reads only immutable snapshots; gzip releases the
    interpreter lock)."""
    collected = _Collected(families)
    if openmetrics:
        rest = generate_openmetrics(collected).decode()  # type: ignore[no-untyped-call]
        text = store_text + rest.removesuffix(_EOF) + _EOF
    else:
        text = store_text + generate_latest(collected).decode()
    data = text.encode()
    return gzip.compress(data, compresslevel=5) if compress else data


class _Flight:
    """One render in progress; scrapes of the same format that arrive meanwhile wait for it."""

    __slots__ = ("body", "done")

    def __init__(self) -> None:
        self.done = trio.Event()
        self.body: bytes | None = None


class MetricsRenderer:
    """Renders scrapes of `store` and `registry` without blocking the event loop.

    On the loop, in steps it runs between: `freeze(store)` and the store's text; then
    ``registry.collect()``; in a worker thread, one render at a time: the registry's text and
    the gzip. A render started at
    loop time t is served again until t + `reuse_for` (0: only to the scrapes that arrived while
    it was in flight). The cyclic garbage collector is paused while a snapshot exists, within
    the bound of `pause` (`actors.web.gcpause`; default: one of its own). Must be used from
    trio.
    """

    def __init__(
        self,
        *,
        registry: CollectorRegistry,
        store: MetricStore | None = None,
        reuse_for: float = 0.0,
        pause: CollectorPause | None = None,
    ) -> None:
        self._registry = registry
        self._store = store
        self._reuse_for = reuse_for
        self._pause = pause if pause is not None else CollectorPause()
        self._limiter = trio.CapacityLimiter(1)
        self._done: dict[tuple[bool, bool], tuple[float, bytes]] = {}
        self._flights: dict[tuple[bool, bool], _Flight] = {}

    async def body(self, *, openmetrics: bool, compress: bool) -> bytes:
        """The scrape's body in the asked format (gzipped when `compress`).

        Raises: whatever a collector raises (a programming error), to every scrape sharing the
        render.
        """
        key = (openmetrics, compress)
        done = self._done.get(key)
        if done is not None and trio.current_time() < done[0] + self._reuse_for:
            return done[1]
        flight = self._flights.get(key)
        if flight is not None:
            await flight.done.wait()
            if flight.body is not None:
                return flight.body
        flight = self._flights[key] = _Flight()
        try:
            taken = trio.current_time()
            check = self._pause.check
            with self._pause.paused():
                store = self._store
                frames = await _stepped(freeze_in_steps(store), check) if store is not None else ()
                text = await _stepped(render_in_steps(frames, openmetrics=openmetrics), check)
                del frames  # freed by reference counting, before the collector runs again
            families = list(self._registry.collect())
            body = await trio.to_thread.run_sync(
                _encode, text, families, openmetrics, compress, limiter=self._limiter
            )
            flight.body = body
            self._done[key] = (taken, body)
            return body
        finally:
            del self._flights[key]
            flight.done.set()


async def _stepped(steps: Generator[None, None, T], each: Callable[[], None]) -> T:
    """Run `steps` to its value, calling `each` and letting the loop run at each of its yields."""
    while True:
        try:
            next(steps)
        except StopIteration as done:
            value: T = done.value
            return value
        each()
        await trio.lowlevel.checkpoint()


def _json(status: int, message: str) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
    body = json.dumps({"error": message}).encode()
    return status, [(b"content-type", b"application/json")], body


def create_metrics_app(
    *,
    registry: CollectorRegistry,
    store: MetricStore | None = None,
    reuse_for: float = 0.0,
    access: AccessGuard | None = None,
    path: str = "/metrics",
) -> Callable[[AsgiScope, Receive, Send], Awaitable[None]]:
    """The ASGI app serving `store` and `registry` on `path` (see the module docstring and
    `MetricsRenderer` for `reuse_for`); `access` decides who may scrape (default: the defaults
    of `[security]`, open to everyone). Runs under trio (Hypercorn's trio worker)."""
    guard = access or AccessGuard(SecurityConfig(), listen=ServerConfig().metrics_listen)
    renderer = MetricsRenderer(registry=registry, store=store, reuse_for=reuse_for)

    async def answer(scope: AsgiScope) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
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
        _, content_type = choose_encoder(headers.get("accept", ""))
        openmetrics = content_type.startswith("application/openmetrics-text")
        compress = gzip_accepted(headers.get("accept-encoding", ""))
        output = await renderer.body(openmetrics=openmetrics, compress=compress)
        head = [(b"content-type", content_type.encode())]
        if compress:
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
        status, head, body = await answer(scope)
        head.append((b"content-length", str(len(body)).encode()))
        await send({"type": "http.response.start", "status": status, "headers": head})
        if scope["method"] == "HEAD":
            body = b""
        await send({"type": "http.response.body", "body": body})

    return app
