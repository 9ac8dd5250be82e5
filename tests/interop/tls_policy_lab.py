"""One nginx serving the TLS policy set (like badssl.com's): weak suites, DH groups, old versions, Mozilla profiles.

Everything is made at test time: the certificates (a root, an intermediate, RSA and ECDSA
leaves, one without a subjectAltName, one with 10,000 names) and the DH groups (a 1024-bit
safe prime from ``openssl dhparam``, a 2048-bit prime that is NOT safe, made as DSA domain
parameters so its generator lies in a 256-bit subgroup, and RFC 7919's ffdhe2048 by name).
The Mozilla servers are configured from the facts of Server Side TLS 5.7.
One nginx process (``master_process off``), stopped by PID.
"""

from __future__ import annotations

import base64
import functools
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import dsa, rsa

from tests.fakes.tls_server import Issued, make_ca, make_leaf, pem
from tests.interop.daemons import Daemon, DaemonFailed, free_ports, start_with_fresh_ports, tcp_answers

HOST = "policy.tls.test"
BIG_SANS = 10_000

_SECLEVEL0 = "@SECLEVEL=0"
_MOZ_GROUPS = "X25519:prime256v1:secp384r1"
#: Mozilla Server Side TLS 5.7, intermediate, TLS 1.2 suites (OpenSSL names).
_INTERMEDIATE = (
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:"
    "ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305:"
    "DHE-RSA-AES128-GCM-SHA256:DHE-RSA-AES256-GCM-SHA384:DHE-RSA-CHACHA20-POLY1305"
)
#: ... and old's additions (5.7): CBC suites, RSA key exchange, 3DES (absent from Debian's OpenSSL 3).
_OLD = (
    _INTERMEDIATE + ":ECDHE-ECDSA-AES128-SHA256:ECDHE-RSA-AES128-SHA256:ECDHE-ECDSA-AES128-SHA:ECDHE-RSA-AES128-SHA:"
    "ECDHE-ECDSA-AES256-SHA384:ECDHE-RSA-AES256-SHA384:ECDHE-ECDSA-AES256-SHA:ECDHE-RSA-AES256-SHA:"
    "DHE-RSA-AES128-SHA256:DHE-RSA-AES256-SHA256:AES128-GCM-SHA256:AES256-GCM-SHA384:AES128-SHA256:AES256-SHA256:"
    "AES128-SHA:AES256-SHA:DES-CBC3-SHA"
)

#: name -> (certificate: "rsa" | "ec" | "nosan" | "big", nginx directives).
SERVERS: dict[str, tuple[str, str]] = {
    "cbc_only": ("rsa", "ssl_protocols TLSv1.2; ssl_ciphers ECDHE-RSA-AES128-SHA:ECDHE-RSA-AES256-SHA;"),
    "dhe_1024": (
        "rsa",
        f'ssl_protocols TLSv1.2; ssl_ciphers "DHE-RSA-AES128-GCM-SHA256:{_SECLEVEL0}"; ssl_dhparam {{dh1024}};',
    ),
    "dhe_nonsafe": ("rsa", "ssl_protocols TLSv1.2; ssl_ciphers DHE-RSA-AES128-GCM-SHA256; ssl_dhparam {nonsafe};"),
    "dhe_ffdhe2048": ("rsa", "ssl_protocols TLSv1.2; ssl_ciphers DHE-RSA-AES128-GCM-SHA256; ssl_dhparam {ffdhe};"),
    "tls10": ("ec", f'ssl_protocols TLSv1 TLSv1.1 TLSv1.2; ssl_ciphers "DEFAULT:{_SECLEVEL0}";'),
    "static_rsa": ("rsa", "ssl_protocols TLSv1.2; ssl_ciphers AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256;"),
    "mozilla_modern": ("ec", f"ssl_protocols TLSv1.3; ssl_ecdh_curve {_MOZ_GROUPS}; ssl_prefer_server_ciphers off;"),
    "mozilla_intermediate": (
        "ec",
        f"ssl_protocols TLSv1.2 TLSv1.3; ssl_ciphers {_INTERMEDIATE}; ssl_ecdh_curve {_MOZ_GROUPS};"
        " ssl_dhparam {ffdhe}; ssl_prefer_server_ciphers off;",
    ),
    "mozilla_old": (
        "rsa",
        f'ssl_protocols TLSv1 TLSv1.1 TLSv1.2 TLSv1.3; ssl_ciphers "{_OLD}:{_SECLEVEL0}";'
        f" ssl_ecdh_curve {_MOZ_GROUPS}; ssl_dhparam {{dh1024}}; ssl_prefer_server_ciphers on;",
    ),
    "nosan": ("nosan", "ssl_protocols TLSv1.2 TLSv1.3;"),
    "incomplete_aia": ("aia", "ssl_protocols TLSv1.2 TLSv1.3;"),
    "rsa1024": ("rsa1024", f'ssl_protocols TLSv1.2; ssl_ciphers "ECDHE-RSA-AES128-GCM-SHA256:{_SECLEVEL0}";'),
    "sha1_leaf": (
        "sha1",
        f'ssl_protocols TLSv1.2 TLSv1.3; ssl_ciphers "DEFAULT:{_SECLEVEL0}";',
    ),  # leaf only; its AIA URL is nginx's "aia" port
    "bigsan": ("big", "ssl_protocols TLSv1.2 TLSv1.3;"),
}


