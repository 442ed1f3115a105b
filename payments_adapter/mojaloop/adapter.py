"""The Mojaloop FSPIOP 1.1 payment provider: this deployment as a payer DFSP connected to a Mojaloop hub.

Mojaloop FSPIOP API 1.1
(https://github.com/mojaloop/mojaloop-specification/blob/master/fspiop-api/documents/v1.1-document-set/API-Definition_v1.1.md).
Every request is answered at once (``202 Accepted``) and later by a ``PUT`` callback, or a
``PUT .../error`` callback, that the hub sends to the routes of :mod:`payments_adapter.mojaloop.callbacks`:

- :meth:`MojaloopProvider.resolve` is the party lookup ``GET /parties/{Type}/{ID}``; the party's name
  is the holder name for the payee-name check;
- :meth:`MojaloopProvider.submit` asks ``POST /quotes`` (the payee must receive exactly the amount) and
  then ``POST /transfers`` with the quote's ILP packet and condition; the payment is COMPLETED only when
  the ``PUT /transfers/{ID}`` callback says COMMITTED with a fulfilment whose SHA-256 is the condition;
- :meth:`MojaloopProvider.status` is ``GET /transfers/{ID}``.

``quoteId``, ``transactionId`` and ``transferId`` are derived from the idempotency key, and no request
body depends on the clock, so resubmitting a key resends the very same objects: the hub answers a resend
with the result it already has and never makes a second transfer (section 3.2.5). A transfer whose
callback does not arrive in time is :class:`~payments_adapter.contract.OutcomeUnknownError`.

Callbacks are matched to waiting calls in this process's memory: the hub must reach the process that
sent the request (one process, or a load balancer with affinity per participant).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections import OrderedDict
from collections.abc import AsyncIterator, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any, Final

import httpx
from cryptography.hazmat.primitives.serialization import load_pem_private_key, load_pem_public_key

import standards
from payments_adapter.contract import (
    AddressResolution,
    Capabilities,
    FinancialAddress,
    MoneyError,
    OutcomeUnknownError,
    PaymentInstruction,
    PaymentProvider,
    ProviderError,
    ProviderState,
    ProviderStatus,
)
from payments_adapter.mojaloop import signature, wire
from payments_adapter.mojaloop.errors import Disposition, FspiopErrorCode, fspiop_error

__all__ = ["Callback", "MojaloopProvider", "MojaloopSettings", "create_provider"]

_log = logging.getLogger("payments_adapter.mojaloop")

_MAX_RESPONSE_BYTES: Final = 64 * 1024
_REMEMBERED: Final = 100_000
_PARTY_ID_TYPES: Final = frozenset(
    {"MSISDN", "EMAIL", "PERSONAL_ID", "BUSINESS", "DEVICE", "ACCOUNT_ID", "IBAN", "ALIAS"}
)


@dataclass(frozen=True)
class MojaloopSettings:
    """How this deployment is connected to its Mojaloop hub.

    ``fsp_ids`` maps the provider part of a financial address (``account@wallet1``) to the payee DFSP's
    FSP ID at the hub; a provider not named there is taken as the FSP ID itself. ``verify_keys`` maps FSP
    IDs (the hub's and the payee DFSPs') to their public keys: when any is given, every callback must
    carry a valid ``FSPIOP-Signature`` of its ``FSPIOP-Source``.
    """

    base_url: str
    fsp_id: str
    hub_id: str = "switch"
    payer_id_type: str = "BUSINESS"
    payer_identifier: str = ""
    payee_id_type: str = "MSISDN"
    fsp_ids: Mapping[str, str] = field(default_factory=dict)
    currencies: tuple[str, ...] = ()
    callback_timeout: timedelta = timedelta(seconds=30)
    request_timeout: timedelta = timedelta(seconds=10)
    signing_key: Any = None
    signing_algorithm: str = "RS256"
    verify_keys: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        url = httpx.URL(self.base_url)
        if url.scheme not in ("http", "https") or not url.host:
            raise ValueError("base_url must be an http(s) URL")
        for value in (self.fsp_id, self.hub_id, *self.fsp_ids.values(), *self.verify_keys):
            if not wire.is_fsp_id(value):
                raise ValueError(f"{value!r} is not an FSP ID")
        for value in (self.payer_id_type, self.payee_id_type):
            if value not in _PARTY_ID_TYPES:
                raise ValueError(f"{value!r} is not an FSPIOP party identifier type")
        if self.payer_identifier:
            wire.path_segment(self.payer_identifier)
        if self.callback_timeout <= timedelta(0) or self.request_timeout <= timedelta(0):
            raise ValueError("timeouts must be positive")
        if self.signing_algorithm not in signature.ALGORITHMS:
            raise ValueError(f"signing algorithm must be one of {', '.join(signature.ALGORITHMS)}")


@dataclass(frozen=True)
class Callback:
    """A callback the hub delivered: ``PUT`` (``error`` False) or ``PUT .../error``, and who sent it."""

    body: Mapping[str, Any]
    source: str
    error: bool = False


class _RequestNotSent(Exception):
    """The connection failed before the request could have reached the hub."""


class _RequestMaybeSent(Exception):
    """The request may have reached the hub; its answer was lost."""


class _RequestRefused(Exception):
    def __init__(self, status: int, error: FspiopErrorCode, description: str) -> None:
        super().__init__(description)
        self.status = status
        self.error = error


@dataclass
class _Waiter:
    future: asyncio.Future[Callback]
    sources: frozenset[str]


class _Inbox:
    """Calls waiting for their callback, by resource path (``transfers/<id>``)."""

    def __init__(self) -> None:
        self._waiting: dict[str, list[_Waiter]] = {}
        self._issued: OrderedDict[str, frozenset[str]] = OrderedDict()

    @contextlib.contextmanager
    def expect(self, key: str, sources: Iterable[str]) -> Iterator[asyncio.Future[Callback]]:
        waiter = _Waiter(asyncio.get_running_loop().create_future(), frozenset(sources))
        self._waiting.setdefault(key, []).append(waiter)
        self._issued[key] = self._issued.get(key, frozenset()) | waiter.sources
        self._issued.move_to_end(key)
        while len(self._issued) > _REMEMBERED:
            self._issued.popitem(last=False)
        try:
            yield waiter.future
        finally:
            waiters = self._waiting.get(key, [])
            if waiter in waiters:
                waiters.remove(waiter)
            if not waiters:
                self._waiting.pop(key, None)

    def knows(self, key: str) -> bool:
        return key in self._issued

    def sources(self, key: str) -> frozenset[str]:
        return self._issued.get(key, frozenset())

    def deliver(self, key: str, callback: Callback) -> int:
        delivered = 0
        for waiter in self._waiting.get(key, []):
            if callback.source in waiter.sources and not waiter.future.done():
                waiter.future.set_result(callback)
                delivered += 1
        return delivered


class MojaloopProvider(PaymentProvider):
    """A payer DFSP on a Mojaloop hub speaking FSPIOP 1.1 (see the module docstring)."""

    def __init__(
        self, name: str, settings: MojaloopSettings, *, transport: httpx.AsyncBaseTransport | None = None
    ) -> None:
        self.name = name
        self.settings = settings
        self._inbox = _Inbox()
        self._conditions: OrderedDict[str, tuple[str, str]] = OrderedDict()
        self._client = httpx.AsyncClient(
            base_url=settings.base_url,
            transport=transport,
            timeout=settings.request_timeout.total_seconds(),
            follow_redirects=False,
        )

    @property
    def capabilities(self) -> Capabilities:
        # FSPIOP 1.1 has no reversal or cancel of a committed transfer (a refund is a new transaction),
        # and no statement format; transferId semantics give idempotency, GET /transfers the status.
        return Capabilities(
            idempotency=True,
            status_query=True,
            cancel=False,
            reversal=False,
            name_check=True,
            max_bulk=1,
            statement_formats=(),
            address_schemes=tuple(sorted(self.settings.fsp_ids)),
            currencies=self.settings.currencies,
        )

    # -- the contract -------------------------------------------------------------------------------

    async def resolve(self, address: FinancialAddress) -> AddressResolution:
        payee_fsp = self._payee_fsp(address)
        if payee_fsp is None:
            return AddressResolution(address, False, "payments.address.invalid")
        resource = f"parties/{self.settings.payee_id_type}/{wire.path_segment(address.account)}"
        try:
            callback = await self._exchange(
                "GET", resource, "parties", None, wait=resource, destination=payee_fsp
            )
        except (_RequestNotSent, _RequestMaybeSent, TimeoutError):
            raise ProviderError(
                "payments.provider.unavailable", "the party lookup was not answered", retryable=True
            ) from None
        except _RequestRefused as refused:
            raise self._refusal(refused) from None
        if callback.error:
            error = self._error_of(callback)
            if error.disposition is Disposition.REJECTED:
                return AddressResolution(address, False, error.reason_code)
            raise ProviderError(
                error.reason_code,
                f"party lookup: FSPIOP error {error.code} {error.name}",
                retryable=error.disposition is Disposition.UNKNOWN,
            )
        party = self._valid(callback, "fspiop-parties-put")["party"]
        fsp_id = party["partyIdInfo"].get("fspId")
        if fsp_id is not None and fsp_id != payee_fsp:
            # The account exists, but at another DFSP than the address names: paying it would pay
            # someone the beneficiary did not choose.
            return AddressResolution(address, False, "payments.address.invalid")
        return AddressResolution(address, True, holder_name=_party_name(party))

    async def submit(self, instruction: PaymentInstruction) -> ProviderStatus:
        currencies = self.settings.currencies
        if currencies and instruction.amount.currency not in currencies:
            return ProviderStatus(ProviderState.REJECTED, "payments.currency.not_supported")
        payee_fsp = self._payee_fsp(instruction.payee)
        if payee_fsp is None:
            return ProviderStatus(ProviderState.REJECTED, "payments.address.invalid")
        key = instruction.idempotency_key
        quote_id = self._id("quote", key)
        transfer_id = self._id("transfer", key)

        quote = await self._quote(instruction, quote_id, payee_fsp)
        if isinstance(quote, ProviderStatus):
            # A quote refused when a key is resubmitted says nothing of the transfer the first quote
            # led to: only the hub's ledger can tell whether this payment was already made.
            existing = await self.status(key)
            return quote if existing.state is ProviderState.NOT_FOUND else existing
        transfer = {
            "transferId": transfer_id,
            "payeeFsp": payee_fsp,
            "payerFsp": self.settings.fsp_id,
            "amount": quote["transferAmount"],
            "ilpPacket": quote["ilpPacket"],
            "condition": quote["condition"],
            # The quote's expiry, not the clock's: the resend of a transfer must be the same body.
            "expiration": quote["expiration"],
        }
        self._remember_condition(transfer_id, quote["condition"], payee_fsp)
        try:
            callback = await self._exchange(
                "POST",
                "transfers",
                "transfers",
                transfer,
                wait=f"transfers/{transfer_id}",
                destination=payee_fsp,
            )
        except _RequestNotSent:
            raise ProviderError(
                "payments.provider.unavailable", "the hub could not be reached", retryable=True
            ) from None
        except (_RequestMaybeSent, TimeoutError):
            raise OutcomeUnknownError(f"transfer {transfer_id}: no callback arrived in time") from None
        except _RequestRefused as refused:
            if refused.error.disposition is Disposition.REJECTED:
                return ProviderStatus(
                    ProviderState.REJECTED,
                    refused.error.reason_code,
                    transfer_id,
                    f"FSPIOP error {refused.error.code} {refused.error.name}",
                )
            raise self._refusal(refused) from None
        try:
            return self._transfer_outcome(transfer_id, callback, quote["condition"], submitting=True)
        except ProviderError as refused:
            if refused.reason_code != "payments.request.duplicate":
                raise
        # The transfer ID is this key's own: a transfer under it with another body is an earlier attempt
        # at this very payment (made under a quote the hub did not keep), and its state is the answer.
        # That transfer's condition is not this quote's: the hub's verified commit is all there is.
        self._conditions.pop(transfer_id, None)
        existing = await self.status(key)
        if existing.state is ProviderState.NOT_FOUND:
            raise ProviderError("payments.request.duplicate", f"transfer {transfer_id}: modified request")
        return existing

    async def status(self, idempotency_key: str) -> ProviderStatus:
        transfer_id = self._id("transfer", idempotency_key)
        try:
            callback = await self._exchange(
                "GET",
                f"transfers/{transfer_id}",
                "transfers",
                None,
                wait=f"transfers/{transfer_id}",
                destination=None,
            )
        except (_RequestNotSent, _RequestMaybeSent, TimeoutError):
            raise ProviderError(
                "payments.provider.unavailable", "the transfer status was not answered", retryable=True
            ) from None
        except _RequestRefused as refused:
            raise self._refusal(refused) from None
        known = self._conditions.get(transfer_id)
        return self._transfer_outcome(transfer_id, callback, known[0] if known else None, submitting=False)

    async def aclose(self) -> None:
        await self._client.aclose()

    # -- callbacks, called by the routes --------------------------------------------------------------

    def expects(self, resource: str) -> bool:
        """Whether this adapter ever asked about ``resource`` (``transfers/<id>``), recently."""
        return self._inbox.knows(resource)

    def expected_sources(self, resource: str) -> frozenset[str]:
        """The FSPs a callback for ``resource`` may come from: the hub and the FSPs the requests went to."""
        return self._inbox.sources(resource)

    def deliver(self, resource: str, callback: Callback) -> int:
        """Hand a checked callback to the calls waiting for it; how many there were."""
        return self._inbox.deliver(resource, callback)

    # -- the exchange ---------------------------------------------------------------------------------

    def _id(self, kind: str, key: str) -> str:
        return wire.correlation_id(self.settings.fsp_id, kind, key)

    def _payee_fsp(self, address: FinancialAddress) -> str | None:
        """The payee DFSP's FSP ID, or None when the address cannot name one (nor a path segment)."""
        fsp_id = self.settings.fsp_ids.get(address.provider, address.provider)
        try:
            wire.path_segment(address.account)
        except ValueError:
            return None
        return fsp_id if wire.is_fsp_id(fsp_id) else None

    def _remember_condition(self, transfer_id: str, condition: str, payee_fsp: str) -> None:
        self._conditions[transfer_id] = (condition, payee_fsp)
        self._conditions.move_to_end(transfer_id)
        while len(self._conditions) > _REMEMBERED:
            self._conditions.popitem(last=False)

    async def _quote(
        self, instruction: PaymentInstruction, quote_id: str, payee_fsp: str
    ) -> Mapping[str, Any] | ProviderStatus:
        settings = self.settings
        request: dict[str, Any] = {
            "quoteId": quote_id,
            "transactionId": self._id("transaction", instruction.idempotency_key),
            "payee": {
                "partyIdInfo": {
                    "partyIdType": settings.payee_id_type,
                    "partyIdentifier": instruction.payee.account,
                    "fspId": payee_fsp,
                }
            },
            "payer": {
                "partyIdInfo": {
                    "partyIdType": settings.payer_id_type,
                    "partyIdentifier": settings.payer_identifier or settings.fsp_id,
                    "fspId": settings.fsp_id,
                }
            },
            # RECEIVE: the beneficiary gets exactly the entitlement; any fee is the programme's to see.
            "amountType": "RECEIVE",
            "amount": {
                "currency": instruction.amount.currency,
                "amount": wire.wire_amount(instruction.amount),
            },
            "transactionType": {"scenario": "TRANSFER", "initiator": "PAYER", "initiatorType": "BUSINESS"},
        }
        if instruction.narrative:
            request["note"] = instruction.narrative[:128]
        try:
            callback = await self._exchange(
                "POST", "quotes", "quotes", request, wait=f"quotes/{quote_id}", destination=payee_fsp
            )
        except (_RequestNotSent, _RequestMaybeSent, TimeoutError):
            # No transfer was sent, so nothing can have been paid; a retry resends the same quote.
            raise ProviderError(
                "payments.provider.unavailable", "the quote was not answered in time", retryable=True
            ) from None
        except _RequestRefused as refused:
            if refused.error.disposition is Disposition.REJECTED:
                return ProviderStatus(
                    ProviderState.REJECTED,
                    refused.error.reason_code,
                    None,
                    f"quote refused: FSPIOP error {refused.error.code}",
                )
            raise self._refusal(refused) from None
        if callback.error:
            error = self._error_of(callback)
            if error.disposition is Disposition.REJECTED:
                return ProviderStatus(
                    ProviderState.REJECTED,
                    error.reason_code,
                    None,
                    f"quote: FSPIOP error {error.code} {error.name}",
                )
            raise ProviderError(
                error.reason_code,
                f"quote: FSPIOP error {error.code} {error.name}",
                retryable=error.disposition is Disposition.UNKNOWN,
            )
        quote = self._valid(callback, "fspiop-quotes-put")
        try:
            transfer_amount = wire.money_from_wire(quote["transferAmount"])
            received = quote.get("payeeReceiveAmount")
            receive_amount = wire.money_from_wire(received) if received is not None else None
        except (MoneyError, ArithmeticError):
            raise ProviderError(
                "payments.provider.invalid_response", "the quote's amount is not money"
            ) from None
        if transfer_amount.currency != instruction.amount.currency:
            return ProviderStatus(
                ProviderState.REJECTED,
                "payments.currency.mismatch",
                None,
                f"the payee FSP quoted in {transfer_amount.currency}",
            )
        if transfer_amount != instruction.amount or (receive_amount not in (None, instruction.amount)):
            return ProviderStatus(
                ProviderState.REJECTED,
                "payments.amount.invalid",
                None,
                "the payee FSP quoted another amount than the payee must receive",
            )
        return quote

    def _transfer_outcome(
        self, transfer_id: str, callback: Callback, condition: str | None, *, submitting: bool
    ) -> ProviderStatus:
        if callback.error:
            error = self._error_of(callback)
            detail = f"transfer {transfer_id}: FSPIOP error {error.code} {error.name}"
            if error.disposition is Disposition.REJECTED:
                return ProviderStatus(ProviderState.REJECTED, error.reason_code, transfer_id, detail)
            if error.disposition is Disposition.NOT_FOUND and not submitting:
                return ProviderStatus(ProviderState.NOT_FOUND, None, transfer_id, detail)
            if error.disposition is Disposition.REFUSED:
                raise ProviderError(error.reason_code, detail)
            if submitting:
                raise OutcomeUnknownError(detail)
            raise ProviderError("payments.provider.unavailable", detail, retryable=True)
        body = self._valid(callback, "fspiop-transfers-put")
        state = body["transferState"]
        at = _completed_at(body)
        if state == "COMMITTED":
            fulfilment = body.get("fulfilment")
            # The hub validated the fulfilment before committing (section 4.4); the payer checks it too,
            # when it still knows the condition, so that a hub that lies cannot make us report a payment.
            if fulfilment is None or (condition is not None and not wire.fulfils(fulfilment, condition)):
                detail = f"transfer {transfer_id}: COMMITTED without a fulfilment of its condition"
                _log.warning("fulfilment does not match", extra={"event": "mojaloop_fulfilment_mismatch"})
                if submitting:
                    raise OutcomeUnknownError(detail)
                raise ProviderError("payments.provider.invalid_response", detail)
            return ProviderStatus(ProviderState.COMPLETED, None, transfer_id, None, at)
        if state == "ABORTED":
            return ProviderStatus(
                ProviderState.REJECTED, "payments.payee.rejected", transfer_id, "the transfer was aborted", at
            )
        return ProviderStatus(ProviderState.ACCEPTED, None, transfer_id, f"transfer {state}", at)

    def _error_of(self, callback: Callback) -> FspiopErrorCode:
        body = self._valid(callback, "fspiop-error")
        return fspiop_error(body["errorInformation"]["errorCode"])

    @staticmethod
    def _valid(callback: Callback, schema: str) -> Mapping[str, Any]:
        # The routes validated the body already; this guards the contract between the two.
        if not standards.validator(schema).is_valid(callback.body):
            raise ProviderError("payments.provider.invalid_response", f"a callback is not a valid {schema}")
        return callback.body

    @staticmethod
    def _refusal(refused: _RequestRefused) -> ProviderError:
        error = refused.error
        return ProviderError(
            error.reason_code,
            f"the hub refused the request (HTTP {refused.status}, FSPIOP error {error.code} {error.name})",
            retryable=error.disposition is Disposition.UNKNOWN,
        )

    async def _exchange(
        self,
        method: str,
        path: str,
        resource: str,
        body: Mapping[str, Any] | None,
        *,
        wait: str,
        destination: str | None,
    ) -> Callback:
        sources = {self.settings.hub_id} | ({destination} if destination else set())
        known = self._conditions.get(wait.removeprefix("transfers/"))
        if known is not None:
            sources.add(known[1])
        with self._inbox.expect(wait, sources) as answer:
            # The waiter exists before the request leaves: a callback may overtake the 202.
            await self._send(method, path, resource, body, destination)
            async with asyncio.timeout(self.settings.callback_timeout.total_seconds()):
                callback: Callback = await answer
                return callback

    async def _send(
        self, method: str, path: str, resource: str, body: Mapping[str, Any] | None, destination: str | None
    ) -> None:
        settings = self.settings
        content = json.dumps(body, separators=(",", ":")).encode() if body is not None else b""
        headers = {
            "Accept": wire.accept(resource),
            "Content-Type": wire.content_type(resource),
            "Date": wire.http_date(),
            "FSPIOP-Source": settings.fsp_id,
        }
        if destination:
            headers["FSPIOP-Destination"] = destination
        if settings.signing_key is not None:
            headers["FSPIOP-Signature"] = signature.sign(
                content,
                key=settings.signing_key,
                algorithm=settings.signing_algorithm,
                uri=f"/{path}",
                method=method,
                headers=headers,
            )
        try:
            async with self._stream(method, path, content, headers) as response:
                answer = await _read_limited(response)
                status = response.status_code
        except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout):
            raise _RequestNotSent from None
        except (httpx.HTTPError, httpx.StreamError, OSError):
            raise _RequestMaybeSent from None
        if status in (200, 202):
            return
        raise _refused(status, answer)

    @contextlib.asynccontextmanager
    async def _stream(
        self, method: str, path: str, content: bytes, headers: Mapping[str, str]
    ) -> AsyncIterator[httpx.Response]:
        async with self._client.stream(
            method, f"/{path}", content=content or None, headers=headers, follow_redirects=False
        ) as response:
            yield response


