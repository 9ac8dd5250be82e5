"""Certificates made by the test, and one nginx serving them on many loopback ports.

One nginx process (``master_process off``: a single process to stop by PID)
listens on one 127.0.0.1 port per TLS server below plus one plain-HTTP port for
the status, latency and CORS endpoints. Every certificate is issued at test
time (``tests/fakes/tls_server.py`` builders): a root, an intermediate under it,
and leaves under the intermediate, so "incomplete chain" (leaf sent without the
intermediate) is a real case; OCSP responses are built beforehand and served
with ``ssl_stapling_file``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from tests.fakes.tls_server import Issued, make_ca, make_leaf, make_ocsp_response, pem
from tests.interop.daemons import Daemon, DaemonFailed, SlowUpstream, free_ports, start_with_fresh_ports, tcp_answers

#: The Origin the CORS endpoints allow.
APP_ORIGIN = "https://app.example.com"
EVIL_ORIGIN = "https://evil.example.org"
SLOW_UPSTREAM_S = 1.2
BIG_BODY_BYTES = 16 * 1024
BIG_BODY_RATE = "16k"  # nginx limit_rate: the body takes about a second


@dataclass
class Pki:
    """Paths of everything the servers and the plugin read (PEM unless said otherwise)."""

    dir: Path
    root: Issued
    root_pem: Path
    other_root_pem: Path  # a CA that signed nothing nginx serves
    files: dict[str, tuple[Path, Path]] = field(default_factory=dict)  # server -> (chain, key)
    ocsp: dict[str, Path] = field(default_factory=dict)  # server -> DER response
    client_ca_pem: Path | None = None
    client_pem: Path | None = None  # cert + key in one file (the inventory's client_cert)
    client_cert_pem: Path | None = None
    client_key_pem: Path | None = None
    dot: tuple[Path, Path] | None = None  # (chain, key) for unbound's DNS over TLS


def make_pki(directory: Path) -> Pki:
    """Issue every certificate the interop servers use, into ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    now = dt.datetime.now(dt.UTC)
    root = make_ca("Interop Root")
    inter = make_ca("Interop Intermediate", issuer=root)
    other_root = make_ca("Interop Unrelated Root")
    pki = Pki(directory, root, directory / "root.pem", directory / "other-root.pem")
    pki.root_pem.write_bytes(pem(root))
    pki.other_root_pem.write_bytes(pem(other_root))

    def write(name: str, leaf: Issued, *chain: Issued) -> None:
        chain_path, key_path = directory / f"{name}.chain.pem", directory / f"{name}.key.pem"
        chain_path.write_bytes(pem(leaf, *chain))
        key_path.write_bytes(leaf.key_pem())
        pki.files[name] = (chain_path, key_path)

    day = dt.timedelta(days=1)
    write("valid", make_leaf(["valid.tls.test", "web.interop.test", "127.0.0.1"], issuer=inter), inter)
    write(
        "expired",
        make_leaf(["expired.tls.test", "127.0.0.1"], issuer=inter, not_before=now - 100 * day, not_after=now - 2 * day),
        inter,
    )
    write(
        "notyet",
        make_leaf(["notyet.tls.test", "127.0.0.1"], issuer=inter, not_before=now + 5 * day, not_after=now + 100 * day),
        inter,
    )
    write("expiring", make_leaf(["expiring.tls.test", "127.0.0.1"], issuer=inter, not_after=now + 10 * day), inter)
    write("wronghost", make_leaf(["other.tls.test"], issuer=inter), inter)
    write("incomplete", make_leaf(["incomplete.tls.test", "127.0.0.1"], issuer=inter))  # no intermediate sent
    # The same, with the issuer's URL in the leaf (AIA, as public CAs do); nothing ever fetches it.
    aia = "http://127.0.0.1:9/interop-intermediate.crt"
    write("incomplete_aia", make_leaf(["incomplete-aia.tls.test"], issuer=inter, aia_ca_issuers=aia))
    write("selfsigned", make_leaf(["selfsigned.tls.test", "127.0.0.1"]))
    write("tls13", make_leaf(["tls13.tls.test", "127.0.0.1"], issuer=inter), inter)
    write("legacy", make_leaf(["legacy.tls.test", "127.0.0.1"], issuer=inter), inter)
    for status in ("good", "revoked"):
        leaf = make_leaf([f"ocsp-{status}.tls.test", "127.0.0.1"], issuer=inter)
        write(f"ocsp_{status}", leaf, inter)
        der = directory / f"ocsp_{status}.der"
        der.write_bytes(make_ocsp_response(leaf, inter, status))  # type: ignore[arg-type]
        pki.ocsp[f"ocsp_{status}"] = der
    write("mtls", make_leaf(["mtls.tls.test", "127.0.0.1"], issuer=inter), inter)

    client_ca = make_ca("Interop Client CA")
    client = make_leaf(["client.interop.test"], issuer=client_ca)
    pki.client_ca_pem = directory / "client-ca.pem"
    pki.client_ca_pem.write_bytes(pem(client_ca))
    pki.client_cert_pem = directory / "client.cert.pem"
    pki.client_cert_pem.write_bytes(client.cert_pem())
    pki.client_key_pem = directory / "client.key.pem"
    pki.client_key_pem.write_bytes(client.key_pem())
    pki.client_pem = directory / "client.pem"
    pki.client_pem.write_bytes(client.cert_pem() + client.key_pem())

    dot = make_leaf(["127.0.0.1", "dot.interop.test"], issuer=inter)
    dot_chain, dot_key = directory / "dot.chain.pem", directory / "dot.key.pem"
    dot_chain.write_bytes(pem(dot, inter))
    dot_key.write_bytes(dot.key_pem())
    pki.dot = (dot_chain, dot_key)
    return pki


