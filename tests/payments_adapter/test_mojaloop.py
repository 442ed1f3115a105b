"""The Mojaloop FSPIOP 1.1 adapter against the simulated hub and payee DFSPs, through their HTTP APIs.

The adapter's callback routes and the simulator are two ASGI apps that call each other in process; every
outcome is checked on both sides: what the adapter reports and what the hub's ledger committed.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from hypothesis import given, settings
from hypothesis import strategies as st
from litestar import Litestar
from litestar.testing import AsyncTestClient

import standards
from dpi.app import create_app
from dpi.blocks import Block
from dpi.settings import Settings
from payments_adapter.contract import (
    FinancialAddress,
    Money,
    OutcomeUnknownError,
    PaymentInstruction,
    ProviderError,
    ProviderState,
)
from payments_adapter.mojaloop import MojaloopProvider, MojaloopSettings, routes, wire
from payments_adapter.mojaloop.simulator import FspiopSimulator, PartyBehaviour, SimulatedParty

PAYER = "spafsp"
HUB = "switch"
CALLBACKS = "http://payer.test/fspiop/hub1"
WALLET = "walletfsp"

PARTIES = [
    SimulatedParty(WALLET, "MSISDN", "0700000001", "Amina", "Diallo"),
    SimulatedParty(WALLET, "MSISDN", "0700000002", "Youssef", "Benali", PartyBehaviour.REJECT_TRANSFER),
    SimulatedParty(WALLET, "MSISDN", "0700000003", "Awa", "Ndiaye", PartyBehaviour.REJECT_QUOTE),
    SimulatedParty(WALLET, "MSISDN", "0700000004", "Omar", "Sy", PartyBehaviour.SILENT),
    SimulatedParty(WALLET, "MSISDN", "0700000005", "Fatou", "Ba", PartyBehaviour.LATE),
    SimulatedParty(WALLET, "MSISDN", "0700000006", "Moussa", "Kane", PartyBehaviour.WRONG_FULFILMENT),
    SimulatedParty("bankfsp", "MSISDN", "0700000009", "Ibrahima", "Fall"),
]


class _Deferred:
    """An ASGI app set after construction, so that the two apps can point at each other."""

    app: Any = None

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        await self.app(scope, receive, send)


@dataclass
class World:
    provider: MojaloopProvider
    simulator: FspiopSimulator
    payer_app: Litestar

    def callbacks(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(transport=httpx.ASGITransport(app=self.payer_app), base_url=CALLBACKS)


@asynccontextmanager
async def world(
    *,
    callback_timeout: timedelta = timedelta(seconds=3),
    wrap: Callable[[httpx.AsyncBaseTransport], httpx.AsyncBaseTransport] | None = None,
    settings: dict[str, Any] | None = None,
    **simulator: Any,
) -> AsyncIterator[World]:
    hub = _Deferred()
    transport: httpx.AsyncBaseTransport = httpx.ASGITransport(app=hub)
    provider = MojaloopProvider(
        "hub1",
        MojaloopSettings(
            base_url="http://hub.test",
            fsp_id=PAYER,
            hub_id=HUB,
            payer_identifier="youth-stipend",
            fsp_ids={"wallet1": WALLET, "bank2": "bankfsp"},
            callback_timeout=callback_timeout,
            **(settings or {}),
        ),
        transport=wrap(transport) if wrap else transport,
    )
    payer_app = Litestar(route_handlers=[routes(provider)], openapi_config=None)
    simulated = FspiopSimulator(
        parties=PARTIES,
        participants={PAYER: CALLBACKS},
        callback_transport=httpx.ASGITransport(app=payer_app),
        hub_id=HUB,
        **simulator,
    )
    hub.app = simulated.app
    try:
        yield World(provider, simulated, payer_app)
    finally:
        await simulated.aclose()
        await provider.aclose()


def pay(
    account: str, amount: str = "1500", currency: str = "XOF", key: str = "P1-C1-B0001-E1"
) -> PaymentInstruction:
    return PaymentInstruction(
        key, FinancialAddress.parse(f"{account}@wallet1"), Money.parse(amount, currency), narrative="stipend"
    )


# -- resolve -------------------------------------------------------------------------------------------


async def test_resolve_returns_the_party_name_for_the_payee_name_check() -> None:
    async with world() as w:
        found = await w.provider.resolve(FinancialAddress.parse("0700000001@wallet1"))
    assert found.resolved
    assert found.holder_name == "Amina Diallo"
    assert found.reason_code is None


@pytest.mark.parametrize(
    ("address", "reason"),
    [
        ("0799999999@wallet1", "payments.address.not_found"),
        # The party exists, but at another DFSP than the beneficiary chose.
        ("0700000009@wallet1", "payments.address.not_found"),
        ("0700000001@bank2", "payments.address.not_found"),
        ("..@wallet1", "payments.address.invalid"),
        ("0700000001@-wallet", "payments.address.invalid"),
        (f"0700000001@{'w' * 40}", "payments.address.invalid"),
    ],
)
async def test_resolve_refuses_addresses_the_hub_cannot_pay(address: str, reason: str) -> None:
    async with world() as w:
        found = await w.provider.resolve(FinancialAddress.parse(address))
    assert not found.resolved
    assert found.reason_code == reason
    assert found.holder_name is None


async def test_a_party_answered_from_another_fsp_than_the_address_names_is_not_resolved() -> None:
    async with world(wrap=lambda _inner: httpx.MockTransport(lambda _request: httpx.Response(202))) as w:
        lookup = asyncio.create_task(w.provider.resolve(FinancialAddress.parse("0700000001@wallet1")))
        await asyncio.sleep(0.01)
        party = {
            "party": {
                "partyIdInfo": {"partyIdType": "MSISDN", "partyIdentifier": "0700000001", "fspId": "bankfsp"}
            }
        }
        async with w.callbacks() as client:
            answer = await client.put(
                "/parties/MSISDN/0700000001",
                content=json.dumps(party),
                headers=_callback_headers(**{"Content-Type": wire.content_type("parties")}),
            )
        found = await lookup
    assert answer.status_code == 200
    assert (found.resolved, found.reason_code) == (False, "payments.address.invalid")


# -- submit --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("amount", "currency", "wire_amount"), [("1500", "XOF", "1500"), ("12.50", "USD", "12.5")]
)
async def test_submit_quotes_then_transfers_and_completes_on_a_valid_fulfilment(
    amount: str, currency: str, wire_amount: str
) -> None:
    async with world() as w:
        status = await w.provider.submit(pay("0700000001", amount, currency))
        await w.simulator.settle()
        ledger = list(w.simulator.transfers.values())
    assert status.state is ProviderState.COMPLETED
    assert status.at is not None
    assert status.provider_reference == wire.correlation_id(PAYER, "transfer", "P1-C1-B0001-E1")
    assert [t.amount for t in ledger] == [Money.parse(amount, currency)]
    assert ledger[0].state == "COMMITTED"
    quote = next(iter(w.simulator.quotes.values()))
    assert quote.answer is not None
    assert quote.answer[1]["transferAmount"] == {"amount": wire_amount, "currency": currency}


async def test_resubmitting_a_key_resends_the_same_transfer_and_pays_once() -> None:
    async with world() as w:
        first = await w.provider.submit(pay("0700000001"))
        again = await w.provider.submit(pay("0700000001"))
        together = await asyncio.gather(*(w.provider.submit(pay("0700000001")) for _ in range(3)))
        await w.simulator.settle()
        paid = w.simulator.committed("0700000001")
    assert {s.state for s in (first, again, *together)} == {ProviderState.COMPLETED}
    assert {s.provider_reference for s in (first, again, *together)} == {first.provider_reference}
    assert paid == [Money.parse("1500", "XOF")]


async def test_the_same_key_with_other_content_is_a_modified_request_not_a_rejection() -> None:
    async with world() as w:
        await w.provider.submit(pay("0700000001"))
        with pytest.raises(ProviderError) as raised:
            await w.provider.submit(pay("0700000001", amount="2500"))
        await w.simulator.settle()
        paid = w.simulator.committed("0700000001")
    assert raised.value.reason_code == "payments.request.duplicate"
    assert not raised.value.retryable
    assert paid == [Money.parse("1500", "XOF")]


async def test_a_resubmission_under_a_quote_the_hub_forgot_is_settled_by_the_ledger_not_paid_again() -> None:
    async with world() as w:
        first = await w.provider.submit(pay("0700000001"))
        await w.simulator.settle()
        # A quoting service that keeps no quotes answers the resend with a fresh quote: another
        # condition and expiry, so the same transferId comes with another body (error 3106).
        w.simulator.quotes.clear()
        again = await w.provider.submit(pay("0700000001"))
        await w.simulator.settle()
        w.simulator.quotes.clear()
        w.simulator.behave("MSISDN", "0700000001", PartyBehaviour.REJECT_QUOTE)
        refused_quote = await w.provider.submit(pay("0700000001"))
        await w.simulator.settle()
    assert (first.state, again.state, refused_quote.state) == (ProviderState.COMPLETED,) * 3
    assert any(d.body.get("errorInformation", {}).get("errorCode") == "3106" for d in w.simulator.deliveries)
    assert w.simulator.committed("0700000001") == [Money.parse("1500", "XOF")]


@pytest.mark.parametrize(
    ("account", "reason", "transfers"),
    [
        ("0700000002", "payments.payee.rejected", 1),
        ("0700000003", "payments.payee.rejected", 0),
        ("0799999999", "payments.address.not_found", 0),
    ],
)
async def test_refusals_are_rejected_with_their_reason_and_nothing_is_paid(
    account: str, reason: str, transfers: int
) -> None:
    async with world() as w:
        status = await w.provider.submit(pay(account))
        await w.simulator.settle()
    assert status.state is ProviderState.REJECTED
    assert status.reason_code == reason
    assert len(w.simulator.transfers) == transfers
    assert all(t.state == "ABORTED" for t in w.simulator.transfers.values())


async def test_payer_liquidity_exhausted_is_insufficient_funds() -> None:
    async with world(liquidity={"XOF": Decimal("2000")}) as w:
        first = await w.provider.submit(pay("0700000001", key="P1-C1-B0001-E1"))
        second = await w.provider.submit(pay("0700000001", key="P1-C1-B0001-E2"))
        await w.simulator.settle()
    assert first.state is ProviderState.COMPLETED
    assert (second.state, second.reason_code) == (ProviderState.REJECTED, "payments.payer.insufficient_funds")
    assert w.simulator.committed("0700000001") == [Money.parse("1500", "XOF")]


@pytest.mark.parametrize("address", ["..@wallet1", "0700000001@-wallet", f"0700000001@{'w' * 40}"])
async def test_an_address_that_names_no_fsp_or_no_path_is_rejected_before_any_request(address: str) -> None:
    async with world() as w:
        instruction = PaymentInstruction(
            "P1-C1-B0001-E1", FinancialAddress.parse(address), Money.parse("1", "XOF")
        )
        status = await w.provider.submit(instruction)
    assert (status.state, status.reason_code) == (ProviderState.REJECTED, "payments.address.invalid")
    assert w.simulator.quotes == {}


async def test_a_currency_the_provider_does_not_pay_in_is_rejected_before_any_request() -> None:
    async with world(settings={"currencies": ("XOF",)}) as w:
        status = await w.provider.submit(pay("0700000001", "10.00", "USD"))
    assert (status.state, status.reason_code) == (ProviderState.REJECTED, "payments.currency.not_supported")
    assert w.simulator.quotes == {}


# -- unknown outcomes and status -----------------------------------------------------------------------


async def test_a_callback_that_never_comes_is_unknown_until_the_hub_aborts_at_expiry() -> None:
    async with world(
        callback_timeout=timedelta(milliseconds=200), quote_ttl=timedelta(milliseconds=700)
    ) as w:
        with pytest.raises(OutcomeUnknownError):
            await w.provider.submit(pay("0700000004"))
        pending = await w.provider.status("P1-C1-B0001-E1")
        await asyncio.sleep(0.7)
        await w.simulator.settle()
        final = await w.provider.status("P1-C1-B0001-E1")
    assert pending.state is ProviderState.ACCEPTED
    assert (final.state, final.reason_code) == (ProviderState.REJECTED, "payments.request.expired")
    assert w.simulator.committed("0700000004") == []


async def test_a_late_callback_is_settled_by_a_status_query_not_a_resend() -> None:
    async with world(callback_timeout=timedelta(milliseconds=100), late_by=timedelta(milliseconds=300)) as w:
        with pytest.raises(OutcomeUnknownError):
            await w.provider.submit(pay("0700000005"))
        await asyncio.sleep(0.3)
        await w.simulator.settle()
        status = await w.provider.status("P1-C1-B0001-E1")
        late = [d for d in w.simulator.deliveries if d.path.startswith("/transfers/")]
    assert status.state is ProviderState.COMPLETED
    assert w.simulator.committed("0700000005") == [Money.parse("1500", "XOF")]
    # The late callback was for a transfer this adapter sent: accepted, though nobody waited any more.
    assert late[0].status == 200


async def test_a_fulfilment_that_does_not_match_the_condition_is_never_completed() -> None:
    async with world() as w:
        with pytest.raises(OutcomeUnknownError):
            await w.provider.submit(pay("0700000006"))
        with pytest.raises(ProviderError) as raised:
            await w.provider.status("P1-C1-B0001-E1")
    assert raised.value.reason_code == "payments.provider.invalid_response"


async def test_status_of_a_key_never_submitted_is_not_found() -> None:
    async with world() as w:
        status = await w.provider.status("P1-C1-B9999-E1")
    assert status.state is ProviderState.NOT_FOUND


class _LoseTransferAnswers(httpx.AsyncBaseTransport):
    """Lets POST /transfers reach the hub, then loses the answer (a timeout after sending)."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self.inner = inner

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self.inner.handle_async_request(request)
        if request.method == "POST" and request.url.path == "/transfers":
            raise httpx.ReadTimeout("lost", request=request)
        return response


