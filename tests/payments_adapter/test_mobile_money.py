"""The mobile-money adapter against an operator that implements the MoMo-style disbursement API.

The operator below is a small ASGI application holding transfers, wallets and tokens; the adapter
reaches it through httpx's ASGI transport, wrapped by a network that can refuse a connection, time
out, or lose a response after the operator acted on the request.
"""

from __future__ import annotations

import asyncio
import base64
import json
import re
import secrets
import socket
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, MutableMapping
from decimal import Decimal
from importlib.metadata import entry_points
from typing import Any

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import standards
from payments_adapter.contract import (
    ENTRY_POINT_GROUP,
    FinancialAddress,
    Money,
    OutcomeUnknownError,
    PaymentInstruction,
    ProviderError,
    ProviderState,
)
from payments_adapter.mobile_money import (
    DEFAULT_FIELDS,
    MobileMoneyProvider,
    MobileMoneySettings,
    create_provider,
    reference_id,
)

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]

BASE_URL = "https://momo.example/api"
CLIENT_ID = "4f7a2c1e-6d0b-4b7e-9f57-2a1c8d3e5b60"
CLIENT_SECRET = "s3cr3t-api-key"


def _get(document: Any, path: str) -> Any:
    for step in path.split("."):
        document = document.get(step) if isinstance(document, dict) else None
    return document


def _put(document: dict[str, Any], path: str, value: Any) -> None:
    *parents, last = path.split(".")
    for step in parents:
        document = document.setdefault(step, {})
    document[last] = value


