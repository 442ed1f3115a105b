"""A payment provider reached through its G2P Connect disburse API (G2P Connect disburse API 0.1.0,
``api/g2p-disburse.yaml`` of https://github.com/G2P-Connect/specs): the adapter registered as
``g2p-connect`` under ``dpi.payment_providers``.

- :meth:`G2pConnectProvider.submit_many` sends one signed ``/disburse`` message whose ``reference_id`` of
  each item is the instruction's idempotency key; an ACK means received (``ACCEPTED``), a NACK refuses the
  whole call. The provider refuses a reference id it has seen (``RJCT_REFERENCE_ID_DUPLICATE``) and never
  pays it twice, which is what makes this adapter idempotent.
- :meth:`G2pConnectProvider.status` asks ``GET /disburse/search/{reference_id}`` (DSBT-006), signed with
  an RFC 9421 HTTP message signature (https://www.rfc-editor.org/rfc/rfc9421), and verifies the provider's
  signed answer with its published JWK Set; ``UKWN_REFERENCE_ID_NOT_FOUND`` is ``NOT_FOUND``.

Configuration (all strings): ``base_url`` (the provider's G2P Connect base URL, e.g.
``https://wallet.example/payments/g2p``), ``sender_id`` and ``receiver_id`` (as registered on both sides),
``signing_key`` (path of our unencrypted PEM private key) and ``signing_alg`` (``EdDSA`` by default),
``payer_fa`` (the account we pay from), optionally ``jwks_url`` (default: ``/.well-known/jwks.json`` at
the base URL's origin), ``access_token`` (a bearer token, when the provider's gateway asks for one),
``max_bulk`` (100), ``timeout`` in whole seconds (10), and comma-separated
``address_schemes`` and ``currencies``.

Redirects are never followed, answers above 1 MiB are refused, reference ids put into paths are checked,
and header values never carry CR or LF. A timeout or a connection lost after the request may have been sent
raises :class:`~payments_adapter.contract.OutcomeUnknownError`; a refused connection is a retryable
``payments.provider.unavailable``.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final
from urllib.parse import urlsplit

import httpx

from dpi.keys import SigningKey
from dpi.signing import SignatureError, sign_request, verify_detached
from payments_adapter.contract import (
    AddressResolution,
    Capabilities,
    FinancialAddress,
    OutcomeUnknownError,
    PaymentInstruction,
    PaymentProvider,
    ProviderError,
    ProviderState,
    ProviderStatus,
)
from payments_adapter.g2p import messages
from payments_adapter.g2p.messages import wire_time

__all__ = ["G2pConnectProvider", "create_provider"]

_MAX_ANSWER: Final = 1024 * 1024
_REFERENCE: Final = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,98}$")
_HEADER_VALUE: Final = re.compile(r"[\x20-\x7e]{1,4000}")
# The G2P Connect ERR_* codes as our reason codes; those not listed are the provider's fault.
_NACK_REASONS: Final[Mapping[str, tuple[str, bool]]] = {
    "ERR_SERVICE_UNAVAILABLE": ("payments.provider.unavailable", True),
    "ERR_INVALID_TIMESTAMP": ("payments.request.expired", True),
}
_STATES: Final[Mapping[str, ProviderState]] = {
    "RCVD": ProviderState.ACCEPTED,
    "PDNG": ProviderState.ACCEPTED,
    "SUCC": ProviderState.COMPLETED,
}


def _now() -> datetime:
    return datetime.now(UTC)


def _required(config: Mapping[str, str], name: str) -> str:
    value = config.get(name, "").strip()
    if not value:
        raise ValueError(f"the g2p-connect provider needs {name!r} in its configuration")
    return value


def _http_url(value: str, name: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.query or parts.fragment:
        raise ValueError(f"{name} must be an absolute http(s) URL without query or fragment, got {value!r}")
    return value.rstrip("/")


def _header_value(value: str, name: str) -> str:
    if not _HEADER_VALUE.fullmatch(value):
        raise ValueError(f"{name} must be printable ASCII characters, without CR or LF")
    return value


def _listing(config: Mapping[str, str], name: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in config.get(name, "").split(",") if part.strip())


class G2pConnectProvider(PaymentProvider):
    """Pays through any G2P Connect disburse provider over HTTP (see the module for the configuration).

    ``transport`` replaces the network (an ``httpx.ASGITransport`` reaches a provider in-process).
    """

    def __init__(
        self,
        name: str,
        config: Mapping[str, str],
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        clock: Any = _now,
    ) -> None:
        self.name = name
        self._base = _http_url(_required(config, "base_url"), "base_url")
        origin = urlsplit(self._base)
        self._jwks_url = _http_url(
            config.get("jwks_url") or f"{origin.scheme}://{origin.netloc}/.well-known/jwks.json", "jwks_url"
        )
        self._sender_id = _header_value(_required(config, "sender_id"), "sender_id")
        self._receiver_id = _header_value(_required(config, "receiver_id"), "receiver_id")
        self._payer_fa = str(FinancialAddress.parse(_required(config, "payer_fa")))
        key_path = Path(_required(config, "signing_key"))
        try:
            pem = key_path.read_bytes()
        except OSError as error:
            raise ValueError(f"cannot read the signing key {key_path}: {error.strerror}") from None
        self._key = SigningKey.from_pem(pem, None, config.get("signing_alg", "EdDSA"))
        try:
            max_bulk = int(config.get("max_bulk", "100"))
            timeout = int(config.get("timeout", "10"))
        except ValueError:
            raise ValueError("max_bulk and timeout (seconds) are whole numbers") from None
        if not 1 <= max_bulk <= messages.MAX_ITEMS or not 0 < timeout <= 300:
            raise ValueError(f"max_bulk is 1 to {messages.MAX_ITEMS} and timeout 0 to 300 seconds")
        self._capabilities = Capabilities(
            idempotency=True,
            status_query=True,
            max_bulk=max_bulk,
            address_schemes=_listing(config, "address_schemes"),
            currencies=_listing(config, "currencies"),
        )
        token = config.get("access_token")
        # G2P Connect's x-access-token: a bearer token of the provider's gateway, when it asks for one.
        headers = {"authorization": f"Bearer {_header_value(token, 'access_token')}"} if token else {}
        self._client = httpx.AsyncClient(
            transport=transport, timeout=timeout, follow_redirects=False, headers=headers
        )
        self._clock = clock
        self._jwks: dict[str, Any] | None = None

    @property
    def capabilities(self) -> Capabilities:
        return self._capabilities

    async def aclose(self) -> None:
        await self._client.aclose()

    async def resolve(self, address: FinancialAddress) -> AddressResolution:
        """G2P Connect disburse has no look-up: an address is payable when this provider reaches its
        scheme; the provider's verdict comes per item (``RJCT_PAYEE_FA_INVALID``)."""
        schemes = self._capabilities.address_schemes
        if schemes and address.provider not in schemes:
            return AddressResolution(address, resolved=False, reason_code="payments.address.not_found")
        return AddressResolution(address, resolved=True)

    def _header(self, action: str, total_count: int) -> dict[str, Any]:
        return {
            "version": messages.G2P_VERSION,
            "message_id": str(uuid.uuid4()),
            "timestamp": wire_time(self._clock()),
            "action": action,
            "sender_id": self._sender_id,
            "receiver_id": self._receiver_id,
            "total_count": total_count,
        }

    def _item(self, instruction: PaymentInstruction) -> dict[str, Any]:
        amount = instruction.amount
        # G2P Connect amounts always carry a decimal point, also for currencies without minor units.
        wire = amount.wire() if "." in amount.wire() else f"{amount.wire()}.00"
        item: dict[str, Any] = {
            "reference_id": instruction.idempotency_key,
            "payer_fa": self._payer_fa,
            "payee_fa": str(instruction.payee),
            "amount": wire,
            "currency_code": amount.currency,
        }
        if instruction.payee_name:
            item["payee_name"] = instruction.payee_name[:200]
        if instruction.narrative:
            item["note"] = instruction.narrative[:99]
        return item

    async def _send(self, request: httpx.Request) -> tuple[int, bytes]:
        try:
            response = await self._client.send(request, stream=True)
        except (httpx.ConnectError, httpx.ConnectTimeout) as error:
            raise ProviderError(
                "payments.provider.unavailable", f"cannot connect to the provider: {error}", retryable=True
            ) from None
        except httpx.TransportError as error:
            raise OutcomeUnknownError(f"no answer from the provider ({type(error).__name__})") from None
        try:
            body = bytearray()
            async for chunk in response.aiter_bytes():
                body += chunk
                if len(body) > _MAX_ANSWER:
                    raise ProviderError(
                        "payments.provider.invalid_response", "the provider's answer is larger than 1 MiB"
                    )
        except httpx.TransportError as error:
            raise OutcomeUnknownError(f"the answer was cut off ({type(error).__name__})") from None
        finally:
            await response.aclose()
        return response.status_code, bytes(body)

    async def submit(self, instruction: PaymentInstruction) -> ProviderStatus:
        answer = (await self.submit_many([instruction]))[0]
        if isinstance(answer, ProviderError):
            raise answer
        return answer

    async def submit_many(
        self, instructions: Sequence[PaymentInstruction]
    ) -> list[ProviderStatus | ProviderError]:
        if not 1 <= len(instructions) <= self._capabilities.max_bulk:
            raise ValueError(f"submit 1 to {self._capabilities.max_bulk} instructions at once")
        answers: list[ProviderStatus | ProviderError | None] = [
            # G2P Connect amounts have at most two decimals: a KWD or BHD fils cannot be carried.
            ProviderError("payments.currency.not_supported", f"G2P Connect cannot carry {i.amount.wire()}")
            if len(i.amount.wire().partition(".")[2]) > 2
            else None
            for i in instructions
        ]
        sendable = [i for i, answer in zip(instructions, answers, strict=True) if answer is None]
        if sendable:
            sent = iter(await self._disburse(sendable))
            answers = [answer if answer is not None else next(sent) for answer in answers]
        return [answer for answer in answers if answer is not None]

    async def _disburse(
        self, instructions: Sequence[PaymentInstruction]
    ) -> list[ProviderStatus | ProviderError]:
        transaction_id = str(uuid.uuid4())
        header = self._header("disburse", len(instructions))
        message = {
            "transaction_id": transaction_id,
            "disburse_request": [self._item(i) for i in instructions],
        }
        envelope = messages.signed(header, message, self._key)
        request = self._client.build_request(
            "POST",
            f"{self._base}/disburse",
            content=json.dumps(envelope).encode(),
            headers={"content-type": "application/json"},
        )
        status, body = await self._send(request)
        document = _json_object(body)
        ack = ((document or {}).get("message") or {}).get("ack") if document else None
        verdict = ack.get("status") if isinstance(ack, Mapping) else None
        if status == 200 and verdict == "ACK":
            correlation = document["message"].get("correlation_id") if document else None
            reference = str(correlation) if correlation else transaction_id
            return [
                ProviderStatus(ProviderState.ACCEPTED, provider_reference=reference, at=self._clock())
                for _ in instructions
            ]
        if verdict == "NACK":
            error = (document or {}).get("error") or {}
            code = str(error.get("code", "")) if isinstance(error, Mapping) else ""
            reason, retryable = _NACK_REASONS.get(code, ("payments.provider.error", False))
            refusal = ProviderError(
                reason, f"the provider refused the message: {code or 'NACK'}", retryable=retryable
            )
            return [refusal for _ in instructions]
        if status >= 500:
            # The provider may have stored the message before failing: only a status query can tell.
            raise OutcomeUnknownError(f"the provider answered HTTP {status}")
        raise ProviderError(
            "payments.provider.invalid_response", f"the provider answered HTTP {status} without ACK or NACK"
        )

    async def _provider_jwks(self, *, refresh: bool = False) -> dict[str, Any]:
        if self._jwks is None or refresh:
            status, body = await self._send(self._client.build_request("GET", self._jwks_url))
            document = _json_object(body)
            if status != 200 or document is None or not isinstance(document.get("keys"), list):
                raise ProviderError(
                    "payments.provider.invalid_response", f"the provider's JWK Set answered HTTP {status}"
                )
            self._jwks = document
        return self._jwks

    async def _verified(self, document: Mapping[str, Any]) -> None:
        signature = document.get("signature")
        signed_part = {"header": document.get("header"), "message": document.get("message")}
        for refresh in (False, True):
            try:
                verify_detached(signed_part, str(signature or ""), await self._provider_jwks(refresh=refresh))
                return
            except SignatureError as error:
                if error.reason_code != "auth.key_unknown" or refresh:
                    raise ProviderError(
                        "payments.provider.invalid_response", f"the answer's signature: {error.reason_code}"
                    ) from None

    async def status(self, idempotency_key: str) -> ProviderStatus:
        if not _REFERENCE.fullmatch(idempotency_key):
            raise ValueError(f"{idempotency_key!r} is not a reference id")
        url = f"{self._base}/disburse/search/{idempotency_key}"
        headers = sign_request("GET", url, {}, b"", self._key)
        status, body = await self._send(self._client.build_request("GET", url, headers=headers))
        document = _json_object(body)
        if status >= 500:
            raise ProviderError(
                "payments.provider.unavailable", f"the provider answered HTTP {status}", retryable=True
            )
        if status != 200 or document is None:
            raise ProviderError(
                "payments.provider.invalid_response", f"the status query answered HTTP {status}"
            )
        await self._verified(document)
        answers = (document.get("message") or {}).get("disburse_response")
        answer = answers[0] if isinstance(answers, list) and len(answers) == 1 else None
        if not isinstance(answer, Mapping) or answer.get("reference_id") != idempotency_key:
            raise ProviderError(
                "payments.provider.invalid_response", "the answer is not about this reference"
            )
        state = str(answer.get("status"))
        code = answer.get("status_reason_code")
        text = answer.get("status_reason_message")
        at = _moment(answer.get("timestamp"))
        if state in _STATES:
            return ProviderStatus(_STATES[state], message=text, at=at)
        if state == "RJCT" and code == messages.REFERENCE_NOT_FOUND:
            return ProviderStatus(ProviderState.NOT_FOUND, at=at)
        if state == "RJCT":
            reason = messages.payments_reason(str(code) if code else None, str(text) if text else None)
            return ProviderStatus(ProviderState.REJECTED, reason_code=reason, message=text, at=at)
        raise ProviderError("payments.provider.invalid_response", f"unknown item status {state!r}")


def _json_object(body: bytes) -> dict[str, Any] | None:
    try:
        document = json.loads(body)
    except (UnicodeDecodeError, ValueError, RecursionError):
        return None
    return document if isinstance(document, dict) else None


def _moment(text: Any) -> datetime | None:
    try:
        moment = datetime.fromisoformat(str(text))
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else None


def create_provider(name: str, config: Mapping[str, str]) -> PaymentProvider:
    """The ``g2p-connect`` entry point: a :class:`G2pConnectProvider` from its configuration."""
    return G2pConnectProvider(name, config)
