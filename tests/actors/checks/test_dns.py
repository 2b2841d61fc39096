"""dns checks against a real DNS server on 127.0.0.1: a small dnspython responder over UDP."""

from __future__ import annotations

import textwrap
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import dns.flags
import dns.message
import dns.rcode
import dns.rdatatype
import dns.rrset
import pytest
import trio

from actors.checks import CheckContext, build_check_actor, build_probe
from actors.checks.dns import (
    DnsProbe,
    canonical_value,
    judge_answer,
    parse_server,
)
from actors.models import CheckResult, CheckStatus
from actors.state import HealthState
from supervisor.config import ConfigError, parse_config

from .conftest import loaded_when, make_config

P, F = CheckStatus.PASS, CheckStatus.FAIL

ZONE: dict[tuple[str, str], list[str]] = {
    ("www.example.test", "A"): ["192.0.2.1", "192.0.2.2"],
    ("www.example.test", "AAAA"): ["2001:db8::1"],
    ("alias.example.test", "CNAME"): ["www.example.test."],
    ("example.test", "MX"): ["10 mail.example.test.", "20 backup.example.test."],
    ("example.test", "TXT"): ['"v=spf1 -all"', '"part one " "part two"'],
    ("example.test", "NS"): ["ns1.example.test.", "NS2.Example.Test."],
    ("_sip._udp.example.test", "SRV"): ["10 5 5060 sip.example.test."],
}


@dataclass
class Responder:
    """Answers from `records`; `servfail` names get SERVFAIL, `silent` names no answer at all,
    `truncated` names an empty answer marked truncated (TC), a name without any record NXDOMAIN,
    a name without a record of the type an empty answer."""

    records: Mapping[tuple[str, str], list[str]]
    servfail: frozenset[str] = frozenset({"broken.example.test"})
    silent: frozenset[str] = frozenset({"silent.example.test"})
    truncated: frozenset[str] = frozenset({"big.example.test"})
    port: int = 0
    questions: list[tuple[str, str]] = field(default_factory=list)

    def answer(self, query: dns.message.Message) -> dns.message.Message | None:
        question = query.question[0]
        name = question.name.to_text(omit_final_dot=True).lower()
        rdtype = dns.rdatatype.to_text(question.rdtype)
        self.questions.append((name, rdtype))
        if name in self.silent:
            return None
        response = dns.message.make_response(query)
        if name in self.servfail:
            response.set_rcode(dns.rcode.SERVFAIL)
        elif name in self.truncated:
            response.flags |= dns.flags.TC
        elif not any(known == name for known, _ in self.records):
            response.set_rcode(dns.rcode.NXDOMAIN)
        elif (name, rdtype) in self.records:
            rrset = dns.rrset.from_text_list(
                question.name, 60, "IN", rdtype, self.records[name, rdtype]
            )
            response.answer.append(rrset)
        return response

    async def serve(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        with trio.socket.socket(trio.socket.AF_INET, trio.socket.SOCK_DGRAM) as sock:
            await sock.bind(("127.0.0.1", 0))
            self.port = sock.getsockname()[1]
            task_status.started()
            while True:
                data, peer = await sock.recvfrom(65535)
                response = self.answer(dns.message.from_wire(data))
                if response is not None:
                    await sock.sendto(response.to_wire(), peer)


@pytest.fixture
async def responder(nursery: trio.Nursery) -> Responder:
    server = Responder(ZONE)
    await nursery.start(server.serve)
    return server


def _dns(server: str, query_name: str, **keys: Any) -> Any:
    values: dict[str, Any] = {"timeout": "2s", "interval": "10s", **keys}
    return make_config(name="dns", kind="dns", query_name=query_name, server=server, **values)


async def _run(config: Any) -> CheckResult:
    actor = build_check_actor(config, CheckContext(), health=HealthState())
    try:
        return await actor.run_once()
    finally:
        await actor.probe.aclose()


async def test_an_answer_holding_the_expected_values_passes(responder: Responder) -> None:
    server = f"127.0.0.1:{responder.port}"
    config = _dns(server, "www.example.test", expect=["192.0.2.1"])
    result = await _run(config)
    assert result.status is P, result.message
    assert result.message == "www.example.test A answered 192.0.2.1, 192.0.2.2"
    assert result.details["answers"] == ["192.0.2.1", "192.0.2.2"]
    assert responder.questions == [("www.example.test", "A")]
    # no expectation: any answer with a record of the type
    assert (await _run(_dns(server, "www.example.test"))).status is P


async def test_an_answer_missing_an_expected_value_fails(responder: Responder) -> None:
    config = _dns(
        f"127.0.0.1:{responder.port}", "www.example.test", expect=["192.0.2.1", "192.0.2.9"]
    )
    result = await _run(config)
    assert result.status is F
    assert result.message == "www.example.test A answered 192.0.2.1, 192.0.2.2; expected 192.0.2.9"
    assert result.details["missing"] == ["192.0.2.9"]


async def test_nxdomain_fails(responder: Responder) -> None:
    result = await _run(_dns(f"127.0.0.1:{responder.port}", "nope.example.test"))
    assert result.status is F
    assert result.message == "nope.example.test does not exist (NXDOMAIN)"


async def test_a_name_without_a_record_of_the_type_fails(responder: Responder) -> None:
    config = _dns(f"127.0.0.1:{responder.port}", "alias.example.test", record_type="MX")
    result = await _run(config)
    assert result.status is F
    assert result.message == "alias.example.test has no MX record"


async def test_servfail_fails_naming_the_server(responder: Responder) -> None:
    result = await _run(_dns(f"127.0.0.1:{responder.port}", "broken.example.test"))
    assert result.status is F
    assert result.message == (
        f"broken.example.test A: 127.0.0.1:{responder.port} answered SERVFAIL"
    )


async def test_a_server_that_never_answers_times_out(responder: Responder) -> None:
    config = _dns(f"127.0.0.1:{responder.port}", "silent.example.test", timeout="300ms")
    result = await _run(config)
    assert result.status is F
    assert result.message == "timed out after 300ms"
    assert ("silent.example.test", "A") in responder.questions


async def test_a_truncated_answer_is_asked_again_over_tcp(responder: Responder) -> None:
    # the responder speaks UDP only: the TCP retry is refused
    result = await _run(_dns(f"127.0.0.1:{responder.port}", "big.example.test"))
    assert result.status is F
    port = responder.port
    assert result.message == (
        f"big.example.test A: 127.0.0.1:{port} answered truncated;"
        f" 127.0.0.1:{port} over TCP: connection refused"
    )
    assert responder.questions == [("big.example.test", "A")]


@pytest.mark.parametrize(
    ("query_name", "record_type", "expect"),
    [
        ("www.example.test", "AAAA", "2001:DB8:0::1"),
        ("alias.example.test", "cname", "WWW.example.test."),
        ("example.test", "MX", "20 backup.example.test"),
        ("example.test", "TXT", "part one part two"),
        ("example.test", "NS", "ns2.example.test"),
        ("_sip._udp.example.test", "SRV", "10 5 5060 sip.example.test"),
    ],
)
async def test_each_record_type_is_compared_in_its_canonical_form(
    responder: Responder, query_name: str, record_type: str, expect: str
) -> None:
    config = _dns(
        f"127.0.0.1:{responder.port}", query_name, record_type=record_type, expect=[expect]
    )
    result = await _run(config)
    assert result.status is P, result.message


async def test_a_server_given_by_name_is_looked_up(responder: Responder) -> None:
    config = _dns(f"localhost:{responder.port}", "www.example.test", expect=["192.0.2.2"])
    probe = build_probe(config, CheckContext())
    assert isinstance(probe, DnsProbe)
    assert probe.config is config
    for _ in range(2):  # the resolver is kept between runs
        observation = await probe.probe()
        assert observation.status is P, observation.message
        assert observation.latency is not None


def test_values_are_checked_and_made_canonical_when_loaded() -> None:
    config = make_config(
        name="d",
        kind="dns",
        query_name="Example.COM.",
        record_type="aaaa",
        server=" [::1]:5353 ",
        expect=["2001:DB8:0:0::1"],
    )
    assert (config.query_name, config.record_type) == ("example.com", "AAAA")
    assert (config.server, config.expect) == ("[::1]:5353", ("2001:db8::1",))
    assert canonical_value("MX", "10  Mail.Example.com.") == "10 mail.example.com"
    assert canonical_value("TXT", "Keep  Case") == "Keep  Case"
    assert canonical_value("SRV", "010 5 5060 sip.test") == "10 5 5060 sip.test"
    with pytest.raises(ValueError, match="not a valid MX value"):
        canonical_value("MX", "mail.example.com")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("192.0.2.53", ("192.0.2.53", 53)),
        ("192.0.2.53:5353", ("192.0.2.53", 5353)),
        ("dns.example.test", ("dns.example.test", 53)),
        ("dns.example.test:54", ("dns.example.test", 54)),
        ("2001:db8::53", ("2001:db8::53", 53)),
        ("[2001:db8::53]", ("2001:db8::53", 53)),
        ("[2001:db8::53]:5353", ("2001:db8::53", 5353)),
    ],
)
def test_parse_server(text: str, expected: tuple[str, int]) -> None:
    assert parse_server(text) == expected