class Operator:
    """A mobile-money operator's disbursement API (MTN MoMo's shape unless told otherwise)."""

    def __init__(
        self,
        *,
        fields: Mapping[str, str] = DEFAULT_FIELDS,
        transfer_path: str = "/disbursement/v1_0/transfer",
        statuses: Mapping[str, str] | None = None,
    ) -> None:
        self.fields = fields
        self.transfer_path = "/api" + transfer_path
        self.statuses = statuses or {"completed": "SUCCESSFUL", "rejected": "FAILED"}
        self.wallets = {"0700000001": ("Amina", "Diallo"), "0700000002": ("Youssef", "Benali")}
        self.currencies = {"XOF"}
        self.transfers: dict[str, dict[str, Any]] = {}
        self.tokens: set[str] = set()
        self.token_requests = 0
        self.requests: list[tuple[str, str]] = []
        self.raw_paths: list[bytes] = []
        # Faults the next matching request meets: path fragment -> what happens.
        self.faults: dict[str, str] = {}
        self.token_body: dict[str, Any] | None = None
        # Every body of the default shape, checked against its schema in standards/.
        self.schema_issues: list[tuple[str, Any]] = []
        self.schemas_checked: set[str] = set()

    def check(self, schema: str, document: Any) -> None:
        if self.fields is DEFAULT_FIELDS:
            self.schemas_checked.add(schema)
            self.schema_issues.extend(
                (schema, issue) for issue in standards.validator(schema).issues(document)
            )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        assert scope["type"] == "http"
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        method, path = scope["method"], scope["path"]
        self.requests.append((method, path))
        self.raw_paths.append(scope["raw_path"])
        headers = {name.decode().lower(): value.decode() for name, value in scope["headers"]}
        fault = next((self.faults.pop(f) for f in list(self.faults) if f in path), None)
        status, document, extra = await self._answer(method, path, headers, body, fault)
        payload = document if isinstance(document, bytes) else json.dumps(document).encode()
        response_headers = [(b"content-type", b"application/json"), *extra]
        await send({"type": "http.response.start", "status": status, "headers": response_headers})
        await send({"type": "http.response.body", "body": payload})

    async def _answer(
        self, method: str, path: str, headers: dict[str, str], body: bytes, fault: str | None
    ) -> tuple[int, Any, list[tuple[bytes, bytes]]]:
        if fault == "503-before":
            return 503, {"code": "SERVICE_UNAVAILABLE"}, []
        if fault == "redirect":
            return 307, {}, [(b"location", b"https://elsewhere.example/collect")]
        if fault == "huge":
            return 200, b'{"pad": "' + b"x" * 200_000 + b'"}', []
        if fault == "not-json":
            return 200, b"<html>maintenance</html>", []
        if path == "/api/disbursement/token/" and method == "POST":
            return self._token(headers, body)
        if headers.get("authorization", "").removeprefix("Bearer ") not in self.tokens:
            return 401, {"code": "UNAUTHORIZED"}, []
        if path == self.transfer_path and method == "POST":
            status, document = self._transfer(headers, body)
            if fault == "500-after":
                return 500, {"code": "INTERNAL_PROCESSING_ERROR"}, []
            if fault == "slow-after":
                await asyncio.sleep(30)
            return status, document, []
        if path.startswith(self.transfer_path + "/") and method == "GET":
            return self._status(path.removeprefix(self.transfer_path + "/"))
        holder = re.fullmatch(r"/api/disbursement/v1_0/accountholder/msisdn/([^/]+)/basicuserinfo", path)
        if holder and method == "GET":
            wallet = self.wallets.get(holder.group(1))
            if wallet is None:
                return 404, {"code": "RESOURCE_NOT_FOUND"}, []
            info = {"given_name": wallet[0], "family_name": wallet[1], "name": " ".join(wallet)}
            self.check("momo-account-holder@1.0.0", info)
            return 200, info, []
        return 404, {"code": "RESOURCE_NOT_FOUND"}, []

    def _token(self, headers: dict[str, str], body: bytes) -> tuple[int, Any, list[tuple[bytes, bytes]]]:
        self.token_requests += 1
        expected = base64.b64encode(f"{CLIENT_ID}:{CLIENT_SECRET}".encode()).decode()
        if (
            headers.get("authorization") != f"Basic {expected}"
            or b"grant_type=client_credentials" not in body
        ):
            return 401, {"error": "invalid_client"}, []
        if self.token_body is not None:
            return 200, self.token_body, []
        token = secrets.token_urlsafe(24)
        self.tokens.add(token)
        return 200, {"access_token": token, "token_type": "access_token", "expires_in": 3600}, []

    def _transfer(self, headers: dict[str, str], body: bytes) -> tuple[int, Any]:
        reference = headers.get("x-reference-id", "")
        try:
            uuid.UUID(reference)
            document = json.loads(body)
        except ValueError:
            return 400, {"code": "INVALID_REQUEST"}
        amount = _get(document, self.fields["amount"])
        if not isinstance(amount, str) or not re.fullmatch(r"[0-9]+(\.[0-9]+)?", amount):
            return 400, {"code": "INVALID_AMOUNT"}
        if _get(document, self.fields["currency"]) not in self.currencies:
            return 400, {"code": "INVALID_CURRENCY"}
        self.check("momo-transfer@1.0.0", document)
        if reference in self.transfers:
            return 409, {"code": "RESOURCE_ALREADY_EXIST"}
        payee = _get(document, self.fields["payee_id"])
        record = dict(document)
        if payee in self.wallets:
            _put(record, self.fields["status"], self.statuses["completed"])
            _put(record, self.fields["transaction_id"], f"FT{len(self.transfers) + 1:08d}")
        else:
            _put(record, self.fields["status"], self.statuses["rejected"])
            _put(record, self.fields["reason"], "PAYEE_NOT_FOUND")
        self.transfers[reference] = record
        return 202, b""

    def _status(self, reference: str) -> tuple[int, Any, list[tuple[bytes, bytes]]]:
        record = self.transfers.get(reference)
        if record is None:
            return 404, {"code": "RESOURCE_NOT_FOUND"}, []
        self.check("momo-transfer-status@1.0.0", record)
        return 200, record, []

    def paid(self, key: str) -> int:
        return sum(1 for reference in self.transfers if reference == reference_id(key))


class Network(httpx.AsyncBaseTransport):
    """The way to the operator, with one-shot faults keyed by a fragment of the path."""

    def __init__(self, operator: Operator) -> None:
        self.inner = httpx.ASGITransport(app=operator)
        self.faults: dict[str, str] = {}

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        fault = next((self.faults.pop(f) for f in list(self.faults) if f in request.url.path), None)
        if fault == "refuse":
            raise httpx.ConnectError("connection refused", request=request)
        if fault == "connect-timeout":
            raise httpx.ConnectTimeout("connect timed out", request=request)
        response = await self.inner.handle_async_request(request)
        if fault == "lose-response":
            await response.aclose()
            raise httpx.ReadTimeout("read timed out", request=request)
        if fault == "reset":
            await response.aclose()
            raise httpx.RemoteProtocolError("peer closed connection without response", request=request)
        return response


