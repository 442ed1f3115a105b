"""The mapper service without HTTP, on SQLite and PostgreSQL: concurrent attempts on one address or one
reference id, and consent keys read over HTTP (an outage refuses for now, and is not remembered)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from dpi import db
from payments_adapter.mapper.models import LinkEventRow, LinkRow
from payments_adapter.mapper.receipts import ConsentRefused, HttpReceiptKeys, StaticReceiptKeys
from payments_adapter.mapper.service import Actor, Channel, MapperService
from tests.payments_adapter.test_mapper import MIGRATIONS, Clock, ConsentAuthority

OPERATOR = Actor("operator-centre-17-ahmed", Channel.ASSISTED, "operator-centre-17-ahmed")


@pytest.fixture
async def sessions(database_url: str) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    engine = db.create_engine(database_url)
    await db.upgrade(engine, [MIGRATIONS])
    try:
        yield db.session_factory(engine)
    finally:
        await engine.dispose()


def _item(consent: ConsentAuthority, reference_id: str, beneficiary_id: str, fa: str) -> dict[str, Any]:
    return {
        "reference_id": reference_id,
        "timestamp": "2026-03-02T09:00:00Z",
        "beneficiary_id": beneficiary_id,
        "fa": fa,
        "consent_receipt": consent.receipt(beneficiary_id),
    }


async def test_concurrent_links_never_give_one_address_to_two_people(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    consent = ConsentAuthority()
    service = MapperService(sessions, StaticReceiptKeys(consent.jwks), clock=Clock())
    people = [f"person-{index}-concurrent-pseudonym" for index in range(6)]
    answers = await asyncio.gather(
        *(
            service.link(_item(consent, f"ref-{person}", person, "0700123456@wallet1"), OPERATOR)
            for person in people
        )
    )
    winners = [answer for answer in answers if answer["status"] == "succ"]
    assert len(winners) == 1
    assert {answer["status_reason_code"] for answer in answers if answer["status"] == "rjct"} == {
        "payments.mapper.address.taken"
    }
    async with sessions() as session:
        holders = list(
            await session.scalars(select(LinkRow.beneficiary_id).where(LinkRow.fa == "0700123456@wallet1"))
        )
    assert len(holders) == 1

    # The same request sent several times at once is applied once.
    item = _item(consent, "ref-resend", "person-resend-concurrent", "0700999999@wallet1")
    resent = await asyncio.gather(*(service.link(item, OPERATOR) for _ in range(4)))
    assert all(answer == resent[0] for answer in resent)
    assert resent[0]["status"] == "succ"
    async with sessions() as session:
        events = await session.scalar(
            select(func.count()).select_from(LinkEventRow).where(LinkEventRow.reference_id == "ref-resend")
        )
    assert events == 1


async def test_consent_keys_over_http_an_outage_is_refused_for_now_and_not_remembered(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    consent = ConsentAuthority()
    available = {"now": False}
    calls: list[httpx.Request] = []

    def consent_block(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        if not available["now"]:
            return httpx.Response(503, json={"reason_code": "service.not_ready"})
        return httpx.Response(200, json=consent.jwks)

    client = httpx.AsyncClient(transport=httpx.MockTransport(consent_block), base_url="https://consent.test")
    keys = HttpReceiptKeys("https://consent.test/consent/.well-known/jwks.json", client=client)
    service = MapperService(sessions, keys, clock=Clock())
    item = _item(consent, "ref-1", "amina-pseudonym-7Q2XK9", "0700123456@wallet1")
    actor = Actor("amina-pseudonym-7Q2XK9", Channel.SELF, "amina-pseudonym-7Q2XK9")

    refused = await service.link(item, actor)
    assert (refused["status"], refused["status_reason_code"]) == (
        "rjct",
        "payments.mapper.consent.unverifiable",
    )
    available["now"] = True
    linked = await service.link(item, actor)
    assert linked["status"] == "succ"
    assert await service.link(item, actor) == linked
    assert len(calls) == 2, "the key set is kept once read"
    assert calls[-1].url.path == "/consent/.well-known/jwks.json"
    await client.aclose()


@pytest.mark.parametrize(
    "answer",
    [
        httpx.Response(200, content=b"not json"),
        httpx.Response(200, json={"keys": "none"}),
        httpx.Response(302, headers={"Location": "https://elsewhere.test/jwks.json"}),
        httpx.Response(200, content=b'{"keys": []' + b" " * 70000 + b"}"),
    ],
)
async def test_consent_keys_that_are_not_a_key_set_refuse_every_link(answer: httpx.Response) -> None:
    client = httpx.AsyncClient(transport=httpx.MockTransport(lambda _request: answer))
    keys = HttpReceiptKeys("https://consent.test/consent/.well-known/jwks.json", client=client)
    with pytest.raises(ConsentRefused) as refused:
        await keys.jwks()
    assert refused.value.reason_code == "payments.mapper.consent.unverifiable"
    await client.aclose()