async def test_a_lost_answer_after_sending_is_unknown_and_the_status_query_finds_the_payment() -> None:
    async with world(wrap=_LoseTransferAnswers) as w:
        with pytest.raises(OutcomeUnknownError):
            await w.provider.submit(pay("0700000001"))
        await w.simulator.settle()
        status = await w.provider.status("P1-C1-B0001-E1")
    assert status.state is ProviderState.COMPLETED
    assert w.simulator.committed("0700000001") == [Money.parse("1500", "XOF")]


class _Refuse(httpx.AsyncBaseTransport):
    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self.inner = inner

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)


async def test_a_hub_that_refuses_connections_is_retryable_and_nothing_was_sent() -> None:
    async with world(wrap=_Refuse) as w:
        with pytest.raises(ProviderError) as raised:
            await w.provider.submit(pay("0700000001"))
    assert not isinstance(raised.value, OutcomeUnknownError)
    assert (raised.value.reason_code, raised.value.retryable) == ("payments.provider.unavailable", True)
    assert w.simulator.transfers == {}


async def test_a_hub_that_does_not_speak_1_1_is_a_provider_error() -> None:
    def not_acceptable(request: httpx.Request) -> httpx.Response:
        body = wire.error_body("3001", "unsupported version", versions=False)
        body["errorInformation"]["extensionList"] = {"extension": [{"key": "2", "value": "0"}]}
        return httpx.Response(406, json=body)

    async with world(wrap=lambda _inner: httpx.MockTransport(not_acceptable)) as w:
        with pytest.raises(ProviderError) as raised:
            await w.provider.resolve(FinancialAddress.parse("0700000001@wallet1"))
    assert (raised.value.reason_code, raised.value.retryable) == ("payments.provider.error", False)


