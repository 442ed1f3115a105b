"""An FSPIOP 1.1 simulator: a Mojaloop hub and its payee DFSPs in one ASGI app, for tests and demos.

Mojaloop FSPIOP API 1.1
(https://github.com/mojaloop/mojaloop-specification/blob/master/fspiop-api/documents/v1.1-document-set/API-Definition_v1.1.md).
It answers a payer DFSP's ``GET /parties/{Type}/{ID}``, ``POST /quotes``, ``GET /quotes/{ID}``,
``POST /transfers`` and ``GET /transfers/{ID}`` with ``202 Accepted`` and then the ``PUT`` callback, or
the ``PUT .../error`` callback, at the participant's callback URL, as the hub would:

- parties come from a configured list; an unknown one is error 3204;
- the payee DFSP answers a quote with an ILP packet (here the base64url of the Transaction object), a
  fulfilment it derives as HMAC-SHA256 of the packet under its secret, and the condition, SHA-256 of the
  fulfilment (section 4.4 and the example of section 10);
- a transfer is reserved, then committed when the payee's fulfilment matches the condition, and aborted
  on rejection or at its expiration (error 3303); a payer beyond its liquidity cap gets error 4001;
- a POST with an existing ID and the same body is a resend: ignored while in progress, answered with the
  same callback once finished; with another body it gets error 3106 (section 3.2.5);
- an ``Accept`` without version 1 is ``406`` with error 3001 listing the supported version (section 3.3.4);
- each party can be told to misbehave (:class:`PartyBehaviour`): reject the quote or the transfer, never
  answer, answer late, or have the hub forward a fulfilment that does not match.

The ledger (:attr:`FspiopSimulator.transfers`) is in memory and can be inspected: what was committed to
whom, and how many times.
"""

from __future__ import annotations

import asyncio
import dataclasses
import enum
import hashlib
import hmac
import json
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, Final

import httpx
from litestar import Litestar, Request, Response, get, post

import standards
from dpi.errors import MAX_JSON_DEPTH, deeper_than
from payments_adapter.contract import Money, MoneyError
from payments_adapter.mojaloop import signature, wire

__all__ = ["Delivery", "FspiopSimulator", "PartyBehaviour", "SimulatedParty", "SimulatedTransfer"]

_MAX_BODY: Final = 64 * 1024


class PartyBehaviour(enum.StrEnum):
    """How the payee DFSP of a party behaves."""

    PAY = "pay"
    REJECT_QUOTE = "reject_quote"
    """The payee DFSP refuses the quote (5101)."""
    REJECT_TRANSFER = "reject_transfer"
    """The payee refuses the transfer (5104); the hub aborts it."""
    SILENT = "silent"
    """The payee never answers the transfer; the hub aborts it at its expiration (3303)."""
    LATE = "late"
    """The payee fulfils the transfer after the simulator's ``late_by``."""
    WRONG_FULFILMENT = "wrong_fulfilment"
    """The hub commits and forwards a fulfilment that is not the condition's preimage."""


@dataclass(frozen=True)
class SimulatedParty:
    """A party at one of the simulated payee DFSPs."""

    fsp_id: str
    id_type: str
    identifier: str
    first_name: str
    last_name: str
    behaviour: PartyBehaviour = PartyBehaviour.PAY


@dataclass
class SimulatedTransfer:
    """A transfer in the hub's ledger."""

    transfer_id: str
    digest: str
    payer_fsp: str
    payee_fsp: str
    payee: SimulatedParty
    amount: Money
    condition: str
    ilp_packet: str
    expiration: datetime
    state: str = "RESERVED"
    fulfilment: str | None = None
    completed_at: datetime | None = None
    final: tuple[str, dict[str, Any], str] | None = None
    """The callback that ended it (path, body, source), resent on duplicates and status queries."""


@dataclass(frozen=True)
class Delivery:
    """A callback the simulator sent, and the participant's answer (HTTP status, 0 when unreachable)."""

    path: str
    source: str
    status: int
    body: Mapping[str, Any]


@dataclass
class _Quote:
    digest: str
    payee_fsp: str
    answer: tuple[str, dict[str, Any], str] | None = None