@dataclass
class PolicyLab:
    dir: Path
    root_pem: Path
    ports: dict[str, int] = field(default_factory=dict)
    files: dict[str, tuple[Path, Path]] = field(default_factory=dict)
    dh: dict[str, Path] = field(default_factory=dict)
    aia_port: int = 0  # plain HTTP: /inter.crt, the intermediate the incomplete_aia server leaves out
    daemon: Daemon | None = None


def _write_leaf(lab: PolicyLab, name: str, leaf: Issued, inter: Issued | None) -> None:
    chain, key = lab.dir / f"{name}.chain.pem", lab.dir / f"{name}.key.pem"
    chain.write_bytes(pem(leaf, inter) if inter is not None else pem(leaf))
    key.write_bytes(leaf.key_pem())
    lab.files[name] = (chain, key)


def _dh_files(lab: PolicyLab) -> None:
    lab.dh["dh1024"] = lab.dir / "dh1024.pem"
    subprocess.run(["openssl", "dhparam", "-out", str(lab.dh["dh1024"]), "1024"], check=True, capture_output=True)
    lab.dh["ffdhe"] = lab.dir / "ffdhe2048.pem"
    subprocess.run(
        [
            "openssl",
            "genpkey",
            "-genparam",
            "-algorithm",
            "DH",
            "-pkeyopt",
            "group:ffdhe2048",
            "-out",
            str(lab.dh["ffdhe"]),
        ],
        check=True,
        capture_output=True,
    )
    # DSA domain parameters: p - 1 = k * q with q a 256-bit prime, g of order q: a prime that is not safe.
    numbers = dsa.generate_parameters(2048).parameter_numbers()
    lab.dh["nonsafe"] = lab.dir / "nonsafe2048.pem"
    lab.dh["nonsafe"].write_text(_pkcs3_pem(numbers.p, numbers.g))


