"""``dpi payments mapper ...`` against the database of ``DPI_DATABASE_URL`` (SQLite and PostgreSQL)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from payments_adapter.mapper.cli import mapper_group


def test_an_officer_registers_a_freeze_and_a_shared_wallet_from_the_command_line(
    database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DPI_DATABASE_URL", database_url)
    monkeypatch.setenv("DPI_VAR_DIR", str(tmp_path / "var"))
    runner = CliRunner()

    freeze = runner.invoke(
        mapper_group,
        [
            "freeze",
            "stipend-2026-03",
            "--cut-off",
            "2026-03-03T09:00:00",
            "--ends",
            "2026-03-05T09:00:00",
            "--by",
            "officer-3",
        ],
    )
    assert freeze.exit_code == 0, freeze.output
    assert json.loads(freeze.output)["ends_at"] == "2026-03-05T09:00:00.000Z"
    backwards = runner.invoke(
        mapper_group,
        [
            "freeze",
            "other",
            "--cut-off",
            "2026-03-03T09:00:00",
            "--ends",
            "2026-03-01T09:00:00",
            "--by",
            "officer-3",
        ],
    )
    assert backwards.exit_code == 2
    assert "payments.mapper.freeze.invalid" in backwards.output

    listed = runner.invoke(mapper_group, ["freezes"])
    assert [window["cycle_id"] for window in json.loads(listed.output)] == ["stipend-2026-03"]

    shared = runner.invoke(
        mapper_group,
        ["allow-shared", "0700777777@Wallet1", "--reason", "household wallet", "--by", "officer-3"],
    )
    assert shared.exit_code == 0, shared.output
    assert json.loads(shared.output)["fa"] == "0700777777@wallet1"
    invalid = runner.invoke(
        mapper_group, ["allow-shared", "no-provider", "--reason", "x", "--by", "officer-3"]
    )
    assert invalid.exit_code == 2
    assert "payments.mapper.address.invalid" in invalid.output

    assert json.loads(runner.invoke(mapper_group, ["conflicts"]).output) == []
    assert json.loads(runner.invoke(mapper_group, ["history", "amina-pseudonym-7Q2XK9"]).output) == []
