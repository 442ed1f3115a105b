"""The payments block's chapter of the demo story (DESIGN section 8): the social protection agency pays the
youth employment stipend to the young job seekers of the demo registry, each into the sandbox mobile-money
wallet they chose.

- The agency reads the job-seeker registry under the purpose ``social-benefit-eligibility`` (each read is
  in the registry's read log) and keeps those aged 18 to 30 at the cycle's cut-off.
- Each of them approves the agency's ``spa-stipend-payment-account`` agreement (published by the consent
  block's chapter) at a service centre, and the operator links the wallet they name through the mapper,
  with the consent receipt. The beneficiary id is the person's pseudonym for the agency's sector, derived
  from the UIN in the job-seeker record by the identity block's key, as in a deployment.
- The cycle's batch names beneficiaries only: every address comes from the mapper as of the cut-off. The
  batch is checked before any money moves and paid through the ``sandbox`` provider exactly once.

Loading is idempotent: a second run finds the links, the entitlements and the payments already made, and
only reports them.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any, Final

from sqlalchemy import select

from consent.lifecycle import Action, ActorRole
from consent.lifecycle import Channel as ConsentChannel
from consent.service import Actor as ConsentActor
from consent.service import ConsentService
from dpi.blocks import BlockContext
from identity.block import key_paths
from identity.pseudonyms import load_or_create_key, sector_pseudonym
from payments_adapter.block import load_provider
from payments_adapter.contract import Money
from payments_adapter.engine import Disburser
from payments_adapter.mapper.receipts import KeyStoreReceiptKeys
from payments_adapter.mapper.service import Actor, Channel, MapperService
from payments_adapter.models import batches
from payments_adapter.service import BatchLine, DisbursementError, DisbursementService
from registry.definition import load_definitions
from registry.keyfile import subject_key
from registry.models import RecordRow
from registry.service import Reader, RegistryService

__all__ = ["AGENCY", "CYCLE", "PROGRAMME", "STIPEND", "load"]

AGENCY: Final = "DPI/GOV/SPA/benefits"
PROGRAMME: Final = "youth-employment-stipend"
CYCLE: Final = "2026-12"
CUTOFF: Final = datetime(2026, 11, 20, tzinfo=UTC)
STIPEND: Final = ("25000", "XOF")
PROVIDER: Final = "sandbox"
WALLET: Final = "wallet1"
AGREEMENT: Final = "spa-stipend-payment-account"
OPERATOR: Final = "operator-centre-03"
_YOUTH: Final = (18, 30)


def _age(born: date, on: date) -> int:
    return on.year - born.year - ((on.month, on.day) < (born.month, born.day))


async def _young_jobseekers(context: BlockContext) -> list[tuple[str, str]]:
    """(sector pseudonym, name) of every active job seeker aged 18 to 30 at the cut-off."""
    definitions = load_definitions()
    if "jobseekers" not in definitions:
        return []
    registry = RegistryService(context.sessions, definitions, subject_key=subject_key(context.settings))
    async with context.sessions() as session:
        record_ids = list(
            await session.scalars(
                select(RecordRow.record_id)
                .where(RecordRow.registry_code == "jobseekers", RecordRow.status == "active")
                .order_by(RecordRow.record_id)
            )
        )
    reader = Reader(actor=AGENCY, purpose="social-benefit-eligibility")
    records = await registry.read_many("jobseekers", record_ids, reader=reader)
    pseudonym_key = load_or_create_key(key_paths(context.settings)[0])
    young: list[tuple[str, str]] = []
    for document in records:
        record: dict[str, Any] = document["document"]
        born = date.fromisoformat(record["date_of_birth"])
        if _YOUTH[0] <= _age(born, CUTOFF.date()) <= _YOUTH[1]:
            name = record["names"][0]
            beneficiary_id = sector_pseudonym(pseudonym_key, record["uin"], AGENCY)
            young.append((beneficiary_id, f"{name['given']} {name['family']}"))
    return sorted(young)


async def _consent_receipt(consent: ConsentService, beneficiary_id: str) -> str:
    """The person's approval of the payment-account agreement at a service centre, and its receipt."""
    record = await consent.request(
        {"agreement_id": AGREEMENT, "subject": beneficiary_id},
        ConsentActor(ActorRole.CONTROLLER, AGENCY),
    )
    if record["state"] == "ACTIVE":
        receipts = await consent.receipts(str(record["consent_id"]))
        return receipts[-1]
    agreement = await consent.agreement(AGREEMENT)
    result = await consent.act(
        str(record["consent_id"]),
        Action.APPROVE,
        ConsentActor(ActorRole.SUBJECT, beneficiary_id),
        channel=ConsentChannel.ASSISTED,
        notice={"language": "fr", "hash": agreement["notices"]["fr"]["hash"]},
    )
    if result.receipt is None:  # pragma: no cover - an approval always issues a receipt
        raise RuntimeError("the consent block issued no receipt for an approval")
    return result.receipt


