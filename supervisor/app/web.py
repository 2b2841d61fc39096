"""The web subsystem: the API listener and the /metrics listener.

`WebSubsystem` builds the API app (probes, status page and health documents from `actors.web`,
plus the blueprints of the other subsystems: the recording API and the OTLP receiver, alerts
and silences, test notifications and the notification log, and `POST /api/v1/reload`) and the
/metrics app, each served by an `HttpServer` child (`metrics` on `[server] metrics_listen`, `web`
on `[server] listen`). The servers stop when their supervisor asks them to.

Access: one `AccessGuard` (`actors.web.access`) decides every request of both listeners by the
scope each route declares. On reload it takes the new [security] (tokens, scopes, `allow_from`,
`read_requires_token`, `metrics_token`, `max_body_bytes`), from the next request on; [server]
and `anonymize_*` take a restart (the reload reports them in `needs_restart`).

Tracing: when OTLP export is configured the API app runs inside the OpenTelemetry ASGI
instrumentation (one server span per request, probes excluded), with the setup's own
`TracerProvider` (no global provider).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from opentelemetry.trace import TracerProvider

from actors.cluster.api import create_blueprint as cluster_blueprint
from actors.cluster.membership import Membership
from actors.cluster.ownership import Ownership
from actors.configtypes import format_duration
from actors.notify.api import create_blueprint as notify_blueprint
from actors.routing.api import create_blueprint as alerting_blueprint
from actors.rules.slo import ALERTS as SLO_ALERTS
from actors.rules.slo import SloStatus
from actors.rules.slo_api import create_blueprint as slo_blueprint
from actors.store.interface import Store
from actors.telemetry.api import create_blueprint as telemetry_blueprint
from actors.telemetry.otlp_api import create_otlp_blueprint
from actors.web.access import AccessGuard
from actors.web.app import create_app
from actors.web.audit import AuditLog
from actors.web.metrics import build_registry, create_metrics_app
from actors.web.server import HttpServer
from actors.web.statuspage import AlertLine, MaintenanceLine, PageSources, SilenceLine, SloLine
from supervisor.app.checks import ChecksSubsystem
from supervisor.app.notify import NotifySubsystem
from supervisor.app.reload import ReloadReport, ReportBuilder, reload_blueprint
from supervisor.app.routing import RoutingSubsystem
from supervisor.app.subsystem import Wiring
from supervisor.app.telemetry import TelemetrySubsystem
from supervisor.config import Config
from supervisor.logging_setup import logger_for
from supervisor.runtime import ChildSpec, current_child

__all__ = ["METRICS_REUSE", "WebSubsystem"]

METRICS_REUSE = 1.0
"""Seconds a /metrics render is served again (scrapers of one interval share it)."""

# Kubernetes probes hit these every few seconds: a span each would drown the useful ones.
_UNTRACED_ROUTES = "/api/health/live,/api/health/ready"


def _burn_rates(status: SloStatus, alert: str) -> list[tuple[str, float | None]]:
    """`status`'s burn rates over the windows of burn-rate alert `alert`, shortest first."""
    windows = sorted({w for pair in SLO_ALERTS[alert] for w in (pair.short, pair.long)})
    return [(format_duration(w), status.burn_rates.get(w)) for w in windows]


def _page_sources(
    checks: ChecksSubsystem, routing: RoutingSubsystem, wiring: Wiring
) -> PageSources:
    """What the status page shows besides the checks, read from the subsystems that own it."""

    def alerts(now: float) -> list[AlertLine]:
        return [
            AlertLine(
                name=dict(view.labels).get("alertname", view.rule_id),
                state=view.state,
                since=view.active_since,
                summary=dict(view.annotations).get("summary", ""),
            )
            for view in routing.rules.alerts()
        ]

    def silences(now: float) -> list[SilenceLine]:
        return [
            SilenceLine(", ".join(s.matchers), s.ends_at, s.created_by, s.comment)
            for s in routing.silences.all()
            if s.starts_at <= now < s.ends_at
        ]

    def maintenance(now: float) -> list[MaintenanceLine]:
        return [
            MaintenanceLine(m.comment, ", ".join(m.matchers))
            for m in routing.maintenance_in_progress(now)
        ]

    def slos(now: float) -> list[SloLine]:
        return [
            SloLine(
                name=o.name,
                objective=o.objective,
                sli=o.sli,
                budget_remaining=o.error_budget_remaining,
                page_burn=_burn_rates(o, "page"),
                ticket_burn=_burn_rates(o, "ticket"),
                paging=o.alerts.get("page", 0.0) > 0,
                error=o.error,
            )
            for o in routing.slos.statuses()
        ]

    return PageSources(
        alerts=alerts,
        silences=silences,
        maintenance=maintenance,
        slos=slos,
        groups=lambda: checks.groups,
        tree=wiring.tree,
    )


