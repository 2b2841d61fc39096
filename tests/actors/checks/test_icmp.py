"""icmp checks: real pings of the loopback addresses, and the error when no ICMP socket opens.

Which socket a real ping gets depends on the machine: an unprivileged datagram socket when
net.ipv4.ping_group_range includes the process's group, else a raw one (root or CAP_NET_RAW).
The tests of the socket choice replace the socket maker, so they run the same everywhere.
"""

from __future__ import annotations

import os
import socket
import struct
import textwrap
from typing import Any

import pytest

from actors.checks import CheckContext, build_probe
from actors.checks.errors import ProbeError
from actors.checks.icmp import (
    PING_GROUP_RANGE,
    IcmpProbe,
    IcmpSocket,
    echo_request,
    judge_pings,
    open_icmp_socket,
    parse_reply,
    refused_message,
)
from actors.models import CheckStatus
from supervisor.config import ConfigError, parse_config

from .conftest import make_config, run_check

P, W, F = CheckStatus.PASS, CheckStatus.WARN, CheckStatus.FAIL


def _icmp(host: str, **keys: Any) -> Any:
    values: dict[str, Any] = {"timeout": "2s", "interval": "10s", **keys}
    return make_config(name="ping", kind="icmp", host=host, **values)


def _require_icmp(family: int) -> None:
    """Fail (CI) or skip when this process can open no ICMP socket of `family`."""
    try:
        opened = open_icmp_socket(family)
    except ProbeError as exc:
        if os.environ.get("CI") == "true":
            pytest.fail(f"no ICMP socket (required under CI): {exc}")
        pytest.skip(str(exc))
    opened.sock.close()


def _refusing(allowed: tuple[int, ...] = ()) -> Any:
    """A socket maker that refuses the socket types not in `allowed`, as the kernel does, and
    records what was asked."""
    asked: list[int] = []

    def make(family: int, kind: int, proto: int) -> socket.socket:
        asked.append(kind)
        if kind not in allowed:
            raise PermissionError(13, "Permission denied")
        return socket.socket(family, socket.SOCK_DGRAM)  # stands in for the ICMP socket

    make.asked = asked  # type: ignore[attr-defined]
    return make


async def test_pinging_the_loopback_address_passes() -> None:
    _require_icmp(socket.AF_INET)
    probe = build_probe(_icmp("127.0.0.1", count=3), CheckContext())
    assert isinstance(probe, IcmpProbe)
    result = await run_check(probe.config, probe=probe)
    assert result.status is P, result.message
    assert result.message.startswith("127.0.0.1: 3/3 replies, rtt ")
    details = result.details
    assert (details["sent"], details["received"], details["loss"]) == (3, 3, 0.0)
    assert 0 <= details["rtt_min"] <= details["rtt_avg"] <= details["rtt_max"]  # type: ignore[operator]
    assert result.latency_seconds * 1000 == pytest.approx(details["rtt_avg"], abs=0.01)


async def test_a_name_is_resolved_and_shown_with_its_address() -> None:
    _require_icmp(socket.AF_INET)
    probe = build_probe(_icmp("localhost", count=1), CheckContext())
    assert isinstance(probe, IcmpProbe)
    observation = await probe.probe()
    assert observation.status is P, observation.message
    assert observation.message.startswith(("localhost (127.0.0.1): 1/1", "localhost (::1): 1/1"))


async def test_pinging_the_ipv6_loopback_address_passes() -> None:
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as sock:
            sock.bind(("::1", 0))
    except OSError:
        pytest.skip("no IPv6 loopback address")
    _require_icmp(socket.AF_INET6)
    probe = build_probe(_icmp("::1", count=2), CheckContext())
    assert isinstance(probe, IcmpProbe)
    result = await run_check(probe.config, probe=probe)
    assert result.status is P, result.message
    assert result.message.startswith("::1: 2/2 replies, rtt ")


async def test_no_icmp_socket_fails_naming_the_sysctl() -> None:
    probe = build_probe(_icmp("127.0.0.1"), CheckContext())
    assert isinstance(probe, IcmpProbe)
    make = _refusing()
    probe.open_socket = lambda family: open_icmp_socket(family, make)
    result = await run_check(probe.config, probe=probe)
    assert result.status is F
    group_range = " ".join(PING_GROUP_RANGE.read_text().split())
    gid = os.getgid()
    assert result.message == (
        f"icmp: unprivileged ICMP sockets are not allowed for group {gid}"
        f' (sysctl net.ipv4.ping_group_range is "{group_range}") and raw sockets need root or'
        f' CAP_NET_RAW; allow the group with sysctl -w net.ipv4.ping_group_range="{gid} {gid}"'
    )
    assert make.asked == [socket.SOCK_DGRAM, socket.SOCK_RAW]


