"""kind = "icmp": `host` answers ICMP echo requests (ping); the result holds loss and round trips.

Every run sends `count` echo requests at once (ICMPv6 for an IPv6 address) and waits for their
replies until nine tenths of `timeout` have passed since the run started, so that it can report
the loss itself before the check's timeout cuts the run short. All replies: pass. Some lost:
warn, with the loss. None: fail ("no reply", 100% loss). The details hold `sent`, `received`,
`loss` (percent) and the round trips `rtt_min`, `rtt_avg`, `rtt_max` (milliseconds); latency is
the average round trip.

The socket is an unprivileged ICMP datagram socket (`SOCK_DGRAM`, `IPPROTO_ICMP`) when the kernel
allows one for the process's group (the sysctl `net.ipv4.ping_group_range`, which covers IPv6
too); else a raw socket, which needs root or CAP_NET_RAW. When neither can be opened the run
fails with a message naming the sysctl and its value. Replies are matched by sequence number and
a random token in the payload, so that a raw socket, which sees every ICMP packet of the host,
ignores the pings of other processes.
"""

from __future__ import annotations

import ipaddress
import os
import secrets
import socket
import struct
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import trio
from pydantic import Field, field_validator

from actors.checks.config import CheckBase
from actors.checks.errors import ProbeError
from actors.checks.logic import Observation
from actors.checks.probe import CheckContext, KindProbe

__all__ = [
    "PING_GROUP_RANGE",
    "IcmpCheckConfig",
    "IcmpProbe",
    "IcmpSocket",
    "echo_request",
    "judge_pings",
    "open_icmp_socket",
    "parse_reply",
    "refused_message",
]

PING_GROUP_RANGE = Path("/proc/sys/net/ipv4/ping_group_range")
_ECHO_REQUEST: dict[int, int] = {socket.AF_INET: 8, socket.AF_INET6: 128}
_ECHO_REPLY: dict[int, int] = {socket.AF_INET: 0, socket.AF_INET6: 129}
_PROTOCOL: dict[int, int] = {
    socket.AF_INET: socket.IPPROTO_ICMP,
    socket.AF_INET6: socket.IPPROTO_ICMPV6,
}
_TOKEN = 8  # bytes of random token in each request's payload
_WAIT = 0.9  # of the timeout: how long a run waits for replies


@dataclass(frozen=True, slots=True)
class IcmpSocket:
    """An open ICMP socket; `raw` ones receive IPv4 packets with their IP header."""

    sock: socket.socket
    raw: bool


def _checksum(data: bytes) -> int:
    """The Internet checksum (RFC 1071) of `data`."""
    if len(data) % 2:
        data += b"\0"
    total: int = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def echo_request(family: int, ident: int, sequence: int, payload: bytes) -> bytes:
    """An echo request packet (ICMP header and `payload`) for `family`, checksum included (the
    kernel fills it in again for datagram and ICMPv6 sockets). Pure."""
    header = struct.pack("!BBHHH", _ECHO_REQUEST[family], 0, 0, ident, sequence)
    checksum = _checksum(header + payload)
    return header[:2] + struct.pack("!H", checksum) + header[4:] + payload


def parse_reply(family: int, data: bytes, *, raw: bool) -> tuple[int, bytes] | None:
    """(sequence, payload) of an echo reply, or None when `data` is not one (another ICMP type,
    a truncated packet). A raw IPv4 socket's `data` starts with the IP header. Pure."""
    if raw and family == socket.AF_INET:
        if not data:
            return None
        data = data[(data[0] & 0x0F) * 4 :]
    if len(data) < 8 or data[0] != _ECHO_REPLY[family] or data[1] != 0:
        return None
    (sequence,) = struct.unpack("!H", data[6:8])
    return int(sequence), data[8:]


def judge_pings(target: str, sent: int, rtts: Sequence[float]) -> Observation:
    """Pass when every request was answered, warn when some were lost, fail when none was;
    `rtts` are the round trips (seconds) of the replies. Pure."""
    received = len(rtts)
    loss = round(100.0 * (sent - received) / sent, 1) if sent else 100.0
    details: dict[str, object] = {"sent": sent, "received": received, "loss": loss}
    if not rtts:
        return Observation.fail(f"no reply from {target} ({sent} sent, 100% loss)", details)
    low, average, high = min(rtts), sum(rtts) / received, max(rtts)
    details.update(
        rtt_min=round(low * 1000, 3),
        rtt_avg=round(average * 1000, 3),
        rtt_max=round(high * 1000, 3),
    )
    text = f"{target}: {received}/{sent} replies, rtt {average * 1000:.2f} ms"
    if received < sent:
        return Observation.warn(f"{text}, {loss:g}% loss", details, latency=average)
    return Observation.ok(text, details, latency=average)


