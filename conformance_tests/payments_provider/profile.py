"""Profile ``payments-provider``: a payment provider's G2P Connect disburse API 0.1.0
(https://github.com/G2P-Connect/specs, ``api/g2p-disburse.yaml``), requirements PAY-001..PAY-007.

The suite is a registered disburse sender (:class:`~conformance_tests.payments_provider.PaymentsOptions`):
it signs its own envelopes, pays small amounts from the registered payer account to a payable payee,
verifies every callback with the keys the provider publishes, and hosts the callback receiver that
``on-disburse`` and ``on-status`` are delivered to. Nothing of the implementation is imported.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from conformance_tests.model import Finding, Profile
from conformance_tests.payments_provider.sender import PaymentsOptions, g2p_time
from conformance_tests.receiver import CallbackReceiver, CallbackTimeout, ReceivedCallback
from conformance_tests.registry import register_profile
from conformance_tests.target import Exchange, TargetSession
from dpi.keys import SigningKey
from dpi.signing import SignatureError, verify_detached

__all__ = ["PAYMENTS_PROVIDER"]

PAYMENTS_PROVIDER = register_profile(
    Profile(
        name="payments-provider",
        version="1.0.0",
        description="A payment provider's G2P Connect disburse API: acknowledgement, on-disburse, "
        "duplicate reference ids, status query, signatures.",
    )
)

NO_OPTIONS: Final = (
    "the payments-provider profile needs the suite registered as a G2P Connect sender: run with "
    "--pay-sender-id, --pay-sender-key, --pay-receiver-id, --pay-payer-fa and --pay-payee-fa "
    "(see docs/conformance.md)"
)
DUPLICATE: Final = "RJCT_REFERENCE_ID_DUPLICATE"
REFERENCE_NOT_FOUND: Final = "UKWN_REFERENCE_ID_NOT_FOUND"
TRANSACTION_NOT_FOUND: Final = "UKWN_TRANSACTION_ID_NOT_FOUND"
_ON_DISBURSE: Final = "/on-disburse"
_ON_STATUS: Final = "/disburse/txn/on-status"

Outcome = tuple[str, str, str]


@dataclass
class _Provider:
    """The provider under test as the suite sees it: the options, its published keys, this run's
    reference prefix, and the transaction the first test paid."""

    options: PaymentsOptions
    jwks: dict[str, Any] = field(default_factory=dict)
    run: str = field(default_factory=lambda: f"dpic-{uuid.uuid4().hex[:10]}")
    paid: tuple[str, list[str]] | None = None
    problem: str | None = None

    def reference(self, label: str) -> str:
        return f"{self.run}-{label}"


async def _provider(session: TargetSession) -> _Provider | None:
    """The provider under test, read once per run."""
    if "payments-provider" in session.state:
        found: _Provider | None = session.state["payments-provider"]
        return found
    options = session.options.payments
    provider = _Provider(options) if options is not None else None
    if provider is not None:
        keys = await session.request("GET", provider.options.jwks_uri)
        document = keys.json_object()
        if keys.status != 200 or document is None or not document.get("keys"):
            provider.problem = f"the provider publishes no JWK Set at {provider.options.jwks_uri}"
        else:
            provider.jwks = document
    session.state["payments-provider"] = provider
    return provider


def _unavailable(requirements: Sequence[str], provider: _Provider | None) -> list[Finding] | None:
    if provider is None:
        return [Finding.skipped(requirement, NO_OPTIONS) for requirement in requirements]
    if provider.problem is not None:
        return [Finding.failed(requirement, provider.problem) for requirement in requirements]
    return None


async def _disburse(
    session: TargetSession,
    provider: _Provider,
    items: Sequence[Mapping[str, Any]],
    *,
    transaction_id: str | None = None,
    key: SigningKey | None = None,
    edit: Callable[[dict[str, Any]], None] | None = None,
    header: Mapping[str, Any] | None = None,
) -> tuple[str, Exchange]:
    options = provider.options
    transaction_id = transaction_id or str(uuid.uuid4())
    message = {"transaction_id": transaction_id, "disburse_request": list(items)}
    envelope = options.envelope(
        options.header("disburse", total_count=len(items), **(header or {})), message, key=key
    )
    if edit is not None:
        edit(envelope)
    return transaction_id, await session.request("POST", options.path("disburse"), json_body=envelope)


async def _status(
    session: TargetSession, provider: _Provider, search_type: str, attribute: str | list[str]
) -> tuple[str, Exchange]:
    options = provider.options
    transaction_id = str(uuid.uuid4())
    asked = {"reference_id": "dpi-conformance", "search_type": search_type, "search_attribute": attribute}
    envelope = options.envelope(
        options.header("status"), {"transaction_id": transaction_id, "txnstatus_request": asked}
    )
    return transaction_id, await session.request(
        "POST", options.path("disburse/txn/status"), json_body=envelope
    )


def _ack_status(exchange: Exchange) -> str | None:
    message = (exchange.json_object() or {}).get("message")
    ack = message.get("ack") if isinstance(message, Mapping) else None
    status = ack.get("status") if isinstance(ack, Mapping) else None
    return str(status) if status is not None else None


def _acked(exchange: Exchange) -> bool:
    return exchange.status == 200 and _ack_status(exchange) == "ACK"


def _answered(exchange: Exchange) -> str:
    return f"HTTP {exchange.status}, {_nack_code(exchange) or _ack_status(exchange)!r}"


def _nack_code(exchange: Exchange) -> str | None:
    error = (exchange.json_object() or {}).get("error")
    code = error.get("code") if isinstance(error, Mapping) else None
    return str(code) if _ack_status(exchange) == "NACK" and code is not None else None


def _callback_for(path_end: str, transaction_id: str) -> Callable[[ReceivedCallback], bool]:
    def matches(message: ReceivedCallback) -> bool:
        if not message.path.rstrip("/").endswith(path_end):
            return False
        try:
            body = message.json()
        except ValueError:
            return False
        content = body.get("message") if isinstance(body, dict) else None
        return isinstance(content, dict) and content.get("transaction_id") == transaction_id

    return matches


async def _wait(
    session: TargetSession, receiver: CallbackReceiver, path_end: str, transaction_id: str
) -> tuple[dict[str, Any] | None, str]:
    """The callback's body, or None and why not."""
    try:
        message = await receiver.wait_for(
            _callback_for(path_end, transaction_id), timeout=session.options.callback_timeout
        )
    except CallbackTimeout as timeout:
        return None, f"no {path_end.rsplit('/', 1)[-1]} callback arrived: {timeout}"
    body = message.json()
    return (body, "") if isinstance(body, dict) else (None, "the callback is not a JSON object")


