"""Profile ``consent``: a consent service the exchange may rely on (requirements CNS-001..CNS-016).

The suite plays every party over HTTP with access tokens it issues (see ``conformance_tests.tokens``):
an administrator publishes a test agreement, the consumer asks a synthetic subject, the subject answers,
the exchange checks. Nothing of the implementation is imported: hashes, signatures and schemas are
checked against ``standards`` with the suite's own code.
"""

from __future__ import annotations

import asyncio
import hashlib
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Final

import standards
from conformance_tests.model import Finding, Profile
from conformance_tests.receiver import CallbackReceiver, CallbackTimeout
from conformance_tests.registry import register_profile
from conformance_tests.target import Exchange, TargetSession
from conformance_tests.tokens import TokenMinter
from dpi.signing import SignatureError, canonical_json, verify_compact

__all__ = ["CONSENT"]

CONSENT = register_profile(
    Profile(name="consent", version="1.0.0", description="Consent records, receipts and the check API.")
)

PREFIX: Final = "/consent/v1"
CONSUMER: Final = "DPI/TEST/CONFORMANCE/consumer"
PROVIDER: Final = "DPI/TEST/CONFORMANCE/provider"
OTHER_MEMBER: Final = "DPI/TEST/CONFORMANCE/stranger"
SERVICE: Final = "person"
FIELDS: Final = ["/date_of_birth", "/names"]
FREQUENCY_LIMIT: Final = 3
GENESIS: Final = "sha256:" + "0" * 64
NO_TOKENS: Final = (
    "the consent profile needs the target to trust the suite's token issuer: run with --token-key and "
    "--token-issuer, and configure the target with the JWKS from `dpi conformance token-jwks`"
)


def _pseudonym() -> str:
    return "cnf" + uuid.uuid4().hex + "x"


def _agreement(agreement_id: str, **changes: Any) -> dict[str, Any]:
    text = "Conformance test agreement: the consumer reads a name and a date of birth."
    draft: dict[str, Any] = {
        "agreement_id": agreement_id,
        "consumer": CONSUMER,
        "providers": [{"provider": PROVIDER, "service": SERVICE}],
        "purpose": "jobseeker-registration",
        "legal_basis": "consent",
        "data_items": [{"schema": "person@1.0.0", "fields": list(FIELDS)}],
        "retention_days": 30,
        "max_validity_days": 30,
        "data_range": {"from": "2000-01-01", "to": "2030-12-31"},
        "revocable": True,
        "controller": {"name": "Conformance consumer", "contact": "conformance@example.org"},
        "notices": {"en": {"text": text}, "fr": {"text": "Accord d'essai."}, "ar": {"text": "اتفاق اختبار."}},
    }
    draft.update(changes)
    return draft


@dataclass
class _World:
    """What the setup created on the target, shared by the profile's tests."""

    tokens: TokenMinter
    agreement: dict[str, Any] = field(default_factory=dict)
    limited: dict[str, Any] = field(default_factory=dict)
    subject: str = ""
    consent_id: str = ""
    problems: list[str] = field(default_factory=list)
    setup: list[Exchange] = field(default_factory=list)

    def bearer(self, subject: str, *scopes: str, member: str | None = None) -> dict[str, str]:
        return {"authorization": f"Bearer {self.tokens.mint(subject, scopes, member=member)}"}

    @property
    def admin(self) -> dict[str, str]:
        return self.bearer("conformance-admin", "consent:admin")

    @property
    def consumer(self) -> dict[str, str]:
        return self.bearer("conformance-consumer", "consent:request", "consent:revoke", member=CONSUMER)

    @property
    def exchange(self) -> dict[str, str]:
        return self.bearer("conformance-exchange", "consent:check")

    def citizen(self, subject: str) -> dict[str, str]:
        return self.bearer(subject, "consent:self")


async def _publish(session: TargetSession, world: _World, draft: Mapping[str, Any]) -> dict[str, Any] | None:
    exchange = await session.request(
        "POST", f"{PREFIX}/agreements", json_body=dict(draft), headers=world.admin
    )
    world.setup.append(exchange)
    body = exchange.json_object()
    if exchange.status != 201 or body is None:
        world.problems.append(f"publishing an agreement answered {exchange.status}: {exchange.excerpt(200)}")
        return None
    return body