def _der_integer(value: int) -> bytes:
    body = value.to_bytes(value.bit_length() // 8 + 1, "big")  # a leading zero keeps it positive
    return b"\x02" + _der_length(len(body)) + body


def _der_length(length: int) -> bytes:
    if length < 128:
        return bytes([length])
    raw = length.to_bytes((length.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(raw)]) + raw


def _pkcs3_pem(p: int, g: int) -> str:
    """PKCS #3 DHParameter (SEQUENCE of p, g) in PEM: cryptography refuses to serialise a group it deems unsafe."""
    body = _der_integer(p) + _der_integer(g)
    der = b"\x30" + _der_length(len(body)) + body
    text = base64.encodebytes(der).decode("ascii").replace("\n", "")
    lines = [text[i : i + 64] for i in range(0, len(text), 64)]
    return "-----BEGIN DH PARAMETERS-----\n" + "\n".join(lines) + "\n-----END DH PARAMETERS-----\n"


def _sha1_leaf(lab: PolicyLab, inter: Issued) -> None:
    """A leaf signed with SHA-1 by the intermediate: made by openssl (cryptography refuses to sign with SHA-1)."""
    d = lab.dir
    (d / "inter.pem").write_bytes(pem(inter))
    (d / "inter.key").write_bytes(inter.key_pem())
    (d / "sha1.ext").write_text(f"subjectAltName=DNS:{HOST}\n")
    run = functools.partial(subprocess.run, check=True, capture_output=True)
    run(["openssl", "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
         "-keyout", str(d / "sha1.key.pem"), "-subj", f"/CN={HOST}", "-out", str(d / "sha1.csr")])  # fmt: skip
    run(["openssl", "x509", "-req", "-in", str(d / "sha1.csr"), "-CA", str(d / "inter.pem"), "-CAkey", str(d / "inter.key"),
         "-set_serial", "4660", "-days", "30", "-sha1", "-extfile", str(d / "sha1.ext"), "-out", str(d / "sha1.crt")])  # fmt: skip
    (d / "sha1.chain.pem").write_bytes((d / "sha1.crt").read_bytes() + pem(inter))
    lab.files["sha1"] = (d / "sha1.chain.pem", d / "sha1.key.pem")


def make_policy_pki(directory: Path) -> PolicyLab:
    directory.mkdir(parents=True, exist_ok=True)
    root = make_ca("Policy Root")
    inter = make_ca("Policy Intermediate", issuer=root)
    lab = PolicyLab(directory, directory / "root.pem")
    lab.root_pem.write_bytes(pem(root))
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    _write_leaf(lab, "rsa", make_leaf([HOST, "127.0.0.1"], issuer=inter, key=rsa_key), inter)
    _write_leaf(lab, "ec", make_leaf([HOST, "127.0.0.1"], issuer=inter), inter)
    _write_leaf(lab, "nosan", make_leaf([HOST], issuer=inter, san=False), inter)
    names = [*(f"n{i}.{HOST}" for i in range(BIG_SANS - 1)), HOST]
    _write_leaf(lab, "big", make_leaf(names, issuer=inter), inter)
    _write_leaf(lab, "rsa1024", make_leaf([HOST], issuer=inter, key=rsa.generate_private_key(65537, 1024)), inter)
    _sha1_leaf(lab, inter)
    _dh_files(lab)
    # The intermediate published over plain HTTP (DER, as CAs do) at the port nginx will serve it on.
    lab.aia_port = free_ports(1)[0]
    (directory / "aia").mkdir(exist_ok=True)
    (directory / "aia" / "inter.crt").write_bytes(inter.cert.public_bytes(serialization.Encoding.DER))
    aia_url = f"http://127.0.0.1:{lab.aia_port}/inter.crt"
    _write_leaf(lab, "aia", make_leaf([HOST], issuer=inter, aia_ca_issuers=aia_url), None)
    return lab


def _config(lab: PolicyLab, prefix: Path) -> str:
    blocks = []
    for name, (cert, directives) in SERVERS.items():
        chain, key = lab.files[cert]
        blocks.append(
            f"""
    server {{
        listen 127.0.0.1:{lab.ports[name]} ssl;
        server_name {HOST};
        ssl_certificate {chain};
        ssl_certificate_key {key};
        {directives.format(**{k: str(v) for k, v in lab.dh.items()})}
        location / {{ return 200 "{name}"; }}
    }}"""
        )
    return f"""
master_process off;
daemon off;
worker_processes 1;
pid {prefix}/nginx.pid;
error_log {prefix}/error.log crit;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    client_body_temp_path {prefix}/tmp/body;
    proxy_temp_path {prefix}/tmp/proxy;
    fastcgi_temp_path {prefix}/tmp/fastcgi;
    uwsgi_temp_path {prefix}/tmp/uwsgi;
    scgi_temp_path {prefix}/tmp/scgi;
    {"".join(blocks)}
    server {{
        listen 127.0.0.1:{lab.aia_port};
        root {lab.dir / "aia"};
        types {{ application/pkix-cert crt; }}
    }}
}}
"""


@contextmanager
def policy_lab(directory: Path) -> Iterator[PolicyLab]:
    """The policy servers on loopback, nginx stopped (by PID) on exit."""
    lab = make_policy_pki(directory / "pki")
    prefix = directory / "nginx"
    (prefix / "tmp").mkdir(parents=True, exist_ok=True)

    def start() -> Daemon:
        lab.ports = dict(zip(SERVERS, free_ports(len(SERVERS)), strict=True))
        conf = prefix / "nginx.conf"
        conf.write_text(_config(lab, prefix))
        daemon = Daemon(
            "nginx", ["nginx", "-e", str(prefix / "error.log"), "-p", str(prefix), "-c", str(conf)], prefix / "out.log"
        )
        daemon.start()
        try:
            daemon.wait_ready(lambda: all(tcp_answers(p) for p in [*lab.ports.values(), lab.aia_port]))
        except DaemonFailed as exc:
            daemon.stop()
            err = (prefix / "error.log").read_text(errors="replace")[-2000:] if (prefix / "error.log").exists() else ""
            raise DaemonFailed(f"{exc}\nerror.log:\n{err}") from None
        return daemon

    lab.daemon = start_with_fresh_ports(start)
    try:
        yield lab
    finally:
        lab.daemon.stop()
