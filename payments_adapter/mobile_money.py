"""A generic mobile-money disbursement adapter: the common shape of wallet operators' HTTP APIs.

Modelled on MTN MoMo's Disbursement API (https://momodeveloper.mtn.com/api-documentation, product
"Disbursements"), which most mobile-money disbursement APIs resemble:

- an OAuth 2.0 client-credentials token (RFC 6749 section 4.4, https://www.rfc-editor.org/rfc/rfc6749),
  ``POST {token_path}`` with the client's id and secret in HTTP Basic;
- ``POST {transfer_path}`` with an ``X-Reference-Id`` UUID that the operator keeps as the transfer's
  identity, so sending the same reference twice never pays twice (the operator answers 409);
- ``GET {status_path}`` with that reference: ``PENDING``, ``SUCCESSFUL`` or ``FAILED`` with a reason,
  404 when the operator never received it;
- an account-holder check that gives the holder's name, for the pre-flight name check.

Paths, field names (dotted, such as ``payee.partyId``), status values and reason codes are
configuration, with MTN MoMo's as defaults. Amounts travel as decimal strings. The reference is derived
from the idempotency key (a UUID5), so a restarted process asks about, or resends, the very same
transfer.

HTTP rules: the base URL comes only from configuration; redirects are never followed; a response body
is read up to a limit; values put into a path are checked against a pattern and escaped; header values
from configuration or from the operator (the token) must not hold control characters. A request that
may have reached the operator and got no answer (a timeout after sending, a lost connection, a 5xx to a
transfer) raises :class:`~payments_adapter.contract.OutcomeUnknownError`: only a status query settles
it. A connection refused before anything was sent is a retryable ``payments.provider.unavailable``.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from types import MappingProxyType
from typing import Any, Final
from urllib.parse import quote, urlsplit

import httpx

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

__all__ = [
    "DEFAULT_FIELDS",
    "DEFAULT_REASONS",
    "DEFAULT_STATUSES",
    "MobileMoneyProvider",
    "MobileMoneySettings",
    "create_provider",
    "reference_id",
]

#: Where each value sits in the operator's JSON bodies (MTN MoMo's names by default).
DEFAULT_FIELDS: Final[Mapping[str, str]] = MappingProxyType(
    {
        "amount": "amount",
        "currency": "currency",
        "external_id": "externalId",
        "payee_id_type": "payee.partyIdType",
        "payee_id": "payee.partyId",
        "payer_message": "payerMessage",
        "payee_note": "payeeNote",
        "status": "status",
        "reason": "reason",
        "transaction_id": "financialTransactionId",
        "error_code": "code",
        "holder_name": "name",
        "holder_given_name": "given_name",
        "holder_family_name": "family_name",
        "access_token": "access_token",
        "expires_in": "expires_in",
    }
)

#: The operator's transfer status values and what they mean for a payment.
DEFAULT_STATUSES: Final[Mapping[str, ProviderState]] = MappingProxyType(
    {
        "PENDING": ProviderState.ACCEPTED,
        "CREATED": ProviderState.ACCEPTED,
        "SUCCESSFUL": ProviderState.COMPLETED,
        "FAILED": ProviderState.REJECTED,
        "REJECTED": ProviderState.REJECTED,
        "CANCELLED": ProviderState.CANCELLED,
    }
)

#: The operator's error reasons (MTN MoMo's ErrorReason codes), mapped to the payments vocabulary.
DEFAULT_REASONS: Final[Mapping[str, str]] = MappingProxyType(
    {
        "PAYEE_NOT_FOUND": "payments.address.not_found",
        "NOT_ALLOWED": "payments.payee.rejected",
        "PAYEE_NOT_ALLOWED_TO_RECEIVE": "payments.account.blocked",
        "NOT_ENOUGH_FUNDS": "payments.payer.insufficient_funds",
        "PAYER_LIMIT_REACHED": "payments.payer.limit_exceeded",
        "PAYEE_LIMIT_REACHED": "payments.payee.limit_exceeded",
        "INVALID_CURRENCY": "payments.currency.not_supported",
        "PAYMENT_NOT_APPROVED": "payments.payee.rejected",
        "APPROVAL_REJECTED": "payments.payee.rejected",
        "EXPIRED": "payments.request.expired",
        "TRANSACTION_CANCELED": "payments.item.cancelled",
        "RESOURCE_ALREADY_EXIST": "payments.request.duplicate",
        "PAYER_NOT_FOUND": "payments.provider.error",
        "INTERNAL_PROCESSING_ERROR": "payments.provider.error",
        "COULD_NOT_PERFORM_TRANSACTION": "payments.provider.error",
        "SERVICE_UNAVAILABLE": "payments.provider.unavailable",
    }
)
_UNMAPPED_REASON: Final = "payments.provider.error"

_REFERENCE_NAMESPACE: Final = uuid.UUID("6f1f4c1e-3a52-5d0e-9a51-0d8f6a3c2b10")
_HEADER_NAME: Final = re.compile(r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$")
_CONTROL: Final = re.compile(r"[\x00-\x1f\x7f]")
_TOKEN: Final = re.compile(r"^[A-Za-z0-9\-._~+/]+=*$")
_FIELD_PATH: Final = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")
_ID_TYPE: Final = re.compile(r"^[A-Za-z_]{1,20}$")
_PATH_SEGMENT: Final = re.compile(r"^[A-Za-z0-9+\-_.]{1,64}$")
_TOKEN_MARGIN_SECONDS: Final = 30


def reference_id(idempotency_key: str) -> str:
    """The ``X-Reference-Id`` of the transfer that pays ``idempotency_key``: always the same UUID."""
    return str(uuid.uuid5(_REFERENCE_NAMESPACE, idempotency_key))


def _header_value(name: str, value: str) -> str:
    if not _HEADER_NAME.match(name) or _CONTROL.search(value):
        raise ValueError(f"header {name!r} has a name or value that cannot be sent")
    return value


@dataclass(frozen=True)
class MobileMoneySettings:
    """The adapter's configuration; see :func:`create_provider` for the keys."""

    base_url: str
    client_id: str
    client_secret: str
    token_path: str = "/disbursement/token/"  # noqa: S105 - a path, not a secret
    transfer_path: str = "/disbursement/v1_0/transfer"
    status_path: str = "/disbursement/v1_0/transfer/{reference_id}"
    account_holder_path: str = "/disbursement/v1_0/accountholder/{id_type}/{account}/basicuserinfo"
    party_id_type: str = "MSISDN"
    account_pattern: str = r"^\+?[0-9]{6,15}$"
    currencies: tuple[str, ...] = ()
    address_schemes: tuple[str, ...] = ()
    headers: Mapping[str, str] = field(default_factory=dict)
    fields: Mapping[str, str] = field(default_factory=lambda: DEFAULT_FIELDS)
    statuses: Mapping[str, ProviderState] = field(default_factory=lambda: DEFAULT_STATUSES)
    reasons: Mapping[str, str] = field(default_factory=lambda: DEFAULT_REASONS)
    timeout_ms: int = 10_000
    connect_timeout_ms: int = 5_000
    max_response_bytes: int = 64 * 1024

    def __post_init__(self) -> None:
        parts = urlsplit(self.base_url)
        if parts.scheme not in ("https", "http") or not parts.hostname:
            raise ValueError("the base URL must be an http or https URL with a host")
        if parts.username or parts.password or parts.query or parts.fragment:
            raise ValueError("the base URL carries no credentials, query or fragment")
        if (
            not self.client_id
            or ":" in self.client_id
            or _CONTROL.search(self.client_id + self.client_secret)
        ):
            raise ValueError("the client id (without ':') and secret must be printable")
        for path in (self.token_path, self.transfer_path, self.status_path, self.account_holder_path):
            if not path.startswith("/") or _CONTROL.search(path) or "//" in path or "/../" in f"{path}/":
                raise ValueError(f"path {path!r} must be an absolute path without '..' or '//'")
        if not _ID_TYPE.match(self.party_id_type):
            raise ValueError(f"party id type {self.party_id_type!r} must be letters")
        re.compile(self.account_pattern)
        for name, value in self.headers.items():
            _header_value(name, value)
        for name, path in self.fields.items():
            if name not in DEFAULT_FIELDS or not _FIELD_PATH.match(path):
                raise ValueError(f"field {name!r} -> {path!r} is not a known field with a dotted path")
        if self.max_response_bytes < 1024 or self.timeout_ms <= 0 or self.connect_timeout_ms <= 0:
            raise ValueError("timeouts are positive and the response limit is at least 1024 bytes")

    @classmethod
    def from_config(cls, config: Mapping[str, str]) -> MobileMoneySettings:
        """Settings from flat configuration: plain keys, plus ``header.<Name>``, ``field.<name>``,
        ``status.<VALUE>`` (a provider state) and ``reason.<CODE>`` (a payments reason code)."""
        missing = [key for key in ("base_url", "client_id", "client_secret") if not config.get(key)]
        if missing:
            raise ValueError(f"the mobile-money provider needs {', '.join(missing)}")

        def prefixed(prefix: str) -> dict[str, str]:
            return {key[len(prefix) :]: value for key, value in config.items() if key.startswith(prefix)}

        plain: dict[str, Any] = {}
        for key in ("token_path", "transfer_path", "status_path", "account_holder_path"):
            if key in config:
                plain[key] = config[key]
        for key in ("party_id_type", "account_pattern"):
            if key in config:
                plain[key] = config[key]
        for key in ("timeout_ms", "connect_timeout_ms", "max_response_bytes"):
            if key in config:
                plain[key] = int(config[key])
        for key in ("currencies", "address_schemes"):
            plain[key] = tuple(part.strip() for part in config.get(key, "").split(",") if part.strip())
        return cls(
            base_url=config["base_url"],
            client_id=config["client_id"],
            client_secret=config["client_secret"],
            headers=prefixed("header."),
            fields={**DEFAULT_FIELDS, **prefixed("field.")},
            statuses={**DEFAULT_STATUSES, **{k: ProviderState(v) for k, v in prefixed("status.").items()}},
            reasons={**DEFAULT_REASONS, **prefixed("reason.")},
            **plain,
        )