class Clock:
    def __init__(self) -> None:
        self.ns = 1_000_000_000

    def __call__(self) -> int:
        return self.ns


def config(**overrides: str) -> dict[str, str]:
    return {
        "base_url": BASE_URL,
        "client_id": CLIENT_ID,
        "client_secret": CLIENT_SECRET,
        "header.X-Target-Environment": "sandbox",
        "currencies": "XOF",
        "address_schemes": "wallet1",
        "timeout_ms": "200",
        **overrides,
    }


Connect = Callable[..., MobileMoneyProvider]


@pytest.fixture
def operator() -> Operator:
    return Operator()


@pytest.fixture
def network(operator: Operator) -> Network:
    return Network(operator)


@pytest.fixture
async def connect(network: Network) -> AsyncIterator[Connect]:
    made: list[MobileMoneyProvider] = []

    def connect_(clock: Callable[[], int] | None = None, **overrides: str) -> MobileMoneyProvider:
        options: dict[str, Any] = {"transport": network}
        if clock is not None:
            options["clock"] = clock
        provider = MobileMoneyProvider(
            "wallet1", MobileMoneySettings.from_config(config(**overrides)), **options
        )
        made.append(provider)
        return provider

    yield connect_
    for provider in made:
        await provider.aclose()


def pay(number: int, amount: str = "1500", account: str = "0700000001") -> PaymentInstruction:
    return PaymentInstruction(
        f"PRG1-C01-B{number:04d}-E1",
        FinancialAddress(account, "wallet1"),
        Money.parse(amount, "XOF"),
        narrative="Youth stipend 11/2026",
    )


# -- transfers -----------------------------------------------------------------------------------


async def test_a_transfer_is_posted_under_the_keys_reference_and_its_status_read_back(
    connect: Connect, operator: Operator
) -> None:
    provider = connect()
    accepted = await provider.submit(pay(1))
    reference = reference_id("PRG1-C01-B0001-E1")
    assert (accepted.state, accepted.provider_reference) == (ProviderState.ACCEPTED, reference)
    stored = operator.transfers[reference]
    assert stored["amount"] == "1500"
    assert stored["currency"] == "XOF"
    assert stored["externalId"] == "PRG1-C01-B0001-E1"
    assert stored["payee"] == {"partyIdType": "MSISDN", "partyId": "0700000001"}
    assert stored["payeeNote"] == "Youth stipend 11/2026"
    status = await provider.status("PRG1-C01-B0001-E1")
    assert (status.state, status.provider_reference) == (ProviderState.COMPLETED, "FT00000001")
    missing = await provider.status("PRG1-C01-B0404-E1")
    assert missing.state is ProviderState.NOT_FOUND
    await provider.resolve(FinancialAddress("0700000001", "wallet1"))
    assert operator.schema_issues == []
    assert operator.schemas_checked == {
        "momo-transfer@1.0.0",
        "momo-transfer-status@1.0.0",
        "momo-account-holder@1.0.0",
    }


@pytest.mark.parametrize(
    "change",
    [
        {"amount": 1500.0},
        {"amount": "1,500"},
        {"currency": "xof"},
        {"payee": {"partyId": "07"}},
        {"extra": 1},
    ],
)
def test_the_transfer_schema_refuses_what_the_adapter_never_sends(change: dict[str, Any]) -> None:
    body = {
        "amount": "1500",
        "currency": "XOF",
        "externalId": "PRG1-C01-B0001-E1",
        "payee": {"partyIdType": "MSISDN", "partyId": "0700000001"},
        **change,
    }
    assert standards.validator("momo-transfer@1.0.0").issues(body) != []


async def test_a_failed_transfer_reports_the_operators_reason(connect: Connect) -> None:
    provider = connect()
    await provider.submit(pay(1, account="0709999999"))
    status = await provider.status("PRG1-C01-B0001-E1")
    assert (status.state, status.reason_code) == (ProviderState.REJECTED, "payments.address.not_found")


async def test_resending_a_key_is_answered_from_the_stored_transfer_and_pays_once(
    connect: Connect, operator: Operator
) -> None:
    provider = connect()
    await provider.submit(pay(1))
    again = await provider.submit(pay(1))
    assert again.state is ProviderState.COMPLETED
    assert operator.paid("PRG1-C01-B0001-E1") == 1
    assert len(operator.transfers) == 1