@dataclass
class FspiopSimulator:
    """The simulated hub and payee DFSPs (see the module docstring).

    ``participants`` maps each payer DFSP's FSP ID to its callback base URL; ``callback_transport``
    carries the callbacks (an ``httpx.ASGITransport`` into the participant's app in tests).
    ``liquidity`` caps what each payer may have reserved and committed, per currency.
    ``signing_keys`` (FSP ID to private key) signs the callbacks sent as that FSP; ``verify_keys``
    (payer FSP ID to public key) requires and checks the payers' ``FSPIOP-Signature``.
    """

    parties: Iterable[SimulatedParty]
    participants: Mapping[str, str]
    callback_transport: httpx.AsyncBaseTransport | None = None
    hub_id: str = "switch"
    quote_ttl: timedelta = timedelta(minutes=5)
    late_by: timedelta = timedelta(milliseconds=300)
    liquidity: Mapping[str, Decimal] = field(default_factory=dict)
    signing_keys: Mapping[str, Any] = field(default_factory=dict)
    signing_algorithm: str = "RS256"
    verify_keys: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._parties = {(party.id_type, party.identifier): party for party in self.parties}
        self._secret = secrets.token_bytes(32)
        self.transfers: dict[str, SimulatedTransfer] = {}
        self.quotes: dict[str, _Quote] = {}
        self.deliveries: list[Delivery] = []
        self._tasks: set[asyncio.Task[None]] = set()
        self._timers: set[asyncio.Task[None]] = set()
        self._client = httpx.AsyncClient(transport=self.callback_transport, timeout=5, follow_redirects=False)
        self.app = self._build_app()

    # -- what tests look at -----------------------------------------------------------------------

    def committed(self, identifier: str) -> list[Money]:
        """Every amount committed to the party with this identifier, one per transfer."""
        return [
            transfer.amount
            for transfer in self.transfers.values()
            if transfer.payee.identifier == identifier and transfer.state == "COMMITTED"
        ]

    def behave(self, id_type: str, identifier: str, behaviour: PartyBehaviour) -> None:
        """Make a configured party's DFSP behave otherwise from now on."""
        party = self._parties[(id_type, identifier)]
        self._parties[(id_type, identifier)] = dataclasses.replace(party, behaviour=behaviour)

    async def settle(self) -> None:
        """Wait until every callback the simulator has scheduled was sent (expiry timers aside)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def aclose(self) -> None:
        pending = [*self._tasks, *self._timers]
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        await self._client.aclose()

    # -- the hub's side of the exchange --------------------------------------------------------------

    def _later(self, work: Any, *, timer: bool = False) -> None:
        tasks = self._timers if timer else self._tasks
        task: asyncio.Task[None] = asyncio.get_running_loop().create_task(work)
        tasks.add(task)
        task.add_done_callback(tasks.discard)

    async def _callback(self, payer: str, path: str, body: Mapping[str, Any], source: str) -> None:
        resource = path.split("/", 2)[1]
        content = json.dumps(body, separators=(",", ":")).encode()
        headers = {
            "Content-Type": wire.content_type(resource),
            "Date": wire.http_date(),
            "FSPIOP-Source": source,
            "FSPIOP-Destination": payer,
        }
        key = self.signing_keys.get(source)
        if key is not None:
            headers["FSPIOP-Signature"] = signature.sign(
                content, key=key, algorithm=self.signing_algorithm, uri=path, method="PUT", headers=headers
            )
        try:
            response = await self._client.put(
                self.participants[payer] + path, content=content, headers=headers
            )
            status = response.status_code
        except httpx.HTTPError:
            status = 0
        self.deliveries.append(Delivery(path, source, status, body))

    def _error(self, payer: str, path: str, code: str, description: str, source: str | None = None) -> None:
        self._later(
            self._callback(payer, f"{path}/error", wire.error_body(code, description), source or self.hub_id)
        )

    def _check(
        self, request: Request[Any, Any, Any], resource: str, *, has_body: bool
    ) -> Response[bytes] | str:
        source = request.headers.get("fspiop-source", "")
        if not request.headers.get("date") or not source:
            return _refuse(resource, 400, "3102", "the Date and FSPIOP-Source headers are required")
        if not wire.accepts(request.headers.get("accept"), resource):
            return _refuse(
                resource, 406, "3001", "unsupported version, see the extension list", versions=True
            )
        if has_body:
            media = wire.parse_media_type(request.headers.get("content-type", ""))
            if media is None or media.resource != resource:
                return _refuse(resource, 400, "3101", "wrong Content-Type")
            if media.major not in (None, 1):
                return _refuse(resource, 406, "3001", "unsupported version", versions=True)
        if source not in self.participants:
            return _refuse(resource, 400, "3000", "FSPIOP-Source is not a participant")
        return source

    async def _body(
        self, request: Request[Any, Any, Any], resource: str, source: str, path: str, schema: str
    ) -> dict[str, Any] | Response[bytes]:
        raw = await request.body()
        key = self.verify_keys.get(source)
        if key is not None:
            try:
                signature.verify(
                    request.headers.get("fspiop-signature"),
                    raw,
                    key=key,
                    uri=path,
                    method=request.method,
                    headers={
                        name: request.headers.get(name.lower(), "")
                        for name in ("FSPIOP-Source", "FSPIOP-Destination", "Date")
                    },
                )
            except signature.SignatureError as refused:
                return _refuse(resource, 400, "3105", str(refused))
        try:
            document = json.loads(raw)
        except (ValueError, RecursionError):
            return _refuse(resource, 400, "3101", "the body is not JSON")
        if deeper_than(document, MAX_JSON_DEPTH):
            return _refuse(resource, 400, "3101", "the body nests too deep")
        validator = standards.validator(schema)
        if not validator.is_valid(document):
            missing = any(
                issue.reason_code == "schema.required" for issue in validator.issues(document, limit=5)
            )
            return _refuse(resource, 400, "3102" if missing else "3101", "the body does not match FSPIOP 1.1")
        return dict(document)

    def _build_app(self) -> Litestar:
        simulator = self

        @get("/parties/{id_type:str}/{identifier:str}", status_code=202)
        async def get_party(request: Request[Any, Any, Any]) -> Response[bytes]:
            id_type, identifier = request.path_params["id_type"], request.path_params["identifier"]
            checked = simulator._check(request, "parties", has_body=False)
            if isinstance(checked, Response):
                return checked
            path = f"/parties/{id_type}/{identifier}"
            party = simulator._parties.get((id_type, identifier))
            destination = request.headers.get("fspiop-destination")
            # With a destination the hub asks that FSP only; without, it finds the party's FSP itself.
            if party is None or destination not in (None, party.fsp_id):
                simulator._error(checked, path, "3204", "Party not found")
            else:
                simulator._later(simulator._callback(checked, path, _party_body(party), party.fsp_id))
            return _accepted("parties")

        @post("/quotes", status_code=202, request_max_body_size=_MAX_BODY)
        async def post_quote(request: Request[Any, Any, Any]) -> Response[bytes]:
            checked = simulator._check(request, "quotes", has_body=True)
            if isinstance(checked, Response):
                return checked
            body = await simulator._body(request, "quotes", checked, "/quotes", "fspiop-quotes-post")
            if isinstance(body, Response):
                return body
            simulator._quote(checked, body)
            return _accepted("quotes")

        @get("/quotes/{quote_id:str}", status_code=202)
        async def get_quote(request: Request[Any, Any, Any]) -> Response[bytes]:
            quote_id = request.path_params["quote_id"]
            checked = simulator._check(request, "quotes", has_body=False)
            if isinstance(checked, Response):
                return checked
            quote = simulator.quotes.get(quote_id)
            if quote is None or quote.answer is None:
                simulator._error(checked, f"/quotes/{quote_id}", "3205", "Quote ID not found")
            else:
                simulator._later(simulator._callback(checked, *quote.answer))
            return _accepted("quotes")

        @post("/transfers", status_code=202, request_max_body_size=_MAX_BODY)
        async def post_transfer(request: Request[Any, Any, Any]) -> Response[bytes]:
            checked = simulator._check(request, "transfers", has_body=True)
            if isinstance(checked, Response):
                return checked
            body = await simulator._body(request, "transfers", checked, "/transfers", "fspiop-transfers-post")
            if isinstance(body, Response):
                return body
            simulator._transfer(checked, body)
            return _accepted("transfers")

        @get("/transfers/{transfer_id:str}", status_code=202)
        async def get_transfer(request: Request[Any, Any, Any]) -> Response[bytes]:
            transfer_id = request.path_params["transfer_id"]
            checked = simulator._check(request, "transfers", has_body=False)
            if isinstance(checked, Response):
                return checked
            path = f"/transfers/{transfer_id}"
            transfer = simulator.transfers.get(transfer_id)
            if transfer is None or transfer.payer_fsp != checked:
                simulator._error(checked, path, "3208", "Transfer ID not found")
            elif transfer.final is not None and transfer.state == "ABORTED":
                simulator._later(simulator._callback(checked, *transfer.final))
            else:
                simulator._later(
                    simulator._callback(checked, path, _transfer_body(transfer), simulator.hub_id)
                )
            return _accepted("transfers")

        return Litestar(
            route_handlers=[get_party, post_quote, get_quote, post_transfer, get_transfer],
            openapi_config=None,
        )

    def _quote(self, payer: str, body: dict[str, Any]) -> None:
        quote_id = body["quoteId"]
        path = f"/quotes/{quote_id}"
        digest = _digest(body)
        known = self.quotes.get(quote_id)
        if known is not None:
            if known.digest != digest:
                self._error(payer, path, "3106", "Modified request")
            elif known.answer is not None:
                self._later(self._callback(payer, *known.answer))
            return
        payee_info = body["payee"]["partyIdInfo"]
        party = self._parties.get((payee_info["partyIdType"], payee_info["partyIdentifier"]))
        if party is None or payee_info.get("fspId", party.fsp_id) != party.fsp_id:
            self._error(payer, path, "3204", "Party not found")
            return
        quote = _Quote(digest, party.fsp_id)
        self.quotes[quote_id] = quote
        if party.behaviour is PartyBehaviour.REJECT_QUOTE:
            quote.answer = (f"{path}/error", wire.error_body("5101", "Payee rejected quote"), party.fsp_id)
            self._later(self._callback(payer, *quote.answer))
            return
        transaction = {
            "transactionId": body["transactionId"],
            "quoteId": quote_id,
            "payee": _party_body(party)["party"],
            "payer": body["payer"],
            "amount": body["amount"],
            "transactionType": body["transactionType"],
        }
        ilp_packet = wire.b64url(json.dumps(transaction, separators=(",", ":")).encode())
        condition = wire.condition_of(self._fulfilment(ilp_packet))
        answer = {
            "transferAmount": body["amount"],
            "payeeReceiveAmount": body["amount"],
            "expiration": wire.fspiop_datetime(datetime.now(UTC) + self.quote_ttl),
            "ilpPacket": ilp_packet,
            "condition": condition,
        }
        quote.answer = (path, answer, party.fsp_id)
        self._later(self._callback(payer, *quote.answer))

    def _fulfilment(self, ilp_packet: str) -> bytes:
        return hmac.new(self._secret, ilp_packet.encode("ascii"), hashlib.sha256).digest()

    def _transfer(self, payer: str, body: dict[str, Any]) -> None:
        transfer_id = body["transferId"]
        path = f"/transfers/{transfer_id}"
        digest = _digest(body)
        known = self.transfers.get(transfer_id)
        if known is not None:
            if known.digest != digest:
                self._error(payer, path, "3106", "Modified request")
            elif known.final is not None:
                self._later(self._callback(payer, *known.final))
            return
        try:
            transaction = json.loads(wire.b64url_decode(body["ilpPacket"]))
            payee_info = transaction["payee"]["partyIdInfo"]
            party = self._parties[(payee_info["partyIdType"], payee_info["partyIdentifier"])]
            quote = self.quotes[transaction["quoteId"]]
            amount = wire.money_from_wire(body["amount"])
            expiration = wire.parse_fspiop_datetime(body["expiration"])
        except (ValueError, TypeError, KeyError, MoneyError, ArithmeticError):
            self._error(payer, path, "3100", "Generic validation error")
            return
        if quote.answer is None or quote.answer[1].get("condition") != body["condition"]:
            self._error(payer, path, "3100", "Generic validation error")
            return
        transfer = SimulatedTransfer(
            transfer_id,
            digest,
            payer,
            body["payeeFsp"],
            party,
            amount,
            body["condition"],
            body["ilpPacket"],
            expiration,
        )
        self.transfers[transfer_id] = transfer
        if expiration <= datetime.now(UTC):
            self._abort(transfer, "3303", "Transfer expired", self.hub_id)
            return
        cap = self.liquidity.get(amount.currency)
        if cap is not None:
            position = sum(
                (
                    t.amount.amount
                    for t in self.transfers.values()
                    if t.payer_fsp == payer and t.amount.currency == amount.currency and t.state != "ABORTED"
                ),
                Decimal(0),
            )
            if position > cap:
                self._abort(transfer, "4001", "Payer FSP insufficient liquidity", self.hub_id)
                return
        self._later(self._expire(transfer), timer=True)
        behaviour = party.behaviour
        if behaviour is PartyBehaviour.REJECT_TRANSFER:
            self._abort(transfer, "5104", "Payee rejected transaction", party.fsp_id)
        elif behaviour is PartyBehaviour.LATE:
            self._later(self._commit_later(transfer))
        elif behaviour is not PartyBehaviour.SILENT:
            self._commit(transfer)

    def _abort(self, transfer: SimulatedTransfer, code: str, description: str, source: str) -> None:
        transfer.state = "ABORTED"
        path = f"/transfers/{transfer.transfer_id}/error"
        transfer.final = (path, wire.error_body(code, description), source)
        self._later(self._callback(transfer.payer_fsp, *transfer.final))

    def _commit(self, transfer: SimulatedTransfer) -> None:
        if transfer.state != "RESERVED":
            return
        fulfilment = self._fulfilment(transfer.ilp_packet)
        if transfer.payee.behaviour is PartyBehaviour.WRONG_FULFILMENT:
            fulfilment = secrets.token_bytes(32)
        elif wire.condition_of(fulfilment) != transfer.condition:
            self._abort(transfer, "3100", "Generic validation error", self.hub_id)
            return
        transfer.state = "COMMITTED"
        transfer.fulfilment = wire.b64url(fulfilment)
        transfer.completed_at = datetime.now(UTC)
        transfer.final = (f"/transfers/{transfer.transfer_id}", _transfer_body(transfer), transfer.payee_fsp)
        self._later(self._callback(transfer.payer_fsp, *transfer.final))

    async def _commit_later(self, transfer: SimulatedTransfer) -> None:
        await asyncio.sleep(self.late_by.total_seconds())
        if datetime.now(UTC) < transfer.expiration:
            self._commit(transfer)

    async def _expire(self, transfer: SimulatedTransfer) -> None:
        await asyncio.sleep(max((transfer.expiration - datetime.now(UTC)).total_seconds(), 0))
        if transfer.state == "RESERVED":
            self._abort(transfer, "3303", "Transfer expired", self.hub_id)


def _digest(body: Mapping[str, Any]) -> str:
    return hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def _party_body(party: SimulatedParty) -> dict[str, Any]:
    return {
        "party": {
            "partyIdInfo": {
                "partyIdType": party.id_type,
                "partyIdentifier": party.identifier,
                "fspId": party.fsp_id,
            },
            "name": f"{party.first_name} {party.last_name}",
            "personalInfo": {"complexName": {"firstName": party.first_name, "lastName": party.last_name}},
        }
    }


def _transfer_body(transfer: SimulatedTransfer) -> dict[str, Any]:
    body: dict[str, Any] = {"transferState": transfer.state}
    if transfer.fulfilment is not None:
        body["fulfilment"] = transfer.fulfilment
    if transfer.completed_at is not None:
        body["completedTimestamp"] = wire.fspiop_datetime(transfer.completed_at)
    return body


def _accepted(resource: str) -> Response[bytes]:
    return Response(b"", status_code=202, media_type=wire.content_type(resource))


def _refuse(
    resource: str, status: int, code: str, description: str, *, versions: bool = False
) -> Response[bytes]:
    body = json.dumps(wire.error_body(code, description, versions=versions)).encode()
    return Response(body, status_code=status, media_type=wire.content_type(resource))