async def _read_limited(response: httpx.Response) -> bytes | None:
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.aiter_bytes():
        size += len(chunk)
        if size > _MAX_RESPONSE_BYTES:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


def _refused(status: int, answer: bytes | None) -> _RequestRefused:
    code = ""
    with contextlib.suppress(ValueError, TypeError, KeyError, RecursionError):
        document = json.loads(answer or b"")
        if standards.validator("fspiop-error").is_valid(document):
            code = document["errorInformation"]["errorCode"]
    if not code:
        if status >= 500:
            code = "2003" if status == 503 else "2000"
        else:
            code = {406: "3001", 404: "3002", 405: "3002", 501: "2002"}.get(status, "3000")
    return _RequestRefused(status, fspiop_error(code), f"HTTP {status}")


def _party_name(party: Mapping[str, Any]) -> str | None:
    name = party.get("name")
    if isinstance(name, str) and name.strip():
        return name.strip()
    complex_name = party.get("personalInfo", {}).get("complexName", {})
    parts = [complex_name.get(part) for part in ("firstName", "middleName", "lastName")]
    joined = " ".join(part.strip() for part in parts if isinstance(part, str) and part.strip())
    return joined or None


def _completed_at(body: Mapping[str, Any]) -> datetime | None:
    text = body.get("completedTimestamp")
    if not isinstance(text, str):
        return None
    try:
        return wire.parse_fspiop_datetime(text)
    except ValueError:
        return None


