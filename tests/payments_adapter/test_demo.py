"""The payments block's chapter of the demo: the youth employment stipend paid once to the young job seekers
of the demo registry, each into the wallet linked through the mapper with a consent receipt."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import func, select

from consent.block import block as consent_block
from consent.demo import load as load_consent_demo
from dpi import db
from dpi.app import migrate
from dpi.blocks import BlockContext
from dpi.keys import KeyStore
from dpi.settings import Settings
from payments_adapter import demo
from payments_adapter.block import block as payments_block
from payments_adapter.mapper.models import LinkRow
from payments_adapter.mapper.receipts import KeyStoreReceiptKeys
from payments_adapter.mapper.service import MapperService
from payments_adapter.models import items
from payments_adapter.sandbox import create_provider
from registry.block import block as registry_block
from registry.models import ReadRow


async def test_the_stipend_is_paid_once_into_each_chosen_wallet(settings: Settings) -> None:
    settings.var_dir.mkdir(parents=True, exist_ok=True)
    await migrate(settings, [consent_block, registry_block, payments_block])
    engine = db.create_engine(settings.database)
    keys = KeyStore(settings.key_directory)
    keys.ensure_active()
    context = BlockContext(settings, engine, db.session_factory(engine), keys)
    try:
        await load_consent_demo(context)
        assert registry_block.demo is not None
        await registry_block.demo(context)

        first = await demo.load(context)
        again = await demo.load(context)

        async with engine.connect() as connection:
            counted = await connection.execute(select(items.c.state, func.count()).group_by(items.c.state))
            states: dict[str, int] = {state: count for state, count in counted.all()}
            beneficiaries = list(await connection.scalars(select(items.c.beneficiary_id)))
        async with context.sessions() as session:
            links = (await session.scalars(select(LinkRow))).all()
            agency_reads = await session.scalar(
                select(func.count()).select_from(ReadRow).where(ReadRow.reader == demo.AGENCY)
            )
        mapper = MapperService(context.sessions, KeyStoreReceiptKeys(context.keys))
        chosen = await mapper.financial_addresses(beneficiaries, as_of=datetime.now(UTC))
    finally:
        await engine.dispose()

    paid = len(beneficiaries)
    assert paid > 0
    assert states == {"completed": paid}
    assert f"{paid} new entitlements of 25000 XOF" in first[0]
    assert "0 new entitlements" in again[0]
    assert f"{paid} completed" in again[-1]
    # Every payee is a pseudonym for the agency's sector, linked with a receipt by an operator.
    assert all(len(beneficiary) == 43 for beneficiary in beneficiaries)
    assert sorted(chosen) == sorted(beneficiaries)
    assert links
    assert all(link.consent_receipt and link.receipt_id for link in links)
    # The agency's reading of the job-seeker registry is in the registry's read log.
    assert agency_reads
    assert agency_reads >= paid

    sandbox = create_provider("sandbox", {"database_url": _ledger(settings.var_dir)})
    try:
        for address_owner in beneficiaries[:3]:
            status = await sandbox.status(await _key_of(settings, address_owner))
            assert status.state.value == "completed"
    finally:
        await sandbox.aclose()


def _ledger(var_dir: Path) -> str:
    return f"sqlite+aiosqlite:///{var_dir / 'payments-sandbox.sqlite3'}"


async def _key_of(settings: Settings, beneficiary_id: str) -> str:
    engine = db.create_engine(settings.database)
    try:
        async with engine.connect() as connection:
            key = await connection.scalar(
                select(items.c.idempotency_key).where(items.c.beneficiary_id == beneficiary_id)
            )
    finally:
        await engine.dispose()
    assert isinstance(key, str)
    return key