def _wallet(number: int) -> str:
    return f"07{7_000_000 + number:08d}@{WALLET}"


async def _link_wallets(context: BlockContext, young: Sequence[tuple[str, str]]) -> tuple[MapperService, int]:
    settings = context.settings
    consent = ConsentService(
        sessions=context.sessions,
        keys=context.keys,
        issuer=settings.member_id if settings.member_id is not None else settings.public_url,
        clock=lambda: datetime.now(UTC),
    )
    mapper = MapperService(context.sessions, KeyStoreReceiptKeys(context.keys))
    linked = 0
    for number, (beneficiary_id, _name) in enumerate(young, start=1):
        addresses = await mapper.financial_addresses([beneficiary_id], as_of=datetime.now(UTC))
        if beneficiary_id in addresses:
            continue
        item = {
            "reference_id": f"demo-link-{beneficiary_id[:24]}",
            "timestamp": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
            "beneficiary_id": beneficiary_id,
            "fa": _wallet(number),
            "consent_receipt": await _consent_receipt(consent, beneficiary_id),
        }
        answer = await mapper.link(item, Actor(OPERATOR, Channel.ASSISTED, OPERATOR))
        if answer.get("status") != "succ":
            raise RuntimeError(f"demo link of {beneficiary_id} refused: {answer.get('status_reason_code')}")
        linked += 1
    return mapper, linked


async def load(context: BlockContext) -> list[str]:
    """Link the young job seekers' wallets, then pay the cycle's stipend once; lines to print."""
    young = await _young_jobseekers(context)
    if not young:
        return ["payments: no job seekers in the demo registry, no stipend to pay"]
    mapper, linked = await _link_wallets(context, young)
    service = DisbursementService(context.engine)
    try:
        await service.create_programme(PROGRAMME, "Youth employment stipend")
    except DisbursementError as error:
        if error.reason_code != "payments.programme.conflict":
            raise
    # The cut-off lies before the links were made: the mapper's view as of the cut-off would be empty,
    # so the demo's cycle closes a moment after the links (a real cycle's cut-off follows enrolment).
    cutoff = datetime.now(UTC) + timedelta(seconds=1)
    await service.create_cycle(PROGRAMME, CYCLE, cutoff, keep_existing=True)
    amount, currency = STIPEND
    stipend = Money.parse(amount, currency)
    lines = [
        BatchLine(line=number, beneficiary_id=person, entitlement="stipend", amount=stipend, payee_name=name)
        for number, (person, name) in enumerate(young, start=1)
    ]
    receipt = await service.create_batch(PROGRAMME, CYCLE, PROVIDER, lines, actor=AGENCY)
    provider = load_provider(PROVIDER, context.settings)
    try:
        for batch_id in await service.open_batches(PROGRAMME, CYCLE, PROVIDER):
            await service.preflight(batch_id, provider, mapper, actor=f"{AGENCY}:preflight")
            await Disburser(context.engine, provider, actor=AGENCY).run(batch_id)
    finally:
        await provider.aclose()
    async with context.engine.connect() as connection:
        batch_ids = list(
            await connection.scalars(
                select(batches.c.batch_id)
                .where(batches.c.programme_id == PROGRAMME, batches.c.cycle_id == CYCLE)
                .order_by(batches.c.created_at)
            )
        )
    summary = []
    for batch_id in batch_ids:
        status = await service.status(batch_id)
        counts = ", ".join(f"{count} {state}" for state, count in sorted(status.counts.items()))
        summary.append(f"payments: batch {batch_id}: {counts}")
    return [
        f"payments: {len(young)} young job seekers, {linked} wallets linked now through the mapper "
        f"with their consent receipts; {receipt.accepted} new entitlements of {amount} {currency}",
        *summary,
    ]