async def _ask(
    session: TargetSession, world: _World, agreement_id: str, subject: str
) -> dict[str, Any] | None:
    exchange = await session.request(
        "POST",
        f"{PREFIX}/consents",
        json_body={"agreement_id": agreement_id, "subject": subject},
        headers=world.consumer,
    )
    world.setup.append(exchange)
    body = exchange.json_object()
    if exchange.status not in (200, 201) or body is None or "consent_id" not in body:
        world.problems.append(f"asking for consent answered {exchange.status}: {exchange.excerpt(200)}")
        return None
    return body


def _notice(agreement: Mapping[str, Any], language: str = "en") -> dict[str, str]:
    return {"language": language, "hash": agreement["notices"][language]["hash"]}


async def _act(
    session: TargetSession, world: _World, subject: str, consent_id: str, action: str, **body: Any
) -> Exchange:
    return await session.request(
        "POST",
        f"{PREFIX}/me/consents/{consent_id}/{action}",
        json_body={"channel": "web", **body},
        headers=world.citizen(subject),
    )


async def _approved(
    session: TargetSession, world: _World, agreement: Mapping[str, Any]
) -> tuple[str, str] | None:
    subject = _pseudonym()
    record = await _ask(session, world, agreement["agreement_id"], subject)
    if record is None:
        return None
    answer = await _act(session, world, subject, record["consent_id"], "approve", notice=_notice(agreement))
    world.setup.append(answer)
    if answer.status != 200:
        world.problems.append(f"approving answered {answer.status}: {answer.excerpt(200)}")
        return None
    return subject, record["consent_id"]


async def _world(session: TargetSession) -> _World | None:
    """Publish the test agreements and one approved consent, once per run."""
    if "consent" in session.state:
        world: _World | None = session.state["consent"]
        return world
    tokens = session.options.tokens
    if tokens is None:
        session.state["consent"] = None
        return None
    world = _World(tokens=tokens)
    suffix = uuid.uuid4().hex[:12]
    published = await _publish(session, world, _agreement(f"cnf-{suffix}"))
    limited = await _publish(
        session,
        world,
        _agreement(f"cnf-limited-{suffix}", frequency={"max_accesses": FREQUENCY_LIMIT, "period_days": 1}),
    )
    if published is not None and limited is not None:
        world.agreement, world.limited = published, limited
        approved = await _approved(session, world, published)
        if approved is not None:
            world.subject, world.consent_id = approved
    session.state["consent"] = world
    return world


def _unavailable(requirements: Sequence[str], world: _World | None) -> list[Finding] | None:
    if world is None:
        return [Finding.skipped(requirement, NO_TOKENS) for requirement in requirements]
    if world.problems or not world.consent_id:
        reason = "; ".join(world.problems) or "no consent could be approved"
        evidence = world.setup[-1].evidence("the setup to succeed") if world.setup else None
        return [
            Finding.failed(requirement, f"setup failed: {reason}", evidence) for requirement in requirements
        ]
    return None


def _check_request(world: _World, subject: str, **changes: Any) -> dict[str, Any]:
    request: dict[str, Any] = {
        "consumer": CONSUMER,
        "provider": PROVIDER,
        "service": SERVICE,
        "purpose": "jobseeker-registration",
        "subject": subject,
        "fields": ["/names"],
        "data_range": {"from": "2010-01-01", "to": "2020-12-31"},
    }
    request.update(changes)
    return request


async def _check(session: TargetSession, world: _World, request: Mapping[str, Any]) -> Exchange:
    return await session.request("POST", f"{PREFIX}/checks", json_body=dict(request), headers=world.exchange)


def _decision_problem(exchange: Exchange, decision: str, reason_code: str) -> str | None:
    if exchange.status != 200:
        return f"answered {exchange.status}, not 200"
    body = exchange.json_object()
    if body is None:
        return "the body is not a JSON object"
    issues = standards.validator("consent-check-decision").issues(body)
    if issues:
        return f"not a valid consent-check-decision: {issues[0].pointer or '(root)'} {issues[0].message}"
    if (body.get("decision"), body.get("reason_code")) != (decision, reason_code):
        return f"decided {body.get('decision')}/{body.get('reason_code')}, not {decision}/{reason_code}"
    return None


