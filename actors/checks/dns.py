"""kind = "dns": a DNS query is answered, and the answer holds the expected values.

The probe asks `server` (host or host:port; the system resolver of /etc/resolv.conf when empty)
for the `record_type` records of `query_name` with dnspython's asynchronous resolver on trio
(UDP, TCP when the answer is truncated). The query name is absolute (no search domains). The
check fails when the name does not exist (NXDOMAIN), has no record of the type, the server
answers an error (SERVFAIL, REFUSED, ...) or cannot be reached, or the answer lacks a value of
`expect`: every expected value must be in the answer, which may hold more (round-robin and CDN
answers change their extra records; list all of them to pin the whole set). The check's timeout
bounds the query, retries included. Latency is the resolution's round trip.

Values are compared in one canonical form per type, both those of `expect` (checked when the
configuration is loaded) and those of the answer: A and AAAA an address as Python's `ipaddress`
writes it; CNAME and NS a lower-case name without the final dot; MX "preference exchange"; SRV
"priority weight port target"; TXT the record's strings joined.

dnspython is imported when the first probe is built, not with the configuration.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Literal

import trio
from pydantic import ValidationInfo, field_validator

from actors.checks.config import CheckBase
from actors.checks.errors import ProbeError, describe_error
from actors.checks.logic import Observation
from actors.checks.probe import CheckContext, KindProbe

if TYPE_CHECKING:
    import dns.asyncresolver
    import dns.rdata

__all__ = [
    "RECORD_TYPES",
    "DnsCheckConfig",
    "DnsProbe",
    "answer_value",
    "canonical_value",
    "judge_answer",
    "parse_server",
]

RECORD_TYPES = ("A", "AAAA", "CNAME", "MX", "TXT", "SRV", "NS")
RecordType = Literal["A", "AAAA", "CNAME", "MX", "TXT", "SRV", "NS"]

_LABEL = re.compile(r"^[A-Za-z0-9_*]([A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?$")
_SHOWN = 5  # answer values shown in a message


def _check_name(text: str) -> str:
    """`text` as a lower-case DNS name without the final dot.

    Raises:
        ValueError: not a host-style name (labels of letters, digits, '-', '_', 1..63 long).
    """
    name = text.strip().rstrip(".").lower()
    if not name or len(name) > 253 or not all(_LABEL.match(label) for label in name.split(".")):
        raise ValueError(f"{text!r} is not a DNS name")
    return name


def parse_server(text: str) -> tuple[str, int]:
    """(host, port) of a `server` value: "host", "host:port", an IPv6 address, or "[v6]:port".

    Raises:
        ValueError: empty host or a port outside 1..65535.
    """
    value = text.strip()
    host, port = value, "53"
    if value.startswith("["):
        host, _, rest = value[1:].partition("]")
        if rest:
            if not rest.startswith(":"):
                raise ValueError(f"expected [address]:port, got {text!r}")
            port = rest[1:]
    elif value.count(":") == 1:
        host, _, port = value.partition(":")
    if not host:
        raise ValueError(f"no host in {text!r}")
    if not port.isdigit() or not 1 <= int(port) <= 65535:
        raise ValueError(f"invalid port in {text!r}; expected 1-65535")
    return host, int(port)


def canonical_value(record_type: str, value: str) -> str:
    """`value` (an expected answer written by a user) in the form answers are compared in.

    Raises:
        ValueError: `value` is not a value of a `record_type` record.
    """
    parts = value.split()
    try:
        if record_type == "A":
            return str(ipaddress.IPv4Address(value.strip()))
        if record_type == "AAAA":
            return str(ipaddress.IPv6Address(value.strip()))
        if record_type in ("CNAME", "NS"):
            return _check_name(value)
        if record_type == "MX" and len(parts) == 2 and parts[0].isdigit():
            return f"{int(parts[0])} {_check_name(parts[1])}"
        if record_type == "SRV" and len(parts) == 4 and all(p.isdigit() for p in parts[:3]):
            return " ".join([*(str(int(p)) for p in parts[:3]), _check_name(parts[3])])
        if record_type == "TXT":
            return value
    except ValueError:
        pass
    forms = {
        "A": "an IPv4 address",
        "AAAA": "an IPv6 address",
        "CNAME": "a DNS name",
        "NS": "a DNS name",
        "MX": '"preference exchange", e.g. "10 mail.example.com"',
        "SRV": '"priority weight port target", e.g. "10 5 5060 sip.example.com"',
    }
    raise ValueError(f"{value!r} is not a valid {record_type} value; expected {forms[record_type]}")


def _name_text(name: Any) -> str:
    return str(name.to_text(omit_final_dot=True)).lower()


def answer_value(record_type: str, rdata: dns.rdata.Rdata) -> str:
    """One record of an answer in the form `canonical_value` gives expected values."""
    record: Any = rdata
    if record_type in ("A", "AAAA"):
        return str(ipaddress.ip_address(record.address))
    if record_type in ("CNAME", "NS"):
        return _name_text(record.target)
    if record_type == "MX":
        return f"{record.preference} {_name_text(record.exchange)}"
    if record_type == "SRV":
        return f"{record.priority} {record.weight} {record.port} {_name_text(record.target)}"
    if record_type == "TXT":
        return b"".join(record.strings).decode("utf-8", errors="replace")
    return str(rdata.to_text())


def _listing(values: Sequence[str]) -> str:
    shown = ", ".join(values[:_SHOWN])
    return shown + (f" and {len(values) - _SHOWN} more" if len(values) > _SHOWN else "")


def judge_answer(
    question: str, answers: Sequence[str], expect: Sequence[str], *, latency: float | None = None
) -> Observation:
    """Pass when every value of `expect` is among `answers` (canonical forms), else fail naming
    the missing ones. `question` is "NAME TYPE", the start of the message. Pure."""
    details: dict[str, object] = {"answers": list(answers)}
    missing = [value for value in expect if value not in answers]
    if missing:
        details["missing"] = missing
        return Observation.fail(
            f"{question} answered {_listing(answers)}; expected {_listing(missing)}", details
        )
    return Observation.ok(f"{question} answered {_listing(answers)}", details, latency=latency)


class DnsCheckConfig(CheckBase):
    """kind = "dns": `query_name`'s `record_type` records are answered and hold `expect`.

    The queried name is `query_name`, not `name`: `name` is the check's own name, as in every
    kind.
    """

    kind: Literal["dns"]
    query_name: str
    record_type: RecordType = "A"
    server: str = ""
    expect: tuple[str, ...] = ()

    @field_validator("query_name")
    @classmethod
    def _query_name(cls, value: str) -> str:
        return _check_name(value)

    @field_validator("record_type", mode="before")
    @classmethod
    def _record_type(cls, value: object) -> object:
        return value.upper() if isinstance(value, str) else value

    @field_validator("server")
    @classmethod
    def _server(cls, value: str) -> str:
        if value.strip():
            parse_server(value)
        return value.strip()

    @field_validator("expect")
    @classmethod
    def _expect(cls, value: tuple[str, ...], info: ValidationInfo) -> tuple[str, ...]:
        record_type = info.data.get("record_type")
        if record_type is None:  # record_type itself is invalid and reported
            return value
        return tuple(canonical_value(record_type, item) for item in value)


class DnsProbe(KindProbe[DnsCheckConfig]):
    """Resolves `query_name` on every run; see the module docstring.

    The resolver is made on the first run (the system one reads /etc/resolv.conf then); a
    `server` given by name is looked up on every run, and each of its addresses is asked in
    turn.
    """

    def __init__(self, config: DnsCheckConfig, context: CheckContext) -> None:
        super().__init__(config, context)
        # loaded with the first dns probe, not with the config model (module docstring)
        import dns.asyncbackend

        self._backend = dns.asyncbackend.get_backend("trio")
        self._server = parse_server(config.server) if config.server else None
        self._resolver: dns.asyncresolver.Resolver | None = None
        self._question = f"{config.query_name} {config.record_type}"

    async def _resolver_for_run(self) -> dns.asyncresolver.Resolver:
        import dns.asyncresolver
        import dns.nameserver
        import dns.resolver

        resolver = self._resolver
        if resolver is None:
            try:
                resolver = dns.asyncresolver.Resolver(configure=self._server is None)
            except dns.resolver.NoResolverConfiguration:
                raise ProbeError(
                    "dns: no system resolver (/etc/resolv.conf has no nameserver); set server"
                ) from None
            # The check's timeout bounds a run (the actor's cancel scope); the resolver's own
            # limit is later, so that its retries fill the timeout and a timeout reads the same
            # for every kind.
            resolver.lifetime = self.config.timeout + 1.0
            self._resolver = resolver
        if self._server is not None:
            host, port = self._server
            addresses = await _addresses(host, port)
            resolver.nameservers = [dns.nameserver.Do53Nameserver(a, port) for a in addresses]
        return resolver

    async def probe(self) -> Observation:
        """Query and judge the answer; raises ProbeError (NXDOMAIN, no records, a server error)
        or OSError (the server's host cannot be looked up) to fail the run."""
        import dns.exception
        import dns.resolver

        config = self.config
        resolver = await self._resolver_for_run()
        start = trio.current_time()
        try:
            answer = await resolver.resolve(
                config.query_name, config.record_type, search=False, backend=self._backend
            )
        except dns.resolver.NXDOMAIN:
            raise ProbeError(f"{config.query_name} does not exist (NXDOMAIN)") from None
        except dns.resolver.NoAnswer:
            raise ProbeError(f"{config.query_name} has no {config.record_type} record") from None
        except dns.resolver.NoNameservers as exc:
            raise ProbeError(f"{self._question}: {_server_errors(exc)}") from None
        except dns.exception.DNSException as exc:
            raise ProbeError(f"{self._question}: {exc}") from None
        latency = trio.current_time() - start
        answers = sorted(answer_value(config.record_type, rdata) for rdata in answer)
        return judge_answer(self._question, answers, config.expect, latency=latency)


async def _addresses(host: str, port: int) -> list[str]:
    """The addresses of `host` (itself when it is one), in the order the system prefers.

    Raises:
        OSError: (socket.gaierror) `host` cannot be looked up.
    """
    try:
        return [str(ipaddress.ip_address(host))]
    except ValueError:
        pass
    infos = await trio.socket.getaddrinfo(host, port, type=trio.socket.SOCK_DGRAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


_NAMESERVER = re.compile(r"^Do53:(?P<address>.+)@(?P<port>\d+)$")


def _server_errors(exc: Any) -> str:
    """What each server answered, from dnspython's NoNameservers: "127.0.0.1:53 answered
    SERVFAIL", "127.0.0.1:53 answered truncated; 127.0.0.1:53 over TCP: connection refused"."""
    import dns.message

    texts: list[str] = []
    for error in exc.kwargs.get("errors") or []:
        server, tcp, cause = str(error[0]), bool(error[1]), error[3]
        match = _NAMESERVER.match(server)
        if match is not None:
            address, port = match["address"], match["port"]
            server = f"[{address}]:{port}" if ":" in address else f"{address}:{port}"
        server += " over TCP" if tcp else ""
        if isinstance(cause, dns.message.Truncated):
            cause = "truncated"
        if isinstance(cause, str):
            text = f"{server} answered {cause}"
        else:
            text = f"{server}: {describe_error(cause)}"
        if text not in texts:
            texts.append(text)
    return "; ".join(texts) or "no server answered"
