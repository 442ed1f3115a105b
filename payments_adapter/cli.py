"""``dpi payments``: disburse a batch file, follow a batch, reconcile it against the provider.

Providers are built from their ``dpi.payment_providers`` entry points with the configuration of the
providers file (see :func:`payments_adapter.block.provider_configs`): ``--providers FILE``, else
``DPI_PAYMENTS_PROVIDERS``, else ``<var_dir>/payments-providers.toml``, else a sandbox in ``var_dir``.
Every failure a user can cause ends with one line on standard error and exit code 2.
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections import Counter
from collections.abc import Coroutine
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, NoReturn, TypeVar

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from sqlalchemy.exc import SQLAlchemyError

from dpi import db
from dpi.keys import KeyStore
from dpi.settings import Settings, SettingsError
from payments_adapter.contract import PaymentProvider, ProviderError
from payments_adapter.engine import ACTIVE_STATES, Disburser, RetryPolicy
from payments_adapter.mapper.receipts import KeyStoreReceiptKeys
from payments_adapter.mapper.service import MapperService
from payments_adapter.models import ItemState
from payments_adapter.service import BatchStatus, DisbursementError, DisbursementService, parse_batch_file

__all__ = ["payments_group"]

T = TypeVar("T")
_console = Console(stderr=True)


def _fail(message: str) -> NoReturn:
    click.echo(f"dpi payments: {message}", err=True)
    sys.exit(2)


def _run(work: Coroutine[Any, Any, T]) -> T:
    # Imported here: the block module builds the block with this module's group.
    from payments_adapter.block import ProviderConfigError
    from payments_adapter.sandbox import SandboxConfigError

    try:
        return asyncio.run(work)
    except (SettingsError, ProviderConfigError, SandboxConfigError) as error:
        _fail(str(error))
    except DisbursementError as error:
        _fail(f"{error.reason_code}: {error}")
    except ProviderError as error:
        _fail(f"{error.reason_code}: {error}")
    except (SQLAlchemyError, OSError) as error:
        _fail(f"database: {str(error).splitlines()[0]}")


def _provider(settings: Settings, name: str, providers_file: Path | None) -> PaymentProvider:
    from payments_adapter.block import load_provider

    return load_provider(name, settings, providers_file)


def _summary(status: BatchStatus) -> Table:
    table = Table(
        title=f"batch {status.batch_id} ({status.programme_id}/{status.cycle_id}, {status.provider})"
    )
    table.add_column("state")
    table.add_column("items", justify="right")
    currencies = sorted(status.sums)
    for currency in currencies:
        table.add_column(currency, justify="right")
    for state in ItemState:
        count = status.counts.get(state.value, 0)
        if count:
            sums = [
                status.sums[c][state.value].wire() if state.value in status.sums[c] else ""
                for c in currencies
            ]
            table.add_row(state.value, str(count), *sums)
    table.add_row("total", str(status.total), *["" for _ in currencies])
    return table


def _status_document(status: BatchStatus) -> dict[str, Any]:
    return {
        "batch_id": status.batch_id,
        "counts": dict(status.counts),
        "sums": {c: {s: m.wire() for s, m in by_state.items()} for c, by_state in status.sums.items()},
    }


@click.group()
def payments_group() -> None:
    """Disbursements through payment providers: upload, pre-flight, send, follow, reconcile."""


_providers_option = click.option(
    "--providers",
    "providers_file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="TOML file of payment providers (default: DPI_PAYMENTS_PROVIDERS, then var_dir).",
)


@payments_group.command("disburse")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--programme", required=True, help="Programme code (created if missing).")
@click.option("--cycle", required=True, help="Cycle code (created if missing, cut-off --cutoff).")
@click.option("--provider", "provider_name", required=True, help="A configured payment provider.")
@_providers_option
@click.option("--format", "file_format", type=click.Choice(["csv", "json"]), help="Default: from the suffix.")
@click.option("--cutoff", type=click.DateTime(), help="Cut-off of a new cycle (UTC); default now.")
@click.option("--chunk-size", type=click.IntRange(1, 50_000), default=1000, show_default=True)
@click.option("--lease-seconds", type=click.IntRange(1, 3600), default=60, show_default=True)
@click.option("--max-attempts", type=click.IntRange(1, 100), default=5, show_default=True)
@click.option("--retry-base-ms", type=click.IntRange(1, 3_600_000), default=1000, show_default=True)
@click.option("--actor", default="cli", show_default=True, help="Who disburses (recorded on every change).")
@click.option(
    "--problems", type=click.Path(dir_okay=False, path_type=Path), help="Write refused lines (JSON lines)."
)
@click.option("--json", "as_json", is_flag=True, help="Print the final summary as JSON.")
def disburse(
    file: Path,
    programme: str,
    cycle: str,
    provider_name: str,
    providers_file: Path | None,
    file_format: str | None,
    cutoff: datetime | None,
    chunk_size: int,
    lease_seconds: int,
    max_attempts: int,
    retry_base_ms: int,
    actor: str,
    problems: Path | None,
    as_json: bool,
) -> None:
    """Pay the entitlements of FILE (CSV or JSON) exactly once, then print counts and sums per state.

    Running it again (after a crash, or with a corrected file) stores only new entitlements and
    finishes every unfinished batch of the cycle with this provider; nothing is ever paid twice.
    """
    fmt = file_format or ("json" if file.suffix.lower() == ".json" else "csv")
    content = file.read_bytes()

    async def work() -> list[BatchStatus]:
        from payments_adapter.block import MIGRATIONS

        settings = Settings.from_environment()
        provider = _provider(settings, provider_name, providers_file)
        engine = db.create_engine(settings.database)
        try:
            await db.upgrade(engine, [MIGRATIONS])
            service = DisbursementService(engine)
            # Lines without an address are paid where the beneficiary chose, as of the cycle's cut-off.
            accounts = MapperService(
                db.session_factory(engine), KeyStoreReceiptKeys(KeyStore(settings.key_directory))
            )
            try:
                await service.create_programme(programme, programme)
            except DisbursementError as error:
                if error.reason_code != "payments.programme.conflict":
                    raise
            await service.create_cycle(
                programme,
                cycle,
                (cutoff or datetime.now(UTC)).replace(tzinfo=UTC),
                keep_existing=cutoff is None,
            )
            lines, refused = parse_batch_file(content, fmt)
            receipt = await service.create_batch(
                programme, cycle, provider_name, lines, actor=actor, problems=refused
            )
            reasons = Counter(problem.reason_code for problem in receipt.problems)
            _console.print(f"{receipt.accepted} new items; {len(receipt.problems)} lines not stored")
            for reason, count in sorted(reasons.items()):
                _console.print(f"  {count:>8}  {reason}")
            if problems is not None:
                with problems.open("w", encoding="utf-8") as out:
                    for problem in receipt.problems:
                        out.write(json.dumps(problem.as_document()) + "\n")
            batch_ids = await service.open_batches(programme, cycle, provider_name)
            for batch_id in batch_ids:
                report = await service.preflight(batch_id, provider, accounts, actor=f"{actor}:preflight")
                if report.invalid or report.unchecked:
                    _console.print(
                        f"pre-flight {batch_id}: {report.ready} ready, {report.invalid} refused, "
                        f"{report.unchecked} not checked"
                    )
            disburser = Disburser(
                engine,
                provider,
                actor=actor,
                chunk_size=chunk_size,
                lease=timedelta(seconds=lease_seconds),
                retry=RetryPolicy(max_attempts=max_attempts, base=timedelta(milliseconds=retry_base_ms)),
            )
            statuses = [await service.status(batch_id) for batch_id in batch_ids]
            remaining = sum(
                status.counts.get(state.value, 0) for status in statuses for state in ACTIVE_STATES
            )
            with Progress(
                TextColumn("disbursing"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                console=_console,
                transient=as_json,
            ) as progress:
                task = progress.add_task("disbursing", total=remaining)
                for batch_id in batch_ids:
                    await disburser.run(batch_id, progress=lambda count: progress.advance(task, count))
            return [await service.status(batch_id) for batch_id in batch_ids]
        finally:
            await provider.aclose()
            await engine.dispose()

    statuses = _run(work())
    if as_json:
        click.echo(json.dumps([_status_document(status) for status in statuses]))
    else:
        for status in statuses:
            Console().print(_summary(status))


@payments_group.command("status")
@click.argument("batch_id")
@click.option("--json", "as_json", is_flag=True)
def status_command(batch_id: str, as_json: bool) -> None:
    """Counts per state and sums per currency of one batch."""

    async def work() -> BatchStatus:
        settings = Settings.from_environment()
        engine = db.create_engine(settings.database)
        try:
            return await DisbursementService(engine).status(batch_id)
        finally:
            await engine.dispose()

    status = _run(work())
    if as_json:
        click.echo(json.dumps(_status_document(status)))
    else:
        Console().print(_summary(status))


@payments_group.command("reconcile")
@click.argument("batch_id")
@click.option("--provider", "provider_name", required=True, help="The provider that paid the batch.")
@_providers_option
@click.option(
    "--statement",
    "statement_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="The provider's statement (default: fetched from a provider that can give one).",
)
@click.option("--statement-format", help="Format of --statement (default: the provider's first).")
@click.option("--json", "as_json", is_flag=True)
def reconcile_command(
    batch_id: str,
    provider_name: str,
    providers_file: Path | None,
    statement_file: Path | None,
    statement_format: str | None,
    as_json: bool,
) -> None:
    """Match the batch's items, the provider's status and its statement; exit 1 when not balanced."""
    from payments_adapter.reconciliation import ReconciliationReport, reconcile

    content = statement_file.read_bytes() if statement_file is not None else None

    async def work() -> ReconciliationReport:
        settings = Settings.from_environment()
        provider = _provider(settings, provider_name, providers_file)
        engine = db.create_engine(settings.database)
        try:
            formats = provider.capabilities.statement_formats
            chosen = statement_format or (formats[0] if formats else "")
            raw = content
            if raw is None:
                fetch = getattr(provider, "statement", None)
                if fetch is None:
                    raise DisbursementError(
                        "payments.operation.not_supported", "give --statement: this provider cannot send one"
                    )
                raw = await fetch()
            entries = provider.parse_statement(raw, chosen)
            return await reconcile(engine, batch_id, entries, provider)
        finally:
            await provider.aclose()
            await engine.dispose()

    report = _run(work())
    document = report.as_document()
    if as_json:
        click.echo(json.dumps(document))
    else:
        for name in ("balanced", "matched"):
            click.echo(f"{name:<24}{document[name]}")
        for name in (
            "missing_from_statement",
            "not_instructed",
            "amount_mismatches",
            "duplicates",
            "reversals",
            "returns",
            "state_mismatches",
        ):
            click.echo(f"{name:<24}{len(document[name])}")
        for name, values in document["sums"].items():
            click.echo(f"{name:<24}{', '.join(f'{amount} {c}' for c, amount in values.items())}")
    if not report.balanced:
        sys.exit(1)


@payments_group.command("item")
@click.argument("idempotency_key")
def item_command(idempotency_key: str) -> None:
    """One item (JSON): its state, reason code and every transition."""

    async def work() -> dict[str, Any]:
        settings = Settings.from_environment()
        engine = db.create_engine(settings.database)
        try:
            return dict(await DisbursementService(engine).item(idempotency_key))
        finally:
            await engine.dispose()

    click.echo(json.dumps(_run(work()), default=str))


@payments_group.command("review")
@click.argument("idempotency_key")
@click.option("--provider", "provider_name", required=True)
@_providers_option
@click.option("--retry", is_flag=True, help="Send it again if the provider confirms it never arrived.")
@click.option("--actor", default="cli", show_default=True)
def review_command(
    idempotency_key: str, provider_name: str, providers_file: Path | None, retry: bool, actor: str
) -> None:
    """Settle an item in manual review from the provider's answer."""

    async def work() -> ItemState:
        settings = Settings.from_environment()
        provider = _provider(settings, provider_name, providers_file)
        engine = db.create_engine(settings.database)
        try:
            return await DisbursementService(engine).settle_review(
                provider, idempotency_key, actor=actor, retry=retry
            )
        finally:
            await provider.aclose()
            await engine.dispose()

    click.echo(_run(work()).value)


@payments_group.command("reverse")
@click.argument("idempotency_key")
@click.option("--provider", "provider_name", required=True)
@_providers_option
@click.option("--reason", required=True, help="Why the payment is taken back (kept with the provider).")
@click.option("--actor", default="cli", show_default=True)
def reverse_command(
    idempotency_key: str, provider_name: str, providers_file: Path | None, reason: str, actor: str
) -> None:
    """Take back a completed payment through the provider."""

    async def work() -> ItemState:
        settings = Settings.from_environment()
        provider = _provider(settings, provider_name, providers_file)
        engine = db.create_engine(settings.database)
        try:
            return await DisbursementService(engine).reverse(provider, idempotency_key, reason, actor=actor)
        finally:
            await provider.aclose()
            await engine.dispose()

    click.echo(_run(work()).value)