def _expect_decision(
    requirement: str, exchange: Exchange, decision: str, reason_code: str, what: str
) -> Finding:
    problem = _decision_problem(exchange, decision, reason_code)
    if problem is None:
        return Finding.passed(requirement, f"{what}: {decision} with {reason_code}")
    return Finding.failed(
        requirement, f"{what}: {problem}", exchange.evidence(f"200 {decision} {reason_code}")
    )


def _expect_refusal(
    requirement: str, exchange: Exchange, status: int, reason_code: str, what: str
) -> Finding:
    body = exchange.json_object() or {}
    if exchange.status == status and body.get("reason_code") == reason_code:
        return Finding.passed(requirement, f"{what}: {status} {reason_code}")
    return Finding.failed(
        requirement,
        f"{what}: answered {exchange.status} {body.get('reason_code')!r}",
        exchange.evidence(f"{status} with reason_code {reason_code}"),
    )


async def _record(session: TargetSession, world: _World, subject: str, consent_id: str) -> dict[str, Any]:
    exchange = await session.request(
        "GET", f"{PREFIX}/me/consents/{consent_id}", headers=world.citizen(subject)
    )
    return exchange.json_object() or {}


async def _jwks(session: TargetSession) -> dict[str, Any]:
    capabilities = await session.capabilities_document() or {}
    uri = next(
        (block.get("jwks_uri") for block in capabilities.get("blocks", []) if block.get("name") == "consent"),
        None,
    ) or (capabilities.get("signature") or {}).get("jwks_uri", "/.well-known/jwks.json")
    exchange = await session.request("GET", str(uri))
    return exchange.json_object() or {"keys": []}


# --- the check API ------------------------------------------------------------------------------------------


@CONSENT.test("check-decisions", ["CNS-001", "CNS-002", "CNS-007", "CNS-008", "CNS-009"])
async def check_decisions(session: TargetSession) -> list[Finding]:
    """Permit for an ACTIVE consent; the precise deny reason for each way a request falls outside it."""
    world = await _world(session)
    unavailable = _unavailable(["CNS-001", "CNS-002", "CNS-007", "CNS-008", "CNS-009"], world)
    if unavailable is not None or world is None:
        return unavailable or []
    findings: list[Finding] = []
    permit = await _check(session, world, _check_request(world, world.subject))
    findings.append(_expect_decision("CNS-001", permit, "permit", "consent.permitted", "an approved consent"))
    body = permit.json_object() or {}
    if body.get("permitted_fields") and not set(body["permitted_fields"]) <= set(FIELDS):
        findings.append(
            Finding.failed("CNS-008", "a permit listed fields outside the consent", permit.evidence(""))
        )
    stranger = await _check(session, world, _check_request(world, _pseudonym()))
    findings.append(
        _expect_decision("CNS-002", stranger, "deny", "consent.not_found", "a subject without consent")
    )
    pending_subject = _pseudonym()
    await _ask(session, world, world.agreement["agreement_id"], pending_subject)
    pending = await _check(session, world, _check_request(world, pending_subject))
    findings.append(
        _expect_decision("CNS-002", pending, "deny", "consent.pending", "a request not yet answered")
    )
    purpose = await _check(
        session, world, _check_request(world, world.subject, purpose="official-statistics")
    )
    findings.append(
        _expect_decision("CNS-007", purpose, "deny", "consent.purpose_mismatch", "another purpose")
    )
    fields = await _check(session, world, _check_request(world, world.subject, fields=["/names", "/address"]))
    findings.append(
        _expect_decision("CNS-008", fields, "deny", "consent.fields_not_covered", "a field not consented")
    )
    out_of_range = await _check(
        session,
        world,
        _check_request(world, world.subject, data_range={"from": "1990-01-01", "to": "1995-12-31"}),
    )
    findings.append(
        _expect_decision(
            "CNS-009", out_of_range, "deny", "consent.data_range_not_covered", "data outside the range"
        )
    )
    return findings