def refused_message(group_range: str | None, gid: int) -> str:
    """The message of a run that could open no ICMP socket: the sysctl, its value (`None`: it
    could not be read) and how to allow group `gid`. Pure."""
    value = f'"{" ".join(group_range.split())}"' if group_range is not None else "unreadable"
    return (
        f"icmp: unprivileged ICMP sockets are not allowed for group {gid}"
        f" (sysctl net.ipv4.ping_group_range is {value}) and raw sockets need root or"
        f' CAP_NET_RAW; allow the group with sysctl -w net.ipv4.ping_group_range="{gid} {gid}"'
    )


def _group_range() -> str | None:
    try:
        return PING_GROUP_RANGE.read_text(encoding="ascii").strip()
    except OSError:
        return None


def open_icmp_socket(
    family: int, make: Callable[[int, int, int], socket.socket] = socket.socket
) -> IcmpSocket:
    """An ICMP socket for `family`: a datagram one when the kernel allows it, else a raw one.

    `make(family, type, proto)` opens a socket (`socket.socket`; tests pass one that refuses).

    Raises:
        ProbeError: neither can be opened (`refused_message`).
    """
    protocol = _PROTOCOL[family]
    try:
        return IcmpSocket(make(family, socket.SOCK_DGRAM, protocol), raw=False)
    except PermissionError:
        pass
    try:
        return IcmpSocket(make(family, socket.SOCK_RAW, protocol), raw=True)
    except PermissionError:
        raise ProbeError(refused_message(_group_range(), os.getgid())) from None


class IcmpCheckConfig(CheckBase):
    """kind = "icmp": `host` answers `count` echo requests."""

    kind: Literal["icmp"]
    host: str
    count: int = Field(default=3, ge=1, le=20)

    @field_validator("host")
    @classmethod
    def _host(cls, value: str) -> str:
        host = value.strip()
        if not host or any(char.isspace() or char in "/@" for char in host):
            raise ValueError(f"expected a host name or address, got {value!r}")
        if ":" in host:
            try:
                return str(ipaddress.IPv6Address(host.removeprefix("[").removesuffix("]")))
            except ValueError:
                raise ValueError(
                    f"expected a host name or address, got {value!r} (ICMP has no ports)"
                ) from None
        return host


class IcmpProbe(KindProbe[IcmpCheckConfig]):
    """Pings `host` on every run; see the module docstring.

    `open_socket(family)` opens the run's socket (`open_icmp_socket`); tests replace it.
    """

    def __init__(self, config: IcmpCheckConfig, context: CheckContext) -> None:
        super().__init__(config, context)
        self.open_socket: Callable[[int], IcmpSocket] = open_icmp_socket
        self._ident = secrets.randbits(16)

    async def probe(self) -> Observation:
        """Ping; raises ProbeError (no ICMP socket) or OSError (unknown host, no route)."""
        config = self.config
        deadline = trio.current_time() + config.timeout * _WAIT
        infos = await trio.socket.getaddrinfo(config.host, None, type=socket.SOCK_RAW)
        family, address = infos[0][0], infos[0][4]
        opened = self.open_socket(family)
        target = config.host if config.host == address[0] else f"{config.host} ({address[0]})"
        with trio.socket.from_stdlib_socket(opened.sock) as sock:
            rtts = await self._ping(sock, family, address, raw=opened.raw, deadline=deadline)
        return judge_pings(target, config.count, rtts)

    async def _ping(
        self,
        sock: trio.socket.SocketType,
        family: int,
        address: tuple[object, ...],
        *,
        raw: bool,
        deadline: float,
    ) -> list[float]:
        """Send the requests, then collect the replies until all came or `deadline` (trio
        time): the round trips of those that came."""
        token = secrets.token_bytes(_TOKEN)
        sent_at: dict[int, float] = {}
        for sequence in range(1, self.config.count + 1):
            sent_at[sequence] = trio.current_time()
            await sock.sendto(echo_request(family, self._ident, sequence, token), address)
        rtts: list[float] = []
        with trio.move_on_at(deadline):
            while sent_at:
                data, peer = await sock.recvfrom(65535)
                reply = parse_reply(family, data, raw=raw)
                if reply is None or reply[1] != token or peer[0] != address[0]:
                    continue
                sent = sent_at.pop(reply[0], None)
                if sent is not None:
                    rtts.append(trio.current_time() - sent)
        return rtts