def _envelope_problem(document: Mapping[str, Any], provider: _Provider, action: str) -> str | None:
    signature = document.get("signature")
    if not isinstance(signature, str) or not signature:
        return "the callback carries no signature"
    try:
        verify_detached(
            {"header": document.get("header"), "message": document.get("message")}, signature, provider.jwks
        )
    except SignatureError as error:
        return f"the callback's signature does not verify with the published keys ({error.reason_code})"
    header = document.get("header") or {}
    if header.get("action") != action:
        return f"the callback's action is {header.get('action')!r}, not {action}"
    if header.get("receiver_id") != provider.options.sender_id:
        return "the callback is not addressed to the sender"
    return None


def _outcomes(document: Mapping[str, Any], member: str) -> list[Outcome]:
    answers = (document.get("message") or {}).get(member)
    if not isinstance(answers, list):
        return []
    return [
        (str(a.get("reference_id")), str(a.get("status")), str(a.get("status_reason_code") or ""))
        for a in answers
        if isinstance(a, Mapping)
    ]


def _amounts(document: Mapping[str, Any], member: str) -> dict[str, Any]:
    answers = (document.get("message") or {}).get(member)
    return {
        str(a.get("reference_id")): a.get("amount")
        for a in (answers if isinstance(answers, list) else [])
        if isinstance(a, Mapping) and a.get("status") == "SUCC"
    }


def _not_acked(requirement: str, exchange: Exchange, what: str) -> Finding:
    return Finding.failed(
        requirement,
        f"{what} was not acknowledged (HTTP {exchange.status}, ack {_ack_status(exchange)!r})",
        exchange.evidence("200 with ack status ACK"),
    )


