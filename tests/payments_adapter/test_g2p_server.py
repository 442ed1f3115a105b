"""The G2P Connect disburse server: ACK then a signed on-disburse callback, duplicate reference ids refused
per item and paid once, refused envelopes storing nothing, per-item refusals, provider outcomes (lost
responses, payments held open), status queries, the signed search by reference, and callback delivery."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

import standards
from dpi.db import create_engine, session_factory
from dpi.keys import SigningKey
from dpi.models import OutboxMessage
from dpi.signing import sign_request, verify_detached
from payments_adapter.contract import Money
from payments_adapter.g2p import messages
from payments_adapter.g2p.models import G2pItemRow, G2pTransactionRow
from payments_adapter.g2p.server import load_senders
from tests.payments_adapter.g2p_harness import (
    SENDER_ID,
    SYSTEM_ID,
    G2pTarget,
    disburse,
    envelope,
    g2p_target,
    item,
)
from tests.payments_adapter.memory_provider import MemoryProvider


@pytest.fixture
async def provider() -> MemoryProvider:
    return MemoryProvider(max_bulk=2)


@pytest.fixture
async def target(tmp_path: Path, database_url: str, provider: MemoryProvider) -> AsyncIterator[G2pTarget]:
    built = await g2p_target(tmp_path / "var", provider, database_url=database_url)
    async with built.opened():
        yield built


async def _count(target: G2pTarget, table: Any) -> int:
    engine = create_engine(target.settings.database)
    try:
        async with session_factory(engine)() as session:
            return int(await session.scalar(select(func.count()).select_from(table)) or 0)
    finally:
        await engine.dispose()


def _verified(target: G2pTarget, document: dict[str, Any]) -> None:
    verify_detached(
        {"header": document["header"], "message": document["message"]},
        document["signature"],
        target.server.keys.jwks(),
    )


def _outcomes(document: dict[str, Any], member: str = "disburse_response") -> list[tuple[str, str, str]]:
    return [
        (a["reference_id"], a["status"], a.get("status_reason_code", "")) for a in document["message"][member]
    ]


async def test_a_disburse_is_acknowledged_then_answered_by_a_signed_callback(
    target: G2pTarget, provider: MemoryProvider
) -> None:
    answer = await target.post("/disburse", disburse(target.key, item("r-1"), item("r-2", "250.00")))
    assert answer.status_code == 200
    assert standards.validator("g2p-disburse-ack@1.0.0").issues(answer.json()) == []
    assert answer.json()["message"]["ack"] == {"status": "ACK"}
    assert target.callbacks.received == []

    await target.dispatch()

    [callback] = target.callbacks.bodies("/on-disburse")
    assert standards.validator("g2p-disburse-on-disburse@1.0.0").issues(callback) == []
    _verified(target, callback)
    assert callback["header"]["receiver_id"] == SENDER_ID
    assert callback["header"]["sender_id"] == SYSTEM_ID
    assert callback["header"]["completed_count"] == 2
    assert _outcomes(callback) == [("r-1", "SUCC", ""), ("r-2", "SUCC", "")]
    assert str(target.callbacks.received[0].url) == "http://127.0.0.1:9/spa/on-disburse"
    assert "signature" in target.callbacks.received[0].headers
    assert sorted(provider.credited.values(), key=lambda m: m.amount) == [
        Money.parse("250.00", "XOF"),
        Money.parse("1500.00", "XOF"),
    ]
    await target.dispatch()
    assert len(target.callbacks.received) == 1


async def test_a_used_reference_id_is_refused_per_item_and_paid_once(
    target: G2pTarget, provider: MemoryProvider
) -> None:
    await target.post("/disburse", disburse(target.key, item("first")))
    again = disburse(target.key, item("first", "9999.00"), item("second"), item("second", "1.00"))
    assert (await target.post("/disburse", again)).json()["message"]["ack"]["status"] == "ACK"
    await target.dispatch()

    first, second = target.callbacks.bodies("/on-disburse")
    assert _outcomes(first) == [("first", "SUCC", "")]
    assert _outcomes(second) == [
        ("first", "RJCT", messages.DUPLICATE),
        ("second", "SUCC", ""),
        ("second", "RJCT", messages.DUPLICATE),
    ]
    assert provider.credited[messages.idempotency_key(SENDER_ID, "first")] == Money.parse("1500.00", "XOF")
    assert provider.credited[messages.idempotency_key(SENDER_ID, "second")] == Money.parse("1500.00", "XOF")
    assert set(provider.submissions.values()) == {1}
    assert await _count(target, G2pItemRow) == 2


def _resign(key: SigningKey, document: dict[str, Any]) -> dict[str, Any]:
    body = {"header": document["header"], "message": document["message"]}
    return {"signature": messages.signed(body["header"], body["message"], key)["signature"], **body}


def _refusals() -> list[Any]:
    stranger = SigningKey.generate("EdDSA")

    def unsigned(key: SigningKey) -> Any:
        document = disburse(key, item("x-1"))
        del document["signature"]
        return document

    def empty_signature(key: SigningKey) -> Any:
        return {**disburse(key, item("x-1")), "signature": ""}

    def foreign_key(key: SigningKey) -> Any:
        return disburse(stranger, item("x-1"))

    def tampered(key: SigningKey) -> Any:
        document = disburse(key, item("x-1"))
        document["message"]["disburse_request"][0]["amount"] = "999999.00"
        return document

    def header(**members: Any) -> Any:
        def build(key: SigningKey) -> Any:
            document = disburse(key, item("x-1"))
            document["header"].update(members)
            return _resign(key, document)

        return build

    def without(member: str) -> Any:
        def build(key: SigningKey) -> Any:
            document = disburse(key, item("x-1"))
            del document["header"][member]
            return _resign(key, document)

        return build

    def unrepresentable(key: SigningKey) -> Any:
        text = json.dumps(disburse(key, item("x-1")))
        return text.replace('"amount": "1500.00"', '"amount": 1e400').encode()

    def too_many(key: SigningKey) -> Any:
        return disburse(key, *(item(f"n-{i}") for i in range(messages.MAX_ITEMS + 1)))

    def no_reference(key: SigningKey) -> Any:
        return disburse(key, {k: v for k, v in item("x-1").items() if k != "reference_id"})

    def traversal_reference(key: SigningKey) -> Any:
        return disburse(key, item("../../etc"))

    return [
        pytest.param(unsigned, 401, "ERR_INVALID_SIGNATURE", "auth.signature_missing", id="unsigned"),
        pytest.param(empty_signature, 401, "ERR_INVALID_SIGNATURE", "auth.signature_missing", id="empty-sig"),
        pytest.param(foreign_key, 401, "ERR_INVALID_SIGNATURE", "auth.key_unknown", id="foreign-key"),
        pytest.param(tampered, 401, "ERR_INVALID_SIGNATURE", "auth.signature_invalid", id="tampered"),
        pytest.param(
            header(sender_id="DPI/GOV/XX/nobody"),
            401,
            "ERR_INVALID_SENDER",
            "payments.g2p.sender_unknown",
            id="unknown-sender",
        ),
        pytest.param(
            header(receiver_id="DPI/COM/OTHER/payments"),
            400,
            "ERR_INVALID_RECEIVER",
            "payments.g2p.receiver_invalid",
            id="other-receiver",
        ),
        pytest.param(
            header(sender_uri="https://attacker.example/cb"),
            400,
            "ERR_INVALID_SENDER_URI",
            "payments.g2p.sender_uri_invalid",
            id="foreign-sender-uri",
        ),
        pytest.param(
            header(timestamp="2020-01-01T00:00:00Z"),
            400,
            "ERR_INVALID_TIMESTAMP",
            "payments.g2p.timestamp_invalid",
            id="stale",
        ),
        pytest.param(
            header(action="search"), 400, "ERR_INVALID_ACTION", "payments.g2p.action_invalid", id="action"
        ),
        pytest.param(
            header(version="9.9.9"),
            400,
            "ERR_INVALID_REQUEST",
            "payments.g2p.version_not_supported",
            id="version",
        ),
        pytest.param(
            without("message_id"), 400, "ERR_INVALID_REQUEST", "request.invalid", id="no-message-id"
        ),
        pytest.param(too_many, 400, "ERR_INVALID_REQUEST", "request.invalid", id="too-many-items"),
        pytest.param(no_reference, 400, "ERR_INVALID_REQUEST", "request.invalid", id="no-reference"),
        pytest.param(traversal_reference, 400, "ERR_INVALID_REQUEST", "request.invalid", id="bad-reference"),
        pytest.param(
            unrepresentable, 401, "ERR_INVALID_SIGNATURE", "auth.signature_invalid", id="no-canonical-form"
        ),
        pytest.param(lambda _key: [1, 2], 400, "ERR_INVALID_REQUEST", "request.invalid", id="not-object"),
        pytest.param(
            lambda _key: json.loads("[" * 70 + "]" * 70),
            400,
            "ERR_INVALID_REQUEST",
            "request.invalid",
            id="deep",
        ),
    ]


async def test_refused_envelopes_are_nacked_with_their_code_and_store_nothing(target: G2pTarget) -> None:
    for case in _refusals():
        build, status, code, reason = case.values
        answer = await target.post("/disburse", build(target.key))
        body = answer.json()
        assert standards.validator("g2p-disburse-ack@1.0.0").issues(body) == [], case.id
        seen = (
            answer.status_code,
            body["message"]["ack"]["status"],
            body["error"]["code"],
            body["error"]["reason_code"],
        )
        assert seen == (status, "NACK", code, reason), case.id
        assert standards.reason_code(reason).code == reason
    assert await _count(target, G2pTransactionRow) == 0
    assert await _count(target, G2pItemRow) == 0
    assert await _count(target, OutboxMessage) == 0


async def test_a_wrong_media_type_a_replay_and_a_reused_transaction_are_refused(target: G2pTarget) -> None:
    document = disburse(target.key, item("m-1"), transaction_id="t-1")
    for content, content_type, status, reason in [
        (json.dumps(document).encode(), "text/plain", 415, "request.unsupported_media_type"),
        (b'{"header": ', "application/json", 400, "request.malformed_json"),
        (b"{'single': 'quotes'}", "application/json", 400, "request.malformed_json"),
    ]:
        refused = await target.post("/disburse", content, **{"content-type": content_type})
        assert (refused.status_code, refused.json()["reason_code"]) == (status, reason)
        assert standards.validator("error").issues(refused.json()) == []
    assert (await target.post("/disburse", document)).status_code == 200
    replay = await target.post("/disburse", document)
    assert (replay.status_code, replay.json()["error"]["code"]) == (409, "ERR_INVALID_MESSAGE_ID")
    reused = await target.post("/disburse", disburse(target.key, item("m-2"), transaction_id="t-1"))
    assert (reused.status_code, reused.json()["error"]["reason_code"]) == (409, "payments.request.duplicate")
    assert await _count(target, G2pItemRow) == 1


_BAD_ITEMS = [
    ({"amount": "12.345"}, messages.AMOUNT_INVALID),
    ({"amount": "0.00"}, messages.AMOUNT_INVALID),
    ({"amount": 12.5}, messages.AMOUNT_INVALID),
    ({"amount": "1500.50"}, messages.AMOUNT_INVALID),  # XOF has no minor unit
    ({"currency_code": "ZZZ"}, messages.CURRENCY_INVALID),
    ({"currency_code": "xof"}, messages.CURRENCY_INVALID),
    ({"payee_fa": "no-provider"}, messages.PAYEE_FA_INVALID),
    ({"payee_fa": "a@b@c"}, messages.PAYEE_FA_INVALID),
    ({"payer_fa": "someone-else@wallet1"}, messages.PAYER_FA_INVALID),
    ({"scheduled_timestamp": "2999-01-01T00:00:00Z"}, messages.SCHEDULE_INVALID),
    ({"scheduled_timestamp": "tomorrow"}, messages.SCHEDULE_INVALID),
    ({"scheduled_timestamp": "2026-13-45T99:00:00Z"}, messages.SCHEDULE_INVALID),
    ({"note": "n" * 100}, messages.INSTRUCTION_INVALID),
    ({"amount": None}, messages.AMOUNT_INVALID),
    ({"payee_fa": None}, messages.PAYEE_FA_INVALID),
    ({"locale": "french"}, messages.INSTRUCTION_INVALID),
]


async def test_each_invalid_item_is_refused_alone(target: G2pTarget, provider: MemoryProvider) -> None:
    bad = [
        {k: v for k, v in {**item(f"bad-{n}"), **change}.items() if v is not None}
        for n, (change, _) in enumerate(_BAD_ITEMS)
    ]
    answer = await target.post("/disburse", disburse(target.key, item("good-1"), *bad, item("good-2")))
    assert answer.json()["message"]["ack"]["status"] == "ACK"
    await target.dispatch()
    [callback] = target.callbacks.bodies("/on-disburse")
    assert _outcomes(callback) == [
        ("good-1", "SUCC", ""),
        *((f"bad-{n}", "RJCT", code) for n, (_, code) in enumerate(_BAD_ITEMS)),
        ("good-2", "SUCC", ""),
    ]
    assert sorted(provider.submissions) == sorted(
        messages.idempotency_key(SENDER_ID, reference) for reference in ("good-1", "good-2")
    )


async def test_provider_refusals_are_reported_with_their_reason(
    target: G2pTarget, provider: MemoryProvider
) -> None:
    payees = [("p-1", "blocked1@wallet1"), ("p-2", "poor1@wallet1"), ("p-3", "0700000001@wallet1")]
    await target.post("/disburse", disburse(target.key, *(item(r, payee_fa=p) for r, p in payees)))
    await target.dispatch()
    [callback] = target.callbacks.bodies("/on-disburse")
    assert _outcomes(callback) == [
        ("p-1", "RJCT", messages.PAYEE_FA_INVALID),
        ("p-2", "RJCT", messages.PAYMENT_REJECTED),
        ("p-3", "SUCC", ""),
    ]
    reasons = [a.get("status_reason_message", "") for a in callback["message"]["disburse_response"]]
    assert reasons[0].startswith("payments.account.blocked")
    assert reasons[1].startswith("payments.payer.insufficient_funds")


async def test_a_lost_response_is_settled_by_a_status_query_never_a_resend(
    target: G2pTarget, provider: MemoryProvider
) -> None:
    provider.lose_responses = 2
    await target.post("/disburse", disburse(target.key, item("l-1"), item("l-2"), item("l-3")))
    await target.dispatch()
    assert target.callbacks.received == []
    async with target.server.sessions() as session:
        pending = (await session.scalars(select(G2pItemRow.status).order_by(G2pItemRow.reference_id))).all()
    assert pending == ["PDNG", "PDNG", "SUCC"]

    await target.dispatch()  # the message is not due yet: nothing happens before its retry time
    assert target.callbacks.received == []
    async with target.server.sessions.begin() as session:
        await session.execute(OutboxMessage.__table__.update().values(available_at=func.now()))
    await target.dispatch()

    [callback] = target.callbacks.bodies("/on-disburse")
    assert [status for _, status, _ in _outcomes(callback)] == ["SUCC", "SUCC", "SUCC"]
    assert set(provider.submissions.values()) == {1}
    assert len(provider.credited) == 3


async def test_the_callback_waits_for_payments_held_open(target: G2pTarget, provider: MemoryProvider) -> None:
    await target.post("/disburse", disburse(target.key, item("h-1"), item("h-2", payee_fa="slow1@wallet1")))
    await target.dispatch()
    assert target.callbacks.received == []
    async with target.server.sessions() as session:
        [reminder] = (await session.scalars(select(OutboxMessage))).all()
    # Waiting for the provider does not use up the callback's delivery attempts.
    assert (reminder.attempts, reminder.last_error, reminder.payload["polls"]) == (0, "items in progress", 1)
    provider.complete(messages.idempotency_key(SENDER_ID, "h-2"), Money.parse("1500.00", "XOF"))
    async with target.server.sessions.begin() as session:
        await session.execute(OutboxMessage.__table__.update().values(available_at=func.now()))
    await target.dispatch()
    [callback] = target.callbacks.bodies("/on-disburse")
    assert _outcomes(callback) == [("h-1", "SUCC", ""), ("h-2", "SUCC", "")]


def _status(key: SigningKey, search_type: str, attribute: Any) -> dict[str, Any]:
    asked = {"reference_id": "q-1", "search_type": search_type, "search_attribute": attribute}
    return envelope(key, "status", {"transaction_id": str(uuid.uuid4()), "txnstatus_request": asked})


async def test_a_status_query_is_acknowledged_then_answered_by_a_signed_on_status(target: G2pTarget) -> None:
    await target.post("/disburse", disburse(target.key, item("s-1"), item("s-1"), transaction_id="tx-s"))
    await target.dispatch()
    asked = [
        _status(target.key, "transaction_id", "tx-s"),
        _status(target.key, "reference_id_list", ["s-1", "never-sent"]),
        _status(target.key, "transaction_id", "tx-unknown"),
    ]
    for document in asked:
        answer = await target.post("/disburse/txn/status", document)
        assert answer.json()["message"]["ack"]["status"] == "ACK"
    await target.dispatch()
    answers = target.callbacks.bodies("/disburse/txn/on-status")
    for answer in answers:
        assert standards.validator("g2p-disburse-txn-on-status@1.0.0").issues(answer) == []
        _verified(target, answer)
    by_transaction = {a["message"]["transaction_id"]: a for a in answers}
    whole, listed, unknown = (by_transaction[d["message"]["transaction_id"]] for d in asked)
    assert _outcomes(whole, "txnstatus_response") == [
        ("s-1", "SUCC", ""),
        ("s-1", "RJCT", messages.DUPLICATE),
    ]
    assert _outcomes(listed, "txnstatus_response") == [
        ("s-1", "SUCC", ""),
        ("never-sent", "RJCT", messages.REFERENCE_NOT_FOUND),
    ]
    assert unknown["header"]["status"] == "REJECTED"
    assert unknown["header"]["status_reason_code"] == messages.TRANSACTION_NOT_FOUND


async def test_a_status_query_with_a_mismatched_attribute_is_refused(target: G2pTarget) -> None:
    answer = await target.post("/disburse/txn/status", _status(target.key, "transaction_id", ["a"]))
    assert (answer.status_code, answer.json()["error"]["code"]) == (400, "ERR_INVALID_REQUEST")


async def _search(target: G2pTarget, reference: str, key: SigningKey | None) -> httpx.Response:
    url = f"http://testserver/payments/g2p/disburse/search/{reference}"
    headers = sign_request("GET", url, {}, b"", key) if key is not None else {}
    async with target.client() as client:
        return await client.get(url, headers=headers)


async def test_the_search_by_reference_answers_the_signing_sender_only(target: G2pTarget) -> None:
    await target.post("/disburse", disburse(target.key, item("g-1")))
    await target.dispatch()
    found = await _search(target, "g-1", target.key)
    assert found.status_code == 200
    assert standards.validator("g2p-disburse-search-response@1.0.0").issues(found.json()) == []
    _verified(target, found.json())
    assert _outcomes(found.json()) == [("g-1", "SUCC", "")]
    missing = await _search(target, "g-2", target.key)
    assert _outcomes(missing.json()) == [("g-2", "RJCT", messages.REFERENCE_NOT_FOUND)]
    for reference, key, status, code in [
        ("g-1", None, 401, "auth.signature_missing"),
        ("g-1", SigningKey.generate("EdDSA"), 401, "auth.key_unknown"),
        ("..%2F..%2Fetc", target.key, 404, "route.not_found"),
        ("-leading-dash", target.key, 400, "request.invalid_parameter"),
        ("a%0d%0ab", target.key, 400, "request.invalid_parameter"),
        ("ab%0a", target.key, 400, "request.invalid_parameter"),
    ]:
        refused = await _search(target, reference, key)
        body = refused.json()
        # A path that does not reach the route is the kernel's refusal, in its own error body.
        reason = body["reason_code"] if status == 404 else body["error"]["reason_code"]
        assert (refused.status_code, reason) == (status, code)


async def test_callbacks_refused_by_the_receiver_or_the_egress_rules_are_retried(
    tmp_path: Path, provider: MemoryProvider
) -> None:
    target = await g2p_target(
        tmp_path / "var", provider, callback_url="http://10.0.0.7/spa", allow_private_callbacks=False
    )
    async with target.opened():
        await target.post("/disburse", disburse(target.key, item("e-1")))
        await target.dispatch()
        assert target.callbacks.received == []  # a private address is refused before anything is sent
        async with target.server.sessions() as session:
            [message] = (await session.scalars(select(OutboxMessage))).all()
        assert message.delivered_at is None
        assert message.last_error == "the receiver's URL is not https"

    target = await g2p_target(tmp_path / "var2", provider)
    target.callbacks.status = 500
    async with target.opened():
        await target.post("/disburse", disburse(target.key, item("e-2")))
        await target.dispatch()
        assert len(target.callbacks.received) == 1
        async with target.server.sessions() as session:
            [message] = (await session.scalars(select(OutboxMessage))).all()
        assert message.delivered_at is None
        assert message.last_error == "the receiver answered HTTP 500"


@settings(max_examples=5, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(batches=st.lists(st.lists(st.sampled_from("abcdef"), min_size=1, max_size=5), min_size=1, max_size=3))
async def test_every_reference_is_paid_exactly_once_and_every_item_answered(
    tmp_path: Path, batches: list[list[str]]
) -> None:
    provider = MemoryProvider(max_bulk=3)
    target = await g2p_target(tmp_path / f"var-{uuid.uuid4().hex}", provider)
    async with target.opened():
        for batch in batches:
            await target.post("/disburse", disburse(target.key, *(item(f"ref-{r}") for r in batch)))
        await target.dispatch(2)
    callbacks = target.callbacks.bodies("/on-disburse")
    assert [len(c["message"]["disburse_response"]) for c in callbacks] == [len(b) for b in batches]
    paid = [r for c in callbacks for r, status, _ in _outcomes(c) if status == "SUCC"]
    assert sorted(paid) == sorted({f"ref-{r}" for batch in batches for r in batch})
    assert set(provider.submissions.values()) == {1}


async def test_concurrent_requests_with_one_reference_pay_it_once(
    target: G2pTarget, provider: MemoryProvider
) -> None:
    answers = await asyncio.gather(
        *(target.post("/disburse", disburse(target.key, item("c-1"), item(f"c-own-{n}"))) for n in range(4))
    )
    assert [a.json()["message"]["ack"]["status"] for a in answers] == ["ACK"] * 4
    await target.dispatch()
    outcomes = [o for callback in target.callbacks.bodies("/on-disburse") for o in _outcomes(callback)]
    assert sorted(o for o in outcomes if o[0] == "c-1") == [
        ("c-1", "RJCT", messages.DUPLICATE),
        ("c-1", "RJCT", messages.DUPLICATE),
        ("c-1", "RJCT", messages.DUPLICATE),
        ("c-1", "SUCC", ""),
    ]
    assert len([o for o in outcomes if o[1] == "SUCC"]) == 5
    assert set(provider.submissions.values()) == {1}


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        ("{", "cannot read"),
        ("{}", "is a JSON array"),
        ('[{"sender_id": "s"}]', "each sender has"),
        ('[{"sender_id": "s", "jwks": [], "callback_url": "https://x", "payer_fas": []}]', "each sender has"),
        ('[{"sender_id": "s s", "jwks": {}, "callback_url": "https://x", "payer_fas": []}]', "sender id"),
        ('[{"sender_id": "s", "jwks": {}, "callback_url": "file:///x", "payer_fas": []}]', "http"),
    ],
)
def test_an_unusable_senders_file_is_refused(tmp_path: Path, content: str, problem: str) -> None:
    path = tmp_path / "senders.json"
    path.write_text(content)
    with pytest.raises(ValueError, match=problem):
        load_senders(path)


def test_senders_are_read_from_their_file(tmp_path: Path) -> None:
    key = SigningKey.generate("EdDSA")
    path = tmp_path / "senders.json"
    entry = {"sender_id": SENDER_ID, "jwks": {"keys": [key.public_jwk()]}, "callback_url": "https://spa/cb"}
    path.write_text(json.dumps([{**entry, "payer_fas": ["spa@wallet1"]}]))
    [sender] = load_senders(path).values()
    assert (sender.sender_id, sender.callback_url, sender.payer_fas) == (
        SENDER_ID,
        "https://spa/cb",
        ("spa@wallet1",),
    )


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53) + 1, 2**53 - 1) | st.text(max_size=40),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3)
    ),
    max_leaves=6,
)
_MEMBERS = [("item", name) for name in item("x")] + [
    ("item", "scheduled_timestamp"),
    ("item", "note"),
    ("header", "timestamp"),
    ("header", "receiver_id"),
    ("header", "sender_uri"),
    ("header", "total_count"),
    ("message", "transaction_id"),
]


async def test_signed_requests_with_any_values_are_answered_never_failed(tmp_path: Path) -> None:
    drawn: list[list[tuple[tuple[str, str], Any]]] = []

    # Hypothesis draws the cases; they are sent afterwards, on one server, to keep the test cheap.
    @settings(max_examples=40, database=None, deadline=None)
    @given(changes=st.lists(st.tuples(st.sampled_from(_MEMBERS), _JSON), min_size=1, max_size=3))
    def draw(changes: list[tuple[tuple[str, str], Any]]) -> None:
        drawn.append(changes)

    draw()
    target = await g2p_target(tmp_path / "var", MemoryProvider())
    async with target.opened():
        for changes in drawn:
            document = disburse(
                target.key, item(f"f-{uuid.uuid4().hex[:8]}"), item(f"g-{uuid.uuid4().hex[:8]}")
            )
            for (part, name), value in changes:
                where = document["message"]["disburse_request"][0] if part == "item" else document[part]
                where[name] = value
            answer = await target.post("/disburse", _resign(target.key, document))
            assert answer.status_code in (200, 400, 401, 409), (changes, answer.text)
            assert standards.validator("g2p-disburse-ack@1.0.0").issues(answer.json()) == [], changes
        await target.dispatch(3)
    callbacks = target.callbacks.bodies("/on-disburse")
    assert callbacks
    for callback in callbacks:
        assert standards.validator("g2p-disburse-on-disburse@1.0.0").issues(callback) == []
