"""How other blocks reach the consent block: a consent check (``consent-check-request`` to
``consent-check-decision``) with one contract, two implementations (over HTTP and in-process) and a
caching checker that learns of every committed change; and the record of a claim release, the consent a
person gives at an OpenID provider to release claims to a client, with its signed receipt.

The cache's guarantee: once a withdrawal (or any other change) of a consent is committed, no check
through a cache permits from a stale entry again, subject to these windows:

- in-process (:meth:`CachingConsentChecker.attach`): none. The service calls its listeners after the
  commit and before ``act`` returns, so the entries are gone when the caller learns of the change.
- across processes (:meth:`CachingConsentChecker.listen`): PostgreSQL delivers the
  ``dpi_consent_changes`` notification right after the commit; until this process has read it, a
  cached permit may still be served. That window is the notification latency (measured by
  ``bench/consent_checks.py``, well under a millisecond on a local server). If the listening connection
  drops, the cache serves nothing from memory until it has listened again, and then starts empty.

What is never cached: decisions that count an access against a frequency limit (each permit consumes
one), and any permit past the moment its consent stops permitting by itself (``valid_until``).
A deny is dropped on any change of the subject's consents, so an approval is seen at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import time
from collections.abc import Awaitable, Callable, Hashable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final, Protocol, runtime_checkable

import asyncpg  # type: ignore[import-untyped]
import httpx

import standards
from consent.checks import DECISION_SCHEMA, Decision, validate_request
from consent.lifecycle import Action, ActorRole, Channel, State
from consent.service import Actor, ConsentService, notice_hash
from dpi.blocks import BlockContext
from dpi.errors import DpiError, ErrorDetail
from dpi.signing import canonical_json
from standards import SchemaValidationError

__all__ = [
    "CHANGES_CHANNEL",
    "CHECKS_PATH",
    "CLAIMS_SCHEMA",
    "CachingConsentChecker",
    "ClaimRelease",
    "ClaimReleaseRecorder",
    "ConsentClient",
    "DecisionSource",
    "HttpConsentClient",
    "InProcessClaimReleaseRecorder",
    "InProcessConsentClient",
    "ReleaseReceipt",
]

CHECKS_PATH: Final = "/consent/v1/checks"
CHANGES_CHANNEL: Final = "dpi_consent_changes"
_log = logging.getLogger("consent.client")


@runtime_checkable
class ConsentClient(Protocol):
    """Anything that answers a consent check with a ``consent-check-decision``."""

    async def check(self, request: Mapping[str, Any]) -> dict[str, Any]: ...


@runtime_checkable
class DecisionSource(Protocol):
    """A consent client that also says whether each decision may be cached."""

    async def decide(self, request: Mapping[str, Any]) -> Decision: ...


class InProcessConsentClient:
    """The contract served by a checker in this process (a ``ConsentChecker`` or a cache over one)."""

    def __init__(self, checker: ConsentClient) -> None:
        self._checker = checker

    async def check(self, request: Mapping[str, Any]) -> dict[str, Any]:
        return await self._checker.check(request)

    async def decide(self, request: Mapping[str, Any]) -> Decision:
        if isinstance(self._checker, DecisionSource):
            return await self._checker.decide(request)
        return Decision(await self._checker.check(request), cacheable=False)


def _error_from(response: httpx.Response) -> DpiError:
    try:
        body = response.json()
        reason = body["reason_code"]
        standards.reason_code(reason)
        details = [
            ErrorDetail(detail["pointer"], detail["reason_code"], detail["message"])
            for detail in body.get("details", [])
        ]
        return DpiError(reason, body.get("message"), details=details)
    except (ValueError, KeyError, TypeError):
        return DpiError("internal.error", f"the consent service answered {response.status_code}")


class HttpConsentClient:
    """The contract over HTTP: ``POST {base_url}/consent/v1/checks`` with a bearer token.

    ``token`` is awaited before each call (so it can refresh). Refusals of the request come back as
    :class:`dpi.errors.DpiError` with the server's reason code and details, exactly as the in-process
    checker raises them; an unreachable service is ``service.not_ready``, and an answer that is not a
    valid decision is ``internal.error``: the caller must treat both as a deny.

    A decision may be cached only when the server says so: its response carries a ``Cache-Control``
    header without ``no-store`` (the check route answers ``no-store`` when it counted an access).
    """

    def __init__(
        self,
        base_url: str,
        *,
        client: httpx.AsyncClient | None = None,
        token: Callable[[], Awaitable[str]] | None = None,
    ) -> None:
        self._url = base_url.rstrip("/") + CHECKS_PATH
        self._client = client or httpx.AsyncClient(timeout=10.0)
        self._owns_client = client is None
        self._token = token

    async def check(self, request: Mapping[str, Any]) -> dict[str, Any]:
        return (await self.decide(request)).document

    async def decide(self, request: Mapping[str, Any]) -> Decision:
        headers = {"Accept": "application/json"}
        if self._token is not None:
            headers["Authorization"] = f"Bearer {await self._token()}"
        try:
            response = await self._client.post(self._url, json=dict(request), headers=headers)
        except httpx.HTTPError as failure:
            raise DpiError("service.not_ready", "the consent service could not be reached") from failure
        try:
            document = response.json()
        except ValueError:
            document = None
        # A deny is a decision, not an error, whatever status the server chose to give it.
        if isinstance(document, dict) and "decision" in document:
            if not standards.validator(DECISION_SCHEMA).is_valid(document):
                raise DpiError("internal.error", "the consent service answered an invalid decision")
            cache_control = response.headers.get("cache-control", "").lower()
            return Decision(document, cacheable=bool(cache_control) and "no-store" not in cache_control)
        raise _error_from(response)

    async def aclose(self) -> None:
        if self._owns_client:
            await self._client.aclose()

    async def __aenter__(self) -> HttpConsentClient:
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.aclose()


_MISS: Final = object()


def _frozen(value: Any) -> Hashable:
    if isinstance(value, list | tuple):
        return tuple(value)
    if isinstance(value, dict):
        return (value.get("from"), value.get("to"), len(value))
    return value  # type: ignore[no-any-return]


def _request_key(request: Mapping[str, Any]) -> Hashable:
    """The request as a hashable value; equal keys mean equal requests.

    Named members in a fixed order plus the member count, so a request with any extra member never
    matches the key of a valid one: a cache hit is always the exact request validated on its miss.
    """
    return (
        request.get("subject"),
        request.get("consumer"),
        request.get("provider"),
        request.get("service"),
        request.get("purpose"),
        _frozen(request.get("fields")),
        _frozen(request.get("data_range")),
        len(request),
    )


@dataclass(slots=True)
class _Entry:
    document: dict[str, Any]
    deadline: float
    subject: str
    consent_id: str | None


class CachingConsentChecker:
    """A consent client that answers repeated checks from memory and forgets on every change.

    ``inner`` answers misses (a ``ConsentChecker``, an in-process or HTTP client). Entries live
    ``ttl_seconds`` at most, never past the consent's ``valid_until``, and at most ``max_entries`` are
    kept (the oldest go first). See the module docstring for what is cached and the guarantee.
    """

    def __init__(
        self,
        inner: ConsentClient,
        *,
        ttl_seconds: float = 60.0,
        max_entries: int = 100_000,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._inner = inner
        self._ttl = ttl_seconds
        self._max_entries = max_entries
        self._clock = clock
        self._entries: dict[Hashable, _Entry] = {}
        self._by_subject: dict[str, set[Hashable]] = {}
        self._by_consent: dict[str, set[Hashable]] = {}
        self._subject_of: dict[str, str] = {}
        self._denies: set[Hashable] = set()
        # Bumped by every invalidation: a miss that was in flight across one is answered but not kept.
        self._generation = 0
        self._listeners = 0
        self._connected = 0
        self.hits = 0
        self.misses = 0

    # --- checking ---------------------------------------------------------------------------------

    async def check(self, request: Mapping[str, Any]) -> dict[str, Any]:
        """The decision for ``request``: from memory when a fresh entry exists, else from ``inner``."""
        try:
            key = _request_key(request)
            entry = self._entries.get(key, _MISS)
        except TypeError:  # an unhashable member: not a valid request, the miss path says why
            key, entry = None, _MISS
        if entry is not _MISS and self._connected == self._listeners:
            assert isinstance(entry, _Entry)
            if entry.deadline > self._clock():
                self.hits += 1
                document = entry.document.copy()
                document["permitted_fields"] = list(entry.document["permitted_fields"])
                return document
            self._drop(key)
        self.misses += 1
        return await self._miss(key, request)

    async def decide(self, request: Mapping[str, Any]) -> Decision:
        """:meth:`check`, marked never cacheable, by design: the answer may come from this cache, and a
        second cache keeping it would break the guarantee of the module docstring. That cache learns of a
        change at its own moment; told first, it forgets and asks again, and this cache, not yet told,
        answers the stale permit, which the second cache would then keep after both had been told. So
        caches are never stacked: put one cache in front of a ``ConsentChecker`` or an HTTP client, and
        serve ``POST /consent/v1/checks`` from the checker itself."""
        return Decision(await self.check(request), cacheable=False)

    async def _miss(self, key: Hashable, request: Mapping[str, Any]) -> dict[str, Any]:
        validate_request(request)
        generation = self._generation
        if isinstance(self._inner, DecisionSource):
            decision = await self._inner.decide(request)
        else:
            decision = Decision(await self._inner.check(request), cacheable=False)
        document = decision.document
        if (
            decision.cacheable
            and key is not None
            and generation == self._generation
            and self._connected == self._listeners
        ):
            self._store(key, request["subject"], document)
        return document

    def _store(self, key: Hashable, subject: str, document: dict[str, Any]) -> None:
        deadline = self._clock() + self._ttl
        if "valid_until" in document:
            deadline = min(deadline, datetime.fromisoformat(document["valid_until"]).timestamp())
        if key in self._entries:
            self._drop(key)
        while len(self._entries) >= self._max_entries:
            self._drop(next(iter(self._entries)))
        consent_id = document.get("consent_id")
        self._entries[key] = _Entry(
            {**document, "permitted_fields": list(document["permitted_fields"])},
            deadline,
            subject,
            consent_id,
        )
        self._by_subject.setdefault(subject, set()).add(key)
        if consent_id is not None:
            self._by_consent.setdefault(consent_id, set()).add(key)
            self._subject_of[consent_id] = subject
        if document["decision"] == "deny":
            self._denies.add(key)

    def _drop(self, key: Hashable) -> None:
        entry = self._entries.pop(key, None)
        if entry is None:
            return
        self._denies.discard(key)
        keys = self._by_subject.get(entry.subject)
        if keys is not None:
            keys.discard(key)
            if not keys:
                del self._by_subject[entry.subject]
        if entry.consent_id is not None:
            keys = self._by_consent.get(entry.consent_id)
            if keys is not None:
                keys.discard(key)
                if not keys:
                    del self._by_consent[entry.consent_id]
                    self._subject_of.pop(entry.consent_id, None)

    def __len__(self) -> int:
        return len(self._entries)

    # --- forgetting -------------------------------------------------------------------------------

    def invalidate(self, consent_id: str, subject: str | None = None) -> None:
        """Forget every decision about ``subject`` (or, when only the consent is known, about the
        subject the cache saw with it, and every cached deny, since a consent unknown here may now
        permit what was denied)."""
        self._generation += 1
        if subject is None:
            subject = self._subject_of.get(consent_id)
            if subject is None:
                for key in list(self._denies):
                    self._drop(key)
        if subject is not None:
            for key in list(self._by_subject.get(subject, ())):
                self._drop(key)
        for key in list(self._by_consent.get(consent_id, ())):
            self._drop(key)

    def clear(self) -> None:
        self._generation += 1
        self._entries.clear()
        self._by_subject.clear()
        self._by_consent.clear()
        self._subject_of.clear()
        self._denies.clear()

    def attach(self, service: Any) -> None:
        """Register with a ``ConsentService`` in this process: told of every change after its commit,
        before the call that made it returns."""
        service.listeners.append(self._changed)

    async def _changed(self, consent_id: str, subject: str) -> None:
        self.invalidate(consent_id, subject)

    async def listen(
        self, dsn: str, *, ready: asyncio.Event | None = None, retry_seconds: float = 1.0
    ) -> None:
        """Follow PostgreSQL ``LISTEN dpi_consent_changes`` (payload: a consent id) until cancelled.

        ``dsn`` may be a SQLAlchemy URL (``postgresql+asyncpg://...``). ``ready`` is set each time the
        cache listens. While the connection is down the cache answers every check from ``inner`` and
        keeps nothing, and it starts empty once listening again, since notices may have been missed.
        """
        dsn = dsn.replace("postgresql+asyncpg://", "postgresql://", 1)
        self._listeners += 1
        try:
            while True:
                lost = asyncio.Event()
                try:
                    connection = await asyncpg.connect(dsn)
                except (OSError, asyncpg.PostgresError) as failure:
                    _log.warning("consent change listener cannot connect: %s", type(failure).__name__)
                    await asyncio.sleep(retry_seconds)
                    continue
                try:
                    connection.add_termination_listener(lambda _connection, lost=lost: lost.set())
                    await connection.add_listener(CHANGES_CHANNEL, self._notified)
                    self.clear()
                    self._connected += 1
                    try:
                        if ready is not None:
                            ready.set()
                        await lost.wait()
                    finally:
                        self._connected -= 1
                        self.clear()
                finally:
                    with contextlib.suppress(Exception):
                        await asyncio.shield(connection.close(timeout=2))
                await asyncio.sleep(retry_seconds)
        finally:
            self._listeners -= 1

    def _notified(self, _connection: object, _pid: int, _channel: str, payload: object) -> None:
        self.invalidate(str(payload))


# --- claim releases at an OpenID provider -------------------------------------------------------------

CLAIMS_SCHEMA: Final = "identity-userinfo@1.1.0"
_RELEASE_PURPOSE: Final = "identity-verification"
_NOTICE_LANGUAGES: Final = ("en", "fr", "ar")


@dataclass(frozen=True)
class ClaimRelease:
    """What a person agreed to at an OpenID provider: which claims about them a client receives.

    ``subject`` is the person's pseudonym in the client's sector (never a UIN); ``consumer`` the client's
    subsystem id; ``claims`` the released claim names (``sub`` among them); ``notices`` the text the page
    showed, in English, French and Arabic, and ``language`` the one the person read.
    """

    subject: str
    consumer: str
    client_id: str
    client_name: str
    contact: str
    claims: tuple[str, ...]
    notices: Mapping[str, str]
    language: str
    validity_days: int


@dataclass(frozen=True)
class ReleaseReceipt:
    """The consent that records a release (or its withdrawal) and its signed receipt (a JWS)."""

    consent_id: str
    receipt: str


@runtime_checkable
class ClaimReleaseRecorder(Protocol):
    """Records claim releases as consents and returns their signed receipts.

    Only the in-process implementation exists: the consent API's subject routes take the person's own
    access token, which an OpenID provider recording on the person's behalf does not hold.
    """

    async def record_release(self, release: ClaimRelease) -> ReleaseReceipt: ...

    async def withdraw_release(self, consent_id: str, subject: str) -> ReleaseReceipt: ...


class InProcessClaimReleaseRecorder:
    """Claim releases as consents of this process's consent service.

    Each distinct (client, claim set, notice) is one agreement: the client's subsystem as consumer, the
    OpenID provider's ``provider`` subsystem and its ``userinfo`` service as provider, the purpose
    ``identity-verification`` under the legal basis ``consent``, and the claims as fields of
    ``identity-userinfo``. A person's new choice is a new consent; an earlier one still in force for the
    same agreement is withdrawn first, so the history shows both.
    """

    def __init__(self, service: ConsentService, *, provider: str) -> None:
        self._service = service
        self._provider = provider

    @classmethod
    def over(cls, context: BlockContext, *, provider: str | None = None) -> InProcessClaimReleaseRecorder:
        """The recorder over the consent tables of a mounted app (the consent block's own receipts key
        and issuer). ``provider`` is the OpenID provider's subsystem id, by default ``DPI_MEMBER_ID``
        when it names a subsystem."""
        settings = context.settings
        provider = provider or settings.member_id
        if provider is None or provider.count("/") != 3:
            raise ValueError("claim releases need the OpenID provider's subsystem id (DPI_MEMBER_ID)")
        issuer = settings.member_id if settings.member_id is not None else settings.public_url
        return cls(
            ConsentService(sessions=context.sessions, keys=context.keys, issuer=issuer), provider=provider
        )

    async def record_release(self, release: ClaimRelease) -> ReleaseReceipt:
        agreement = await self._agreement(release)
        subject = Actor(ActorRole.SUBJECT, release.subject)
        record, _created = await self._service.request_consent(
            {"agreement_id": agreement["agreement_id"], "subject": release.subject},
            Actor(ActorRole.CONTROLLER, release.consumer),
        )
        if State(record["state"]) in (State.ACTIVE, State.PAUSED):
            await self._service.act(record["consent_id"], Action.WITHDRAW, subject, channel=Channel.WEB)
            record, _created = await self._service.request_consent(
                {"agreement_id": agreement["agreement_id"], "subject": release.subject},
                Actor(ActorRole.CONTROLLER, release.consumer),
            )
        language = release.language if release.language in _NOTICE_LANGUAGES else "en"
        notice = {"language": language, "hash": agreement["notices"][language]["hash"]}
        result = await self._service.act(
            record["consent_id"], Action.APPROVE, subject, channel=Channel.WEB, notice=notice
        )
        if result.receipt is None:
            raise DpiError("internal.error", "an approval came back without its receipt")
        return ReleaseReceipt(record["consent_id"], result.receipt)

    async def withdraw_release(self, consent_id: str, subject: str) -> ReleaseReceipt:
        result = await self._service.act(
            consent_id, Action.WITHDRAW, Actor(ActorRole.SUBJECT, subject), channel=Channel.WEB
        )
        if result.receipt is None:
            raise DpiError("internal.error", "a withdrawal came back without its receipt")
        return ReleaseReceipt(consent_id, result.receipt)

    async def _agreement(self, release: ClaimRelease) -> dict[str, Any]:
        notices = {language: release.notices[language] for language in _NOTICE_LANGUAGES}
        fingerprint = hashlib.sha256(
            canonical_json(
                {
                    "consumer": release.consumer,
                    "client_id": release.client_id,
                    "claims": sorted(release.claims),
                    "notices": {language: notice_hash(text) for language, text in notices.items()},
                    "validity_days": release.validity_days,
                    "provider": self._provider,
                }
            )
        ).hexdigest()
        agreement_id = f"oidc-release-{fingerprint[:40]}"
        try:
            return await self._service.agreement(agreement_id)
        except DpiError as error:
            if error.reason_code != "agreement.not_found":
                raise
        try:
            return await self._service.publish_agreement(
                {
                    "agreement_id": agreement_id,
                    "consumer": release.consumer,
                    "providers": [{"provider": self._provider, "service": "userinfo"}],
                    "purpose": _RELEASE_PURPOSE,
                    "legal_basis": "consent",
                    "data_items": [
                        {"schema": CLAIMS_SCHEMA, "fields": [f"/{claim}" for claim in sorted(release.claims)]}
                    ],
                    "retention_days": release.validity_days,
                    "max_validity_days": release.validity_days,
                    "revocable": True,
                    "controller": {"name": release.client_name, "contact": release.contact},
                    "notices": {language: {"text": text} for language, text in notices.items()},
                }
            )
        except SchemaValidationError as error:
            # A client the consent block cannot name (its sector is not a subsystem id, say) gets a
            # reason, not a 500; the pointers say which member, without the values.
            pointers = ", ".join(sorted({issue.pointer or "/" for issue in error.issues}))
            raise DpiError(
                "agreement.invalid",
                f"the claim release cannot be recorded as a consent (invalid {pointers}); a client's sector "
                "must be a subsystem id INSTANCE/CLASS/MEMBER/SUBSYSTEM",
            ) from error