def _traced_asgi(app: Any, tracer_provider: TracerProvider) -> Any:
    """`app` inside the OpenTelemetry ASGI middleware: one server span per request (probes
    excluded), tracing with `tracer_provider` only (no global provider is read or set).
    Imported here: the instrumentation costs an import only when tracing is configured."""
    from opentelemetry.instrumentation.asgi import OpenTelemetryMiddleware
    from opentelemetry.metrics import NoOpMeterProvider

    return OpenTelemetryMiddleware(
        app,
        excluded_urls=_UNTRACED_ROUTES,
        tracer_provider=tracer_provider,
        meter_provider=NoOpMeterProvider(),
        exclude_spans=["receive", "send"],
    )


async def _stop_requested() -> None:
    """Shutdown trigger of the HTTP servers: their supervisor asked them to stop."""
    await current_child().wait_stop_requested()


class WebSubsystem:
    """The two HTTP listeners. See the module docstring.

    Args:
        config: the configuration ([server], [security]).
        wiring: clock, supervisor settings, the tree (health documents, /metrics).
        database: where the access guard's audit log is kept.
        telemetry, checks, notify, routing: the subsystems whose objects the API serves.
        reload_config: reads and applies the configuration file (None: rejected).
        rejected: the errors of the last rejected file.

    Attributes:
        access: the access guard of both listeners.
        api_server: the API listener (`port` once it runs).
        metrics_server: the /metrics listener.
    """

    def __init__(
        self,
        config: Config,
        wiring: Wiring,
        *,
        database: Store,
        telemetry: TelemetrySubsystem,
        checks: ChecksSubsystem,
        notify: NotifySubsystem,
        routing: RoutingSubsystem,
        reload_config: Callable[[], Awaitable[ReloadReport | None]],
        rejected: Callable[[], Sequence[str]],
        membership: Membership | None = None,
        ownership: Ownership | None = None,
    ) -> None:
        self._wiring = wiring
        clock = wiring.clock
        self.access = AccessGuard(
            config.security,
            listen=config.server.listen,
            external_url=config.server.external_url,
            logger=logger_for("web"),
            audit=AuditLog(database=database, clock=clock, logger=logger_for("audit")),
            clock=clock,
        )
        api = create_app(
            health=checks.health,
            blueprints=[
                telemetry_blueprint(telemetry=telemetry.api, clock=clock),
                create_otlp_blueprint(metrics=telemetry.otlp_metrics, traces=telemetry.otlp_traces),
                alerting_blueprint(
                    rules=routing.rules, routing=routing, silences=routing.silences, clock=clock
                ),
                slo_blueprint(slos=routing.slos),
                notify_blueprint(
                    channels=notify.channels,
                    outbox=notify.outbox,
                    clock=clock,
                    logger=logger_for("notify.api"),
                ),
                reload_blueprint(reload_config=reload_config, rejected=rejected),
                cluster_blueprint(membership=membership, ownership=ownership),
            ],
            store=telemetry.store,
            tree=wiring.tree,
            access=self.access,
            clock=clock,
            status_page=config.status_page,
            history=checks.history_view,
            sources=_page_sources(checks, routing, wiring),
        )
        if telemetry.otel.tracer_provider is not None:
            api = _traced_asgi(api, telemetry.otel.tracer_provider)
        alerts = routing.alerts
        registry = build_registry(
            tree=wiring.tree, mailboxes=lambda: {alerts.name: alerts.statistics().dropped}
        )
        metrics_app = create_metrics_app(
            registry=registry,
            store=telemetry.store,
            reuse_for=METRICS_REUSE,
            access=self.access,
        )
        server = config.server
        self.api_server = self._server(
            config, api, server.listen, name="api", logger="web", reuse_port=server.reuse_port
        )
        self.metrics_server = self._server(
            config, metrics_app, server.metrics_listen, name="metrics", logger="metrics"
        )

    def _server(
        self,
        config: Config,
        app: Any,
        listen: str,
        *,
        name: str,
        logger: str,
        reuse_port: bool = False,
    ) -> HttpServer:
        server = config.server
        return HttpServer(
            app=app,
            listen=listen,
            tls_cert=server.tls_cert,
            tls_key=server.tls_key,
            shutdown_trigger=_stop_requested,
            graceful_timeout=self._wiring.shutdown,
            max_connections=server.max_connections,
            reuse_port=reuse_port,
            name=name,
            logger=logger_for(logger),
        )

    def specs(self) -> list[ChildSpec]:
        """`metrics`, then `web`: both start before the rest and stop after it, so /metrics is
        scraped and readiness answers (503: draining) while the deliveries drain."""
        return [
            self._wiring.child("metrics", self.metrics_server.run),
            self._wiring.child("web", self.api_server.run),
        ]

    async def apply(self, old: Config, new: Config, report: ReportBuilder) -> None:
        """The guard decides by the new [security] from the next request on; [server] and
        `anonymize_*` take a restart (reported by the reload)."""
        self.access.configure(new.security)