@CONSENT.test("only-active-permits", ["CNS-002", "CNS-003", "CNS-010"])
async def only_active_permits(session: TargetSession) -> list[Finding]:
    """Pause, resume, withdraw: only ACTIVE permits; a withdrawn consent cannot be approved or refused;
    approval and withdrawal each give a receipt that verifies with the published JWKS."""
    world = await _world(session)
    unavailable = _unavailable(["CNS-002", "CNS-003", "CNS-010"], world)
    if unavailable is not None or world is None:
        return unavailable or []
    approved = await _approved(session, world, world.agreement)
    if approved is None:
        return [
            Finding.failed(r, "setup failed: " + "; ".join(world.problems)) for r in ("CNS-002", "CNS-003")
        ]
    subject, consent_id = approved
    findings: list[Finding] = []
    await _act(session, world, subject, consent_id, "pause")
    paused = await _check(session, world, _check_request(world, subject))
    findings.append(_expect_decision("CNS-002", paused, "deny", "consent.paused", "a paused consent"))
    await _act(session, world, subject, consent_id, "resume")
    resumed = await _check(session, world, _check_request(world, subject))
    findings.append(_expect_decision("CNS-002", resumed, "permit", "consent.permitted", "a resumed consent"))
    withdrawal = await _act(session, world, subject, consent_id, "withdraw")
    withdrawn = await _check(session, world, _check_request(world, subject))
    findings.append(
        _expect_decision("CNS-002", withdrawn, "deny", "consent.withdrawn", "a withdrawn consent")
    )
    for action, extra in (("approve", {"notice": _notice(world.agreement)}), ("refuse", {}), ("resume", {})):
        refused = await _act(session, world, subject, consent_id, action, **extra)
        findings.append(
            _expect_refusal(
                "CNS-003", refused, 409, "consent.transition_not_allowed", f"{action} after withdrawal"
            )
        )
    state = (await _record(session, world, subject, consent_id)).get("state")
    findings.append(
        Finding.passed("CNS-003", "the refused transitions changed nothing")
        if state == "WITHDRAWN"
        else Finding.failed(
            "CNS-003", f"after refused transitions the consent reads {state!r}", withdrawal.evidence("")
        )
    )
    findings += await _receipts_verify(session, world, subject, consent_id)
    return findings


async def _receipts_verify(
    session: TargetSession, world: _World, subject: str, consent_id: str
) -> list[Finding]:
    exchange = await session.request(
        "GET", f"{PREFIX}/me/consents/{consent_id}/receipts", headers=world.citizen(subject)
    )
    body = exchange.json_object() or {}
    issues = standards.validator("consent-receipt-list").issues(body)
    tokens = [str(token) for token in body.get("receipts", [])] if not issues else []
    if exchange.status != 200 or len(tokens) < 2:
        return [
            Finding.failed("CNS-010", "no receipts for an approval and a withdrawal", exchange.evidence("2"))
        ]
    jwks = await _jwks(session)
    findings: list[Finding] = []
    for token in tokens:
        try:
            header, payload = verify_compact(str(token), jwks)
        except SignatureError as error:
            findings.append(Finding.failed("CNS-010", f"a receipt does not verify: {error.reason_code}"))
            continue
        issues = standards.validator("consent-receipt").issues(payload)
        if issues:
            findings.append(
                Finding.failed("CNS-010", f"a receipt is not a valid consent-receipt: {issues[0].message}")
            )
        else:
            findings.append(
                Finding.passed("CNS-010", f"a {payload['action']} receipt verifies ({header.get('alg')})")
            )
    tampered = _flip_payload(str(tokens[0]))
    try:
        verify_compact(tampered, jwks)
        findings.append(Finding.failed("CNS-010", "a receipt with an altered payload still verified"))
    except SignatureError:
        findings.append(Finding.passed("CNS-010", "an altered receipt fails verification"))
    return findings


def _flip_payload(token: str) -> str:
    header, payload, signature = token.split(".")
    flipped = ("A" if payload[0] != "A" else "B") + payload[1:]
    return f"{header}.{flipped}.{signature}"