def create_provider(name: str, config: Mapping[str, str]) -> MojaloopProvider:
    """The ``dpi.payment_providers`` factory: a :class:`MojaloopProvider` from configuration strings.

    Keys: ``base_url`` and ``fsp_id`` (required); ``hub_id``; ``payer_id_type`` and ``payer_identifier``
    (the programme's party); ``payee_id_type``; ``fsp_ids`` (``wallet1=payeefsp,bank2=bankfsp``);
    ``currencies`` (``XOF,USD``); ``callback_timeout`` and ``request_timeout`` (seconds);
    ``signing_key`` (a PEM private key file) and ``signing_algorithm``; ``verify_keys``
    (``switch=/path/hub.pem,payeefsp=/path/payee.pem``).
    """
    try:
        base_url, fsp_id = config["base_url"], config["fsp_id"]
    except KeyError as missing:
        raise ValueError(f"provider {name}: {missing.args[0]} is required") from None
    signing_key = None
    if config.get("signing_key"):
        signing_key = load_pem_private_key(Path(config["signing_key"]).read_bytes(), password=None)
    verify_keys = {
        fsp: load_pem_public_key(Path(path).read_bytes())
        for fsp, path in _pairs(config.get("verify_keys", ""))
    }
    return MojaloopProvider(
        name,
        MojaloopSettings(
            base_url=base_url,
            fsp_id=fsp_id,
            hub_id=config.get("hub_id", "switch"),
            payer_id_type=config.get("payer_id_type", "BUSINESS"),
            payer_identifier=config.get("payer_identifier", ""),
            payee_id_type=config.get("payee_id_type", "MSISDN"),
            fsp_ids=dict(_pairs(config.get("fsp_ids", ""))),
            currencies=tuple(c.strip() for c in config.get("currencies", "").split(",") if c.strip()),
            callback_timeout=_seconds(config.get("callback_timeout", "30")),
            request_timeout=_seconds(config.get("request_timeout", "10")),
            signing_key=signing_key,
            signing_algorithm=config.get("signing_algorithm", "RS256"),
            verify_keys=verify_keys,
        ),
    )


def _seconds(text: str) -> timedelta:
    return timedelta(milliseconds=int(Decimal(text) * 1000))


def _pairs(text: str) -> list[tuple[str, str]]:
    pairs = []
    for item in text.split(","):
        if not item.strip():
            continue
        left, separator, right = item.partition("=")
        if not separator or not left.strip() or not right.strip():
            raise ValueError(f"{item.strip()!r} is not name=value")
        pairs.append((left.strip(), right.strip()))
    return pairs
