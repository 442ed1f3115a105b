"""The ID-to-account mapper over HTTP (G2P Connect link, update, unlink, resolve), on SQLite and
PostgreSQL: the person's choice with their consent receipt, one address per beneficiary unless shared
by an allowance, history, freeze windows, duplicate reference ids and per-item answers."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from litestar.testing import AsyncTestClient
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from consent.receipts import sign_receipt
from dpi import db
from dpi.app import create_app, migrate
from dpi.blocks import Block
from dpi.keys import SigningKey
from dpi.openapi import undocumented_bodies
from dpi.settings import Settings
from dpi.signing import verify_detached
from payments_adapter.contract import FinancialAddress
from payments_adapter.mapper.api import (
    SCOPE_ADMIN,
    SCOPE_OPERATOR,
    SCOPE_RESOLVE,
    SCOPE_SELF,
    capabilities,
    routes,
)
from payments_adapter.mapper.receipts import StaticReceiptKeys
from payments_adapter.mapper.service import MapperService
from tests.consent.conftest import TokenIssuer

MIGRATIONS = Path(__file__).resolve().parents[2] / "payments_adapter" / "migrations"
AMINA = "amina-pseudonym-7Q2XK9"
YOUSSEF = "youssef-pseudonym-4B8ZP1"
FATIMA = "fatima-pseudonym-3H7LM2"
OPERATOR = "operator-centre-17-ahmed"
AGENCY = "DPI/GOV/SPA/benefits"
START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


@dataclass
class Clock:
    now: datetime = START

    def __call__(self) -> datetime:
        return self.now


@dataclass
class ConsentAuthority:
    """Issues consent receipts as the consent block does (its signer, its document)."""

    key: SigningKey = field(default_factory=lambda: SigningKey.generate("EdDSA"))

    @property
    def jwks(self) -> dict[str, Any]:
        return {"keys": [self.key.public_jwk()]}

    def receipt(
        self,
        subject: str,
        *,
        purpose: str = "benefit-payment",
        action: str = "approve",
        state: str = "ACTIVE",
        valid_until: datetime | None = None,
        key: SigningKey | None = None,
        channel: str = "web",
    ) -> str:
        document: dict[str, Any] = {
            "receipt_id": str(uuid.uuid4()),
            "consent_id": str(uuid.uuid4()),
            "event_hash": "sha256:" + "ab" * 32,
            "action": action,
            "state": state,
            "at": "2026-03-01T08:00:00Z",
            "subject": subject,
            "agreement": {"agreement_id": "spa-stipend-payment", "version": 1},
            "consumer": AGENCY,
            "providers": [{"provider": "DPI/COM/WALLET1/payments", "service": "payments"}],
            "purpose": purpose,
            "legal_basis": "consent",
            "fields": [],
            "actor": {"role": "subject", "id": subject},
            "channel": channel,
            "issuer": "DPI/GOV/SPA/consent",
        }
        if valid_until is not None:
            document["valid_until"] = valid_until.strftime("%Y-%m-%dT%H:%M:%SZ")
        return sign_receipt(document, key or self.key)


@dataclass
class Mapper:
    client: httpx.AsyncClient
    issuer: TokenIssuer
    consent: ConsentAuthority
    clock: Clock
    sessions: async_sessionmaker[AsyncSession]
    counter: int = 0

    def reference(self) -> str:
        self.counter += 1
        return f"ref-{self.counter:05d}"

    def item(self, beneficiary_id: str, fa: str, **members: Any) -> dict[str, Any]:
        item: dict[str, Any] = {
            "reference_id": self.reference(),
            "timestamp": "2026-03-02T09:00:00Z",
            "beneficiary_id": beneficiary_id,
            "fa": fa,
            "consent_receipt": self.consent.receipt(beneficiary_id),
        }
        item.update(members)
        return {name: value for name, value in item.items() if value is not None}

    async def send(
        self, action: str, items: list[dict[str, Any]], *, token: dict[str, str], status: int = 200
    ) -> list[dict[str, Any]]:
        envelope = {
            "signature": "",
            "header": {
                "version": "0.1.0",
                "message_id": str(uuid.uuid4()),
                "message_ts": "2026-03-02T09:00:00Z",
                "action": action,
                "sender_id": "spa-portal",
                "total_count": len(items),
            },
            "message": {"transaction_id": f"txn-{uuid.uuid4().hex[:12]}", f"{action}_request": items},
        }
        response = await self.client.post(f"/payments/mapper/{action}", json=envelope, headers=token)
        assert response.status_code == status, response.text
        body = response.json()
        jwks = (await self.client.get("/.well-known/jwks.json")).json()
        verify_detached({"header": body["header"], "message": body["message"]}, body["signature"], jwks)
        assert body["header"]["action"] == f"on-{action}"
        assert body["header"]["message_id"] == envelope["header"]["message_id"]
        assert body["header"]["total_count"] == len(items)
        answers: list[dict[str, Any]] = body["message"][f"{action}_response"]
        assert [answer["reference_id"] for answer in answers] == [item["reference_id"] for item in items]
        return answers

    def person(self, beneficiary_id: str) -> dict[str, str]:
        return self.issuer.headers(beneficiary_id, SCOPE_SELF)

    def operator(self) -> dict[str, str]:
        return self.issuer.headers(OPERATOR, SCOPE_OPERATOR)

    def agency(self) -> dict[str, str]:
        return self.issuer.headers("spa-disbursement", SCOPE_RESOLVE, member=AGENCY)

    def admin(self) -> dict[str, str]:
        return self.issuer.headers("spa-officer-3", SCOPE_ADMIN)

    async def resolve(self, resolve_type: str, **members: str) -> dict[str, Any]:
        item = {
            "reference_id": self.reference(),
            "timestamp": "2026-03-02T09:00:00Z",
            "resolve_type": resolve_type,
        }
        item.update(members)
        (answer,) = await self.send("resolve", [item], token=self.agency())
        return answer

    @property
    def service(self) -> MapperService:
        return MapperService(self.sessions, StaticReceiptKeys(self.consent.jwks), clock=self.clock)


def _reason(answer: dict[str, Any]) -> str | None:
    return answer.get("status_reason_code")


@pytest.fixture
async def mapper(settings: Settings) -> AsyncIterator[Mapper]:
    issuer = TokenIssuer()
    consent = ConsentAuthority()
    clock = Clock()
    block = Block(
        name="payments",
        prefix="/payments",
        version="0.0.0",
        routes=lambda context: routes(
            context, verifier=issuer.verifier(), receipt_keys=StaticReceiptKeys(consent.jwks), clock=clock
        ),
        migrations=MIGRATIONS,
        capabilities=lambda _settings: capabilities(),
    )
    await migrate(settings, [block])
    app = create_app(settings, blocks=[block])
    engine = db.create_engine(settings.database)
    try:
        async with AsyncTestClient(app=app) as client:
            yield Mapper(client, issuer, consent, clock, db.session_factory(engine))
    finally:
        await engine.dispose()


async def test_a_person_links_their_wallet_and_every_resolve_type_answers(mapper: Mapper) -> None:
    (answer,) = await mapper.send(
        "link",
        [mapper.item(AMINA, "0700123456@Wallet1", additional_info="first enrolment")],
        token=mapper.person(AMINA),
    )
    assert answer["status"] == "succ", answer
    assert answer["fa"] == "0700123456@wallet1"
    assert answer["effective_from"] == "2026-03-02T09:00:00.000Z"
    assert answer["shared"] is False

    to_id = await mapper.resolve("FA_TO_BENEFICIARY_ID", fa="0700123456@wallet1")
    assert (to_id["status"], to_id["beneficiary_id"]) == ("succ", AMINA)
    to_fa = await mapper.resolve("BENEFICIARY_ID_TO_FA", beneficiary_id=AMINA)
    assert (to_fa["status"], to_fa["fa"]) == ("succ", "0700123456@wallet1")
    provider = await mapper.resolve("FA_TO_ACCOUNT_PROVIDER_INFO", fa="0700123456@wallet1")
    assert provider["account_provider_info"] == {"name": "wallet1", "code": "wallet1"}
    account = await mapper.resolve("BENEFICIARY_ID_TO_ACCOUNT_INFO", beneficiary_id=AMINA)
    assert account["account_info"]["number"] == "0700123456"
    for resolve_type in ("FA_TO_ACCOUNT_INFO", "BENEFICIARY_ID_TO_ACCOUNT_PROVIDER_INFO"):
        member = {"fa": "0700123456@wallet1"} if resolve_type.startswith("FA") else {"beneficiary_id": AMINA}
        assert (await mapper.resolve(resolve_type, **member))["status"] == "succ"

    history = await mapper.client.get(
        f"/payments/mapper/v1/beneficiaries/{AMINA}/history", headers=mapper.person(AMINA)
    )
    assert history.status_code == 200
    (event,) = history.json()["items"]
    assert event["action"] == "link"
    assert (event["actor"], event["channel"], event["reason"]) == (AMINA, "self", "first enrolment")
    assert "operator_id" not in event
    assert event["recorded_at"] == "2026-03-02T09:00:00.000Z"
    assert event["receipt_id"]
    other = await mapper.client.get(
        f"/payments/mapper/v1/beneficiaries/{YOUSSEF}/history", headers=mapper.person(AMINA)
    )
    assert other.status_code == 403
    assert other.json()["reason_code"] == "payments.mapper.beneficiary.forbidden"


async def test_an_operator_links_for_a_person_present_and_is_recorded(mapper: Mapper) -> None:
    item = mapper.item(YOUSSEF, "221771234567@wallet1", additional_info="service centre 17")
    item["consent_receipt"] = mapper.consent.receipt(YOUSSEF, channel="assisted")
    (answer,) = await mapper.send("link", [item], token=mapper.operator())
    assert answer["status"] == "succ", answer
    history = await mapper.client.get(
        f"/payments/mapper/v1/beneficiaries/{YOUSSEF}/history", headers=mapper.admin()
    )
    (event,) = history.json()["items"]
    assert (event["actor"], event["channel"], event["operator_id"]) == (OPERATOR, "assisted", OPERATOR)


async def test_every_mapper_body_is_documented_by_a_published_schema(mapper: Mapper) -> None:
    document = (await mapper.client.get("/openapi.json")).json()
    assert undocumented_bodies(document) == []
    operations = {
        f"{method.upper()} {path}"
        for path, item in document["paths"].items()
        for method in item
        if path.startswith("/payments")
    }
    assert operations == {
        "POST /payments/mapper/link",
        "POST /payments/mapper/update",
        "POST /payments/mapper/unlink",
        "POST /payments/mapper/resolve",
        "POST /payments/mapper/v1/freezes",
        "GET /payments/mapper/v1/freezes",
        "POST /payments/mapper/v1/shared-addresses",
        "GET /payments/mapper/v1/conflicts",
        "GET /payments/mapper/v1/beneficiaries/{beneficiary_id}/history",
    }
    declared = (await mapper.client.get("/.well-known/dpi-capabilities")).json()
    (payments,) = [block for block in declared["blocks"] if block["name"] == "payments"]
    assert payments["mapper"]["resolve_types"][0] == "FA_TO_ACCOUNT_PROVIDER_INFO"
    link = document["paths"]["/payments/mapper/link"]["post"]
    assert link["requestBody"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/g2p-mapper-link-request-1.0.0"
    }


# Each row: what is wrong with the item, how to build it, the reason code it must get.
_ADVERSARIAL_LINKS: list[tuple[str, Any, str]] = [
    ("address without provider", lambda m, b: m.item(b, "0700999999"), "payments.mapper.address.invalid"),
    ("address with a space", lambda m, b: m.item(b, "07 00@wallet1"), "payments.mapper.address.invalid"),
    ("address with two ats", lambda m, b: m.item(b, "a@b@wallet1"), "payments.mapper.address.invalid"),
    ("address taken by Amina", lambda m, b: m.item(b, "0700123456@wallet1"), "payments.mapper.address.taken"),
    (
        "no receipt",
        lambda m, b: m.item(b, "0700000001@wallet1", consent_receipt=None),
        "payments.mapper.consent.missing",
    ),
    (
        "receipt is not a JWS",
        lambda m, b: m.item(b, "0700000002@wallet1", consent_receipt="not-a-jws"),
        "payments.mapper.consent.invalid",
    ),
    (
        "receipt forged with another key",
        lambda m, b: m.item(
            b, "0700000003@wallet1", consent_receipt=m.consent.receipt(b, key=SigningKey.generate("EdDSA"))
        ),
        "payments.mapper.consent.invalid",
    ),
    (
        "receipt of another person",
        lambda m, b: m.item(b, "0700000004@wallet1", consent_receipt=m.consent.receipt(AMINA)),
        "payments.mapper.consent.other_person",
    ),
    (
        "receipt for another purpose",
        lambda m, b: m.item(
            b, "0700000005@wallet1", consent_receipt=m.consent.receipt(b, purpose="official-statistics")
        ),
        "payments.mapper.consent.wrong_purpose",
    ),
    (
        "receipt of a withdrawal",
        lambda m, b: m.item(
            b,
            "0700000006@wallet1",
            consent_receipt=m.consent.receipt(b, action="withdraw", state="WITHDRAWN"),
        ),
        "payments.mapper.consent.not_active",
    ),
    (
        "expired consent",
        lambda m, b: m.item(
            b,
            "0700000007@wallet1",
            consent_receipt=m.consent.receipt(b, valid_until=START - timedelta(days=1)),
        ),
        "payments.mapper.consent.expired",
    ),
    (
        "unknown member",
        lambda m, b: {**m.item(b, "0700000008@wallet1"), "iban": "x"},
        "payments.mapper.item.invalid",
    ),
    (
        "bad timestamp",
        lambda m, b: m.item(b, "0700000009@wallet1", timestamp="yesterday"),
        "payments.mapper.item.invalid",
    ),
]


async def test_bad_items_are_refused_one_by_one_and_the_good_ones_are_linked(mapper: Mapper) -> None:
    (first,) = await mapper.send(
        "link", [mapper.item(AMINA, "0700123456@wallet1")], token=mapper.person(AMINA)
    )
    assert first["status"] == "succ"
    items = [build(mapper, YOUSSEF) for _, build, _ in _ADVERSARIAL_LINKS]
    good = mapper.item(FATIMA, "0700555555@wallet1")
    answers = await mapper.send("link", [*items[:5], good, *items[5:]], token=mapper.operator())
    answers_by_reference = {answer["reference_id"]: answer for answer in answers}
    for (case, _, reason), item in zip(_ADVERSARIAL_LINKS, items, strict=True):
        answer = answers_by_reference[item["reference_id"]]
        assert (answer["status"], _reason(answer)) == ("rjct", reason), case
        assert answer["status_reason_message"]
        assert AMINA not in answer["status_reason_message"], "the holder is never named to the caller"
    assert answers_by_reference[good["reference_id"]]["status"] == "succ"

    # Nothing of the refused items was written; the conflict is kept for review.
    assert (await mapper.resolve("BENEFICIARY_ID_TO_FA", beneficiary_id=YOUSSEF))["status_reason_code"] == (
        "payments.mapper.beneficiary.not_linked"
    )
    assert (await mapper.resolve("FA_TO_BENEFICIARY_ID", fa="0700123456@wallet1"))["beneficiary_id"] == AMINA
    conflicts = await mapper.client.get("/payments/mapper/v1/conflicts", headers=mapper.admin())
    (conflict,) = conflicts.json()["items"]
    assert (conflict["fa"], conflict["beneficiary_id"], conflict["holder_id"]) == (
        "0700123456@wallet1",
        YOUSSEF,
        AMINA,
    )
    assert conflict["actor"] == OPERATOR


async def test_a_person_cannot_link_someone_else(mapper: Mapper) -> None:
    (answer,) = await mapper.send(
        "link", [mapper.item(YOUSSEF, "0700000010@wallet1")], token=mapper.person(AMINA)
    )
    assert _reason(answer) == "payments.mapper.beneficiary.forbidden"
    (twice,) = await mapper.send(
        "link", [mapper.item(AMINA, "0700000011@wallet1")], token=mapper.person(AMINA)
    )
    assert twice["status"] == "succ"
    (again,) = await mapper.send(
        "link", [mapper.item(AMINA, "0700000012@wallet1")], token=mapper.person(AMINA)
    )
    assert _reason(again) == "payments.mapper.beneficiary.already_linked"


async def test_a_resent_reference_gets_the_same_answer_and_a_changed_one_is_refused(mapper: Mapper) -> None:
    item = mapper.item(AMINA, "0700123456@wallet1")
    (first,) = await mapper.send("link", [item], token=mapper.person(AMINA))
    (resent, changed) = await mapper.send(
        "link", [item, {**item, "fa": "0700654321@wallet1"}], token=mapper.person(AMINA)
    )
    assert resent == first
    assert _reason(changed) == "payments.mapper.reference.duplicate"
    history = await mapper.service.history(AMINA)
    assert len(history) == 1
    # A refusal is answered the same way when resent, too.
    bad = mapper.item(AMINA, "nope")
    (refused,) = await mapper.send("update", [bad], token=mapper.person(AMINA))
    (refused_again,) = await mapper.send("update", [bad], token=mapper.person(AMINA))
    assert refused == refused_again
    assert _reason(refused) == "payments.mapper.address.invalid"


async def test_a_shared_household_wallet_needs_an_allowance_and_is_flagged(mapper: Mapper) -> None:
    wallet = "0700777777@wallet1"
    (amina,) = await mapper.send("link", [mapper.item(AMINA, wallet)], token=mapper.person(AMINA))
    assert (amina["status"], amina["shared"]) == ("succ", False)
    (refused,) = await mapper.send("link", [mapper.item(FATIMA, wallet)], token=mapper.person(FATIMA))
    assert _reason(refused) == "payments.mapper.address.taken"

    allowance = await mapper.client.post(
        "/payments/mapper/v1/shared-addresses",
        json={"fa": wallet, "reason": "household wallet of the Diallo family"},
        headers=mapper.admin(),
    )
    assert allowance.status_code == 200
    assert allowance.json()["allowed_by"] == "spa-officer-3"
    (fatima,) = await mapper.send("link", [mapper.item(FATIMA, wallet)], token=mapper.person(FATIMA))
    assert (fatima["status"], fatima["shared"]) == ("succ", True)

    by_address = await mapper.resolve("FA_TO_BENEFICIARY_ID", fa=wallet)
    assert _reason(by_address) == "payments.mapper.address.shared"
    for person in (AMINA, FATIMA):
        resolved = await mapper.resolve("BENEFICIARY_ID_TO_FA", beneficiary_id=person)
        assert (resolved["fa"], resolved["shared"]) == (wallet, True)

    unlink = {"reference_id": mapper.reference(), "timestamp": "2026-03-02T09:00:00Z", "fa": wallet}
    (ambiguous,) = await mapper.send("unlink", [unlink], token=mapper.operator())
    assert _reason(ambiguous) == "payments.mapper.address.ambiguous"
    (own,) = await mapper.send(
        "unlink", [{**unlink, "reference_id": mapper.reference()}], token=mapper.person(AMINA)
    )
    assert own["status"] == "succ"
    assert (await mapper.resolve("FA_TO_BENEFICIARY_ID", fa=wallet))["beneficiary_id"] == FATIMA


async def test_unlink_then_resolve_finds_nothing_and_update_needs_a_link(mapper: Mapper) -> None:
    (linked,) = await mapper.send(
        "link", [mapper.item(AMINA, "0700123456@wallet1")], token=mapper.person(AMINA)
    )
    assert linked["status"] == "succ"
    unlink = {
        "reference_id": mapper.reference(),
        "timestamp": "2026-03-02T09:00:00Z",
        "fa": "0700123456@wallet1",
    }
    (unlinked,) = await mapper.send("unlink", [unlink], token=mapper.person(AMINA))
    assert unlinked["status"] == "succ"
    assert _reason(await mapper.resolve("FA_TO_BENEFICIARY_ID", fa="0700123456@wallet1")) == (
        "payments.mapper.address.not_linked"
    )
    assert _reason(await mapper.resolve("BENEFICIARY_ID_TO_FA", beneficiary_id=AMINA)) == (
        "payments.mapper.beneficiary.not_linked"
    )
    assert _reason(await mapper.resolve("BENEFICIARY_ID_TO_FA", beneficiary_id="never-heard-of-1234")) == (
        "payments.mapper.beneficiary.not_linked"
    )
    (update,) = await mapper.send(
        "update", [mapper.item(AMINA, "0700999999@wallet1")], token=mapper.person(AMINA)
    )
    assert _reason(update) == "payments.mapper.link.not_found"
    (again,) = await mapper.send(
        "unlink", [{**unlink, "reference_id": mapper.reference()}], token=mapper.person(AMINA)
    )
    assert _reason(again) == "payments.mapper.link.not_found"
    incomplete = await mapper.resolve("FA_TO_BENEFICIARY_ID", beneficiary_id=AMINA)
    assert _reason(incomplete) == "payments.mapper.resolve.incomplete"
    history = await mapper.service.history(AMINA)
    assert [event["action"] for event in history] == ["link", "unlink"]
    assert history[1]["previous_fa"] == "0700123456@wallet1"


async def test_a_change_in_a_freeze_window_counts_only_after_the_cycle(mapper: Mapper) -> None:
    cut_off, ends = START + timedelta(days=1), START + timedelta(days=3)
    freeze = {
        "cycle_id": "stipend-2026-03",
        "cut_off": "2026-03-03T09:00:00Z",
        "ends_at": "2026-03-05T09:00:00Z",
    }
    registered = await mapper.client.post("/payments/mapper/v1/freezes", json=freeze, headers=mapper.admin())
    assert registered.status_code == 201
    same = await mapper.client.post("/payments/mapper/v1/freezes", json=freeze, headers=mapper.admin())
    assert same.status_code == 200
    moved = await mapper.client.post(
        "/payments/mapper/v1/freezes",
        json={**freeze, "ends_at": "2026-03-06T09:00:00Z"},
        headers=mapper.admin(),
    )
    assert (moved.status_code, moved.json()["reason_code"]) == (409, "payments.mapper.freeze.conflict")
    backwards = await mapper.client.post(
        "/payments/mapper/v1/freezes",
        json={**freeze, "cycle_id": "x", "ends_at": "2026-03-01T09:00:00Z"},
        headers=mapper.admin(),
    )
    assert (backwards.status_code, backwards.json()["reason_code"]) == (422, "payments.mapper.freeze.invalid")

    (linked,) = await mapper.send(
        "link", [mapper.item(AMINA, "0700111111@wallet1")], token=mapper.person(AMINA)
    )
    assert linked["status"] == "succ"
    mapper.clock.now = START + timedelta(days=2)
    (moved_wallet,) = await mapper.send(
        "update", [mapper.item(AMINA, "0700222222@wallet2")], token=mapper.person(AMINA)
    )
    assert moved_wallet["status"] == "succ"
    assert moved_wallet["effective_from"] == "2026-03-05T09:00:00.000Z"
    assert "freeze" in moved_wallet["status_reason_message"]

    # During the cycle: its payments go where the person was at the cut-off.
    assert (await mapper.resolve("BENEFICIARY_ID_TO_FA", beneficiary_id=AMINA))["fa"] == "0700111111@wallet1"
    accounts = mapper.service
    assert await accounts.financial_addresses([AMINA, YOUSSEF], as_of=cut_off) == {
        AMINA: FinancialAddress("0700111111", "wallet1")
    }
    # After it: the new choice.
    mapper.clock.now = ends + timedelta(minutes=1)
    assert (await mapper.resolve("BENEFICIARY_ID_TO_FA", beneficiary_id=AMINA))["fa"] == "0700222222@wallet2"
    assert await accounts.financial_addresses([AMINA], as_of=ends) == {
        AMINA: FinancialAddress("0700222222", "wallet2")
    }
    assert await accounts.financial_addresses([AMINA], as_of=cut_off) == {
        AMINA: FinancialAddress("0700111111", "wallet1")
    }
    assert await accounts.financial_addresses([AMINA], as_of=START - timedelta(days=1)) == {}
    listed = await mapper.client.get("/payments/mapper/v1/freezes", headers=mapper.admin())
    assert [window["cycle_id"] for window in listed.json()["items"]] == ["stipend-2026-03"]


# Each row: the body (bytes, or a valid envelope possibly with a wrong action), whose token, the answer.
_REFUSED_ENVELOPES: list[tuple[bytes | str, str | None, int, str]] = [
    (b"{not json", "person", 400, "request.malformed_json"),
    (b"[]", "person", 422, "request.invalid"),
    (b'{"header": {}, "message": {}}', "person", 422, "request.invalid"),
    (
        b'{"header": {"message_id": "m", "message_ts": "2026-03-02T09:00:00Z", "action": "link"}, '
        b'"message": {"transaction_id": "t", "link_request": []}}',
        "person",
        422,
        "request.invalid",
    ),
    (
        b'{"header": {"message_id": "m", "message_ts": "2026-03-02T09:00:00Z", "action": "link"}, '
        b'"message": {"transaction_id": "t", "link_request": [{}], "extra": 1}}',
        "person",
        422,
        "request.invalid",
    ),
    (b'{"a":' * 70 + b"1" + b"}" * 70, "person", 422, "request.invalid"),
    (b"NaN", "person", 400, "request.malformed_json"),
    ("wrong-action", "person", 400, "payments.mapper.action.invalid"),
    ("valid", None, 401, "auth.token_missing"),
    ("valid", "agency", 403, "auth.scope_missing"),
]


async def test_envelopes_that_cannot_be_processed_are_refused_whole(mapper: Mapper) -> None:
    for body, holder, status, reason in _REFUSED_ENVELOPES:
        envelope: dict[str, Any] = {
            "header": {"message_id": "m-1", "message_ts": "2026-03-02T09:00:00Z", "action": "link"},
            "message": {"transaction_id": "t-1", "link_request": [mapper.item(AMINA, "0700123456@wallet1")]},
        }
        if body == "wrong-action":
            envelope["header"]["action"] = "unlink"
        content = httpx.Request("POST", "/", json=envelope).content if isinstance(body, str) else body
        token = {"person": mapper.person(AMINA), "agency": mapper.agency(), None: {}}[holder]
        response = await mapper.client.post(
            "/payments/mapper/link", content=content, headers={**token, "Content-Type": "application/json"}
        )
        assert (response.status_code, response.json()["reason_code"]) == (status, reason), body
    assert (await mapper.service.history(AMINA)) == []
    text = await mapper.client.post(
        "/payments/mapper/resolve", content=b"x", headers={**mapper.agency(), "Content-Type": "text/plain"}
    )
    assert (text.status_code, text.json()["reason_code"]) == (415, "request.unsupported_media_type")
