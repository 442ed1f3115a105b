"""The g2p-connect adapter: pays through our G2P Connect server in-process (submission acknowledged, status
settled, a resubmitted key never paid twice), and turns every failure of the wire into the contract's
errors (unknown outcome, retryable unavailability, invalid responses); its configuration is checked."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

import httpx
import pytest

from dpi.keys import SigningKey
from payments_adapter.contract import (
    ENTRY_POINT_GROUP,
    FinancialAddress,
    Money,
    OutcomeUnknownError,
    PaymentInstruction,
    ProviderError,
    ProviderState,
)
from payments_adapter.g2p import client as client_module
from payments_adapter.g2p import messages
from payments_adapter.g2p.client import G2pConnectProvider, create_provider
from tests.payments_adapter.g2p_harness import PAYER_FA, SENDER_ID, SYSTEM_ID, G2pTarget, g2p_target
from tests.payments_adapter.memory_provider import MemoryProvider

BASE = "http://testserver/payments/g2p"


def _config(key_file: Path, **changes: str) -> dict[str, str]:
    return {
        "base_url": BASE,
        "sender_id": SENDER_ID,
        "receiver_id": SYSTEM_ID,
        "signing_key": str(key_file),
        "payer_fa": PAYER_FA,
        "max_bulk": "10",
        **changes,
    }


def _pay(key: str, payee: str = "0700123456@wallet1", amount: str = "1500") -> PaymentInstruction:
    return PaymentInstruction(
        key, FinancialAddress.parse(payee), Money.parse(amount, "XOF"), narrative="stipend"
    )


@pytest.fixture
async def provider() -> MemoryProvider:
    return MemoryProvider()


@pytest.fixture
async def target(tmp_path: Path, database_url: str, provider: MemoryProvider) -> AsyncIterator[G2pTarget]:
    built = await g2p_target(tmp_path / "var", provider, database_url=database_url)
    async with built.opened():
        yield built


@pytest.fixture
def key_file(tmp_path: Path, target: G2pTarget) -> Path:
    path = tmp_path / "sender.pem"
    path.write_bytes(target.key.private_pem())
    return path


@pytest.fixture
async def adapter(target: G2pTarget, key_file: Path) -> AsyncIterator[G2pConnectProvider]:
    built = G2pConnectProvider("wallet1", _config(key_file), transport=httpx.ASGITransport(app=target.app))
    yield built
    await built.aclose()


async def test_the_adapter_pays_through_a_g2p_connect_provider(
    adapter: G2pConnectProvider, target: G2pTarget, provider: MemoryProvider
) -> None:
    answers = await adapter.submit_many([_pay("stipend-0001"), _pay("stipend-0002", "blocked7@wallet1")])
    assert [a.state for a in answers if not isinstance(a, ProviderError)] == [ProviderState.ACCEPTED] * 2
    assert (await adapter.status("stipend-0001")).state is ProviderState.ACCEPTED
    await target.dispatch()

    paid = await adapter.status("stipend-0001")
    refused = await adapter.status("stipend-0002")
    never = await adapter.status("stipend-9999")
    assert paid.state is ProviderState.COMPLETED
    assert (refused.state, refused.reason_code) == (ProviderState.REJECTED, "payments.account.blocked")
    assert never.state is ProviderState.NOT_FOUND
    assert provider.credited == {
        messages.idempotency_key(SENDER_ID, "stipend-0001"): Money.parse("1500", "XOF")
    }


async def test_a_resubmitted_key_is_never_paid_twice(
    adapter: G2pConnectProvider, target: G2pTarget, provider: MemoryProvider
) -> None:
    await adapter.submit(_pay("stipend-0003"))
    await target.dispatch()
    again = await adapter.submit(_pay("stipend-0003", amount="9000"))
    await target.dispatch()
    assert again.state is ProviderState.ACCEPTED
    assert (await adapter.status("stipend-0003")).state is ProviderState.COMPLETED
    assert list(provider.credited.values()) == [Money.parse("1500", "XOF")]
    [_, second] = target.callbacks.bodies("/on-disburse")
    assert second["message"]["disburse_response"][0]["status_reason_code"] == messages.DUPLICATE


async def test_an_amount_g2p_connect_cannot_carry_is_refused_alone(
    adapter: G2pConnectProvider, target: G2pTarget
) -> None:
    fils = PaymentInstruction(
        "stipend-0010", FinancialAddress.parse("0700123456@wallet1"), Money.parse("1.125", "KWD")
    )
    refused, accepted = await adapter.submit_many([fils, _pay("stipend-0011")])
    assert isinstance(refused, ProviderError)
    assert refused.reason_code == "payments.currency.not_supported"
    assert not isinstance(accepted, ProviderError)
    assert accepted.state is ProviderState.ACCEPTED
    await target.dispatch()
    assert (await adapter.status("stipend-0010")).state is ProviderState.NOT_FOUND


def _mock(handler: Callable[[httpx.Request], httpx.Response]) -> httpx.MockTransport:
    return httpx.MockTransport(handler)


def _raises(error: Exception) -> Callable[[httpx.Request], httpx.Response]:
    def handler(request: httpx.Request) -> httpx.Response:
        raise error

    return handler


def _nack(code: str) -> Callable[[httpx.Request], httpx.Response]:
    return lambda _r: httpx.Response(
        401, json={"message": {"ack": {"status": "NACK"}}, "error": {"code": code}}
    )


@pytest.mark.parametrize(
    ("handler", "kind", "reason", "retryable"),
    [
        (_raises(httpx.ConnectError("refused")), ProviderError, "payments.provider.unavailable", True),
        (_raises(httpx.ReadTimeout("slow")), OutcomeUnknownError, "payments.outcome.unknown", False),
        (_raises(httpx.RemoteProtocolError("reset")), OutcomeUnknownError, "payments.outcome.unknown", False),
        (lambda _r: httpx.Response(502), OutcomeUnknownError, "payments.outcome.unknown", False),
        (_nack("ERR_INVALID_SIGNATURE"), ProviderError, "payments.provider.error", False),
        (_nack("ERR_SERVICE_UNAVAILABLE"), ProviderError, "payments.provider.unavailable", True),
        (
            lambda _r: httpx.Response(302, headers={"location": "http://elsewhere/"}),
            ProviderError,
            "payments.provider.invalid_response",
            False,
        ),
        (
            lambda _r: httpx.Response(200, content=b"<html>"),
            ProviderError,
            "payments.provider.invalid_response",
            False,
        ),
        (
            lambda _r: httpx.Response(200, content=b" " * (1024 * 1024 + 1)),
            ProviderError,
            "payments.provider.invalid_response",
            False,
        ),
    ],
    ids=[
        "refused",
        "timeout",
        "reset",
        "bad-gateway",
        "nack",
        "nack-unavailable",
        "redirect",
        "html",
        "huge",
    ],
)
async def test_wire_failures_become_the_contracts_errors(
    tmp_path: Path, handler: Any, kind: type[ProviderError], reason: str, retryable: bool
) -> None:
    key_file = tmp_path / "k.pem"
    key_file.write_bytes(SigningKey.generate("EdDSA").private_pem())
    seen: list[httpx.Request] = []

    def recording(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return handler(request)  # type: ignore[no-any-return]

    adapter = G2pConnectProvider("p", _config(key_file, access_token="t0ken"), transport=_mock(recording))
    with pytest.raises(ProviderError) as raised:
        await adapter.submit(_pay("stipend-0004"))
    await adapter.aclose()
    assert type(raised.value) is kind
    assert (raised.value.reason_code, raised.value.retryable) == (reason, retryable)
    assert len(seen) == 1  # never resent, never redirected
    assert seen[0].headers["authorization"] == "Bearer t0ken"


async def test_a_refused_connection_on_the_network_is_retryable(tmp_path: Path) -> None:
    key_file = tmp_path / "k.pem"
    key_file.write_bytes(SigningKey.generate("EdDSA").private_pem())
    adapter = create_provider("p", _config(key_file, base_url="http://127.0.0.1:1/g2p"))
    with pytest.raises(ProviderError) as raised:
        await adapter.submit(_pay("stipend-0005"))
    await adapter.aclose()
    assert (raised.value.reason_code, raised.value.retryable) == ("payments.provider.unavailable", True)


async def test_a_status_answer_that_does_not_verify_or_answers_another_reference_is_refused(
    adapter: G2pConnectProvider, target: G2pTarget, key_file: Path
) -> None:
    await adapter.submit(_pay("stipend-0006"))
    await target.dispatch()
    stranger = SigningKey.generate("EdDSA")
    forged: list[dict[str, Any]] = []

    async def relay(request: httpx.Request) -> httpx.Response:
        async with target.client() as client:
            answer = await client.send(request)
        document = answer.json()
        if request.url.path.startswith("/payments/g2p/disburse/search/") and forged:
            document = forged[0](document)
        return httpx.Response(answer.status_code, json=document)

    resign = lambda d: messages.signed(d["header"], d["message"], stranger)  # noqa: E731
    moved = lambda d: messages.signed(  # noqa: E731
        d["header"],
        {
            **d["message"],
            "disburse_response": [{**d["message"]["disburse_response"][0], "reference_id": "x"}],
        },
        target.server.key(),
    )
    for change in (resign, moved):
        forged[:] = [change]
        tampered = G2pConnectProvider("p", _config(key_file), transport=httpx.MockTransport(relay))
        with pytest.raises(ProviderError) as raised:
            await tampered.status("stipend-0006")
        await tampered.aclose()
        assert raised.value.reason_code == "payments.provider.invalid_response"
    with pytest.raises(ValueError, match="reference"):
        await adapter.status("../../etc")
    with pytest.raises(ValueError, match="reference"):
        await adapter.status("stipend-0006\n")


@pytest.mark.parametrize(
    "changes",
    [
        {"base_url": ""},
        {"base_url": "ftp://wallet.example/g2p"},
        {"base_url": "https://wallet.example/g2p?x=1"},
        {"sender_id": "spa\r\nX-Injected: 1"},
        {"receiver_id": "wal\nlet"},
        {"payer_fa": "not-an-address"},
        {"signing_key": "/nonexistent/key.pem"},
        {"max_bulk": "0"},
        {"max_bulk": "many"},
        {"timeout": "0"},
        {"jwks_url": "file:///etc/passwd"},
        {"access_token": "abc\r\nX-Injected: 1"},
        {"access_token": "abc\n"},
    ],
)
def test_an_unusable_configuration_is_refused(tmp_path: Path, changes: dict[str, str]) -> None:
    key_file = tmp_path / "k.pem"
    key_file.write_bytes(SigningKey.generate("EdDSA").private_pem())
    with pytest.raises(ValueError):  # noqa: PT011 - each case has its own message
        G2pConnectProvider("p", _config(key_file, **changes))


def test_the_adapter_is_registered_and_declares_what_it_does(tmp_path: Path) -> None:
    [entry] = [e for e in entry_points(group=ENTRY_POINT_GROUP) if e.name == "g2p-connect"]
    assert entry.load() is create_provider
    key_file = tmp_path / "k.pem"
    key_file.write_bytes(SigningKey.generate("EdDSA").private_pem())
    adapter = create_provider("wallet1", _config(key_file, currencies="XOF,EUR", address_schemes="wallet1"))
    capabilities = adapter.capabilities
    assert (capabilities.idempotency, capabilities.status_query, capabilities.max_bulk) == (True, True, 10)
    assert capabilities.currencies == ("XOF", "EUR")
    assert not capabilities.single_flight


def test_no_float_in_the_g2p_modules() -> None:
    folder = Path(client_module.__file__).parent
    for path in folder.glob("*.py"):
        assert "float" not in path.read_text(encoding="utf-8"), path.name