def test_a_datagram_socket_is_preferred_and_a_raw_one_is_the_fallback() -> None:
    make = _refusing(allowed=(socket.SOCK_DGRAM, socket.SOCK_RAW))
    opened = open_icmp_socket(socket.AF_INET, make)
    opened.sock.close()
    assert (opened.raw, make.asked) == (False, [socket.SOCK_DGRAM])
    make = _refusing(allowed=(socket.SOCK_RAW,))
    opened = open_icmp_socket(socket.AF_INET6, make)
    opened.sock.close()
    assert (opened.raw, make.asked) == (True, [socket.SOCK_DGRAM, socket.SOCK_RAW])
    assert isinstance(opened, IcmpSocket)


def test_refused_message_when_the_sysctl_cannot_be_read() -> None:
    assert "(sysctl net.ipv4.ping_group_range is unreadable)" in refused_message(None, 5)
    assert 'is "1 0")' in refused_message("1\t0", 5)


def test_judge_pings_is_pure() -> None:
    passing = judge_pings("h", 3, [0.001, 0.002, 0.003])
    assert (passing.status, passing.message) == (P, "h: 3/3 replies, rtt 2.00 ms")
    assert passing.details == {
        "sent": 3,
        "received": 3,
        "loss": 0.0,
        "rtt_min": 1.0,
        "rtt_avg": 2.0,
        "rtt_max": 3.0,
    }
    assert passing.latency == pytest.approx(0.002)
    lossy = judge_pings("h", 3, [0.004])
    assert (lossy.status, lossy.message) == (W, "h: 1/3 replies, rtt 4.00 ms, 66.7% loss")
    assert lossy.details["loss"] == 66.7
    silent = judge_pings("h (192.0.2.9)", 2, [])
    assert (silent.status, silent.message) == (F, "no reply from h (192.0.2.9) (2 sent, 100% loss)")
    assert silent.details == {"sent": 2, "received": 0, "loss": 100.0}


def _folds_to_zero(packet: bytes) -> bool:
    padded = packet + b"\0" * (len(packet) % 2)
    total: int = sum(struct.unpack(f"!{len(padded) // 2}H", padded))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return total == 0xFFFF


def test_echo_requests_and_replies() -> None:
    request = echo_request(socket.AF_INET, 0x1234, 7, b"token!!")
    assert request[:2] == b"\x08\x00"
    assert request[4:8] == b"\x12\x34\x00\x07"
    assert _folds_to_zero(request)  # a valid checksum
    assert echo_request(socket.AF_INET6, 1, 1, b"")[0] == 128
    reply = b"\x00\x00\x00\x00\x12\x34\x00\x07token!!"
    assert parse_reply(socket.AF_INET, reply, raw=False) == (7, b"token!!")
    ip_header = bytes([0x45]) + bytes(19)
    assert parse_reply(socket.AF_INET, ip_header + reply, raw=True) == (7, b"token!!")
    assert parse_reply(socket.AF_INET, request, raw=False) is None  # our own request
    assert parse_reply(socket.AF_INET, reply[:5], raw=False) is None
    assert parse_reply(socket.AF_INET, b"", raw=True) is None
    reply6 = b"\x81\x00\x00\x00\x00\x01\x00\x02x"
    assert parse_reply(socket.AF_INET6, reply6, raw=True) == (2, b"x")


def test_hosts_and_counts_are_checked_when_loaded() -> None:
    assert _icmp(" [::1] ").host == "::1"
    assert _icmp("example.com").count == 3
    source = textwrap.dedent(
        """\
        [[checks]]
        name = "a"
        kind = "icmp"
        host = "http://example.com/"
        count = 0

        [[checks]]
        name = "b"
        kind = "icmp"
        host = "192.0.2.1:80"
        """
    )
    with pytest.raises(ConfigError) as caught:
        parse_config(source, file="c.toml", env={})
    lines = str(caught.value).splitlines()
    assert any(
        line.startswith("c.toml:4:1: checks[0].host")
        and "expected a host name or address, got 'http://example.com/'" in line
        for line in lines
    ), lines
    assert any("checks[0].count" in line for line in lines), lines
    assert any("checks[1].host" in line and "(ICMP has no ports)" in line for line in lines)