# -- the simulator's own FSPIOP behaviour --------------------------------------------------------------


def _headers(resource: str, **extra: str) -> dict[str, str]:
    return {
        "Accept": wire.accept(resource),
        "Content-Type": wire.content_type(resource),
        "Date": wire.http_date(),
        "FSPIOP-Source": PAYER,
        **extra,
    }


@pytest.mark.parametrize(
    ("change", "status", "code"),
    [
        ({"Accept": "application/vnd.interoperability.parties+json;version=2"}, 406, "3001"),
        ({"Accept": "application/json"}, 406, "3001"),
        ({"Date": ""}, 400, "3102"),
        ({"FSPIOP-Source": "strangerfsp"}, 400, "3000"),
    ],
)
async def test_the_simulator_refuses_requests_fspiop_does_not_allow(
    change: dict[str, str], status: int, code: str
) -> None:
    async with world() as w:
        client = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=w.simulator.app), base_url="http://hub.test"
        )
        async with client:
            response = await client.get("/parties/MSISDN/0700000001", headers=_headers("parties") | change)
    assert response.status_code == status
    assert response.json()["errorInformation"]["errorCode"] == code
    if code == "3001":
        assert response.json()["errorInformation"]["extensionList"] == {
            "extension": [{"key": "1", "value": "1"}]
        }