async def _paid_batch(
    session: TargetSession,
    provider: _Provider,
    receiver: CallbackReceiver,
    requirement: str,
    labels: Sequence[str],
) -> tuple[list[str], list[Finding]]:
    """Pay one item per label and wait for the on-disburse; the references, or findings of what failed."""
    references = [provider.reference(label) for label in labels]
    transaction_id, exchange = await _disburse(
        session, provider, [provider.options.item(r) for r in references]
    )
    if not _acked(exchange):
        return [], [_not_acked(requirement, exchange, "a disburse request")]
    callback, why = await _wait(session, receiver, _ON_DISBURSE, transaction_id)
    if callback is None:
        return [], [Finding.failed(requirement, why)]
    seen = _outcomes(callback, "disburse_response")
    if seen != [(r, "SUCC", "") for r in references]:
        return [], [Finding.failed(requirement, f"the on-disburse answered {seen}, not every item SUCC")]
    return references, []


# --- the tests ------------------------------------------------------------------------------------


@PAYMENTS_PROVIDER.test("disburse", ["PAY-001", "PAY-002"])
async def disburse(session: TargetSession) -> list[Finding]:
    """A signed disburse of two items: ACK at once, then a signed on-disburse answering both, in order."""
    provider = await _provider(session)
    unavailable = _unavailable(["PAY-001", "PAY-002"], provider)
    if unavailable is not None or provider is None:
        return unavailable or []
    references = [provider.reference("first"), provider.reference("second")]
    async with CallbackReceiver(provider.options.callback_host, provider.options.callback_port) as receiver:
        transaction_id, exchange = await _disburse(
            session, provider, [provider.options.item(reference) for reference in references]
        )
        if not _acked(exchange):
            return [
                _not_acked("PAY-001", exchange, "a signed disburse request of the registered sender"),
                Finding.failed("PAY-002", "no acknowledged request to expect a callback for"),
            ]
        findings = [Finding.passed("PAY-001", "a signed disburse request of two items: 200 ACK")]
        callback, why = await _wait(session, receiver, _ON_DISBURSE, transaction_id)
    if callback is None:
        return [*findings, Finding.failed("PAY-002", why)]
    problem = _envelope_problem(callback, provider, "on-disburse")
    seen = _outcomes(callback, "disburse_response")
    if problem is None and seen != [(reference, "SUCC", "") for reference in references]:
        problem = f"the on-disburse answered {seen}, not both items SUCC in order"
    if problem is not None:
        return [*findings, Finding.failed("PAY-002", problem)]
    provider.paid = (transaction_id, references)
    return [*findings, Finding.passed("PAY-002", "a signed on-disburse answered both items SUCC, in order")]


@PAYMENTS_PROVIDER.test("duplicate-reference-id", ["PAY-003"])
async def duplicate_reference_id(session: TargetSession) -> list[Finding]:
    """A used reference id, and one repeated within the request, are refused per item; the new one is paid."""
    provider = await _provider(session)
    unavailable = _unavailable(["PAY-003"], provider)
    if unavailable is not None or provider is None:
        return unavailable or []
    options = provider.options
    async with CallbackReceiver(options.callback_host, options.callback_port) as receiver:
        used, failures = await _paid_batch(session, provider, receiver, "PAY-003", ["dup-first"])
        if failures:
            return failures
        fresh = provider.reference("dup-fresh")
        items = [
            options.item(used[0], amount="1.00"),
            options.item(fresh),
            options.item(fresh, amount="1.00"),
        ]
        transaction_id, exchange = await _disburse(session, provider, items)
        if not _acked(exchange):
            return [_not_acked("PAY-003", exchange, "a request repeating reference ids")]
        callback, why = await _wait(session, receiver, _ON_DISBURSE, transaction_id)
    if callback is None:
        return [Finding.failed("PAY-003", why)]
    expected = [(used[0], "RJCT", DUPLICATE), (fresh, "SUCC", ""), (fresh, "RJCT", DUPLICATE)]
    seen = _outcomes(callback, "disburse_response")
    problem = _envelope_problem(callback, provider, "on-disburse")
    if problem is None and seen != expected:
        problem = f"the on-disburse answered {seen}, not {expected}"
    if problem is not None:
        return [Finding.failed("PAY-003", problem)]
    return [
        Finding.passed("PAY-003", "a used and a repeated reference id refused RJCT_REFERENCE_ID_DUPLICATE")
    ]


