"""kind = "grpc": a gRPC server's grpc.health.v1 Health service answers SERVING for `service`.

Every run calls `grpc.health.v1.Health/Check` for `service` ("" asks about the server as a
whole) on `target` ("host:port", or any gRPC target name such as "dns:///host:port"), over TLS
when `tls` is set (the system roots, or the CA certificates of `ca_file`). SERVING passes; any
other status (NOT_SERVING, SERVICE_UNKNOWN, UNKNOWN) fails naming it, as does a server that does
not know the service (NOT_FOUND), one without the health service (UNIMPLEMENTED) and one that
cannot be reached (UNAVAILABLE, with gRPC's reason). Latency is the call's round trip.

grpcio is not trio-native: its asynchronous API (`grpc.aio`) runs on asyncio only. The probe
uses the synchronous stub in a worker thread (`trio.to_thread.run_sync`, one call at a time per
probe) and passes the check's timeout as the call's deadline, so a call the check's cancel scope
gave up on (the thread is abandoned) still ends by itself at the same time; either way the run
reads "timed out after ...". The channel is kept between runs and replaced after a call that
failed on the connection (UNAVAILABLE, a deadline), so that gRPC's reconnect backoff, which grows
to minutes, never delays the next run.

grpcio costs about 10 MB of RSS that a configuration without a grpc check need not pay: it is
imported when the first probe is built, not with the configuration.
"""

from __future__ import annotations

import importlib
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import trio
from pydantic import field_validator

from actors.checks.config import CheckBase
from actors.checks.errors import ProbeError
from actors.checks.logic import Observation
from actors.checks.probe import CheckContext, KindProbe
from actors.checks.tls import CaFile
from actors.configtypes import format_duration

if TYPE_CHECKING:
    import grpc

__all__ = ["GrpcCheckConfig", "GrpcProbe", "describe_rpc_error", "judge_status"]

_REPLACE_CHANNEL = ("UNAVAILABLE", "DEADLINE_EXCEEDED", "CANCELLED", "UNKNOWN", "INTERNAL")


def judge_status(subject: str, status: str, *, latency: float | None = None) -> Observation:
    """Pass when `status` (a HealthCheckResponse status name) is SERVING, else fail naming it.
    `subject` names the target and service. Pure."""
    details = {"status": status}
    if status == "SERVING":
        return Observation.ok(f"{subject} is SERVING", details, latency=latency)
    return Observation.fail(f"{subject} is {status}", details, latency=latency)


def describe_rpc_error(subject: str, code: str, details: str) -> str:
    """The message of a health call that ended with the gRPC status `code` (its name). Pure."""
    if code == "NOT_FOUND":
        return f"{subject} is unknown to the health service (NOT_FOUND)"
    if code == "UNIMPLEMENTED":
        return f"{subject}: the server has no grpc.health.v1 service (UNIMPLEMENTED)"
    return f"{subject}: {code}: {details}" if details else f"{subject}: {code}"


class GrpcCheckConfig(CheckBase):
    """kind = "grpc": grpc.health.v1 Check for `service` on `target` answers SERVING."""

    kind: Literal["grpc"]
    target: str
    service: str = ""
    tls: bool = False
    ca_file: CaFile = ""

    @field_validator("target")
    @classmethod
    def _target(cls, value: str) -> str:
        target = value.strip()
        if not target:
            raise ValueError("target is empty")
        if target.lower().startswith(("http://", "https://")):
            raise ValueError(f"expected host:port, got the URL {value!r}; set tls = true for TLS")
        if any(char.isspace() for char in target):
            raise ValueError(f"{value!r} is not a gRPC target; expected host:port")
        return target


class GrpcProbe(KindProbe[GrpcCheckConfig]):
    """Calls Health/Check on every run over a kept channel; see the module docstring."""

    def __init__(self, config: GrpcCheckConfig, context: CheckContext) -> None:
        super().__init__(config, context)
        # loaded with the first grpc probe, not with the config model (module docstring)
        importlib.import_module("grpc")
        self._roots = Path(config.ca_file).read_bytes() if config.ca_file else None
        self._subject = f"{config.target} service {config.service!r}"
        if not config.service:
            self._subject = f"{config.target} (server)"
        self._channel: grpc.Channel | None = None
        self._limiter = trio.CapacityLimiter(1)

    def _open(self) -> grpc.Channel:
        import grpc

        if self.config.tls or self._roots is not None:
            credentials = grpc.ssl_channel_credentials(root_certificates=self._roots)
            return grpc.secure_channel(self.config.target, credentials)
        return grpc.insecure_channel(self.config.target)

    def _call(self) -> tuple[str, float]:
        """One Check call, in a worker thread: (status name, latency).

        Raises:
            ProbeError: the call failed (the channel is replaced when the failure was the
                connection's).
        """
        import grpc
        from grpc_health.v1 import health_pb2, health_pb2_grpc

        channel = self._channel
        if channel is None:
            channel = self._channel = self._open()
        stub = health_pb2_grpc.HealthStub(channel)
        request = health_pb2.HealthCheckRequest(service=self.config.service)
        start = time.perf_counter()
        try:
            response: Any = stub.Check(request, timeout=self.config.timeout)
        except grpc.RpcError as exc:
            code: Any = exc.code() if isinstance(exc, grpc.Call) else grpc.StatusCode.UNKNOWN
            details = exc.details() if isinstance(exc, grpc.Call) else str(exc)
            if code.name in _REPLACE_CHANNEL:
                self._channel = None
                channel.close()
            if code is grpc.StatusCode.DEADLINE_EXCEEDED:
                raise ProbeError(
                    f"timed out after {format_duration(self.config.timeout)}"
                ) from None
            raise ProbeError(describe_rpc_error(self._subject, code.name, details or "")) from None
        latency = time.perf_counter() - start
        return health_pb2.HealthCheckResponse.ServingStatus.Name(response.status), latency

    async def probe(self) -> Observation:
        """Call Health/Check; raises ProbeError (the call failed) to fail the run."""
        status, latency = await trio.to_thread.run_sync(
            self._call, abandon_on_cancel=True, limiter=self._limiter
        )
        return judge_status(self._subject, status, latency=latency)

    async def aclose(self) -> None:
        """Close the kept channel (after a call still running in an abandoned thread)."""
        async with self._limiter:
            channel, self._channel = self._channel, None
        if channel is not None:
            channel.close()
