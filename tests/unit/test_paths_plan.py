"""Plan ids and dependencies of the issue 19 kinds: icmp, grpc, stream items, groups."""

from __future__ import annotations

from pathlib import Path

from pytest_autoglm import load_inventory
from pytest_autoglm.core.vocabulary import Layer
from pytest_autoglm.inventory.plan import GroupSpec, GrpcSpec, build_plan

INVENTORY = """\
version: 1
environment: lab
targets:
  - name: infer
    host: infer.example.test
    dns: {A: present, MX: present}
    icmp: {count: 2, max_loss: 50%, max_rtt: 100ms}
    tcp: {open: [50051]}
    tls: {port: 50051, sni: infer.example.com, client_cert: client.pem}
    grpc:
      - {port: 50051, tls: true, keepalive: 30s, max_message: 64MiB}
      - {port: 50051, service: autoglm.Inference}
  - name: backup
    host: 127.0.0.2
    icmp: {reachable: false}
    http:
      url: http://127.0.0.2:8000/v1/chat/completions
      method: POST
      body: {stream: true, messages: [{role: user, content: hi}]}
      stream: {first_event_within: 2s, done: "[DONE]"}
groups:
  - {name: models, any_of: [infer, backup], prefer: infer}
"""


def test_ids_specs_and_dependencies(tmp_path: Path) -> None:
    (tmp_path / "client.pem").write_text("placeholder\n")
    (tmp_path / "lab.yaml").write_text(INVENTORY)
    checks = {c.id: c for c in build_plan(load_inventory(tmp_path / "lab.yaml"))}
    assert list(checks) == [
        "dns[lab:infer:A]",
        "dns[lab:infer:MX]",
        "icmp[lab:infer:reachable]",
        "tcp[lab:infer:50051/open]",
        "tls[lab:infer:50051]",
        "grpc[lab:infer:50051]",
        "grpc[lab:infer:50051/autoglm.Inference]",
        "icmp[lab:backup:blocked]",
        "http[lab:backup:POST http://127.0.0.2:8000/v1/chat/completions]",
        "group[lab:models]",
    ]
    assert checks["icmp[lab:infer:reachable]"].depends_on == ("dns[lab:infer:A]",)
    assert checks["icmp[lab:infer:reachable]"].spec.max_loss == 50.0
    tls_grpc = checks["grpc[lab:infer:50051]"]
    assert tls_grpc.depends_on == ("dns[lab:infer:A]", "tcp[lab:infer:50051/open]", "tls[lab:infer:50051]")
    assert isinstance(tls_grpc.spec, GrpcSpec) and tls_grpc.spec.sni == "infer.example.com"
    assert tls_grpc.spec.check.max_message == 64 * 1024 * 1024 and tls_grpc.spec.check.keepalive == 30.0
    assert tls_grpc.client_cert == str(tmp_path / "client.pem")
    plain = checks["grpc[lab:infer:50051/autoglm.Inference]"]
    assert plain.depends_on == ("dns[lab:infer:A]", "tcp[lab:infer:50051/open]") and plain.client_cert is None
    stream = checks["http[lab:backup:POST http://127.0.0.2:8000/v1/chat/completions]"].spec
    assert (
        stream.stream is not None
        and stream.stream.done == "[DONE]"
        and stream.body
        == {
            "stream": True,
            "messages": [{"role": "user", "content": "hi"}],
        }
    )
    prefer = checks["group[lab:models]"]
    assert (prefer.kind, prefer.severity, prefer.depends_on) == (Layer.GROUP, "critical", ())
    assert isinstance(prefer.spec, GroupSpec)
    assert [name for name, _ in prefer.spec.members] == ["infer", "backup"]
    assert dict(prefer.spec.members)["backup"] == (
        ("icmp[lab:backup:blocked]", "critical"),
        ("http[lab:backup:POST http://127.0.0.2:8000/v1/chat/completions]", "critical"),
    )
    assert prefer.spec.prefer == "infer"