async def test_a_modified_transfer_under_an_existing_id_gets_error_3106_and_changes_nothing() -> None:
    async with world() as w:
        await w.provider.submit(pay("0700000001"))
        transfer = next(iter(w.simulator.transfers.values()))
        body = {
            "transferId": transfer.transfer_id,
            "payeeFsp": WALLET,
            "payerFsp": PAYER,
            "amount": {"currency": "XOF", "amount": "9000"},
            "ilpPacket": transfer.ilp_packet,
            "condition": transfer.condition,
            "expiration": wire.fspiop_datetime(transfer.expiration),
        }
        client = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=w.simulator.app), base_url="http://hub.test"
        )
        async with client:
            response = await client.post(
                "/transfers", content=json.dumps(body), headers=_headers("transfers")
            )
        await w.simulator.settle()
    assert response.status_code == 202
    assert w.simulator.deliveries[-1].path == f"/transfers/{transfer.transfer_id}/error"
    assert w.simulator.deliveries[-1].body["errorInformation"]["errorCode"] == "3106"
    assert w.simulator.committed("0700000001") == [Money.parse("1500", "XOF")]


# -- callbacks: authenticated as far as FSPIOP allows --------------------------------------------------


def _callback_headers(**extra: str) -> dict[str, str]:
    return {
        "Content-Type": wire.content_type("transfers"),
        "Date": wire.http_date(),
        "FSPIOP-Source": HUB,
        "FSPIOP-Destination": PAYER,
        **extra,
    }