@CONSENT.test("revocation-and-invalidation", ["CNS-002", "CNS-003"])
async def revocation_and_invalidation(session: TargetSession) -> list[Finding]:
    """The controller revokes and an authority invalidates: both deny from then on, a revoked consent
    cannot be refused or approved, and an invalidated one is never reported ACTIVE again."""
    world = await _world(session)
    unavailable = _unavailable(["CNS-002", "CNS-003"], world)
    if unavailable is not None or world is None:
        return unavailable or []
    findings: list[Finding] = []
    for action, headers, state, reason in (
        ("revoke", world.consumer, "REVOKED", "consent.revoked"),
        (
            "invalidate",
            world.bearer("conformance-authority", "consent:invalidate"),
            "INVALIDATED",
            "consent.invalidated",
        ),
    ):
        approved = await _approved(session, world, world.agreement)
        if approved is None:
            return [
                Finding.failed(r, "setup failed: " + "; ".join(world.problems))
                for r in ("CNS-002", "CNS-003")
            ]
        subject, consent_id = approved
        ended = await session.request(
            "POST",
            f"{PREFIX}/consents/{consent_id}/{action}",
            json_body={"channel": "api", "reason": "conformance test"},
            headers=headers,
        )
        if ended.status != 200:
            findings.append(
                Finding.failed("CNS-002", f"{action} answered {ended.status}", ended.evidence("200"))
            )
            continue
        denied = await _check(session, world, _check_request(world, subject))
        findings.append(_expect_decision("CNS-002", denied, "deny", reason, f"a consent after {action}"))
        for retry, extra in (
            ("refuse", {}),
            ("approve", {"notice": _notice(world.agreement)}),
            ("resume", {}),
        ):
            refused = await _act(session, world, subject, consent_id, retry, **extra)
            findings.append(
                _expect_refusal(
                    "CNS-003", refused, 409, "consent.transition_not_allowed", f"{retry} after {action}"
                )
            )
        reported = (await _record(session, world, subject, consent_id)).get("state")
        findings.append(
            Finding.passed("CNS-002", f"the record reads {state} after {action}")
            if reported == state
            else Finding.failed("CNS-002", f"after {action} the record reads {reported!r}, not {state}")
        )
    return findings


@CONSENT.test("notice-recorded", ["CNS-015"])
async def notice_recorded(session: TargetSession) -> list[Finding]:
    """An approval names the notice shown; a hash that is not the agreement's is refused."""
    world = await _world(session)
    unavailable = _unavailable(["CNS-015"], world)
    if unavailable is not None or world is None:
        return unavailable or []
    subject = _pseudonym()
    record = await _ask(session, world, world.agreement["agreement_id"], subject)
    if record is None:
        return [Finding.failed("CNS-015", "setup failed: " + "; ".join(world.problems))]
    wrong = await _act(
        session,
        world,
        subject,
        record["consent_id"],
        "approve",
        notice={"language": "en", "hash": "sha256:" + "1" * 64},
    )
    findings = [
        _expect_refusal("CNS-015", wrong, 422, "consent.notice_mismatch", "approval with a wrong notice")
    ]
    history = await session.request(
        "GET", f"{PREFIX}/me/consents/{world.consent_id}/history", headers=world.citizen(world.subject)
    )
    events = (history.json_object() or {}).get("events", [])
    approval: dict[str, Any] = next((event for event in events if event.get("action") == "approve"), {})
    if approval.get("notice") == _notice(world.agreement):
        findings.append(Finding.passed("CNS-015", "the approval records the notice's language and hash"))
    else:
        findings.append(
            Finding.failed("CNS-015", "the approval event lacks the notice seen", history.evidence(""))
        )
    return findings


@CONSENT.test("frequency-limit", ["CNS-006"])
async def frequency_limit(session: TargetSession) -> list[Finding]:
    """Concurrent checks against a limit of N accesses per period permit exactly N."""
    world = await _world(session)
    unavailable = _unavailable(["CNS-006"], world)
    if unavailable is not None or world is None:
        return unavailable or []
    approved = await _approved(session, world, world.limited)
    if approved is None:
        return [Finding.failed("CNS-006", "setup failed: " + "; ".join(world.problems))]
    subject, _ = approved
    answers = await asyncio.gather(
        *(_check(session, world, _check_request(world, subject)) for _ in range(FREQUENCY_LIMIT * 2))
    )
    decisions = [(answer.json_object() or {}).get("reason_code") for answer in answers]
    permits = decisions.count("consent.permitted")
    exceeded = decisions.count("consent.frequency_exceeded")
    if permits == FREQUENCY_LIMIT and exceeded == FREQUENCY_LIMIT:
        return [
            Finding.passed(
                "CNS-006", f"{permits} of {len(answers)} concurrent checks permitted, the rest denied"
            )
        ]
    return [
        Finding.failed(
            "CNS-006",
            f"limit {FREQUENCY_LIMIT}: {permits} permitted, {exceeded} denied as exceeded; all: {decisions}",
            answers[-1].evidence(f"exactly {FREQUENCY_LIMIT} permits"),
        )
    ]