@PAYMENTS_PROVIDER.test("status-query", ["PAY-004"])
async def status_query(session: TargetSession) -> list[Finding]:
    """txn/status by transaction, by references (one unknown) and for an unknown transaction: ACK, then a
    signed on-status for each."""
    provider = await _provider(session)
    unavailable = _unavailable(["PAY-004"], provider)
    if unavailable is not None or provider is None:
        return unavailable or []
    options = provider.options
    findings: list[Finding] = []
    async with CallbackReceiver(options.callback_host, options.callback_port) as receiver:
        if provider.paid is None:
            references, failures = await _paid_batch(session, provider, receiver, "PAY-004", ["st-1", "st-2"])
            if failures:
                return failures
            paid_transaction = None
        else:
            paid_transaction, references = provider.paid
        unknown = provider.reference("never-sent")
        asked: list[tuple[str, str | list[str], list[Outcome] | None]] = [
            (
                "reference_id_list",
                [references[0], unknown],
                [(references[0], "SUCC", ""), (unknown, "RJCT", REFERENCE_NOT_FOUND)],
            ),
            ("transaction_id", f"{provider.run}-no-such-transaction", None),
        ]
        if paid_transaction is not None:
            asked.insert(0, ("transaction_id", paid_transaction, [(r, "SUCC", "") for r in references]))
        sent = []
        for search_type, attribute, expected in asked:
            transaction_id, exchange = await _status(session, provider, search_type, attribute)
            if not _acked(exchange):
                return [_not_acked("PAY-004", exchange, f"a status request by {search_type}")]
            sent.append((transaction_id, search_type, expected))
        for transaction_id, search_type, expected in sent:
            callback, why = await _wait(session, receiver, _ON_STATUS, transaction_id)
            if callback is None:
                findings.append(Finding.failed("PAY-004", f"by {search_type}: {why}"))
                continue
            problem = _envelope_problem(callback, provider, "on-status")
            seen = _outcomes(callback, "txnstatus_response")
            header = callback.get("header") or {}
            if (
                problem is None
                and expected is None
                and header.get("status_reason_code") != TRANSACTION_NOT_FOUND
            ):
                problem = f"an unknown transaction answered {header.get('status_reason_code')!r}"
            elif problem is None and expected is not None and seen != expected:
                problem = f"by {search_type}: answered {seen}, not {expected}"
            elif problem is None and expected is not None and search_type == "reference_id_list":
                amount = _amounts(callback, "txnstatus_response").get(references[0])
                if amount is not None and amount != options.amount:
                    problem = (
                        f"{references[0]} is reported paid {amount}, not the first item's {options.amount}"
                    )
            if problem is not None:
                findings.append(Finding.failed("PAY-004", problem))
    return findings or [
        Finding.passed(
            "PAY-004", f"{len(sent)} status requests acknowledged and answered by a signed on-status"
        )
    ]


@PAYMENTS_PROVIDER.test("signature", ["PAY-005"])
async def signature(session: TargetSession) -> list[Finding]:
    """Unsigned, foreign-key and altered requests: 401 NACK ERR_INVALID_SIGNATURE; their references, sent
    again signed, are paid (nothing of the refused ones was kept)."""
    provider = await _provider(session)
    unavailable = _unavailable(["PAY-005"], provider)
    if unavailable is not None or provider is None:
        return unavailable or []
    options = provider.options
    stranger = SigningKey.generate("EdDSA")

    def unsigned(envelope: dict[str, Any]) -> None:
        del envelope["signature"]

    def altered(envelope: dict[str, Any]) -> None:
        envelope["message"]["disburse_request"][0]["amount"] = "999999.00"

    cases: list[tuple[str, SigningKey | None, Callable[[dict[str, Any]], None] | None]] = [
        ("unsigned", None, unsigned),
        ("foreign-key", stranger, None),
        ("altered", None, altered),
    ]
    findings: list[Finding] = []
    references = []
    for label, key, edit in cases:
        reference = provider.reference(f"sig-{label}")
        references.append(reference)
        _, exchange = await _disburse(session, provider, [options.item(reference)], key=key, edit=edit)
        if exchange.status != 401 or _nack_code(exchange) != "ERR_INVALID_SIGNATURE":
            findings.append(
                Finding.failed(
                    "PAY-005",
                    f"a request {label}: {_answered(exchange)}",
                    exchange.evidence("401 NACK ERR_INVALID_SIGNATURE"),
                )
            )
    async with CallbackReceiver(options.callback_host, options.callback_port) as receiver:
        transaction_id, exchange = await _disburse(session, provider, [options.item(r) for r in references])
        if not _acked(exchange):
            return [*findings, _not_acked("PAY-005", exchange, "the refused references sent again, signed,")]
        callback, why = await _wait(session, receiver, _ON_DISBURSE, transaction_id)
    if callback is None:
        return [*findings, Finding.failed("PAY-005", why)]
    seen = _outcomes(callback, "disburse_response")
    if seen != [(r, "SUCC", "") for r in references]:
        findings.append(
            Finding.failed("PAY-005", f"the refused references sent again signed were answered {seen}")
        )
    return findings or [
        Finding.passed("PAY-005", "3 badly signed requests refused 401 ERR_INVALID_SIGNATURE, nothing kept")
    ]