@pytest.mark.parametrize(
    "changed", [pay(1, amount="1600"), pay(1, account="0700000002")], ids=["amount", "payee"]
)
async def test_resending_a_key_with_other_content_is_a_duplicate(
    connect: Connect, operator: Operator, changed: PaymentInstruction
) -> None:
    provider = connect()
    await provider.submit(pay(1))
    with pytest.raises(ProviderError) as refused:
        await provider.submit(changed)
    assert refused.value.reason_code == "payments.request.duplicate"
    assert operator.transfers[reference_id("PRG1-C01-B0001-E1")]["amount"] == "1500"


async def test_an_operator_refusal_with_a_known_code_is_a_rejection(
    connect: Connect, operator: Operator
) -> None:
    operator.currencies = {"GHS"}
    provider = connect()
    status = await provider.submit(pay(1))
    assert (status.state, status.reason_code) == (ProviderState.REJECTED, "payments.currency.not_supported")
    assert operator.transfers == {}


@pytest.mark.parametrize(
    ("instruction", "reason"),
    [
        pytest.param(
            PaymentInstruction(
                "KEY-EUR-00001", FinancialAddress("0700000001", "wallet1"), Money.parse("5", "EUR")
            ),
            "payments.currency.not_supported",
            id="currency",
        ),
        pytest.param(pay(1, account="07-00"), "payments.address.invalid", id="not-a-wallet-number"),
        pytest.param(
            PaymentInstruction(
                "KEY-BANK-00001", FinancialAddress("0700000001", "bank2"), Money.parse("5", "XOF")
            ),
            "payments.address.invalid",
            id="another-provider",
        ),
    ],
)
async def test_what_the_operator_cannot_take_is_rejected_before_sending(
    connect: Connect, operator: Operator, instruction: PaymentInstruction, reason: str
) -> None:
    status = await connect().submit(instruction)
    assert (status.state, status.reason_code) == (ProviderState.REJECTED, reason)
    assert operator.requests == []


# -- faults --------------------------------------------------------------------------------------


@pytest.mark.parametrize("fault", ["lose-response", "reset"])
async def test_a_response_lost_after_sending_is_an_unknown_outcome_that_a_status_query_settles(
    connect: Connect, operator: Operator, network: Network, fault: str
) -> None:
    provider = connect()
    network.faults["/transfer"] = fault
    with pytest.raises(OutcomeUnknownError) as lost:
        await provider.submit(pay(1))
    assert lost.value.reason_code == "payments.outcome.unknown"
    assert not lost.value.retryable
    assert (await provider.status("PRG1-C01-B0001-E1")).state is ProviderState.COMPLETED
    assert operator.paid("PRG1-C01-B0001-E1") == 1


async def test_an_operator_that_answers_too_slowly_is_an_unknown_outcome(
    connect: Connect, operator: Operator
) -> None:
    provider = connect(timeout_ms="50")
    operator.faults["/transfer"] = "slow-after"
    with pytest.raises(OutcomeUnknownError):
        await provider.submit(pay(1))
    assert (await provider.status("PRG1-C01-B0001-E1")).state is ProviderState.COMPLETED


async def test_a_5xx_after_the_operator_acted_is_unknown_and_a_resend_does_not_pay_twice(
    connect: Connect, operator: Operator
) -> None:
    provider = connect()
    operator.faults["/transfer"] = "500-after"
    with pytest.raises(OutcomeUnknownError):
        await provider.submit(pay(1))
    assert (await provider.submit(pay(1))).state is ProviderState.COMPLETED
    assert operator.paid("PRG1-C01-B0001-E1") == 1


async def test_a_5xx_before_the_operator_acted_is_unknown_until_the_status_says_not_found(
    connect: Connect, operator: Operator
) -> None:
    provider = connect()
    operator.faults["/transfer"] = "503-before"
    with pytest.raises(OutcomeUnknownError):
        await provider.submit(pay(1))
    assert (await provider.status("PRG1-C01-B0001-E1")).state is ProviderState.NOT_FOUND
    assert (await provider.submit(pay(1))).state is ProviderState.ACCEPTED
    assert operator.paid("PRG1-C01-B0001-E1") == 1


