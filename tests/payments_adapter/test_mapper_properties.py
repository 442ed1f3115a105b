"""Properties of the mapper under any sequence of links, updates and unlinks, by self or operator,
with time passing through a cycle's freeze window (on SQLite and PostgreSQL):

- an address never resolves to two beneficiaries unless an allowance made it shared;
- what the disbursement engine reads as of the cut-off is what resolved at the cut-off, and what
  resolves during the freeze, whatever changed meanwhile.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import uuid
from datetime import timedelta
from typing import Any, Final

from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from sqlalchemy import select

from dpi import db
from payments_adapter.mapper.models import LinkRow
from payments_adapter.mapper.receipts import StaticReceiptKeys
from payments_adapter.mapper.service import Actor, Channel, MapperService, wire_time
from tests.payments_adapter.test_mapper import MIGRATIONS, START, Clock, ConsentAuthority

_PEOPLE: Final = 4
_ADDRESSES: Final = 4
_SHARED: Final = 3  # the address index an allowance lets several people share
_CUT_OFF: Final = timedelta(hours=3)
_END: Final = timedelta(hours=8)
_epochs = itertools.count()

_step = st.one_of(
    st.tuples(
        st.sampled_from(["link", "update", "unlink"]),
        st.integers(0, _PEOPLE - 1),
        st.integers(0, _ADDRESSES - 1),
        st.booleans(),
    ),
    st.tuples(st.just("wait"), st.integers(1, 120)),
)


@hypothesis_settings(
    max_examples=10, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(steps=st.lists(_step, min_size=1, max_size=20))
def test_addresses_stay_unique_and_the_cut_off_view_never_moves(database_url: str, steps: list[Any]) -> None:
    asyncio.run(_replay(database_url, steps))


async def _replay(database_url: str, steps: list[Any]) -> None:
    engine = db.create_engine(database_url)
    try:
        await db.upgrade(engine, [MIGRATIONS])
        sessions = db.session_factory(engine)
        consent = ConsentAuthority()
        # Each example lives in its own month, so the freeze windows of earlier examples never apply.
        start = START + timedelta(days=40 * next(_epochs))
        clock = Clock(start)
        service = MapperService(sessions, StaticReceiptKeys(consent.jwks), clock=clock)
        tag = uuid.uuid4().hex[:8]
        people = [f"person-{index}-{tag}-pseudonym" for index in range(_PEOPLE)]
        addresses = [f"{tag}{index}@wallet{index % 2}" for index in range(_ADDRESSES)]
        await service.allow_shared({"fa": addresses[_SHARED], "reason": "household wallet"}, "officer")
        cut_off, end = start + _CUT_OFF, start + _END
        await service.register_freeze(
            {"cycle_id": f"cycle-{tag}", "cut_off": wire_time(cut_off), "ends_at": wire_time(end)}, "officer"
        )
        at_cut_off: dict[str, str] | None = None
        references = itertools.count()

        async def resolved() -> dict[str, str]:
            found = {}
            for person in people:
                answer = await service.resolve(
                    {
                        "reference_id": "r",
                        "timestamp": "2026-01-01T00:00:00Z",
                        "resolve_type": "BENEFICIARY_ID_TO_FA",
                        "beneficiary_id": person,
                    }
                )
                if answer["status"] == "succ":
                    found[person] = answer["fa"]
            return found

        for step in steps:
            if step[0] == "wait":
                target = clock.now + timedelta(minutes=step[1])
                if at_cut_off is None and target >= cut_off:
                    clock.now = cut_off
                    at_cut_off = await resolved()
                clock.now = target
            else:
                action, person_index, address_index, assisted = step
                person = people[person_index]
                actor = (
                    Actor("operator-7", Channel.ASSISTED, "operator-7")
                    if assisted
                    else Actor(person, Channel.SELF, person)
                )
                item: dict[str, Any] = {
                    "reference_id": f"ref-{next(references)}",
                    "timestamp": "2026-01-01T00:00:00Z",
                    "fa": addresses[address_index],
                    "beneficiary_id": person,
                }
                if action != "unlink":
                    item["consent_receipt"] = consent.receipt(person)
                answer = await getattr(service, action)(item, actor)
                assert answer["status"] in {"succ", "rjct"}
            await _check_unique(sessions, addresses, addresses[_SHARED], clock.now)
            if at_cut_off is not None and clock.now < end:
                assert await resolved() == at_cut_off
        if at_cut_off is not None:
            view = await service.financial_addresses(people, as_of=cut_off)
            assert {person: str(address) for person, address in view.items()} == at_cut_off
        assert {
            person: str(fa)
            for person, fa in (await service.financial_addresses(people, as_of=clock.now)).items()
        } == (await resolved())
    finally:
        with contextlib.suppress(Exception):
            await engine.dispose()


async def _check_unique(sessions: Any, addresses: list[str], shared: str, now: Any) -> None:
    async with sessions() as session:
        for address in addresses:
            holders = set(
                await session.scalars(
                    select(LinkRow.beneficiary_id).where(
                        LinkRow.fa == address,
                        LinkRow.effective_from <= now,
                        (LinkRow.effective_until.is_(None)) | (LinkRow.effective_until > now),
                    )
                )
            )
            if address != shared:
                assert len(holders) <= 1, (address, holders)
            opened = list(
                await session.scalars(
                    select(LinkRow.beneficiary_id).where(
                        LinkRow.fa == address, LinkRow.effective_until.is_(None)
                    )
                )
            )
            if address != shared:
                assert len(opened) <= 1