_RESERVED = json.dumps({"transferState": "RESERVED"})


@pytest.mark.parametrize(
    ("headers", "body", "status", "code"),
    [
        ({"Content-Type": "application/json"}, _RESERVED, 400, "3101"),
        (
            {"Content-Type": "application/vnd.interoperability.quotes+json;version=1.1"},
            _RESERVED,
            400,
            "3101",
        ),
        (
            {"Content-Type": "application/vnd.interoperability.transfers+json;version=2.0"},
            _RESERVED,
            406,
            "3001",
        ),
        ({"Date": ""}, _RESERVED, 400, "3102"),
        ({"FSPIOP-Source": "evilfsp"}, _RESERVED, 403, "3000"),
        ({"FSPIOP-Destination": "otherfsp"}, _RESERVED, 400, "3100"),
        ({}, "{not json", 400, "3101"),
        ({}, "{}", 400, "3102"),
        ({}, json.dumps({"transferState": "PAID"}), 400, "3101"),
        ({}, json.dumps({"transferState": "COMMITTED", "fulfilment": "short"}), 400, "3101"),
        ({}, json.dumps({"transferState": "RESERVED", "pad": "x" * 70_000}), 413, None),
        ({}, '{"transferState": "RESERVED", "extensionList": ' + "[" * 500 + "]" * 500 + "}", 400, "3101"),
        ({}, "[" * 5000 + "]" * 5000, 400, "3101"),
        ({}, json.dumps(["RESERVED"]), 400, "3101"),
    ],
)
async def test_callbacks_that_are_not_authentic_or_not_valid_are_refused_and_change_nothing(
    headers: dict[str, str], body: str, status: int, code: str | None
) -> None:
    async with world(wrap=lambda _inner: httpx.MockTransport(lambda _request: httpx.Response(202))) as w:
        waiting = asyncio.create_task(w.provider.status("P1-C1-B0001-E1"))
        await asyncio.sleep(0.01)
        transfer_id = wire.correlation_id(PAYER, "transfer", "P1-C1-B0001-E1")
        async with w.callbacks() as client:
            refused = await client.put(
                f"/transfers/{transfer_id}", content=body, headers=_callback_headers(**headers)
            )
            assert not waiting.done()
            accepted = await client.put(
                f"/transfers/{transfer_id}", content=_RESERVED, headers=_callback_headers()
            )
        status_after = await waiting
    assert refused.status_code == status
    if code is not None:
        assert refused.json()["errorInformation"]["errorCode"] == code
    assert accepted.status_code == 200
    assert status_after.state is ProviderState.ACCEPTED