@CONSENT.test("expiry-bounds", ["CNS-004"])
async def expiry_bounds(session: TargetSession) -> list[Finding]:
    """Every approval carries its end: valid_until within the agreement's longest validity, reported by the
    check. (That the state turns EXPIRED at that moment without any call cannot be observed in a run
    shorter than a day; the block's own tests cover it with a controlled clock.)"""
    world = await _world(session)
    unavailable = _unavailable(["CNS-004"], world)
    if unavailable is not None or world is None:
        return unavailable or []
    record = await _record(session, world, world.subject, world.consent_id)
    decision = (await _check(session, world, _check_request(world, world.subject))).json_object() or {}
    valid_from, valid_until = record.get("valid_from"), record.get("valid_until")
    if not (isinstance(valid_from, str) and isinstance(valid_until, str)):
        return [Finding.failed("CNS-004", "an approved consent reports no validity period")]
    start = datetime.fromisoformat(valid_from.replace("Z", "+00:00"))
    end = datetime.fromisoformat(valid_until.replace("Z", "+00:00"))
    if not timedelta(0) < end - start <= timedelta(days=world.agreement["max_validity_days"]):
        return [
            Finding.failed("CNS-004", f"valid from {valid_from} until {valid_until} exceeds the agreement")
        ]
    if decision.get("valid_until") != valid_until:
        return [Finding.failed("CNS-004", "the permit does not report the consent's end of validity")]
    return [
        Finding.passed(
            "CNS-004", f"validity bounded by the agreement and reported by the check ({valid_until})"
        )
    ]


@CONSENT.test("supersession", ["CNS-005"])
async def supersession(session: TargetSession) -> list[Finding]:
    """A new agreement version asking for more supersedes given consents and asks the subject again."""
    world = await _world(session)
    unavailable = _unavailable(["CNS-005"], world)
    if unavailable is not None or world is None:
        return unavailable or []
    agreement_id = f"cnf-versioned-{uuid.uuid4().hex[:12]}"
    first = await _publish(session, world, _agreement(agreement_id))
    approved = await _approved(session, world, first) if first is not None else None
    wider = _agreement(agreement_id, data_items=[{"schema": "person@1.0.0", "fields": [*FIELDS, "/address"]}])
    if approved is None or await _publish(session, world, wider) is None:
        return [Finding.failed("CNS-005", "setup failed: " + "; ".join(world.problems))]
    subject, consent_id = approved
    findings: list[Finding] = []
    state = (await _record(session, world, subject, consent_id)).get("state")
    findings.append(
        Finding.passed("CNS-005", "the consent to the old version is SUPERSEDED")
        if state == "SUPERSEDED"
        else Finding.failed("CNS-005", f"after a wider version the consent reads {state!r}")
    )
    denied = await _check(session, world, _check_request(world, subject))
    # The subject now holds a superseded consent and a new request: either reason is precise.
    reason = (denied.json_object() or {}).get("reason_code")
    expected = "consent.superseded" if reason != "consent.pending" else "consent.pending"
    findings.append(_expect_decision("CNS-005", denied, "deny", expected, "after supersession"))
    mine = await session.request("GET", f"{PREFIX}/me/consents", headers=world.citizen(subject))
    asked = [r for r in (mine.json_object() or {}).get("items", []) if r.get("state") == "REQUESTED"]
    findings.append(
        Finding.passed("CNS-005", "the subject is asked again for the new version")
        if asked and asked[0].get("agreement_version") == 2
        else Finding.failed(
            "CNS-005", "no new request for the new version", mine.evidence("a REQUESTED consent")
        )
    )
    return findings


# --- evidence -----------------------------------------------------------------------------------------------


