"""The hand-written DNS fast path agrees with dnspython, or leaves the message to it."""

from __future__ import annotations

import ipaddress
from pathlib import Path

import dns.edns
import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rrset
from hypothesis import given
from hypothesis import strategies as st

from pytest_autoglm.core.resolvers import normalize_rdata
from pytest_autoglm.probes import dnswire

_labels = st.from_regex(r"\A[A-Za-z0-9_-]{1,20}\Z")
_names = st.lists(_labels, min_size=1, max_size=5).map(".".join)
_types = st.sampled_from(["A", "AAAA"])
_ipv4 = st.integers(0, 2**32 - 1).map(lambda n: str(ipaddress.IPv4Address(n)))
_ipv6 = st.integers(0, 2**128 - 1).map(lambda n: str(ipaddress.IPv6Address(n)))


@given(_names, _types, st.integers(0, 65535), st.booleans())
def test_the_query_is_what_dnspython_would_send(name, rdtype, qid, absolute):
    query = dnswire.plain_query(qid, name + ("." if absolute else ""), rdtype, 1232)
    assert query is not None
    parsed = dns.message.from_wire(query.wire)
    expected = dns.message.make_query(name + ".", rdtype, use_edns=0, payload=1232, id=qid)
    assert parsed == expected  # id, flags (RD), question, EDNS version and payload
    assert parsed.flags == expected.flags and parsed.edns == 0 and parsed.payload == 1232


@given(st.sampled_from(["bücher.example", "a\\.b.example", "a..b", "*.example", "x" * 64 + ".example", ""]), _types)
def test_names_that_need_dnspython_are_left_to_it(name, rdtype):
    assert dnswire.plain_query(1, name, rdtype, 1232) is None


@st.composite
def _responses(draw):
    name = draw(_names) + "."
    rdtype = draw(_types)
    query = dnswire.plain_query(draw(st.integers(0, 65535)), name, rdtype, 1232)
    q = dns.message.make_query(name, rdtype, use_edns=0, payload=1232, id=query.qid)
    response = dns.message.make_response(q)
    response.set_rcode(
        draw(
            st.sampled_from(
                [dns.rcode.NOERROR, dns.rcode.NXDOMAIN, dns.rcode.SERVFAIL, dns.rcode.REFUSED, dns.rcode.BADVERS]
            )
        )
    )
    owner = dns.name.from_text(draw(st.sampled_from([name, name.upper(), "other.example."])))
    for kind in draw(st.lists(st.sampled_from(["A", "AAAA", "CNAME"]), max_size=2, unique=True)):
        values = draw(
            st.lists(
                _ipv4 if kind == "A" else _ipv6 if kind == "AAAA" else st.just("target.example."),
                min_size=1,
                max_size=3,
            )
        )
        response.answer.append(dns.rrset.from_text_list(owner, 60, "IN", kind, values))
    if draw(st.booleans()):
        response.authority.append(
            dns.rrset.from_text("example.", 60, "IN", "SOA", "ns.example. host.example. 1 2 3 4 5")
        )
    if draw(st.booleans()):
        response.flags |= dns.flags.TC
    wire = response.to_wire(max_size=65535, want_shuffle=False)
    return query, wire, name, rdtype


@given(_responses())
def test_a_plain_answer_is_the_one_dnspython_reads(case):
    query, wire, name, rdtype = case
    got = dnswire.read_answer(wire, query)
    message = dns.message.from_wire(wire)
    assert got is not None  # it answers the question
    if got is dnswire.FULL_PARSE:
        return
    assert isinstance(got, dnswire.PlainAnswer)
    assert not message.flags & dns.flags.TC
    assert got.rcode == message.rcode()
    qname = dns.name.from_text(name)
    assert all(rrset.name == qname and rrset.rdtype == dns.rdatatype.from_text(rdtype) for rrset in message.answer)
    rrset = message.get_rrset(message.answer, qname, dns.rdataclass.IN, dns.rdatatype.from_text(rdtype))
    assert got.records == tuple(sorted({normalize_rdata(rd) for rd in rrset or ()}))


@given(_responses(), st.binary(max_size=8), st.integers(0, 200))
def test_broken_or_foreign_datagrams_never_raise(case, junk, cut):
    query, wire, _, _ = case
    for data in (wire[:cut], wire[:cut] + junk + wire[cut:], junk, bytes([wire[0] ^ 1]) + wire[1:]):
        got = dnswire.read_answer(data, query)
        assert got is None or got is dnswire.FULL_PARSE or isinstance(got, dnswire.PlainAnswer)


def test_the_engine_follows_a_cname_chain_on_the_fast_path(tmp_path: Path):
    from pytest_autoglm.core.vocabulary import Outcome
    from pytest_autoglm.engine.runner import Engine
    from pytest_autoglm.inventory.plan import build_plan
    from pytest_autoglm.inventory.validate import load_inventory
    from tests.fakes.dns_server import FakeDnsServer

    zone = {"www.test.": {"CNAME": ["edge.test."]}, "edge.test.": {"A": ["127.0.0.7"]}, "v6.test.": {"AAAA": ["::1"]}}
    with FakeDnsServer(zone) as server:
        (tmp_path / "i.yaml").write_text(
            f'version: 1\ndefaults: {{timeout: 2s, retries: 0, resolvers: ["{server.address}"]}}\ntargets:\n'
            "  - name: www\n    host: www.test\n    dns: {A: [127.0.0.7], AAAA: absent}\n"
            "  - name: v6\n    host: v6.test\n    dns: {AAAA: ['::1'], A: absent}\n"
            "  - name: ghost\n    host: ghost.test\n    dns: {A: absent}\n"
        )
        checks = build_plan(load_inventory(tmp_path / "i.yaml"))
        engine = Engine()
        try:
            engine.schedule(checks)
            results = [engine.result(c) for c in checks]
        finally:
            engine.close()
    assert [r.outcome for r in results] == [Outcome.PASSED] * len(checks), [r.message for r in results]
    assert results[0].details["answers"] == {server.address: ["127.0.0.7"]}


def test_a_truncated_fast_answer_is_asked_again_over_tcp(tmp_path: Path):
    from pytest_autoglm.core.vocabulary import Outcome
    from pytest_autoglm.engine.runner import Engine
    from pytest_autoglm.inventory.plan import build_plan
    from pytest_autoglm.inventory.validate import load_inventory
    from tests.fakes.dns_server import FakeDnsServer

    with FakeDnsServer({"big.test.": {"A": ["127.0.0.9"]}}, truncate_udp=True) as server:
        (tmp_path / "i.yaml").write_text(
            f'version: 1\ndefaults: {{timeout: 2s, retries: 0, resolvers: ["{server.address}"]}}\ntargets:\n'
            "  - name: big\n    host: big.test\n    dns: {A: [127.0.0.9]}\n"
        )
        (check,) = build_plan(load_inventory(tmp_path / "i.yaml"))
        engine = Engine()
        try:
            engine.schedule([check])
            result = engine.result(check)
        finally:
            engine.close()
        assert (server.udp_queries, server.tcp_queries) == (1, 1)
    assert result.outcome is Outcome.PASSED, result.message