@pytest.mark.parametrize("fault", ["refuse", "connect-timeout"])
async def test_a_connection_never_made_is_retryable_and_nothing_was_sent(
    connect: Connect, operator: Operator, network: Network, fault: str
) -> None:
    provider = connect()
    await provider.status("PRG1-C01-B0000-E1")
    network.faults["/transfer"] = fault
    with pytest.raises(ProviderError) as refused:
        await provider.submit(pay(1))
    assert not isinstance(refused.value, OutcomeUnknownError)
    assert (refused.value.reason_code, refused.value.retryable) == ("payments.provider.unavailable", True)
    assert operator.transfers == {}


async def test_a_refused_port_on_this_machine_is_retryable() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    provider = create_provider("wallet1", config(base_url=f"http://127.0.0.1:{port}"))
    try:
        with pytest.raises(ProviderError) as refused:
            await provider.submit(pay(1))
    finally:
        await provider.aclose()
    assert (refused.value.reason_code, refused.value.retryable) == ("payments.provider.unavailable", True)


async def test_a_lost_status_answer_is_retryable_not_unknown(connect: Connect, network: Network) -> None:
    provider = connect()
    await provider.submit(pay(1))
    network.faults["/transfer/"] = "lose-response"
    with pytest.raises(ProviderError) as lost:
        await provider.status("PRG1-C01-B0001-E1")
    assert not isinstance(lost.value, OutcomeUnknownError)
    assert (lost.value.reason_code, lost.value.retryable) == ("payments.provider.unavailable", True)


@pytest.mark.parametrize(
    ("fault", "reason"),
    [
        ("redirect", "payments.provider.invalid_response"),
        ("huge", "payments.provider.invalid_response"),
        ("not-json", "payments.provider.invalid_response"),
        ("503-before", "payments.provider.unavailable"),
    ],
)
async def test_a_bad_status_answer_is_refused_with_a_reason(
    connect: Connect, operator: Operator, fault: str, reason: str
) -> None:
    provider = connect(max_response_bytes="65536")
    await provider.submit(pay(1))
    operator.faults["/transfer/"] = fault
    with pytest.raises(ProviderError) as refused:
        await provider.status("PRG1-C01-B0001-E1")
    assert refused.value.reason_code == reason
    assert ("GET", "/collect") not in operator.requests


async def test_a_redirected_transfer_is_not_followed(connect: Connect, operator: Operator) -> None:
    provider = connect()
    operator.faults["/transfer"] = "redirect"
    with pytest.raises(ProviderError) as refused:
        await provider.submit(pay(1))
    assert refused.value.reason_code == "payments.provider.invalid_response"
    assert [path for _, path in operator.requests if "transfer" in path] == [
        "/api/disbursement/v1_0/transfer"
    ]


async def test_an_unknown_transfer_status_is_an_invalid_response(
    connect: Connect, operator: Operator
) -> None:
    provider = connect()
    await provider.submit(pay(1))
    operator.transfers[reference_id("PRG1-C01-B0001-E1")]["status"] = "WHO_KNOWS"
    with pytest.raises(ProviderError) as refused:
        await provider.status("PRG1-C01-B0001-E1")
    assert refused.value.reason_code == "payments.provider.invalid_response"


# -- tokens --------------------------------------------------------------------------------------


async def test_the_token_is_reused_until_it_expires_then_renewed(
    connect: Connect, operator: Operator
) -> None:
    clock = Clock()
    provider = connect(clock=clock)
    await provider.submit(pay(1))
    await provider.status("PRG1-C01-B0001-E1")
    await provider.resolve(FinancialAddress("0700000001", "wallet1"))
    assert operator.token_requests == 1
    clock.ns += 3600 * 1_000_000_000
    await provider.status("PRG1-C01-B0001-E1")
    assert operator.token_requests == 2


async def test_a_revoked_token_is_renewed_once_and_the_transfer_made_once(
    connect: Connect, operator: Operator
) -> None:
    provider = connect()
    await provider.status("PRG1-C01-B0000-E1")
    operator.tokens.clear()
    assert (await provider.submit(pay(1))).state is ProviderState.ACCEPTED
    assert operator.token_requests == 2
    assert operator.paid("PRG1-C01-B0001-E1") == 1