@pytest.mark.parametrize("text", ["h:0", "h:70000", "h:x", ":53", "[::1]x", "[]:53"])
def test_parse_server_refuses(text: str) -> None:
    with pytest.raises(ValueError):
        parse_server(text)


def test_judge_answer_is_pure() -> None:
    passing = judge_answer("a.test A", ["192.0.2.1"], [], latency=0.01)
    assert (passing.status, passing.latency) == (P, 0.01)
    many = [f"192.0.2.{i}" for i in range(1, 8)]
    failing = judge_answer("a.test A", many, ["192.0.2.9"])
    assert failing.status is F
    assert failing.message == (
        "a.test A answered 192.0.2.1, 192.0.2.2, 192.0.2.3, 192.0.2.4, 192.0.2.5 and 2 more;"
        " expected 192.0.2.9"
    )


def test_bad_dns_tables_are_explained() -> None:
    source = textwrap.dedent(
        """\
        [[checks]]
        name = "a"
        kind = "dns"
        query_name = "example.com"
        expect = ["not-an-address"]

        [[checks]]
        name = "b"
        kind = "dns"
        query_name = "bad name"
        record_type = "PTR"
        server = "192.0.2.53:99999"
        """
    )
    with pytest.raises(ConfigError) as caught:
        parse_config(source, file="c.toml", env={})
    lines = str(caught.value).splitlines()
    assert any(
        line.startswith("c.toml:5:1: checks[0].expect")
        and "'not-an-address' is not a valid A value; expected an IPv4 address" in line
        for line in lines
    ), lines
    assert any("checks[1].query_name" in line and "not a DNS name" in line for line in lines)
    assert any("checks[1].record_type" in line for line in lines)
    assert any("checks[1].server" in line and "expected 1-65535" in line for line in lines)


def test_dnspython_is_loaded_by_the_first_probe_not_by_the_configuration() -> None:
    source = '[[checks]]\nname = "d"\nkind = "dns"\nquery_name = "example.com"\n'
    assert loaded_when(source, "dns.asyncbackend") == (False, True)
