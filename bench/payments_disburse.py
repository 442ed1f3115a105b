"""Disbursement end to end through the sandbox provider: upload, pre-flight, submit, settle.

Prints a readable line, then one JSON object: ``value`` is items per second end to end (the batch file
parsed, stored with its idempotency keys, pre-flighted, submitted in bulk, every lost answer settled by
status query); ``baseline`` is the issue's target, 2,000 items/s.

    .venv/bin/python bench/payments_disburse.py                                  # 10,000 items, SQLite
    .venv/bin/python bench/payments_disburse.py --postgres postgresql+asyncpg://postgres@127.0.0.1:5432/postgres
    .venv/bin/python bench/payments_disburse.py --postgres URL --count 1000000
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
from sqlalchemy.engine import make_url

from dpi import db
from payments_adapter.block import MIGRATIONS
from payments_adapter.engine import Disburser
from payments_adapter.sandbox import create_provider
from payments_adapter.service import DisbursementService, parse_batch_file

TARGET = 2000


async def _admin(url: str, command: str) -> None:
    parsed = make_url(url)
    connection = await asyncpg.connect(
        host=parsed.host, port=parsed.port or 5432, user=parsed.username, database=parsed.database
    )
    try:
        await connection.execute(command)
    finally:
        await connection.close()


async def main(count: int, postgres: str | None, lost: str, chunk: int) -> dict[str, object]:
    directory = Path(tempfile.mkdtemp(prefix="payments-bench-"))
    schemas: list[str] = []
    if postgres:
        engine_schema, ledger_schema = (
            f"bench_payments_{uuid.uuid4().hex[:8]}_{part}" for part in ("e", "l")
        )
        schemas = [engine_schema, ledger_schema]
        await _admin(postgres, f'CREATE SCHEMA "{engine_schema}"')
        engine_url = (
            make_url(postgres).update_query_dict({"search_path": engine_schema}).render_as_string(False)
        )
        ledger_url = (
            make_url(postgres).update_query_dict({"search_path": ledger_schema}).render_as_string(False)
        )
    else:
        engine_url = f"sqlite+aiosqlite:///{directory / 'engine.sqlite3'}"
        ledger_url = f"sqlite+aiosqlite:///{directory / 'ledger.sqlite3'}"
    rows = ["beneficiary_id,financial_address,amount,currency,entitlement,payee_name"]
    rows += [f"B{n:08d},07{n:08d}@wallet1,{1000 + n % 5000},XAF,stipend," for n in range(count)]
    content = ("\n".join(rows) + "\n").encode()
    engine = db.create_engine(engine_url)
    provider = create_provider(
        "wallet1", {"database_url": ledger_url, "lost_response_rate": lost, "max_bulk": str(chunk)}
    )
    try:
        await db.upgrade(engine, [MIGRATIONS])
        await provider.status("WARM-UP-KEY-0")
        service = DisbursementService(engine)
        await service.create_programme("stipend", "Stipend")
        await service.create_cycle("stipend", "2026-11", datetime(2026, 11, 1, tzinfo=UTC))
        started, cpu_started = time.perf_counter(), time.process_time()
        lines, _ = parse_batch_file(content, "csv")
        receipt = await service.create_batch("stipend", "2026-11", "wallet1", lines, actor="bench")
        assert receipt.batch_id is not None
        uploaded = time.perf_counter()
        await service.preflight(receipt.batch_id, provider)
        checked = time.perf_counter()
        await Disburser(engine, provider, chunk_size=chunk).run(receipt.batch_id)
        finished, cpu_finished = time.perf_counter(), time.process_time()
        status = await service.status(receipt.batch_id)
        assert status.counts == {"completed": count}, status.counts
    finally:
        await provider.aclose()
        await engine.dispose()
        for schema in schemas:
            await _admin(postgres or "", f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    rate = count / (finished - started)
    print(
        f"{count} items on {'PostgreSQL' if postgres else 'SQLite'}: {rate:,.0f} items/s end to end "
        f"(upload {uploaded - started:.1f} s, pre-flight {checked - uploaded:.1f} s, "
        f"submit and settle {finished - checked:.1f} s; lost answers {lost}); "
        f"this process used {cpu_finished - cpu_started:.1f} s of CPU"
    )
    return {
        "name": "payments-disburse",
        "value": round(rate, 1),
        "unit": "items/s",
        "baseline": TARGET,
        "ratio": round(rate / TARGET, 3),
        "count": count,
        "cpu_seconds": round(cpu_finished - cpu_started, 1),
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=10_000)
    parser.add_argument("--postgres", help="a PostgreSQL URL (two schemas are created and dropped)")
    parser.add_argument("--lost-response-rate", default="0.01")
    parser.add_argument("--chunk", type=int, default=2000)
    arguments = parser.parse_args()
    result = asyncio.run(
        main(arguments.count, arguments.postgres, arguments.lost_response_rate, arguments.chunk)
    )
    print(json.dumps(result))
