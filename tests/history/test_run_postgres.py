"""A pytest run recording into a real PostgreSQL server (the team's shared store), its password masked."""

from __future__ import annotations

import json

from tests.fakes.tcp_servers import tcp_listener

pytest_plugins = ["pytester"]


def test_two_runs_into_postgresql_with_the_password_masked(pytester, postgres_url):
    url = postgres_url.replace("postgres@", "postgres:pg-s3cret-pass@")  # trust auth: any password is accepted
    with tcp_listener() as listener:
        (pytester.path / "lab.yaml").write_text(
            "version: 1\nenvironment: lab\ndefaults: {retries: 0, timeout: 1s}\ntargets:\n"
            f"  - name: db\n    host: 127.0.0.1\n    tcp: {{open: [{listener.port}]}}\n",
            encoding="utf-8",
        )
        runs = []
        for _ in range(2):
            result = pytester.runpytest_subprocess(
                "--autoglm-target", "lab.yaml", "-p", "no:cacheprovider", "--autoglm-history", url
            )
            assert result.ret == 0, result.stdout.str()
            assert "pg-s3cret-pass" not in result.stdout.str()
            runs.append(json.loads((pytester.path / "reports" / "lab.json").read_text(encoding="utf-8")))
    result.stdout.fnmatch_lines(["autoglm: history postgresql://postgres:***@127.0.0.1:*"])
    assert runs[1]["run"]["previous_id"] == runs[0]["run"]["id"]
    assert runs[1]["results"][0]["history"]["recent"] == "PP"
    assert not (pytester.path / "reports" / "history.sqlite").exists()


def test_an_unreachable_postgresql_store_is_one_warning(pytester):
    from tests.history.servers import free_port

    with tcp_listener() as listener:
        (pytester.path / "lab.yaml").write_text(
            "version: 1\nenvironment: lab\ndefaults: {retries: 0, timeout: 1s}\ntargets:\n"
            f"  - name: db\n    host: 127.0.0.1\n    tcp: {{open: [{listener.port}]}}\n",
            encoding="utf-8",
        )
        url = f"postgresql://nightly:pw-s3cret-value@127.0.0.1:{free_port()}/history"
        result = pytester.runpytest_subprocess(
            "--autoglm-target", "lab.yaml", "-p", "no:cacheprovider", "--autoglm-history", url
        )
    assert result.ret == 0
    warnings = [line for line in result.stdout.lines if "autoglm history warning:" in line]
    assert len(warnings) == 1 and "postgresql://nightly:***@127.0.0.1" in warnings[0], result.stdout.str()
    assert "pw-s3cret-value" not in result.stdout.str()