@CONSENT.test("exports", ["CNS-011"])
async def exports(session: TargetSession) -> list[Finding]:
    """The ISO/IEC TS 27560 and Kantara exports of a consent validate against their schemas."""
    world = await _world(session)
    unavailable = _unavailable(["CNS-011"], world)
    if unavailable is not None or world is None:
        return unavailable or []
    findings = []
    for kind, schema in (("iso27560", "iso27560-consent-record"), ("kantara", "kantara-consent-receipt")):
        exchange = await session.request(
            "GET",
            f"{PREFIX}/me/consents/{world.consent_id}/export/{kind}",
            headers=world.citizen(world.subject),
        )
        body = exchange.json_object()
        issues = standards.validator(schema).issues(body) if body is not None else []
        if exchange.status == 200 and body is not None and not issues:
            findings.append(Finding.passed("CNS-011", f"the {kind} export is a valid {schema}"))
        else:
            reason = issues[0].message if issues else f"answered {exchange.status}"
            findings.append(
                Finding.failed("CNS-011", f"the {kind} export: {reason}", exchange.evidence(schema))
            )
    return findings


def _event_hash(event: Mapping[str, Any]) -> str:
    content = {key: value for key, value in event.items() if key != "hash"}
    return "sha256:" + hashlib.sha256(canonical_json(content)).hexdigest()


@CONSENT.test("event-chain", ["CNS-012"])
async def event_chain(session: TargetSession) -> list[Finding]:
    """The subject's chain: every hash recomputes, links run from the genesis hash, signed heads verify."""
    world = await _world(session)
    unavailable = _unavailable(["CNS-012"], world)
    if unavailable is not None or world is None:
        return unavailable or []
    exchange = await session.request("GET", f"{PREFIX}/me/chain", headers=world.citizen(world.subject))
    document = exchange.json_object()
    if exchange.status != 200 or document is None:
        return [Finding.failed("CNS-012", f"the chain answered {exchange.status}", exchange.evidence("200"))]
    issues = standards.validator("consent-chain").issues(document)
    if issues:
        return [
            Finding.failed(
                "CNS-012", f"not a valid consent-chain: {issues[0].message}", exchange.evidence("")
            )
        ]
    problems: list[str] = []
    previous = GENESIS
    for position, event in enumerate(document["events"], start=1):
        if event["seq"] != position:
            problems.append(f"event {position} has seq {event['seq']}")
        if event["prev_hash"] != previous:
            problems.append(f"event {position} does not link to the one before")
        if _event_hash(event) != event["hash"]:
            problems.append(f"event {position}'s hash does not recompute")
        previous = event["hash"]
    if document["head"] != {"seq": len(document["events"]), "hash": previous}:
        problems.append("the head is not the last event")
    jwks = await _jwks(session)
    for signature in document.get("signatures", []):
        try:
            _, statement = verify_compact(signature["jws"], jwks)
        except SignatureError as error:
            problems.append(f"a head signature does not verify ({error.reason_code})")
            continue
        signed = next((e for e in document["events"] if e["seq"] == statement.get("seq")), None)
        if (
            signed is None
            or signed["hash"] != statement.get("hash")
            or statement.get("subject") != world.subject
        ):
            problems.append(f"a signed head (seq {statement.get('seq')}) does not match the chain")
    if problems:
        return [Finding.failed("CNS-012", "; ".join(problems[:5]), exchange.evidence("a verifiable chain"))]
    return [Finding.passed("CNS-012", f"{len(document['events'])} events chain and verify")]


# --- hygiene ------------------------------------------------------------------------------------------------

_BAD_BODIES: Final[tuple[tuple[str, str, bytes], ...]] = (
    ("POST", "/checks", b"{not json"),
    ("POST", "/checks", b'{"consumer": 1}'),
    ("POST", "/checks", b'{"subject": "' + b"x" * 100_000 + b'"}'),
    ("POST", "/consents", b'{"agreement_id": "no-such-agreement", "subject": "cnfnosuchsubject0001"}'),
    ("POST", "/consents", b"[]"),
    ("POST", "/agreements", b'{"agreement_id": "Not A Slug"}'),
    ("POST", "/me/consents/not-a-uuid/approve", b'{"channel": "web"}'),
    ("POST", "/me/consents/00000000-0000-4000-8000-000000000000/withdraw", b'{"channel": "web"}'),
    ("POST", "/me/consents/00000000-0000-4000-8000-000000000000/teleport", b'{"channel": "web"}'),
    ("GET", "/me/consents/00000000-0000-4000-8000-000000000000", b""),
)