# --------------------------------------------------------------------------- nginx

#: TLS servers: name -> extra nginx directives for its server block.
TLS_SERVERS: dict[str, str] = {
    "valid": "ssl_protocols TLSv1.2 TLSv1.3;",
    "expired": "ssl_protocols TLSv1.2 TLSv1.3;",
    "notyet": "ssl_protocols TLSv1.2 TLSv1.3;",
    "expiring": "ssl_protocols TLSv1.2 TLSv1.3;",
    "wronghost": "ssl_protocols TLSv1.2 TLSv1.3;",
    "incomplete": "ssl_protocols TLSv1.2 TLSv1.3;",
    "incomplete_aia": "ssl_protocols TLSv1.2 TLSv1.3;",
    "selfsigned": "ssl_protocols TLSv1.2 TLSv1.3;",
    "tls13": "ssl_protocols TLSv1.3;",
    # OpenSSL 3 offers TLS 1.0/1.1 only at security level 0 (lab-facts).
    "legacy": 'ssl_protocols TLSv1 TLSv1.1 TLSv1.2; ssl_ciphers "DEFAULT:@SECLEVEL=0";',
    "ocsp_good": "ssl_protocols TLSv1.2 TLSv1.3; ssl_stapling on; ssl_stapling_verify off; ssl_stapling_file {ocsp};",
    "ocsp_revoked": "ssl_protocols TLSv1.2 TLSv1.3; ssl_stapling on; ssl_stapling_verify off; ssl_stapling_file {ocsp};",
    "mtls": "ssl_protocols TLSv1.2 TLSv1.3; ssl_verify_client on; ssl_client_certificate {client_ca};",
}

_CORS_MAPS = f"""
    map $http_origin $strict_origin {{ default ""; "{APP_ORIGIN}" $http_origin; }}
    map $http_origin $strict_creds {{ default ""; "{APP_ORIGIN}" "true"; }}
"""

_HTTP_LOCATIONS = """
        location = /ok {{ return 200 "ok"; }}
        location = /json {{ default_type application/json; return 200 '{{"status":"ok","version":3}}'; }}
        location = /unavailable {{ return 503; }}
        location = /auth {{ add_header WWW-Authenticate 'Basic realm="interop"' always; return 401; }}
        location = /old {{ return 301 /ok; }}
        location = /slow {{ proxy_pass http://127.0.0.1:{slow_port}/; proxy_read_timeout 10s; }}
        location = /big.bin {{ limit_rate {rate}; }}

        location = /cors/strict {{
            add_header Access-Control-Allow-Origin $strict_origin always;
            add_header Access-Control-Allow-Credentials $strict_creds always;
            add_header Access-Control-Allow-Methods "GET, PUT" always;
            add_header Access-Control-Allow-Headers "Authorization, Content-Type" always;
            add_header Vary Origin always;
            if ($request_method = OPTIONS) {{ return 204; }}
            return 200 "strict";
        }}
        location = /cors/reflect {{
            add_header Access-Control-Allow-Origin $http_origin always;
            add_header Access-Control-Allow-Credentials true always;
            add_header Access-Control-Allow-Methods "GET, PUT" always;
            add_header Access-Control-Allow-Headers "Authorization, Content-Type" always;
            if ($request_method = OPTIONS) {{ return 204; }}
            return 200 "reflect";
        }}
        location = /cors/wildcard-credentials {{
            add_header Access-Control-Allow-Origin * always;
            add_header Access-Control-Allow-Credentials true always;
            return 200 "wildcard with credentials";
        }}
        location = /cors/wildcard {{
            add_header Access-Control-Allow-Origin * always;
            return 200 "wildcard";
        }}
        location = /cors/none {{ return 200 "no cors"; }}
        location = /cors/preflight-405 {{
            add_header Access-Control-Allow-Origin $strict_origin always;
            add_header Access-Control-Allow-Methods "GET, PUT" always;
            add_header Vary Origin always;
            if ($request_method = OPTIONS) {{ return 405; }}
            return 200 "preflight refused";
        }}
        location = /cors/no-credentials {{
            add_header Access-Control-Allow-Origin $strict_origin always;
            add_header Vary Origin always;
            return 200 "no credentials";
        }}
"""


