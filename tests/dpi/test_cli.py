"""The dpi command as an operator uses it: clear one-line errors, migrations, keys, a demo that serves."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner

from dpi.cli import main


def run(args: list[str], env: dict[str, str]) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, args, env=env, catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture
def env(tmp_path: Path, database_url: str) -> dict[str, str]:
    return {"DPI_VAR_DIR": str(tmp_path / "var"), "DPI_DATABASE_URL": database_url}


def test_bad_setting_is_one_line_and_exit_2(tmp_path: Path) -> None:
    code, out, err = run(["settings"], {"DPI_PORT": "eighty", "DPI_VAR_DIR": str(tmp_path)})
    assert code == 2
    assert err.strip() == "dpi: DPI_PORT: must be a whole number, got 'eighty'"
    assert "Traceback" not in out + err


def test_settings_lists_every_value(tmp_path: Path) -> None:
    code, out, _ = run(["settings"], {"DPI_VAR_DIR": str(tmp_path), "DPI_PORT": "8123"})
    assert code == 0
    assert "DPI_PORT=8123" in out.splitlines()


def test_db_upgrade_then_current(env: dict[str, str]) -> None:
    code, out, _ = run(["db", "current"], env)
    assert code == 1
    assert "pending: " in out
    assert "dpi_0001" in out.split("pending: ")[1]
    code, out, _ = run(["db", "upgrade"], env)
    assert code == 0
    assert "dpi_0001" in out
    code, out, _ = run(["db", "current"], env)
    assert code == 0
    assert "dpi_0001" in out.split("applied: ")[1].splitlines()[0]
    assert "pending" not in out


def test_keys_generate_rotate_and_publish(tmp_path: Path) -> None:
    env = {"DPI_VAR_DIR": str(tmp_path / "var")}
    code, out, _ = run(["keys", "generate", "--alg", "ES256"], env)
    assert code == 0
    first_kid = out.split()[2]
    code, out, _ = run(["keys", "rotate"], env)
    assert code == 0
    second_kid = out.split()[2]
    code, out, _ = run(["keys", "jwks"], env)
    published = {key["kid"] for key in json.loads(out)["keys"]}
    assert published == {first_kid, second_kid}


@pytest.mark.parametrize("command", [["db", "upgrade"], ["db", "current"], ["serve"]])
def test_unreachable_database_is_one_line(tmp_path: Path, command: list[str]) -> None:
    env = {
        "DPI_VAR_DIR": str(tmp_path / "var"),
        "DPI_DATABASE_URL": "postgresql+asyncpg://dpi:s3cret@127.0.0.1:9/none",
    }
    code, out, err = run(command, env)
    assert code == 2
    assert err.startswith("dpi: database postgresql+asyncpg://dpi:***@127.0.0.1:9/none: ")
    assert len(err.strip().splitlines()) == 1
    assert "s3cret" not in out + err


def test_unwritable_state_directory_is_one_line(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    code, _, err = run(["db", "upgrade"], {"DPI_VAR_DIR": str(blocker / "var")})
    assert code == 2
    assert len(err.strip().splitlines()) == 1


def test_port_in_use_is_refused(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        code, _, err = run(["serve", "--port", str(port)], {"DPI_VAR_DIR": str(tmp_path / "var")})
    assert code == 2
    assert f"cannot listen on 127.0.0.1:{port}" in err


def test_unknown_block_is_refused(tmp_path: Path) -> None:
    code, _, err = run(["serve", "--blocks", "nonesuch"], {"DPI_VAR_DIR": str(tmp_path)})
    assert code == 2
    assert "unknown block(s) nonesuch" in err


def test_blocks_lists_installed(tmp_path: Path) -> None:
    code, out, _ = run(["blocks"], {"DPI_VAR_DIR": str(tmp_path)})
    assert code == 0
    assert out.strip()


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_demo_serves_on_sqlite_with_no_configuration(tmp_path: Path) -> None:
    port = _free_port()
    environment = {key: value for key, value in os.environ.items() if not key.startswith("DPI_")}
    process = subprocess.Popen(
        [sys.executable, "-m", "dpi", "demo", "--port", str(port)],
        cwd=tmp_path,
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        ready = None
        while time.monotonic() < deadline and process.poll() is None:
            try:
                ready = httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2)
                break
            except httpx.TransportError:
                time.sleep(0.3)
        assert ready is not None, (
            process.stderr.read() if process.poll() is not None else "demo did not answer"
        )
        assert ready.status_code == 200, ready.text
        capabilities = httpx.get(f"http://127.0.0.1:{port}/.well-known/dpi-capabilities", timeout=5).json()
        assert capabilities["signature"]["jwks_uri"] == f"http://127.0.0.1:{port}/.well-known/jwks.json"
    finally:
        process.send_signal(signal.SIGINT)
        try:
            out, _ = process.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            out, _ = process.communicate()
    assert (tmp_path / "var" / "dpi.sqlite3").exists()
    assert f"http://127.0.0.1:{port}/.well-known/dpi-capabilities" in out