@CONSENT.test("bad-input", ["CNS-013", "CNS-014"])
async def bad_input(session: TargetSession) -> list[Finding]:
    """Bad bodies, ids and actions get a 4xx error body with a reason code, never a 5xx, and write nothing;
    no error body repeats the subject's identifier. (Logs are not visible over HTTP: that half of CNS-013
    is for the operator's audit and the block's own tests.)"""
    world = await _world(session)
    unavailable = _unavailable(["CNS-013", "CNS-014"], world)
    if unavailable is not None or world is None:
        return unavailable or []
    headers = {
        **world.bearer(
            world.subject,
            "consent:self",
            "consent:admin",
            "consent:request",
            "consent:check",
            member=CONSUMER,
        ),
        "content-type": "application/json",
    }
    before = await session.request("GET", f"{PREFIX}/me/consents", headers=world.citizen(world.subject))
    findings: list[Finding] = []
    for method, path, content in _BAD_BODIES:
        exchange = await session.request(method, f"{PREFIX}{path}", content=content or None, headers=headers)
        body = exchange.json_object() or {}
        if exchange.status is not None and 400 <= exchange.status < 500 and body.get("reason_code"):
            findings.append(
                Finding.passed("CNS-014", f"{method} {path}: {exchange.status} {body['reason_code']}")
            )
        else:
            findings.append(
                Finding.failed("CNS-014", f"{method} {path}", exchange.evidence("a 4xx with a reason code"))
            )
        if world.subject in exchange.body.decode("utf-8", "replace"):
            findings.append(
                Finding.failed("CNS-013", "an error body repeats the subject", exchange.evidence(""))
            )
    echo = await _check(session, world, _check_request(world, world.subject, fields=["not-a-pointer"]))
    findings.append(
        Finding.failed("CNS-013", "an error body repeats the subject", echo.evidence("no subject"))
        if world.subject in echo.body.decode("utf-8", "replace")
        else Finding.passed("CNS-013", "error bodies never repeat the subject's identifier")
    )
    after = await session.request("GET", f"{PREFIX}/me/consents", headers=world.citizen(world.subject))
    if (before.json_object() or {}).get("total") == (after.json_object() or {}).get("total"):
        findings.append(Finding.passed("CNS-014", "refused requests wrote nothing"))
    else:
        findings.append(
            Finding.failed("CNS-014", "a refused request changed the subject's consents", after.evidence(""))
        )
    return findings


@CONSENT.test("notifications", ["CNS-016"])
async def notifications(session: TargetSession) -> list[Finding]:
    """A withdrawal reaches the consumer's webhook as a signed consent-notification."""
    world = await _world(session)
    unavailable = _unavailable(["CNS-016"], world)
    if unavailable is not None or world is None:
        return unavailable or []
    async with CallbackReceiver() as receiver:
        registered = await session.request(
            "POST",
            f"{PREFIX}/webhooks",
            json_body={"member": CONSUMER, "url": receiver.url, "events": ["withdrawn"]},
            headers=world.bearer("conformance-consumer", "consent:webhooks", member=CONSUMER),
        )
        if registered.status not in (200, 201):
            return [
                Finding.failed(
                    "CNS-016", f"registering a webhook answered {registered.status}", registered.evidence("")
                )
            ]
        approved = await _approved(session, world, world.agreement)
        if approved is None:
            return [Finding.failed("CNS-016", "setup failed: " + "; ".join(world.problems))]
        subject, consent_id = approved
        await _act(session, world, subject, consent_id, "withdraw")
        jwks = await _jwks(session)

        def about_this_consent(message: Any) -> bool:
            try:
                _, payload = verify_compact(message.body.decode("ascii", "replace"), jwks)
            except SignatureError:
                return False
            return bool(payload.get("consent_id") == consent_id)

        try:
            message = await receiver.wait_for(about_this_consent, timeout=session.options.callback_timeout)
        except CallbackTimeout as timeout:
            arrived = len(receiver.messages)
            return [
                Finding.failed(
                    "CNS-016", f"no verifiable notice for the withdrawal ({timeout}; {arrived} arrived)"
                )
            ]
    _, payload = verify_compact(message.body.decode("ascii"), jwks)
    issues = standards.validator("consent-notification").issues(payload)
    if issues or payload.get("event") != "withdrawn" or subject in message.body.decode("ascii", "replace"):
        return [Finding.failed("CNS-016", "the notice is not a clean consent-notification of the withdrawal")]
    return [Finding.passed("CNS-016", "the withdrawal arrived as a signed consent-notification")]
