"""SIGKILL the disbursing process at random moments, several times, during a batch against the sandbox
with injected lost responses; after restarts every item is paid exactly once, none is lost, and
reconciliation balances to the cent.

The batch holds 100,000 items on PostgreSQL, the production database (a few minutes on a 2-core machine),
and 10,000 on SQLite, which only repeats the same guarantee on the embedded database;
``DPI_PAYMENTS_CRASH_ITEMS`` sets the size for both.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import signal
import sys
from datetime import timedelta
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from payments_adapter.models import ItemState, batches, items
from payments_adapter.reconciliation import reconcile
from payments_adapter.sandbox import create_provider, parse_sandbox_statement

_SIZES = {"postgresql": 100_000, "sqlite": 10_000}
KILLS = 3
MISSING_EVERY = 997
"""Every 997th beneficiary's account does not exist: the pre-flight refuses it, nothing is paid."""


def _command(batch_file: Path) -> list[str]:
    return [
        sys.executable,
        "-m",
        "dpi",
        "payments",
        "disburse",
        str(batch_file),
        "--programme",
        "youth-stipend",
        "--cycle",
        "2026-11",
        "--provider",
        "wallet1",
        "--chunk-size",
        "1000",
        "--lease-seconds",
        "1",
        "--retry-base-ms",
        "20",
        "--json",
    ]


async def _counts(engine: AsyncEngine) -> dict[str, int]:
    async with engine.connect() as connection:
        rows = await connection.execute(select(items.c.state, func.count()).group_by(items.c.state))
        return {state: int(count) for state, count in rows}


async def test_sigkill_during_disbursement_pays_every_item_exactly_once(
    engine: AsyncEngine, database_url: str, ledger_url: str, tmp_path: Path
) -> None:
    backend = "sqlite" if database_url.startswith("sqlite") else "postgresql"
    items_count = int(os.environ.get("DPI_PAYMENTS_CRASH_ITEMS", _SIZES[backend]))
    generator = random.Random(20261123)
    batch_file = tmp_path / "stipend.csv"
    lines = ["beneficiary_id,financial_address,amount,currency,entitlement,payee_name"]
    amounts: dict[str, int] = {}
    for number in range(items_count):
        account = f"000{number:07d}" if number % MISSING_EVERY == 0 else f"07{number:08d}"
        amount = generator.randrange(1_000, 90_000)
        beneficiary = f"B{number:07d}"
        amounts[beneficiary] = amount
        lines.append(f"{beneficiary},{account}@wallet1,{amount},XAF,stipend,")
    batch_file.write_text("\n".join(lines) + "\n", encoding="utf-8")
    providers = tmp_path / "providers.toml"
    config = {
        "database_url": ledger_url,
        "lost_response_rate": "0.05",
        "lost_bulk_rate": "0.03",
        "failure_rate": "0.01",
        "seed": "7",
        "max_bulk": "500",
    }
    providers.write_text(
        '[providers.wallet1]\nfactory = "sandbox"\n'
        + "".join(f'{key} = "{value}"\n' for key, value in config.items()),
        encoding="utf-8",
    )
    environment = {
        **os.environ,
        "DPI_DATABASE_URL": database_url,
        "DPI_VAR_DIR": str(tmp_path / "var"),
        "DPI_PAYMENTS_PROVIDERS": str(providers),
    }
    payable = items_count - len(range(0, items_count, MISSING_EVERY))
    killed_mid_flight = 0
    for kill in range(KILLS):
        before = (await _counts(engine)).get(ItemState.COMPLETED.value, 0)
        # A random moment while money moves: after a random number of further payments, plus a
        # random few milliseconds, so the kill lands anywhere in a chunk (before, during, after a call).
        target = before + generator.randrange(1, max(2, (payable - before) // (KILLS - kill + 1)))
        process = await asyncio.create_subprocess_exec(
            *_command(batch_file),
            env=environment,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
        )
        while process.returncode is None:
            if (await _counts(engine)).get(ItemState.COMPLETED.value, 0) >= target:
                await asyncio.sleep(timedelta(milliseconds=generator.randrange(0, 300)).total_seconds())
                break
            await asyncio.sleep(timedelta(milliseconds=50).total_seconds())
        if process.returncode is None:
            process.send_signal(signal.SIGKILL)
        await process.wait()
        done = (await _counts(engine)).get(ItemState.COMPLETED.value, 0)
        if 0 < done < payable:
            killed_mid_flight += 1
    final = await asyncio.create_subprocess_exec(
        *_command(batch_file),
        env=environment,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    _, errors = await asyncio.wait_for(final.communicate(), timeout=600)
    assert final.returncode == 0, errors.decode()[-2000:]
    assert killed_mid_flight == KILLS, "a kill did not land while items were being paid"

    refused = len(range(0, items_count, MISSING_EVERY))
    counts = await _counts(engine)
    # None lost: every line is one item, and every item reached an end.
    assert sum(counts.values()) == items_count
    assert counts == {ItemState.COMPLETED.value: items_count - refused, ItemState.INVALID.value: refused}

    sandbox = create_provider("wallet1", config)
    try:
        ledger = await sandbox.ledger_summary()
        statement = parse_sandbox_statement(await sandbox.statement())
        async with engine.connect() as connection:
            keys = {
                row.idempotency_key: row
                for row in await connection.execute(
                    select(
                        items.c.idempotency_key, items.c.beneficiary_id, items.c.amount_minor, items.c.state
                    )
                )
            }
            batch_ids = list((await connection.execute(select(batches.c.batch_id))).scalars())
        # Exactly once: one debit per completed item, of its amount, and no key sent again once booked.
        debits: dict[str, int] = {}
        for entry in statement:
            assert entry.idempotency_key is not None
            assert entry.idempotency_key not in debits, f"{entry.idempotency_key} was debited twice"
            debits[entry.idempotency_key] = entry.amount.minor_units
        completed = {key: row for key, row in keys.items() if row.state == ItemState.COMPLETED.value}
        assert set(debits) == set(completed)
        for key, row in completed.items():
            assert debits[key] == row.amount_minor == amounts[row.beneficiary_id]
        assert ledger == {"completed": items_count - refused, "resubmissions": 0}

        total = 0
        for batch_id in batch_ids:
            report = await reconcile(engine, batch_id, statement, sandbox)
            assert report.balanced, json.dumps(report.as_document())[:2000]
            total += report.recorded_paid.get("XAF", 0)
        assert total == sum(
            amount for beneficiary, amount in amounts.items() if int(beneficiary[1:]) % MISSING_EVERY
        )
    finally:
        await sandbox.aclose()
