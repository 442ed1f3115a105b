"""``dpi conformance``: list, run (exit codes, usage errors, an unreachable target), and a real run over the
network against our app served by granian."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner

import standards
from conformance_tests.cli import conformance_group
from dpi.cli import main as dpi_main
from dpi.keys import SigningKey


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_list_shows_every_platform_requirement() -> None:
    result = CliRunner().invoke(conformance_group, ["list"])
    assert result.exit_code == 0
    assert result.output.startswith("platform 1.0.0")
    for requirement in standards.requirements():
        if requirement.profile == "platform":
            assert f"  {requirement.id}  {requirement.level:<6}  {requirement.statement}" in result.output


def test_the_kernel_cli_attaches_the_group() -> None:
    result = CliRunner().invoke(dpi_main, ["conformance", "list"])
    assert result.exit_code == 0
    assert "PLT-014" in result.output


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (
            ["--target", "http://127.0.0.1:9", "--profile", "nope"],
            "unknown profile 'nope'; known profiles: consent, identity-oidc, payments-provider, platform",
        ),
        (["--target", "ftp://example.org"], "must be an absolute http:// or https:// URL"),
        (["--target", "not a url"], "must be an absolute http:// or https:// URL"),
        (["--target", "http://127.0.0.1:9", "--baseline", "{missing}"], "baseline file"),
        (["--target", "http://127.0.0.1:9", "--baseline", "{under_a_file}"], "cannot be read: [Errno 20]"),
        (
            ["--target", "http://127.0.0.1:9", "--baseline", "{must_baseline}"],
            "names MUST requirements (PLT-007); a baseline may accept SHOULD and MAY failures only",
        ),
        (
            ["--target", "http://127.0.0.1:9", "--baseline", "{unknown_baseline}"],
            "not in the catalogue: PLT-999",
        ),
        (["--target", "http://127.0.0.1:9", "--sign-key", "{under_a_file}"], "cannot read the signing key"),
        (
            ["--target", "http://127.0.0.1:9", "--sign-key", "{garbage}"],
            "is not an unencrypted PEM private key",
        ),
        (["--target", "http://127.0.0.1:9", "--max-examples", "0"], "--max-examples"),
        (["--profile", "platform"], "Missing option '--target'"),
    ],
)
def test_usage_errors_exit_2_with_one_clear_line(tmp_path: Path, arguments: list[str], message: str) -> None:
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("not a key")
    must_baseline = tmp_path / "must.json"
    must_baseline.write_text(json.dumps({"accepted": [{"requirement": "PLT-007", "reason": "proxy"}]}))
    unknown_baseline = tmp_path / "unknown.json"
    unknown_baseline.write_text(json.dumps({"accepted": [{"requirement": "PLT-999"}]}))
    filled = [
        a.format(
            missing=tmp_path / "missing.json",
            garbage=garbage,
            must_baseline=must_baseline,
            unknown_baseline=unknown_baseline,
            under_a_file=garbage / "inside.json",
        )
        for a in arguments
    ]
    result = CliRunner().invoke(conformance_group, ["run", *filled, "--report-dir", str(tmp_path / "r")])
    assert result.exit_code == 2, result.output
    assert message in result.output
    if "Usage:" not in result.output:  # click's own usage errors come with its usage lines
        assert result.output.startswith("dpi conformance: ")
        assert result.output.count("\n") == 1
    assert "Traceback" not in result.output
    assert not (tmp_path / "r").exists()


def test_an_unwritable_report_dir_exits_2_before_the_run(tmp_path: Path) -> None:
    blocker = tmp_path / "blocker"
    blocker.write_text("a file, not a directory")
    report_dir = blocker / "report"
    # The target is unreachable: reaching the run would say so instead.
    target = f"http://127.0.0.1:{free_port()}"
    result = CliRunner().invoke(
        conformance_group, ["run", "--target", target, "--report-dir", str(report_dir)]
    )
    assert result.exit_code == 2
    assert result.output.splitlines() == [
        f"dpi conformance: cannot write reports to {report_dir}: Not a directory"
    ]


def test_verify_an_unreadable_summary_exits_2_with_one_line(tmp_path: Path) -> None:
    jwks = tmp_path / "jwks.json"
    jwks.write_text(json.dumps({"keys": []}))
    empty_report = tmp_path / "report"
    empty_report.mkdir()
    result = CliRunner().invoke(conformance_group, ["verify", str(empty_report), "--jwks", str(jwks)])
    assert result.exit_code == 2
    assert result.output.splitlines() == [
        f"dpi conformance: cannot read {empty_report / 'summary.jws'}: No such file or directory"
    ]


def test_an_unreachable_target_exits_2_with_one_line(tmp_path: Path) -> None:
    target = f"http://127.0.0.1:{free_port()}"
    result = CliRunner().invoke(
        conformance_group, ["run", "--target", target, "--report-dir", str(tmp_path), "--timeout", "2"]
    )
    assert result.exit_code == 2
    lines = result.output.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith(f"dpi conformance: cannot reach {target}")
    assert isinstance(result.exception, SystemExit)


@pytest.fixture
def served_app(tmp_path: Path) -> Iterator[str]:
    """Our app served by ``dpi serve`` (granian) on a free local port, until the test ends."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("DPI_")}
    env |= {"DPI_VAR_DIR": str(tmp_path / "var"), "DPI_PORT": str(port)}
    server = subprocess.Popen(
        [sys.executable, "-c", "from dpi.cli import main; main()", "serve"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        # Generous: on a loaded machine migrating and starting the server can take a while.
        deadline = time.monotonic() + 90
        while True:
            try:
                if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if server.poll() is not None:
                pytest.fail(f"dpi serve exited with {server.returncode}")
            if time.monotonic() > deadline:
                pytest.fail("dpi serve did not become ready")
            time.sleep(0.1)
        yield url
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


def test_dpi_conformance_run_over_the_network(served_app: str, tmp_path: Path) -> None:
    key = SigningKey.generate()
    key_file = tmp_path / "vendor.pem"
    key_file.write_bytes(key.private_pem())
    report_dir = tmp_path / "report"
    result = CliRunner().invoke(
        dpi_main,
        [
            "conformance",
            "run",
            "--target",
            served_app,
            "--report-dir",
            str(report_dir),
            "--sign-key",
            str(key_file),
            "--max-examples",
            "3",
            "--seed",
            "1",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "Verdict: PASS" in result.output
    for name in ("report.json", "junit.xml", "report.html", "summary.jws", "jwks.json"):
        assert (report_dir / name).is_file()
    assert json.loads((report_dir / "jwks.json").read_text())["keys"][0]["kid"] == key.kid
    verified = CliRunner().invoke(
        dpi_main,
        ["conformance", "verify", str(report_dir / "summary.jws"), "--jwks", str(report_dir / "jwks.json")],
    )
    assert verified.exit_code == 0
    assert f"signed by {key.kid}" in verified.output
    report = json.loads((report_dir / "report.json").read_text())
    assert report["target"] == served_app
    statuses = {result["requirement"]: result["status"] for result in report["results"]}
    # granian answers the oversized body with 413 and closes before reading it: that must be heard.
    assert statuses["PLT-012"] == "pass", report["results"]
    assert set(statuses.values()) == {"pass"}


@pytest.mark.parametrize(
    ("client_file", "extra", "message"),
    [
        (
            '{"client_id": "a", "redirect_uri": "https://a.example/cb", "client_secret": "s"}',
            [],
            "--oidc-person",
        ),
        (
            '{"client_id": "a", "redirect_uri": "https://a.example/cb"}',
            ["--oidc-person", "1"],
            "either a client",
        ),
        ("not json", ["--oidc-person", "1"], "cannot read the client file"),
        (
            '{"client_id": "a", "redirect_uri": "https://a.example/cb", "client_secret": "s"}',
            ["--oidc-person", "1", "--sms-gateway-listen", "nowhere"],
            "HOST:PORT",
        ),
    ],
)
def test_unusable_oidc_options_exit_2_before_the_run(
    tmp_path: Path, client_file: str, extra: list[str], message: str
) -> None:
    client = tmp_path / "client.json"
    client.write_text(client_file)
    arguments = ["run", "--target", f"http://127.0.0.1:{free_port()}", "--report-dir", str(tmp_path)]
    arguments += ["--profile", "identity-oidc", "--oidc-client", str(client), *extra]
    result = CliRunner().invoke(conformance_group, arguments)
    assert result.exit_code == 2
    assert result.output.startswith("dpi conformance: ")
    assert message in result.output