def _get(document: Any, path: str) -> Any:
    for step in path.split("."):
        if not isinstance(document, dict):
            return None
        document = document.get(step)
    return document


def _put(document: dict[str, Any], path: str, value: Any) -> None:
    *parents, last = path.split(".")
    for step in parents:
        document = document.setdefault(step, {})
    document[last] = value


@dataclass(frozen=True)
class _Answer:
    status_code: int
    body: bytes | None
    """``None`` when the body was larger than the limit (and was not read further)."""


class MobileMoneyProvider(PaymentProvider):
    """Pays into mobile wallets through an operator's disbursement API (see the module's docstring)."""

    def __init__(
        self,
        name: str,
        settings: MobileMoneySettings,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        clock: Callable[[], int] = time.monotonic_ns,
    ) -> None:
        self.name = name
        self._settings = settings
        self._capabilities = Capabilities(
            idempotency=True,
            status_query=True,
            name_check=True,
            max_bulk=1,
            address_schemes=tuple(scheme.lower() for scheme in settings.address_schemes),
            currencies=settings.currencies,
        )
        self._client = httpx.AsyncClient(
            base_url=settings.base_url.rstrip("/"),
            transport=transport,
            follow_redirects=False,
            trust_env=False,
            timeout=httpx.Timeout(settings.timeout_ms / 1000, connect=settings.connect_timeout_ms / 1000),
            headers=dict(settings.headers),
        )
        self._clock = clock
        self._token: tuple[str, int] | None = None
        self._token_lock = asyncio.Lock()
        self._account_pattern = re.compile(settings.account_pattern)

    @property
    def capabilities(self) -> Capabilities:
        return self._capabilities

    # -- HTTP -----------------------------------------------------------------------------------

    async def _exchange(
        self,
        method: str,
        path: str,
        *,
        may_change_state: bool,
        headers: Mapping[str, str] | None = None,
        json_body: Any = None,
        form: Mapping[str, str] | None = None,
        auth: httpx.Auth | None = None,
    ) -> _Answer:
        """One request, classified by how far it got: refused before sending (retryable), or lost
        after it may have been sent (unknown outcome for a request that changes state)."""
        limit = self._settings.max_response_bytes
        try:
            async with (
                # httpx bounds each read; this bounds the whole exchange, so a slow drip cannot hold it.
                asyncio.timeout(self._settings.timeout_ms * 2 / 1000),
                self._client.stream(
                    method, path, headers=headers, json=json_body, data=form, auth=auth
                ) as response,
            ):
                if response.is_redirect:
                    raise ProviderError(
                        "payments.provider.invalid_response",
                        f"the provider answered {method} {path} with a redirect, which is not followed",
                    )
                body: bytes | None = b""
                chunks: list[bytes] = []
                size = 0
                async for chunk in response.aiter_bytes():
                    size += len(chunk)
                    if size > limit:
                        body = None
                        break
                    chunks.append(chunk)
                if body is not None:
                    body = b"".join(chunks)
                return _Answer(response.status_code, body)
        except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as error:
            raise ProviderError(
                "payments.provider.unavailable",
                f"the provider could not be reached: {error!r}",
                retryable=True,
            ) from None
        except (httpx.UnsupportedProtocol, httpx.LocalProtocolError, httpx.InvalidURL) as error:
            raise ProviderError(
                "payments.provider.error", f"the request could not be made: {error}"
            ) from None
        except (TimeoutError, httpx.TransportError) as error:
            if may_change_state:
                raise OutcomeUnknownError(
                    f"{method} {path} may have reached the provider; its answer was lost: {error!r}"
                ) from None
            raise ProviderError(
                "payments.provider.unavailable", f"no answer from the provider: {error!r}", retryable=True
            ) from None

    def _document(self, answer: _Answer) -> dict[str, Any]:
        if answer.body is None:
            raise ProviderError(
                "payments.provider.invalid_response",
                f"the answer is larger than {self._settings.max_response_bytes} bytes",
            )
        try:
            document = json.loads(answer.body) if answer.body else {}
        except (ValueError, RecursionError):
            raise ProviderError("payments.provider.invalid_response", "the answer is not JSON") from None
        if not isinstance(document, dict):
            raise ProviderError("payments.provider.invalid_response", "the answer is not a JSON object")
        return document

    def _field(self, document: Mapping[str, Any], name: str) -> Any:
        return _get(document, self._settings.fields[name])

    def _reason(self, code: Any) -> str:
        if isinstance(code, dict):
            code = code.get("code")
        return (
            self._settings.reasons.get(code, _UNMAPPED_REASON) if isinstance(code, str) else _UNMAPPED_REASON
        )

    async def _bearer(self, *, renew: bool = False) -> str:
        async with self._token_lock:
            now = self._clock()
            if self._token is not None and not renew and self._token[1] > now:
                return self._token[0]
            self._token = None
            answer = await self._exchange(
                "POST",
                self._settings.token_path,
                may_change_state=False,
                form={"grant_type": "client_credentials"},
                auth=httpx.BasicAuth(self._settings.client_id, self._settings.client_secret),
            )
            if answer.status_code >= 500 or answer.status_code == 429:
                raise ProviderError(
                    "payments.provider.unavailable",
                    f"the token endpoint answered {answer.status_code}",
                    retryable=True,
                )
            if answer.status_code != 200:
                raise ProviderError(
                    "payments.provider.error",
                    f"the token endpoint refused our credentials ({answer.status_code})",
                )
            document = self._document(answer)
            token = self._field(document, "access_token")
            if not isinstance(token, str) or len(token) > 4096 or not _TOKEN.match(token):
                raise ProviderError("payments.provider.invalid_response", "the token is missing or malformed")
            try:
                lifetime = int(Decimal(str(self._field(document, "expires_in") or 0)))
            except (InvalidOperation, ValueError):
                raise ProviderError(
                    "payments.provider.invalid_response", "expires_in is not a number"
                ) from None
            self._token = (token, now + max(lifetime - _TOKEN_MARGIN_SECONDS, 0) * 1_000_000_000)
            return token

    async def _authorised(
        self,
        method: str,
        path: str,
        *,
        may_change_state: bool,
        headers: Mapping[str, str] | None = None,
        json_body: Any = None,
    ) -> _Answer:
        """A request with the bearer token; a 401 means the token was refused before anything was
        done, so it is renewed and the request sent once more."""
        answer: _Answer | None = None
        for renew in (False, True):
            token = await self._bearer(renew=renew)
            sent_headers = {**(headers or {}), "Authorization": f"Bearer {token}"}
            answer = await self._exchange(
                method, path, may_change_state=may_change_state, headers=sent_headers, json_body=json_body
            )
            if answer.status_code != 401:
                return answer
        raise ProviderError("payments.provider.error", "the provider refused a fresh token")

    def _path(self, template: str, **values: str) -> str:
        return template.format(**{name: quote(value, safe="") for name, value in values.items()})

    # -- the provider contract ------------------------------------------------------------------

    def _account_problem(self, address: FinancialAddress) -> str | None:
        schemes = self._capabilities.address_schemes
        if schemes and address.provider not in schemes:
            return "payments.address.invalid"
        # The account goes into a URL path: one plain segment whatever the configured pattern admits,
        # never '.', '..', a slash or a percent sign that a server might decode into one.
        account = address.account
        if (
            not _PATH_SEGMENT.match(account)
            or not account.strip(".")
            or not self._account_pattern.fullmatch(account)
        ):
            return "payments.address.invalid"
        return None

    async def resolve(self, address: FinancialAddress) -> AddressResolution:
        """The operator's account-holder check: whether the wallet exists, and its holder's name."""
        problem = self._account_problem(address)
        if problem is not None:
            return AddressResolution(address, resolved=False, reason_code=problem)
        path = self._path(
            self._settings.account_holder_path,
            id_type=self._settings.party_id_type.lower(),
            account=address.account,
        )
        answer = await self._authorised("GET", path, may_change_state=False)
        if answer.status_code == 404:
            return AddressResolution(address, resolved=False, reason_code="payments.address.not_found")
        if answer.status_code >= 500 or answer.status_code == 429:
            raise ProviderError(
                "payments.provider.unavailable",
                f"the holder check answered {answer.status_code}",
                retryable=True,
            )
        document = self._document(answer)
        if answer.status_code != 200:
            reason = self._reason(self._field(document, "error_code"))
            return AddressResolution(address, resolved=False, reason_code=reason)
        name = self._field(document, "holder_name")
        if not isinstance(name, str) or not name.strip():
            parts = [self._field(document, "holder_given_name"), self._field(document, "holder_family_name")]
            name = " ".join(part.strip() for part in parts if isinstance(part, str) and part.strip())
        return AddressResolution(
            address, resolved=True, holder_name=name or None, currencies=self._capabilities.currencies
        )

    def _transfer_body(self, instruction: PaymentInstruction) -> dict[str, Any]:
        body: dict[str, Any] = {}
        _put(body, self._settings.fields["amount"], instruction.amount.wire())
        _put(body, self._settings.fields["currency"], instruction.amount.currency)
        _put(body, self._settings.fields["external_id"], instruction.idempotency_key)
        _put(body, self._settings.fields["payee_id_type"], self._settings.party_id_type)
        _put(body, self._settings.fields["payee_id"], instruction.payee.account)
        _put(body, self._settings.fields["payer_message"], instruction.narrative[:160])
        _put(body, self._settings.fields["payee_note"], instruction.narrative[:160])
        return body

    async def submit(self, instruction: PaymentInstruction) -> ProviderStatus:
        """``POST`` the transfer under the key's reference; a 409 (the reference exists) is answered by
        the stored transfer's status when it is the same payment, and refused when it is not."""
        currencies = self._capabilities.currencies
        if currencies and instruction.amount.currency not in currencies:
            return ProviderStatus(
                ProviderState.REJECTED, "payments.currency.not_supported", None, "currency not offered"
            )
        problem = self._account_problem(instruction.payee)
        if problem is not None:
            return ProviderStatus(ProviderState.REJECTED, problem, None, "the wallet number is not valid")
        reference = reference_id(instruction.idempotency_key)
        answer = await self._authorised(
            "POST",
            self._settings.transfer_path,
            may_change_state=True,
            headers={"X-Reference-Id": reference},
            json_body=self._transfer_body(instruction),
        )
        if 200 <= answer.status_code < 300:
            return ProviderStatus(ProviderState.ACCEPTED, None, reference, "transfer accepted")
        if answer.status_code == 409:
            return await self._replayed(instruction, reference)
        if answer.status_code >= 500:
            raise OutcomeUnknownError(
                f"the provider answered {answer.status_code}; the transfer may or may not have been made"
            )
        if answer.status_code == 429:
            raise ProviderError(
                "payments.provider.unavailable", "the provider asks us to slow down", retryable=True
            )
        code = self._field(self._document(answer), "error_code")
        reason = self._reason(code)
        if reason == _UNMAPPED_REASON:
            raise ProviderError(
                "payments.provider.error",
                f"the provider refused the transfer ({answer.status_code}, {code!r})",
            )
        return ProviderStatus(ProviderState.REJECTED, reason, reference, f"refused: {code}")

    async def _replayed(self, instruction: PaymentInstruction, reference: str) -> ProviderStatus:
        document, status = await self._transfer(reference)
        if document is None or status.state is ProviderState.NOT_FOUND:
            raise ProviderError(
                "payments.provider.invalid_response",
                "the provider says the reference exists but cannot show it",
            )
        amount = self._field(document, "amount")
        try:
            same_amount = amount is not None and Decimal(str(amount)) == instruction.amount.amount
        except InvalidOperation:
            same_amount = False
        same = (
            same_amount
            and self._field(document, "currency") == instruction.amount.currency
            and self._field(document, "payee_id") == instruction.payee.account
            and self._field(document, "external_id") in (None, instruction.idempotency_key)
        )
        if not same:
            raise ProviderError(
                "payments.request.duplicate",
                f"{instruction.idempotency_key} was already sent with another payee or amount",
            )
        return status

    async def _transfer(self, reference: str) -> tuple[dict[str, Any] | None, ProviderStatus]:
        path = self._path(self._settings.status_path, reference_id=reference)
        answer = await self._authorised("GET", path, may_change_state=False)
        if answer.status_code == 404:
            return None, ProviderStatus(
                ProviderState.NOT_FOUND, None, reference, "the provider has no such transfer"
            )
        if answer.status_code >= 500 or answer.status_code == 429:
            raise ProviderError(
                "payments.provider.unavailable",
                f"the status query answered {answer.status_code}",
                retryable=True,
            )
        if answer.status_code != 200:
            raise ProviderError(
                "payments.provider.invalid_response", f"the status query answered {answer.status_code}"
            )
        document = self._document(answer)
        value = self._field(document, "status")
        state = self._settings.statuses.get(value) if isinstance(value, str) else None
        if state is None:
            raise ProviderError("payments.provider.invalid_response", f"unknown transfer status {value!r}")
        reason: str | None = None
        if state in (ProviderState.REJECTED, ProviderState.CANCELLED):
            reason = self._reason(self._field(document, "reason"))
        transaction = self._field(document, "transaction_id")
        provider_reference = transaction if isinstance(transaction, str) and transaction else reference
        return document, ProviderStatus(state, reason, provider_reference, f"status {value}")

    async def status(self, idempotency_key: str) -> ProviderStatus:
        """``GET`` the transfer under the key's reference (``NOT_FOUND`` on 404)."""
        _, status = await self._transfer(reference_id(idempotency_key))
        return status

    async def aclose(self) -> None:
        await self._client.aclose()


def create_provider(name: str, config: Mapping[str, str]) -> PaymentProvider:
    """Build the adapter from its configuration (entry point ``mobile-money`` of ``dpi.payment_providers``).

    Keys: ``base_url``, ``client_id``, ``client_secret`` (required); ``token_path``, ``transfer_path``,
    ``status_path`` (with ``{reference_id}``), ``account_holder_path`` (with ``{id_type}`` and
    ``{account}``), ``party_id_type``, ``account_pattern``, ``currencies``, ``address_schemes``,
    ``timeout_ms``, ``connect_timeout_ms``, ``max_response_bytes``; ``header.<Name>`` for
    headers every request carries (``header.X-Target-Environment``), ``field.<name>`` for a field's
    dotted path, ``status.<VALUE>`` and ``reason.<CODE>`` to map more of the operator's values.
    """
    return MobileMoneyProvider(name, MobileMoneySettings.from_config(config))