@PAYMENTS_PROVIDER.test("invalid-items", ["PAY-006"])
async def invalid_items(session: TargetSession) -> list[Finding]:
    """Invalid amount, currency and payee refused per item with their codes; the valid item is paid."""
    provider = await _provider(session)
    unavailable = _unavailable(["PAY-006"], provider)
    if unavailable is not None or provider is None:
        return unavailable or []
    options = provider.options
    good = provider.reference("item-good")
    bad = [
        (provider.reference("item-amount"), {"amount": "1.2.3"}, "RJCT_AMOUNT_INVALID"),
        (provider.reference("item-currency"), {"currency_code": "QQQ"}, "RJCT_CURRENCY_CODE_INVALID"),
        (provider.reference("item-payee"), {"payee_fa": "not a financial address"}, "RJCT_PAYEE_FA_INVALID"),
    ]
    items = [options.item(good), *(options.item(reference, **change) for reference, change, _ in bad)]
    async with CallbackReceiver(options.callback_host, options.callback_port) as receiver:
        transaction_id, exchange = await _disburse(session, provider, items)
        if not _acked(exchange):
            return [_not_acked("PAY-006", exchange, "a request with three invalid items and a valid one")]
        callback, why = await _wait(session, receiver, _ON_DISBURSE, transaction_id)
    if callback is None:
        return [Finding.failed("PAY-006", why)]
    expected = [(good, "SUCC", ""), *((reference, "RJCT", code) for reference, _, code in bad)]
    seen = _outcomes(callback, "disburse_response")
    if seen != expected:
        return [Finding.failed("PAY-006", f"the on-disburse answered {seen}, not {expected}")]
    return [Finding.passed("PAY-006", "three invalid items refused with their codes; the valid one paid")]


@PAYMENTS_PROVIDER.test("replay-time-sender", ["PAY-007"])
async def replay_time_sender(session: TargetSession) -> list[Finding]:
    """A replayed message id, a stale timestamp and an unregistered sender are refused with their codes."""
    provider = await _provider(session)
    unavailable = _unavailable(["PAY-007"], provider)
    if unavailable is not None or provider is None:
        return unavailable or []
    options = provider.options
    findings: list[Finding] = []
    message_id = str(uuid.uuid4())
    stale = g2p_time(datetime.now(UTC) - timedelta(days=1))
    first = provider.reference("replay-first")
    _, accepted = await _disburse(session, provider, [options.item(first)], header={"message_id": message_id})
    if not _acked(accepted):
        return [_not_acked("PAY-007", accepted, "a fresh request")]
    for number, (label, header, code) in enumerate(
        [
            ("a replayed message_id", {"message_id": message_id}, "ERR_INVALID_MESSAGE_ID"),
            ("a timestamp a day old", {"timestamp": stale}, "ERR_INVALID_TIMESTAMP"),
            ("an unregistered sender", {"sender_id": f"{provider.run}-unregistered"}, "ERR_INVALID_SENDER"),
        ]
    ):
        reference = provider.reference(f"replay-{number}")
        _, exchange = await _disburse(session, provider, [options.item(reference)], header=header)
        if _nack_code(exchange) != code:
            findings.append(
                Finding.failed(
                    "PAY-007",
                    f"{label}: {_answered(exchange)}",
                    exchange.evidence(f"NACK {code}"),
                )
            )
    return findings or [Finding.passed("PAY-007", "replay, stale timestamp and unknown sender refused")]
