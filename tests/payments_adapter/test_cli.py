"""``dpi payments``: disburse, status and reconcile, and clear one-line refusals."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy.ext.asyncio import AsyncEngine

from payments_adapter.cli import payments_group

_HEADER = "beneficiary_id,financial_address,amount,currency,entitlement,payee_name\n"


@pytest.fixture
def environment(database_url: str, ledger_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    providers = tmp_path / "providers.toml"
    providers.write_text(
        f'[providers.wallet1]\nfactory = "sandbox"\ndatabase_url = "{ledger_url}"\n'
        'lost_response_rate = "0.25"\n',
        encoding="utf-8",
    )
    monkeypatch.setenv("DPI_DATABASE_URL", database_url)
    monkeypatch.setenv("DPI_VAR_DIR", str(tmp_path / "var"))
    monkeypatch.setenv("DPI_PAYMENTS_PROVIDERS", str(providers))
    batch = tmp_path / "stipend.csv"
    rows = [f"B{n},07{n:04d}@wallet1,{1000 + n},XOF,stipend,Person {n}" for n in range(30)]
    batch.write_text(
        _HEADER + "\n".join([*rows, "B0,070000@wallet1,1000,XOF,stipend,", "B99,x,1,XOF,s,"]) + "\n"
    )
    return batch


def test_disburse_then_status_then_reconcile(environment: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    problems = tmp_path / "problems.jsonl"
    result = runner.invoke(
        payments_group,
        [
            "disburse",
            str(environment),
            "--programme",
            "youth-stipend",
            "--cycle",
            "2026-11",
            "--provider",
            "wallet1",
            "--retry-base-ms",
            "1",
            "--json",
            "--problems",
            str(problems),
        ],
    )
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary[0]["counts"] == {"completed": 30}
    assert summary[0]["sums"] == {"XOF": {"completed": str(sum(1000 + n for n in range(30)))}}
    assert [json.loads(line)["reason_code"] for line in problems.read_text().splitlines()] == [
        "payments.item.duplicate",
        "payments.address.invalid",
    ]
    batch_id = summary[0]["batch_id"]
    status = runner.invoke(payments_group, ["status", batch_id, "--json"])
    assert json.loads(status.stdout)["counts"] == {"completed": 30}
    reconciled = runner.invoke(payments_group, ["reconcile", batch_id, "--provider", "wallet1", "--json"])
    assert reconciled.exit_code == 0, reconciled.output
    assert json.loads(reconciled.stdout)["balanced"] is True
    again = runner.invoke(
        payments_group,
        [
            "disburse",
            str(environment),
            "--programme",
            "youth-stipend",
            "--cycle",
            "2026-11",
            "--provider",
            "wallet1",
            "--json",
        ],
    )
    assert again.exit_code == 0, again.output
    assert json.loads(again.stdout.strip().splitlines()[-1]) == []


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["status", "00000000-0000-4000-8000-000000000000"], "payments.batch.not_found"),
        (
            ["reconcile", "00000000-0000-4000-8000-000000000000", "--provider", "nowhere"],
            "no payment provider",
        ),
    ],
)
def test_refusals_are_one_line_and_exit_2(
    environment: Path, engine: AsyncEngine, arguments: list[str], message: str
) -> None:
    result = CliRunner().invoke(payments_group, arguments)
    assert result.exit_code == 2
    assert message in result.stderr
    assert "Traceback" not in result.output


def test_an_unreadable_file_is_refused(environment: Path, tmp_path: Path) -> None:
    broken = tmp_path / "broken.csv"
    broken.write_text("who,what\n1,2\n")
    result = CliRunner().invoke(
        payments_group, ["disburse", str(broken), "--programme", "p", "--cycle", "c", "--provider", "wallet1"]
    )
    assert result.exit_code == 2
    assert "payments.batch.unreadable" in result.stderr