@pytest.mark.parametrize(
    ("path", "code"),
    [
        ("/transfers/5f2c3d8e-0b1a-4c7d-9e6f-1a2b3c4d5e6f", "3208"),
        ("/transfers/5f2c3d8e-0b1a-4c7d-9e6f-1a2b3c4d5e6f/error", "3208"),
        ("/quotes/5f2c3d8e-0b1a-4c7d-9e6f-1a2b3c4d5e6f", "3205"),
        ("/parties/MSISDN/0700000001", "3204"),
        ("/parties/MSISDN/a%0D%0Ab", "3204"),
    ],
)
async def test_a_callback_for_a_request_never_sent_is_refused(path: str, code: str) -> None:
    resource = path.split("/")[1]
    async with world() as w, w.callbacks() as client:
        response = await client.put(
            path,
            content=_RESERVED,
            headers=_callback_headers(**{"Content-Type": wire.content_type(resource)}),
        )
    assert response.status_code == 404
    assert response.json()["errorInformation"]["errorCode"] == code


# -- FSPIOP-Signature ----------------------------------------------------------------------------------


async def test_signed_requests_and_callbacks_verify_end_to_end() -> None:
    payer_key, hub_key, wallet_key = (ec.generate_private_key(ec.SECP256R1()) for _ in range(3))
    async with world(
        settings={
            "signing_key": payer_key,
            "signing_algorithm": "ES256",
            "verify_keys": {HUB: hub_key.public_key(), WALLET: wallet_key.public_key()},
        },
        signing_keys={HUB: hub_key, WALLET: wallet_key},
        signing_algorithm="ES256",
        verify_keys={PAYER: payer_key.public_key()},
    ) as w:
        status = await w.provider.submit(pay("0700000001"))
    assert status.state is ProviderState.COMPLETED


async def test_callbacks_signed_with_another_key_are_refused_and_the_payment_is_not_made() -> None:
    hub_key, wallet_key, impostor = (ec.generate_private_key(ec.SECP256R1()) for _ in range(3))
    async with world(
        callback_timeout=timedelta(milliseconds=300),
        settings={"verify_keys": {HUB: hub_key.public_key(), WALLET: wallet_key.public_key()}},
        signing_keys={HUB: hub_key, WALLET: impostor},
        signing_algorithm="ES256",
    ) as w:
        with pytest.raises(ProviderError) as raised:
            await w.provider.submit(pay("0700000001"))
        await w.simulator.settle()
    assert (raised.value.reason_code, raised.value.retryable) == ("payments.provider.unavailable", True)
    assert [d.status for d in w.simulator.deliveries] == [400]
    assert w.simulator.transfers == {}