@pytest.mark.parametrize(
    ("overrides", "token_body", "reason"),
    [
        pytest.param({"client_secret": "wrong"}, None, "payments.provider.error", id="credentials-refused"),
        pytest.param(
            {},
            {"access_token": "abc\r\nX-Injected: 1", "expires_in": 60},
            "payments.provider.invalid_response",
            id="crlf-in-token",
        ),
        pytest.param(
            {}, {"access_token": "", "expires_in": 60}, "payments.provider.invalid_response", id="empty-token"
        ),
        pytest.param({}, {"expires_in": 60}, "payments.provider.invalid_response", id="no-token"),
        pytest.param(
            {},
            {"access_token": "abc", "expires_in": "soon"},
            "payments.provider.invalid_response",
            id="bad-expiry",
        ),
    ],
)
async def test_a_bad_token_exchange_sends_no_transfer(
    connect: Connect,
    operator: Operator,
    overrides: dict[str, str],
    token_body: dict[str, Any] | None,
    reason: str,
) -> None:
    operator.token_body = token_body
    provider = connect(**overrides)
    with pytest.raises(ProviderError) as refused:
        await provider.submit(pay(1))
    assert refused.value.reason_code == reason
    assert [path for _, path in operator.requests] == ["/api/disbursement/token/"]


# -- the account-holder check --------------------------------------------------------------------


async def test_resolve_gives_the_holders_name_or_not_found(connect: Connect) -> None:
    provider = connect()
    found = await provider.resolve(FinancialAddress("0700000002", "wallet1"))
    assert (found.resolved, found.holder_name) == (True, "Youssef Benali")
    missing = await provider.resolve(FinancialAddress("0709999999", "wallet1"))
    assert (missing.resolved, missing.reason_code) == (False, "payments.address.not_found")
    assert provider.capabilities.name_check


@pytest.mark.parametrize("account", ["..", ".", "...", "a/b", "0700000001?x=1", "%2e%2e", "a\\b", "07 00"])
async def test_an_account_that_could_change_the_path_is_never_sent(
    connect: Connect, operator: Operator, account: str
) -> None:
    provider = connect(account_pattern=".+")
    resolution = await provider.resolve(FinancialAddress(account, "wallet1"))
    assert (resolution.resolved, resolution.reason_code) == (False, "payments.address.invalid")
    status = await provider.submit(pay(1, account=account))
    assert (status.state, status.reason_code) == (ProviderState.REJECTED, "payments.address.invalid")
    assert operator.requests == []


async def test_a_permissive_account_pattern_still_sends_one_plain_segment(
    connect: Connect, operator: Operator
) -> None:
    provider = connect(account_pattern=".+")
    resolution = await provider.resolve(FinancialAddress("amina.diallo", "wallet1"))
    assert (resolution.resolved, resolution.reason_code) == (False, "payments.address.not_found")
    assert operator.raw_paths[-1] == b"/api/disbursement/v1_0/accountholder/msisdn/amina.diallo/basicuserinfo"


# -- configuration -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "overrides",
    [
        {"header.X-Target-Environment": "sandbox\r\nX-Injected: 1"},
        {"header.Bad Name": "x"},
        {"base_url": "ftp://momo.example"},
        {"base_url": "https://user:pass@momo.example"},
        {"base_url": "https://momo.example/api?x=1"},
        {"transfer_path": "/disbursement/../admin"},
        {"transfer_path": "relative/transfer"},
        {"status_path": "//elsewhere.example/{reference_id}"},
        {"field.amount": "amount; drop"},
        {"field.unknown": "x"},
        {"client_id": "has:colon"},
        {"party_id_type": "MSISDN/../x"},
        {"max_response_bytes": "10"},
        {"timeout_ms": "0"},
        {"status.DONE": "paid"},
        {"base_url": ""},
    ],
)
def test_unsafe_or_incomplete_configuration_is_refused(overrides: dict[str, str]) -> None:
    with pytest.raises(ValueError):  # noqa: PT011 - each case names its own problem
        create_provider("wallet1", config(**overrides))