@dataclass
class NginxLab:
    pki: Pki
    prefix: Path
    ports: dict[str, int]  # TLS server name -> port, and "http"
    slow_port: int
    daemon: Daemon | None = None
    closed_port: int = 0  # a loopback port nothing listens on (chosen after nginx started)

    @property
    def http_base(self) -> str:
        return f"http://127.0.0.1:{self.ports['http']}"

    def https_base(self, server: str) -> str:
        return f"https://127.0.0.1:{self.ports[server]}"


def _config(pki: Pki, prefix: Path, ports: dict[str, int], slow_port: int) -> str:
    servers = []
    for name, extra in TLS_SERVERS.items():
        chain, key = pki.files[name]
        directives = extra.format(ocsp=pki.ocsp.get(name, ""), client_ca=pki.client_ca_pem)
        servers.append(
            f"""
    server {{
        listen 127.0.0.1:{ports[name]} ssl;
        server_name {name}.tls.test;
        ssl_certificate {chain};
        ssl_certificate_key {key};
        {directives}
        location / {{ return 200 "tls {name}"; }}
        location = /ok {{ return 200 "ok"; }}
    }}"""
        )
    locations = _HTTP_LOCATIONS.format(slow_port=slow_port, rate=BIG_BODY_RATE)
    return f"""
master_process off;
daemon off;
worker_processes 1;
pid {prefix}/nginx.pid;
error_log {prefix}/error.log warn;
events {{ worker_connections 256; }}
http {{
    access_log off;
    default_type text/plain;
    client_body_temp_path {prefix}/tmp/body;
    proxy_temp_path {prefix}/tmp/proxy;
    fastcgi_temp_path {prefix}/tmp/fastcgi;
    uwsgi_temp_path {prefix}/tmp/uwsgi;
    scgi_temp_path {prefix}/tmp/scgi;
    server_tokens off;
    {_CORS_MAPS}
    server {{
        listen 127.0.0.1:{ports["http"]};
        server_name http.interop.test;
        root {prefix}/html;
        {locations}
    }}
    {"".join(servers)}
}}
"""


def _start_nginx(pki: Pki, prefix: Path, slow_port: int) -> tuple[Daemon, dict[str, int]]:
    names = [*TLS_SERVERS, "http"]
    ports = dict(zip(names, free_ports(len(names)), strict=True))
    conf = prefix / "nginx.conf"
    conf.write_text(_config(pki, prefix, ports, slow_port))
    daemon = Daemon(
        "nginx", ["nginx", "-e", str(prefix / "error.log"), "-p", str(prefix), "-c", str(conf)], prefix / "stdout.log"
    )
    daemon.start()
    try:
        daemon.wait_ready(lambda: all(tcp_answers(p) for p in ports.values()))
    except DaemonFailed as exc:
        daemon.stop()
        err = (prefix / "error.log").read_text(errors="replace")[-2000:] if (prefix / "error.log").exists() else ""
        raise DaemonFailed(f"{exc}\nerror.log:\n{err}") from None
    return daemon, ports


@contextmanager
def nginx_lab(directory: Path, pki: Pki) -> Iterator[NginxLab]:
    """A slow upstream and nginx serving ``pki``'s certificates, all stopped (by PID) on exit."""
    prefix = directory / "nginx"
    for sub in ("tmp", "html", "logs"):
        (prefix / sub).mkdir(parents=True, exist_ok=True)
    (prefix / "html" / "big.bin").write_bytes(b"x" * BIG_BODY_BYTES)
    with SlowUpstream(SLOW_UPSTREAM_S) as slow:
        holder: dict[str, object] = {}

        def start() -> Daemon:
            daemon, ports = _start_nginx(pki, prefix, slow.port)
            holder["ports"] = ports
            return daemon

        daemon = start_with_fresh_ports(start)
        try:
            lab = NginxLab(pki, prefix, holder["ports"], slow.port, daemon)  # type: ignore[arg-type]
            lab.closed_port = free_ports(1)[0]
            yield lab
        finally:
            daemon.stop()