async def test_unsigned_requests_are_refused_by_a_hub_that_requires_signatures() -> None:
    payer_key = ec.generate_private_key(ec.SECP256R1())
    async with world(verify_keys={PAYER: payer_key.public_key()}) as w:
        status = await w.provider.submit(pay("0700000001"))
    assert (status.state, status.reason_code) == (ProviderState.REJECTED, "payments.provider.error")
    assert w.simulator.quotes == {}


# -- mounted in a block -------------------------------------------------------------------------------


async def test_the_callback_routes_mount_in_a_block_and_document_their_fspiop_bodies(
    sqlite_settings: Settings,
) -> None:
    provider = MojaloopProvider("hub1", MojaloopSettings(base_url="http://hub.test", fsp_id=PAYER))
    block = Block("payments", "/payments", "0.1.0", routes=lambda _context: [routes(provider)])
    transfer_id = wire.correlation_id(PAYER, "transfer", "P1-C1-B0001-E1")
    try:
        async with AsyncTestClient(app=create_app(sqlite_settings, blocks=[block])) as client:
            document = (await client.get("/openapi.json")).json()
            response = await client.put(
                f"/payments/fspiop/hub1/transfers/{transfer_id}",
                content=_RESERVED,
                headers=_callback_headers(),
            )
    finally:
        await provider.aclose()
    operation = document["paths"]["/payments/fspiop/hub1/transfers/{id}"]["put"]
    assert operation["requestBody"]["content"][wire.content_type("transfers")]["schema"] == {
        "$ref": "#/components/schemas/fspiop-transfers-put-1.1.0"
    }
    error = document["paths"]["/payments/fspiop/hub1/parties/{id_type}/{identifier}/error"]["put"]
    assert error["requestBody"]["content"][wire.content_type("parties")]["schema"] == {
        "$ref": "#/components/schemas/fspiop-error-1.1.0"
    }
    assert response.status_code == 404
    assert response.json()["errorInformation"]["errorCode"] == "3208"


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4)
    ),
    max_leaves=12,
)
_TRANSFER_PUT = st.fixed_dictionaries(
    {"transferState": st.sampled_from(["RECEIVED", "RESERVED", "COMMITTED", "ABORTED", "PAID", ""])},
    optional={"fulfilment": st.text(max_size=50), "completedTimestamp": st.text(max_size=30), "x": _JSON},
)


@settings(max_examples=3, deadline=None)
@given(st.lists(st.one_of(_JSON, _TRANSFER_PUT), min_size=8, max_size=8))
def test_no_callback_body_makes_the_routes_fail_or_settles_a_payment_it_does_not_describe(
    bodies: list[Any],
) -> None:
    async def deliver() -> list[tuple[int, ProviderState | None]]:
        outcomes: list[tuple[int, ProviderState | None]] = []
        async with world(
            callback_timeout=timedelta(milliseconds=20),
            wrap=lambda _inner: httpx.MockTransport(lambda _request: httpx.Response(202)),
        ) as w:
            for index, body in enumerate(bodies):
                key = f"P1-C1-B{index:04d}-E1"
                waiting = asyncio.create_task(w.provider.status(key))
                await asyncio.sleep(0)
                async with w.callbacks() as client:
                    response = await client.put(
                        f"/transfers/{wire.correlation_id(PAYER, 'transfer', key)}",
                        content=json.dumps(body),
                        headers=_callback_headers(),
                    )
                try:
                    outcomes.append((response.status_code, (await waiting).state))
                except ProviderError:
                    outcomes.append((response.status_code, None))
        return outcomes

    for body, (status, state) in zip(bodies, asyncio.run(deliver()), strict=True):
        valid = standards.validator("fspiop-transfers-put").is_valid(body)
        assert status == (200 if valid else 400)
        if not valid:
            assert state is None