async def test_another_operators_paths_fields_and_statuses_are_configuration() -> None:
    fields = {
        **DEFAULT_FIELDS,
        "amount": "money.value",
        "currency": "money.currency",
        "payee_id": "recipient.msisdn",
        "external_id": "clientReference",
        "status": "state",
        "transaction_id": "receipt",
    }
    operator = Operator(
        fields=fields, transfer_path="/v2/payouts", statuses={"completed": "DONE", "rejected": "KO"}
    )
    overrides = {f"field.{name}": path for name, path in fields.items()}
    provider = MobileMoneyProvider(
        "wallet1",
        MobileMoneySettings.from_config(
            config(
                transfer_path="/v2/payouts",
                status_path="/v2/payouts/{reference_id}",
                **{"status.DONE": "completed", "status.KO": "rejected"},
                **overrides,
            )
        ),
        transport=Network(operator),
    )
    try:
        await provider.submit(pay(1, amount="2500"))
        stored = operator.transfers[reference_id("PRG1-C01-B0001-E1")]
        assert stored["money"] == {"value": "2500", "currency": "XOF"}
        assert stored["recipient"]["msisdn"] == "0700000001"
        status = await provider.status("PRG1-C01-B0001-E1")
        assert (status.state, status.provider_reference) == (ProviderState.COMPLETED, "FT00000001")
    finally:
        await provider.aclose()


def test_the_entry_point_builds_the_adapter_and_its_capabilities_are_honest() -> None:
    (factory,) = [ep for ep in entry_points(group=ENTRY_POINT_GROUP) if ep.name == "mobile-money"]
    provider = factory.load()("wallet1", config())
    capabilities = provider.capabilities
    assert (capabilities.idempotency, capabilities.status_query, capabilities.name_check) == (
        True,
        True,
        True,
    )
    assert not capabilities.single_flight
    assert capabilities.max_bulk == 1
    assert (capabilities.currencies, capabilities.address_schemes) == (("XOF",), ("wallet1",))
    asyncio.run(provider.aclose())


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=10,
)


@settings(max_examples=60, deadline=None)
@given(
    st.sampled_from(["status", "submit", "resolve"]),
    st.integers(100, 599),
    st.one_of(
        _json.map(lambda value: json.dumps(value).encode()),
        st.fixed_dictionaries({"status": _json, "reason": _json, "amount": _json}).map(
            lambda value: json.dumps(value).encode()
        ),
        st.binary(max_size=64),
    ),
)
def test_whatever_the_operator_answers_each_call_gets_an_answer_or_a_reason(
    operation: str, status_code: int, body: bytes
) -> None:
    def operator(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/token/"):
            return httpx.Response(200, json={"access_token": "abc", "expires_in": 3600})
        return httpx.Response(status_code, content=body)

    async def ask() -> None:
        provider = MobileMoneyProvider(
            "wallet1", MobileMoneySettings.from_config(config()), transport=httpx.MockTransport(operator)
        )
        try:
            if operation == "status":
                status = await provider.status("PRG1-C01-B0001-E1")
                assert status.state in set(ProviderState)
            elif operation == "submit":
                status = await provider.submit(pay(1))
                assert status.state in {
                    ProviderState.ACCEPTED,
                    ProviderState.REJECTED,
                    ProviderState.COMPLETED,
                }
            else:
                resolution = await provider.resolve(FinancialAddress("0700000001", "wallet1"))
                assert resolution.resolved or resolution.reason_code is not None
            reason = "answered"
        except ProviderError as error:
            reason = error.reason_code
        finally:
            await provider.aclose()
        assert reason == "answered" or reason.startswith("payments.")

    asyncio.run(ask())


@settings(max_examples=40, deadline=None)
@given(st.text(alphabet="ABCDEFGHJKLMNPQRSTUVWXYZ0123456789-", min_size=8, max_size=35))
def test_a_key_always_has_the_same_uuid_reference(key: str) -> None:
    reference = reference_id(key)
    assert uuid.UUID(reference).version == 5
    assert reference == reference_id(key)
    assert reference != reference_id(key + "X")


@settings(max_examples=40, deadline=None)
@given(st.integers(min_value=0, max_value=10**15 - 1), st.sampled_from(["XOF", "EUR", "KWD"]))
def test_the_amount_travels_as_the_exact_decimal_string(minor: int, currency: str) -> None:
    digits = {"XOF": 0, "EUR": 2, "KWD": 3}[currency]
    money = Money(Decimal(minor).scaleb(-digits), currency)
    settings_ = MobileMoneySettings.from_config(config())
    provider = MobileMoneyProvider(
        "wallet1", settings_, transport=httpx.MockTransport(lambda r: httpx.Response(500))
    )
    body = provider._transfer_body(
        PaymentInstruction("KEY-00000001", FinancialAddress("0700000001", "w"), money)
    )
    assert isinstance(body["amount"], str)
    assert Decimal(body["amount"]) == money.amount
    assert body["amount"] == money.wire()
    asyncio.run(provider.aclose())
