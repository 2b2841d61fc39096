"""The notify subsystem: the outbox, the channels, one delivery actor per enabled channel.

`NotifySubsystem` builds each enabled channel once (`channels`): its delivery actor
(`deliver:<name>`, under the nested `notify` supervisor) and `POST /api/test-alert` use the same
object. A channel whose required secret is empty is disabled (logged, not built). On reload a
changed channel is rebuilt once, its delivery actor restarted with it and the old one closed; a
removed channel's delivery actor stops and the channel is closed; an added one is built and
started. A changed channel that cannot be built keeps the old one running (the error is reported).

It is also the outbox as routing sees it (`enqueue`): a notification for a channel without a
delivery actor (disabled, or removed by a reload) is counted in
`notifications_total{result="skipped"}` and dropped instead of queued forever.
"""

from __future__ import annotations

from actors.cluster.config import ClusterConfig
from actors.models import Notification
from actors.notify.channels import Channel, ChannelConfig, ChannelContext, build_channel
from actors.notify.delivery import DeliveryActor
from actors.notify.outbox import Outbox
from actors.store import Store
from supervisor.app.reload import ReportBuilder, channel_diff
from supervisor.app.subsystem import Wiring
from supervisor.app.telemetry import TelemetrySubsystem
from supervisor.config import Config
from supervisor.logging_setup import logger_for
from supervisor.runtime import ChildSpec

__all__ = ["NotifySubsystem", "deliver_id"]


def deliver_id(name: str) -> str:
    """The child id of channel `name`'s delivery actor."""
    return f"deliver:{name}"


class NotifySubsystem:
    """The outbox, the channels and their delivery actors. See the module docstring.

    Args:
        config: the configuration ([channels], [server] external_url).
        wiring: clock and supervisor settings.
        database: where the outbox (and the alertmanager channel's firing alerts) are kept.
        telemetry: the metric store (notifications_total, the delivery histogram), the tracer
            (a span per delivery attempt) and the tracer provider (HTTP channels make a client
            span per request with it).
        cluster: with replicas, `[cluster]` (the delivery lease is 3 heartbeats, and delivery
            actors read the outbox every heartbeat); None: one process.
        replica: this replica's name (outbox rows are claimed under it).

    Attributes:
        outbox: the durable outbox (written first, claimed by the delivery actors).
        channels: the enabled channels by name, each built once (shared with the API).
        deliveries: the delivery actor of each channel (it sends through `channels[name]`).
        supervisor: the nested `notify` supervisor.

    Raises:
        actors.notify.errors.ChannelSetupError: an enabled channel cannot be built.
    """

    def __init__(
        self,
        config: Config,
        wiring: Wiring,
        *,
        database: Store,
        telemetry: TelemetrySubsystem,
        cluster: ClusterConfig | None = None,
        replica: str | None = None,
    ) -> None:
        self._wiring = wiring
        self._database = database
        self._metrics = telemetry.store
        self._otel = telemetry.otel
        log = logger_for("notify")
        for name, reason in config.disabled_channels().items():
            log.warning("channel %r (%s) is disabled: %s", name, config.channels[name].kind, reason)
        self.outbox = Outbox(
            database=database,
            clock=wiring.clock,
            metrics=self._metrics,
            replica=replica if cluster is not None else None,
            lease=cluster.lease if cluster is not None else 6.0,
            poll=cluster.heartbeat if cluster is not None else 2.0,
        )
        self.deliveries: dict[str, DeliveryActor] = {}
        self.channels: dict[str, Channel] = {
            name: self._build(name, channel, config)
            for name, channel in config.enabled_channels().items()
        }
        self.supervisor = wiring.supervisor("notify", [self._spec(name) for name in self.channels])

    def specs(self) -> list[ChildSpec]:
        """The nested `notify` supervisor."""
        return [ChildSpec.supervisor(self.supervisor)]

    def _build(self, name: str, channel: ChannelConfig, config: Config) -> Channel:
        context = ChannelContext(
            clock=self._wiring.clock,
            logger=logger_for(f"notify.{name}"),
            external_url=config.server.external_url,
            database=self._database,
            tracer_provider=self._otel.tracer_provider,
        )
        return build_channel(name, channel, context)

    def _spec(self, name: str) -> ChildSpec:
        actor = DeliveryActor(
            channel=self.channels[name],
            outbox=self.outbox,
            clock=self._wiring.clock,
            logger=logger_for(f"notify.{name}"),
            metrics=self._metrics,
            tracer=self._otel.tracer,
        )
        self.deliveries[name] = actor
        return self._wiring.child(deliver_id(name), actor.run)

    async def enqueue(self, notification: Notification) -> bool:
        """Queue `notification` durably (True), or skip it (False) when its channel has no
        delivery actor. Raises: as `Outbox.enqueue`."""
        if notification.channel not in self.channels:
            self._metrics.record(
                "notifications_total", 1, {"channel": notification.channel, "result": "skipped"}
            )
            return False
        return await self.outbox.enqueue(notification)

    async def apply(self, old: Config, new: Config, report: ReportBuilder) -> None:
        """Stop and close removed channels, rebuild changed ones once, build and start added
        ones (a channel that cannot be built or started is reported)."""
        diff = channel_diff(old, new)
        configs = new.enabled_channels()
        for name in diff.removed:
            # Out of `channels` first: routing skips it from now on.
            removed = self.channels.pop(name, None)
            await self.supervisor.delete_child(deliver_id(name))
            self.deliveries.pop(name, None)
            if removed is not None:
                await removed.aclose()
        for name in diff.changed:
            try:
                channel = self._build(name, configs[name], new)
            except Exception as exc:  # e.g. ChannelSetupError: the old channel keeps running
                report.errors.append(f"channel {name}: {exc}")
                continue
            previous, self.channels[name] = self.channels.get(name), channel
            try:
                await self.supervisor.restart_child(deliver_id(name), self._spec(name))
            except Exception as exc:
                report.errors.append(f"channel {name}: {exc}")
            if previous is not None:
                await previous.aclose()
        for name in diff.added:
            try:
                self.channels[name] = self._build(name, configs[name], new)
                await self.supervisor.start_child(self._spec(name))
            except Exception as exc:
                report.errors.append(f"channel {name}: {exc}")
        report.started.extend(deliver_id(name) for name in diff.added)
        report.stopped.extend(deliver_id(name) for name in diff.removed)
        report.restarted.extend(deliver_id(name) for name in diff.changed)
