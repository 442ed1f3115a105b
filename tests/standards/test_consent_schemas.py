"""Consent contract: the consent schemas, their reason codes and the `consent` requirement profile.

Exports follow ISO/IEC TS 27560:2023 with W3C DPV terms (https://w3id.org/dpv/guides/consent-27560) and the
Kantara Initiative Consent Receipt v1.1.
"""

import copy
import hashlib
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from standards import (
    SchemaValidationError,
    legal_bases,
    load_schema,
    purpose_codes,
    reason_code,
    requirements,
    schema_versions,
    validator,
)
from standards.compat import breaking_changes


def _notice(text: str) -> dict[str, str]:
    return {"text": text, "hash": "sha256:" + hashlib.sha256(text.encode("utf-8")).hexdigest()}


NOTICE_TEXT = {
    "en": "The Ministry of Labour will read your name and date of birth from the civil registry "
    "to register you as a job seeker.",
    "fr": "Le ministère du Travail lira vos nom et date de naissance dans l'état civil pour vous inscrire.",
    "ar": "ستقرأ وزارة العمل اسمك وتاريخ ميلادك من السجل المدني لتسجيلك كباحث عن عمل.",
}
NOTICES = {lang: _notice(text) for lang, text in NOTICE_TEXT.items()}
SUBJECT = "Zx4rT9-qLm2Vb7Kp_s0Yw3"
GUARDIAN = "Gd8Hs2kLp0Qw7ZxN5vTb1c"
CONSENT_ID = "3f1c2a9e-7b4d-4e8a-9c1f-2b6d8e0a4c71"
CONSUMER = "DPI/GOV/MOL/jobseeker-service"
PROVIDER = "DPI/GOV/MOI/civil-registry"
PROVIDERS = [{"provider": PROVIDER, "service": "person-read"}]
FIELDS = ["/names/0/given_name", "/names/0/family_name", "/date_of_birth"]
HASH_A = "sha256:" + "a" * 64
HASH_B = "sha256:" + "b" * 64
ZERO_HASH = "sha256:" + "0" * 64
JWS = "eyJhbGciOiJFZERTQSIsImtpZCI6ImsxIn0.eyJzZXEiOjJ9.c2lnbmF0dXJl"
DPV = "https://w3id.org/dpv#"

AGREEMENT: dict[str, Any] = {
    "agreement_id": "mol-jobseeker-registration",
    "version": 2,
    "consumer": CONSUMER,
    "providers": PROVIDERS,
    "purpose": "jobseeker-registration",
    "legal_basis": "consent",
    "data_items": [{"schema": "person@1.0.0", "fields": FIELDS}],
    "retention_days": 1825,
    "max_validity_days": 365,
    "frequency": {"max_accesses": 10, "period_days": 30},
    "data_range": {"from": "1900-01-01"},
    "revocable": True,
    "controller": {"name": "Ministry of Labour", "contact": "dpo@labour.example.gov"},
    "notices": NOTICES,
    "created_at": "2026-11-20T08:00:00Z",
}
AGREEMENT_INPUT = {
    **{key: value for key, value in AGREEMENT.items() if key not in ("version", "created_at")},
    "notices": {lang: {"text": text} for lang, text in NOTICE_TEXT.items()},
}
RECORD: dict[str, Any] = {
    "consent_id": CONSENT_ID,
    "agreement_id": "mol-jobseeker-registration",
    "agreement_version": 2,
    "subject": SUBJECT,
    "state": "ACTIVE",
    "granted_by": {"role": "guardian", "actor": GUARDIAN},
    "guardianship": {"guardian": GUARDIAN, "basis": "minor", "until": "2028-05-02"},
    "fields": FIELDS,
    "valid_from": "2026-11-23T10:00:00Z",
    "valid_until": "2027-11-23T10:00:00Z",
    "requires_reconfirmation": False,
    "created_at": "2026-11-23T09:58:12Z",
    "updated_at": "2026-11-23T10:00:00Z",
}
EVENT: dict[str, Any] = {
    "event_id": "9b2e4c1a-0d3f-4a6b-8e7c-5f1a2b3c4d5e",
    "consent_id": CONSENT_ID,
    "subject": SUBJECT,
    "seq": 2,
    "action": "approve",
    "from_state": "REQUESTED",
    "to_state": "ACTIVE",
    "actor": {"role": "operator", "id": "op-oran-07"},
    "channel": "assisted",
    "at": "2026-11-23T10:00:00Z",
    "notice": {"language": "ar", "hash": NOTICES["ar"]["hash"]},
    "prev_hash": HASH_A,
    "hash": HASH_B,
}
FIRST_EVENT = {
    **{key: value for key, value in EVENT.items() if key != "notice"},
    "event_id": "1a2b3c4d-5e6f-4a1b-9c2d-3e4f5a6b7c8d",
    "seq": 1,
    "action": "request",
    "from_state": None,
    "to_state": "REQUESTED",
    "actor": {"role": "controller", "id": CONSUMER},
    "channel": "api",
    "at": "2026-11-23T09:58:12Z",
    "prev_hash": ZERO_HASH,
    "hash": HASH_A,
}
EXAMPLES: dict[str, Any] = {
    "consent-agreement": AGREEMENT,
    "consent-agreement-input": AGREEMENT_INPUT,
    "consent-record": RECORD,
    "consent-request": {
        "agreement_id": "mol-jobseeker-registration",
        "subject": SUBJECT,
        "guardianship": {"guardian": GUARDIAN, "basis": "under-care"},
        "requested_validity_days": 180,
    },
    "consent-action": {
        "channel": "assisted",
        "notice": {"language": "fr", "hash": NOTICES["fr"]["hash"]},
        "reason": "Signed at the Oran employment office",
        "operator_id": "op-oran-07",
    },
    "consent-event": EVENT,
    "consent-history": {"consent_id": CONSENT_ID, "events": [FIRST_EVENT, EVENT]},
    "consent-chain": {
        "subject": SUBJECT,
        "events": [FIRST_EVENT, EVENT],
        "head": {"seq": 2, "hash": HASH_B},
        "signatures": [{"seq": 2, "hash": HASH_B, "jws": JWS, "signed_at": "2026-11-23T10:05:00Z"}],
    },
    "consent-receipt": {
        "receipt_id": "5d6e7f80-1a2b-4c3d-8e4f-6a7b8c9d0e1f",
        "consent_id": CONSENT_ID,
        "event_hash": HASH_B,
        "action": "approve",
        "state": "ACTIVE",
        "at": "2026-11-23T10:00:00Z",
        "subject": SUBJECT,
        "agreement": {"agreement_id": "mol-jobseeker-registration", "version": 2},
        "consumer": CONSUMER,
        "providers": PROVIDERS,
        "purpose": "jobseeker-registration",
        "legal_basis": "consent",
        "fields": FIELDS,
        "valid_until": "2027-11-23T10:00:00Z",
        "actor": {"role": "subject"},
        "channel": "web",
        "notice": {"language": "en", "hash": NOTICES["en"]["hash"]},
        "issuer": "DPI/GOV/MOI/consent",
    },
    "consent-check-request": {
        "consumer": CONSUMER,
        "provider": PROVIDER,
        "service": "person-read",
        "purpose": "jobseeker-registration",
        "subject": SUBJECT,
        "fields": ["/names/0/given_name", "/date_of_birth"],
        "data_range": {"from": "2000-01-01", "to": "2026-11-23"},
    },
    "consent-check-decision": {
        "decision": "permit",
        "reason_code": "consent.permitted",
        "consent_id": CONSENT_ID,
        "permitted_fields": ["/names/0/given_name", "/date_of_birth"],
        "valid_until": "2027-11-23T10:00:00Z",
    },
    "consent-list": {"items": [RECORD], "total": 1},
    "consent-webhook-input": {
        "member": CONSUMER,
        "url": "https://jobseeker.labour.example.gov/hooks/consent",
        "events": ["withdrawn", "revoked", "expired"],
    },
    "consent-webhook": {
        "webhook_id": "7c8d9e0f-1a2b-4c3d-9e4f-5a6b7c8d9e0f",
        "member": CONSUMER,
        "url": "https://jobseeker.labour.example.gov/hooks/consent",
        "events": ["withdrawn", "revoked", "paused", "resumed", "expired", "superseded", "invalidated"],
        "created_at": "2026-11-20T08:30:00Z",
    },
    "consent-notification": {
        "notification_id": "0e1f2a3b-4c5d-4e6f-8a9b-0c1d2e3f4a5b",
        "event": "withdrawn",
        "consent_id": CONSENT_ID,
        "agreement_id": "mol-jobseeker-registration",
        "agreement_version": 2,
        "consumer": CONSUMER,
        "providers": PROVIDERS,
        "purpose": "jobseeker-registration",
        "at": "2026-12-01T16:20:00Z",
        "state": "WITHDRAWN",
    },
    "consent-notification-ack": {
        "notification_id": "0e1f2a3b-4c5d-4e6f-8a9b-0c1d2e3f4a5b",
        "received_at": "2026-12-01T16:20:01Z",
        "receiver": CONSUMER,
    },
    "iso27560-consent-record": {
        "schema_version": "iso27560-consent-record@1.0.0",
        "record_id": CONSENT_ID,
        "receipt_id": "5d6e7f80-1a2b-4c3d-8e4f-6a7b8c9d0e1f",
        "pii_principal_id": SUBJECT,
        "created_at": "2026-11-23T09:58:12Z",
        "language": "ar",
        "state": "ACTIVE",
        "status": DPV + "ConsentGiven",
        "privacy_notice": {
            "agreement_id": "mol-jobseeker-registration",
            "agreement_version": 2,
            "hashes": {lang: notice["hash"] for lang, notice in NOTICES.items()},
        },
        "purposes": [{"code": "jobseeker-registration", "iri": DPV + "ServiceRegistration"}],
        "lawful_basis": {"code": "consent", "iri": DPV + "Consent"},
        "pii_information": [{"pii_type": "person@1.0.0", "pii_attribute_ids": FIELDS}],
        "pii_controllers": [
            {
                "party_id": CONSUMER,
                "name": "Ministry of Labour",
                "contact": "dpo@labour.example.gov",
                "type": DPV + "DataController",
                "phone": "+213215550100",
            }
        ],
        "services": PROVIDERS,
        "collection_method": "assisted",
        "retention_period": "P1825D",
        "storage_locations": ["DZ"],
        "jurisdiction": "DZ",
        "recipient_third_parties": [CONSUMER],
        "withdrawal_method": "https://portal.example.gov/consents",
        "valid_from": "2026-11-23T10:00:00Z",
        "valid_until": "2027-11-23T10:00:00Z",
        "events": [
            {
                "event_time": "2026-11-23T09:58:12Z",
                "entity_id": CONSUMER,
                "entity_role": "controller",
                "event_type": DPV + "ExplicitlyExpressedConsent",
                "event_state": DPV + "ConsentRequested",
                "state": "REQUESTED",
                "action": "request",
                "channel": "api",
            },
            {
                "event_time": "2026-11-23T10:00:00Z",
                "validity_duration": "P365D",
                "entity_id": "op-oran-07",
                "entity_role": "operator",
                "event_type": DPV + "ExplicitlyExpressedConsent",
                "event_state": DPV + "ConsentGiven",
                "state": "ACTIVE",
                "action": "approve",
                "channel": "assisted",
                "notice": {"language": "ar", "hash": NOTICES["ar"]["hash"]},
            },
        ],
    },
    "kantara-consent-receipt": {
        "version": "KI-CR-v1.1.0",
        "jurisdiction": "DZ",
        "consentTimestamp": 1795428000,
        "collectionMethod": "assisted: service centre operator with the subject present",
        "consentReceiptID": "5d6e7f80-1a2b-4c3d-8e4f-6a7b8c9d0e1f",
        "language": "ar",
        "piiPrincipalId": SUBJECT,
        "piiControllers": [
            {
                "piiController": "Ministry of Labour",
                "onBehalf": False,
                "contact": "Data protection officer",
                "address": {
                    "streetAddress": "1 place du Travail",
                    "addressLocality": "Alger",
                    "addressCountry": "DZ",
                },
                "email": "dpo@labour.example.gov",
                "phone": "+213215550100",
                "piiControllerUrl": "https://labour.example.gov",
            }
        ],
        "policyUrl": "https://labour.example.gov/privacy",
        "services": [
            {
                "service": "Job seeker registration",
                "purposes": [
                    {
                        "purpose": "Registration as a job seeker",
                        "purposeCategory": [DPV + "ServiceRegistration"],
                        "consentType": "EXPLICIT",
                        "piiCategory": ["name", "date of birth"],
                        "primaryPurpose": True,
                        "termination": "Valid until 2027-11-23T10:00:00Z or until withdrawn",
                        "thirdPartyDisclosure": True,
                        "thirdPartyName": "Civil registry (Ministry of the Interior)",
                    }
                ],
            }
        ],
        "sensitive": False,
        "spiCat": [],
    },
}
CONSENT_SCHEMAS = sorted(EXAMPLES)


def _with(document: Any, pointer: str, value: Any) -> Any:
    changed = copy.deepcopy(document)
    *parents, last = pointer.split("/")[1:]
    node = changed
    for part in parents:
        node = node[int(part)] if isinstance(node, list) else node[part]
    if value is _DELETE:
        del node[int(last) if isinstance(node, list) else last]
    elif isinstance(node, list):
        node[int(last)] = value
    else:
        node[last] = value
    return changed


class _Delete:
    """The value of a case that removes the member (named, so test ids are the same in every process)."""

    def __repr__(self) -> str:
        return "DELETE"


_DELETE = _Delete()
LONG = "x" * 20001

# (schema, pointer to change, new value, expected (pointer, reason code) of the issues)
INVALID: list[tuple[str, str, Any, list[tuple[str, str]]]] = [
    ("consent-agreement", "/agreement_id", "Mol_Jobseeker", [("/agreement_id", "schema.pattern")]),
    ("consent-agreement", "/agreement_id", "ab", [("/agreement_id", "schema.pattern")]),
    (
        "consent-agreement",
        "/agreement_id",
        "a" * 65,
        [("/agreement_id", "schema.max_length"), ("/agreement_id", "schema.pattern")],
    ),
    ("consent-agreement", "/version", 0, [("/version", "schema.minimum")]),
    ("consent-agreement", "/version", 2.5, [("/version", "schema.type")]),
    ("consent-agreement", "/version", "2", [("/version", "schema.type")]),
    ("consent-agreement", "/consumer", "DPI/GOV/MOL", [("/consumer", "schema.pattern")]),
    ("consent-agreement", "/providers", [], [("/providers", "schema.min_items")]),
    ("consent-agreement", "/providers", PROVIDERS * 2, [("/providers", "schema.unique_items")]),
    (
        "consent-agreement",
        "/providers/0/service",
        "person read",
        [("/providers/0/service", "schema.pattern")],
    ),
    ("consent-agreement", "/purpose", "Jobseeker Registration", [("/purpose", "schema.pattern")]),
    ("consent-agreement", "/legal_basis", "art6.1.a", [("/legal_basis", "schema.pattern")]),
    ("consent-agreement", "/legal_basis", _DELETE, [("", "schema.required")]),
    ("consent-agreement", "/data_items/0/schema", "person", [("/data_items/0/schema", "schema.pattern")]),
    ("consent-agreement", "/data_items/0/fields", [], [("/data_items/0/fields", "schema.min_items")]),
    (
        "consent-agreement",
        "/data_items/0/fields/0",
        "names/0",
        [("/data_items/0/fields/0", "schema.pattern")],
    ),
    ("consent-agreement", "/data_items/0/fields/0", "", [("/data_items/0/fields/0", "schema.min_length")]),
    (
        "consent-agreement",
        "/data_items/0/fields",
        [f"/f{n}" for n in range(201)],
        [("/data_items/0/fields", "schema.max_items")],
    ),
    (
        "consent-agreement",
        "/data_items",
        [AGREEMENT["data_items"][0]] * 21,
        [("/data_items", "schema.max_items")],
    ),
    ("consent-agreement", "/retention_days", -1, [("/retention_days", "schema.minimum")]),
    ("consent-agreement", "/max_validity_days", 3661, [("/max_validity_days", "schema.maximum")]),
    ("consent-agreement", "/max_validity_days", 30.0000001, [("/max_validity_days", "schema.type")]),
    ("consent-agreement", "/frequency/max_accesses", 0, [("/frequency/max_accesses", "schema.minimum")]),
    ("consent-agreement", "/frequency/period_days", _DELETE, [("/frequency", "schema.required")]),
    (
        "consent-agreement",
        "/data_range/to",
        "23/11/2026",
        [("/data_range/to", "schema.format"), ("/data_range/to", "schema.pattern")],
    ),
    ("consent-agreement", "/revocable", "yes", [("/revocable", "schema.type")]),
    ("consent-agreement", "/controller/name", "", [("/controller/name", "schema.min_length")]),
    ("consent-agreement", "/controller/contact", "x" * 321, [("/controller/contact", "schema.max_length")]),
    ("consent-agreement", "/notices/ar", _DELETE, [("/notices", "schema.required")]),
    ("consent-agreement", "/notices/sw", NOTICES["en"], [("/notices/sw", "schema.additional_property")]),
    ("consent-agreement", "/notices/en/hash", "sha256:" + "A" * 64, [("/notices/en/hash", "schema.pattern")]),
    ("consent-agreement", "/notices/en/hash", "md5:" + "a" * 32, [("/notices/en/hash", "schema.pattern")]),
    ("consent-agreement", "/notices/en/text", LONG, [("/notices/en/text", "schema.max_length")]),
    ("consent-agreement", "/created_at", "2026-11-20T09:00:00+01:00", [("/created_at", "schema.pattern")]),
    ("consent-agreement", "/active", True, [("/active", "schema.additional_property")]),
    ("consent-agreement-input", "/version", 1, [("/version", "schema.additional_property")]),
    (
        "consent-agreement-input",
        "/notices/en/hash",
        HASH_A,
        [("/notices/en/hash", "schema.additional_property")],
    ),
    ("consent-agreement-input", "/notices/fr/text", "", [("/notices/fr/text", "schema.min_length")]),
    ("consent-agreement-input", "/purpose", _DELETE, [("", "schema.required")]),
    (
        "consent-record",
        "/consent_id",
        "3F1C2A9E-7B4D-4E8A-9C1F-2B6D8E0A4C71",
        [("/consent_id", "schema.pattern")],
    ),
    ("consent-record", "/consent_id", "42", [("/consent_id", "schema.pattern")]),
    ("consent-record", "/subject", "short", [("/subject", "schema.pattern")]),
    ("consent-record", "/subject", "1234567890123456 ", [("/subject", "schema.pattern")]),
    (
        "consent-record",
        "/subject",
        "s" * 129,
        [("/subject", "schema.max_length"), ("/subject", "schema.pattern")],
    ),
    ("consent-record", "/state", "active", [("/state", "schema.enum")]),
    ("consent-record", "/state", "GRANTED", [("/state", "schema.enum")]),
    ("consent-record", "/agreement_version", 1.5, [("/agreement_version", "schema.type")]),
    ("consent-record", "/granted_by/role", "parent", [("/granted_by/role", "schema.enum")]),
    ("consent-record", "/guardianship/basis", "ward", [("/guardianship/basis", "schema.enum")]),
    ("consent-record", "/requires_reconfirmation", _DELETE, [("", "schema.required")]),
    ("consent-record", "/fields/1", "/date_of_birth", [("/fields", "schema.unique_items")]),
    ("consent-request", "/requested_validity_days", 0, [("/requested_validity_days", "schema.minimum")]),
    ("consent-request", "/subject", _DELETE, [("", "schema.required")]),
    ("consent-request", "/agreement_version", 2, [("/agreement_version", "schema.additional_property")]),
    ("consent-action", "/channel", "email", [("/channel", "schema.enum")]),
    ("consent-action", "/notice/language", "de", [("/notice/language", "schema.enum")]),
    ("consent-action", "/notice/hash", _DELETE, [("/notice", "schema.required")]),
    ("consent-action", "/reason", "r" * 501, [("/reason", "schema.max_length")]),
    ("consent-action", "/operator_id", "op oran", [("/operator_id", "schema.pattern")]),
    ("consent-event", "/seq", 0, [("/seq", "schema.minimum")]),
    ("consent-event", "/seq", 2.0000001, [("/seq", "schema.type")]),
    ("consent-event", "/action", "grant", [("/action", "schema.enum")]),
    ("consent-event", "/from_state", "Requested", [("/from_state", "schema.enum")]),
    ("consent-event", "/to_state", None, [("/to_state", "schema.enum")]),
    ("consent-event", "/actor/role", "admin", [("/actor/role", "schema.enum")]),
    ("consent-event", "/prev_hash", "sha256:" + "a" * 63, [("/prev_hash", "schema.pattern")]),
    ("consent-event", "/hash", _DELETE, [("", "schema.required")]),
    ("consent-history", "/events/0/subject", "x", [("/events/0/subject", "schema.pattern")]),
    ("consent-history", "/events", [EVENT] * 10001, [("/events", "schema.max_items")]),
    ("consent-chain", "/head/seq", -1, [("/head/seq", "schema.minimum")]),
    ("consent-chain", "/signatures/0/jws", "not a jws", [("/signatures/0/jws", "schema.pattern")]),
    ("consent-chain", "/signatures/0/jws", JWS + "\n", [("/signatures/0/jws", "schema.pattern")]),
    ("consent-receipt", "/issuer", "ftp://consent.example.gov", [("/issuer", "schema.any_of")]),
    ("consent-receipt", "/agreement/version", _DELETE, [("/agreement", "schema.required")]),
    ("consent-receipt", "/state", "REVOKED_BY_CONTROLLER", [("/state", "schema.enum")]),
    ("consent-receipt", "/event_hash", _DELETE, [("", "schema.required")]),
    ("consent-check-request", "/fields", [], [("/fields", "schema.min_items")]),
    ("consent-check-request", "/fields", [f"/f{n}" for n in range(201)], [("/fields", "schema.max_items")]),
    (
        "consent-check-request",
        "/service",
        "s" * 129,
        [("/service", "schema.max_length"), ("/service", "schema.pattern")],
    ),
    ("consent-check-request", "/subject", "NIN:1234567890123456", [("/subject", "schema.pattern")]),
    ("consent-check-request", "/data_range/from", "2000-02-30", [("/data_range/from", "schema.format")]),
    ("consent-check-request", "/purpose", "p" * 65, [("/purpose", "schema.max_length")]),
    ("consent-check-request", "/uin", "1234", [("/uin", "schema.additional_property")]),
    (
        "consent-check-decision",
        "/decision",
        "allow",
        [
            ("/decision", "schema.enum"),
            ("/permitted_fields", "schema.max_items"),
            ("/reason_code", "schema.not"),
        ],
    ),
    ("consent-check-decision", "/reason_code", "consent.withdrawn", [("/reason_code", "schema.const")]),
    ("consent-check-decision", "/consent_id", _DELETE, [("", "schema.required")]),
    ("consent-check-decision", "/permitted_fields", [], [("/permitted_fields", "schema.min_items")]),
    (
        "consent-check-decision",
        "/decision",
        "deny",
        [("/permitted_fields", "schema.max_items"), ("/reason_code", "schema.not")],
    ),
    ("consent-list", "/total", -1, [("/total", "schema.minimum")]),
    ("consent-list", "/items/0/state", "ON", [("/items/0/state", "schema.enum")]),
    ("consent-webhook-input", "/events", [], [("/events", "schema.min_items")]),
    ("consent-webhook-input", "/events/0", "approved", [("/events/0", "schema.enum")]),
    ("consent-webhook-input", "/events/1", "withdrawn", [("/events", "schema.unique_items")]),
    ("consent-webhook-input", "/url", "javascript:alert(1)", [("/url", "schema.pattern")]),
    ("consent-webhook-input", "/webhook_id", CONSENT_ID, [("/webhook_id", "schema.additional_property")]),
    ("consent-webhook", "/webhook_id", _DELETE, [("", "schema.required")]),
    ("consent-notification", "/subject", SUBJECT, [("/subject", "schema.additional_property")]),
    ("consent-notification", "/event", "deleted", [("/event", "schema.enum")]),
    ("consent-notification-ack", "/receiver", "somebody", [("/receiver", "schema.pattern")]),
    ("iso27560-consent-record", "/status", DPV + "ConsentWithdrawn", [("/status", "schema.enum")]),
    ("iso27560-consent-record", "/state", "PAUSED", [("/status", "schema.enum")]),
    ("iso27560-consent-record", "/status", "dpv:ConsentGiven", [("/status", "schema.enum")] * 2),
    (
        "iso27560-consent-record",
        "/events/1/event_state",
        DPV + "ConsentRequested",
        [("/events/1/event_state", "schema.enum")],
    ),
    (
        "iso27560-consent-record",
        "/purposes/0/iri",
        "https://example.org/purpose",
        [("/purposes/0/iri", "schema.pattern")],
    ),
    ("iso27560-consent-record", "/retention_period", "5 years", [("/retention_period", "schema.pattern")]),
    (
        "iso27560-consent-record",
        "/jurisdiction",
        "Algeria",
        [("/jurisdiction", "schema.max_length"), ("/jurisdiction", "schema.pattern")],
    ),
    ("iso27560-consent-record", "/withdrawal_method", _DELETE, [("", "schema.required")]),
    (
        "iso27560-consent-record",
        "/schema_version",
        "iso27560-consent-record@2.0.0",
        [("/schema_version", "schema.const")],
    ),
    ("iso27560-consent-record", "/events", [], [("/events", "schema.min_items")]),
    ("kantara-consent-receipt", "/version", "KI-CR-v1.0.0", [("/version", "schema.const")]),
    (
        "kantara-consent-receipt",
        "/consentTimestamp",
        "2026-11-23T10:00:00Z",
        [("/consentTimestamp", "schema.type")],
    ),
    ("kantara-consent-receipt", "/consentTimestamp", 1795428000.5, [("/consentTimestamp", "schema.type")]),
    (
        "kantara-consent-receipt",
        "/policyURL",
        "https://labour.example.gov/privacy",
        [("/policyURL", "schema.additional_property")],
    ),
    ("kantara-consent-receipt", "/spiCat", _DELETE, [("", "schema.required")]),
    (
        "kantara-consent-receipt",
        "/piiControllers/0/address",
        {},
        [("/piiControllers/0/address", "schema.min_properties")],
    ),
    (
        "kantara-consent-receipt",
        "/services/0/purposes/0/thirdPartyName",
        _DELETE,
        [("/services/0/purposes/0", "schema.required")],
    ),
    (
        "kantara-consent-receipt",
        "/services/0/purposes/0/piiCategory",
        ["c"] * 51,
        [("/services/0/purposes/0/piiCategory", "schema.max_items")],
    ),
]


@pytest.mark.parametrize("name", CONSENT_SCHEMAS)
def test_each_consent_schema_is_published_at_1_0_0_and_closed(name: str) -> None:
    assert schema_versions(name) == ["1.0.0"]
    schema = load_schema(name)
    assert schema["$id"] == f"urn:dpi:schema:{name}:1.0.0"
    # A schema other schemas embed keeps its body in $defs: a $ref to a whole schema resource would switch
    # the reporting validator to the stock pattern semantics.
    body = schema["$defs"][schema["$ref"].removeprefix("#/$defs/")] if "$ref" in schema else schema
    assert body["additionalProperties"] is False


@pytest.mark.parametrize(("name", "example"), EXAMPLES.items())
def test_realistic_examples_are_valid_on_both_paths(name: str, example: Any) -> None:
    schema_validator = validator(name)
    assert schema_validator.issues(example) == []
    assert schema_validator.is_valid(example)


@pytest.mark.parametrize(("name", "pointer", "value", "expected"), INVALID, ids=lambda v: str(v)[:60])
def test_invalid_documents_are_refused_with_pointer_and_reason_code(
    name: str, pointer: str, value: Any, expected: list[tuple[str, str]]
) -> None:
    schema_validator = validator(name)
    instance = _with(EXAMPLES[name], pointer, value)
    assert sorted(
        (issue.pointer, issue.reason_code) for issue in schema_validator.issues(instance)
    ) == sorted(expected)
    assert not schema_validator.is_valid(instance)
    with pytest.raises(SchemaValidationError):
        schema_validator.check(instance)


def test_the_table_exercises_every_consent_schema() -> None:
    assert {name for name, *_ in INVALID} == set(CONSENT_SCHEMAS)


def test_the_agreement_example_carries_the_hash_of_each_notice_text() -> None:
    for lang, notice in AGREEMENT["notices"].items():
        assert notice["hash"] == "sha256:" + hashlib.sha256(NOTICE_TEXT[lang].encode()).hexdigest()


def test_purpose_and_legal_basis_are_patterns_so_the_vocabularies_can_grow() -> None:
    agreement = validator("consent-agreement")
    assert agreement.is_valid({**AGREEMENT, "purpose": "a-purpose-not-yet-in-the-vocabulary"})
    assert agreement.is_valid({**AGREEMENT, "legal_basis": "a-basis-not-yet-in-the-vocabulary"})
    for purpose in purpose_codes():
        assert agreement.is_valid({**AGREEMENT, "purpose": purpose})
    for basis in legal_bases():
        assert agreement.is_valid({**AGREEMENT, "legal_basis": basis})


def test_the_first_event_of_a_chain_has_no_from_state() -> None:
    assert validator("consent-event").issues(FIRST_EVENT) == []


DENY_CODES = [
    "consent.not_found",
    "consent.pending",
    "consent.refused",
    "consent.paused",
    "consent.withdrawn",
    "consent.revoked",
    "consent.expired",
    "consent.invalidated",
    "consent.superseded",
    "consent.purpose_mismatch",
    "consent.fields_not_covered",
    "consent.frequency_exceeded",
    "consent.data_range_not_covered",
]


@pytest.mark.parametrize("code", DENY_CODES)
def test_a_deny_decision_carries_its_reason_and_no_field(code: str) -> None:
    decision = {"decision": "deny", "reason_code": code, "permitted_fields": []}
    assert validator("consent-check-decision").issues(decision) == []
    assert validator("consent-check-decision").is_valid({**decision, "consent_id": CONSENT_ID})


# Our lifecycle state -> the DPV consent statuses an export may give it.
DPV_STATUS = {
    "REQUESTED": {"ConsentRequested"},
    "ACTIVE": {"ConsentGiven", "RenewedConsentGiven"},
    "REFUSED": {"ConsentRefused"},
    "DEFERRED": {"ConsentRequestDeferred"},
    "PAUSED": {"ConsentStatusInvalidForProcessing"},
    "WITHDRAWN": {"ConsentWithdrawn"},
    "REVOKED": {"ConsentRevoked"},
    "EXPIRED": {"ConsentExpired"},
    "INVALIDATED": {"ConsentInvalidated"},
    "SUPERSEDED": {"ConsentRevoked"},
}
ALL_DPV_STATUSES = sorted(set().union(*DPV_STATUS.values()))


@pytest.mark.parametrize("state", DPV_STATUS)
@pytest.mark.parametrize("status", ALL_DPV_STATUSES)
def test_iso27560_export_pairs_each_state_with_its_dpv_status(state: str, status: str) -> None:
    export = {**EXAMPLES["iso27560-consent-record"], "state": state, "status": DPV + status}
    schema_validator = validator("iso27560-consent-record")
    assert schema_validator.is_valid(export) == (status in DPV_STATUS[state])
    assert (schema_validator.issues(export) == []) == (status in DPV_STATUS[state])


CONSENT_CODES = {
    "consent.permitted": 200,
    "consent.not_found": 404,
    "consent.pending": 403,
    "consent.refused": 403,
    "consent.paused": 403,
    "consent.withdrawn": 403,
    "consent.revoked": 403,
    "consent.expired": 403,
    "consent.invalidated": 403,
    "consent.superseded": 403,
    "consent.purpose_mismatch": 403,
    "consent.fields_not_covered": 403,
    "consent.frequency_exceeded": 429,
    "consent.data_range_not_covered": 403,
    "consent.transition_not_allowed": 409,
    "consent.actor_not_allowed": 403,
    "consent.notice_mismatch": 422,
    "consent.not_revocable": 409,
    "agreement.not_found": 404,
    "agreement.invalid": 422,
    "auth.token_missing": 401,
    "auth.token_invalid": 401,
    "auth.scope_missing": 403,
    "receipt.invalid": 422,
    "webhook.not_found": 404,
}


@pytest.mark.parametrize(("code", "status"), CONSENT_CODES.items())
def test_consent_reason_codes_have_their_status_and_three_languages(code: str, status: int) -> None:
    entry = reason_code(code)
    assert entry.http_status == status
    assert len({entry.message("en"), entry.message("fr"), entry.message("ar")}) == 3
    assert any("\u0600" <= char <= "\u06ff" for char in entry.message("ar"))


def test_reason_codes_1_1_0_admits_a_2xx_decision_and_stays_compatible() -> None:
    assert breaking_changes(load_schema("reason-codes@1.0.0"), load_schema("reason-codes@1.1.0")) == []
    entry = {"http_status": 200, "messages": {"en": "a", "fr": "b", "ar": "c"}}
    document = {"schema": "reason-codes@1.1.0", "reason_codes": {"consent.permitted": entry}}
    assert validator("reason-codes@1.1.0").issues(document) == []
    assert not validator("reason-codes@1.0.0").is_valid({**document, "schema": "reason-codes@1.0.0"})
    assert not validator("reason-codes@1.1.0").is_valid(
        {**document, "reason_codes": {"consent.permitted": {**entry, "http_status": 199}}}
    )


def test_consent_profile_requirements_are_numbered_and_cite_their_reason_codes() -> None:
    consent = [r for r in requirements() if r.profile == "consent"]
    assert [r.id for r in consent] == [f"CNS-{n:03d}" for n in range(1, len(consent) + 1)]
    assert len(consent) >= 15
    statements = " ".join(r.statement for r in consent)
    for code in (
        "consent.permitted",
        "consent.transition_not_allowed",
        "consent.expired",
        "consent.superseded",
        "consent.frequency_exceeded",
        "consent.purpose_mismatch",
        "consent.fields_not_covered",
        "consent.data_range_not_covered",
    ):
        assert f"`{code}`" in statements
        reason_code(code)
    for name in ("consent-check-request", "consent-check-decision", "consent-receipt", "consent-chain"):
        assert f"`{name}`" in statements
    assert all(r.level == "MUST" for r in consent if r.id <= "CNS-015")


# Values where the regex and format semantics of the two validation engines could part ways.
TRICKY = [
    "",
    "\n",
    "ACTIVE\n",
    "active",
    "2026-11-23T10:00:00Z\n",
    "2026-02-29",
    "sha256:" + "a" * 64 + "\n",
    "3f1c2a9e-7b4d-4e8a-9c1f-2b6d8e0a4c71\n",
    "Zx4rT9-qLm2Vb7Kp_s0Yw3\n",
    "٢٠٢٦-١١-٢٣",
    "/a~2",
    "DPI/GOV/MOL/x\n",
    "https://w3id.org/dpv#ConsentGiven\n",
    "P365D\n",
    "consent.permitted",
]


def _pointers(document: Any, prefix: str = "") -> list[str]:
    found = [prefix] if prefix else []
    if isinstance(document, dict):
        for key, value in document.items():
            found += _pointers(value, f"{prefix}/{key}")
    elif isinstance(document, list):
        for index, value in enumerate(document):
            found += _pointers(value, f"{prefix}/{index}")
    return found


@pytest.mark.parametrize("name", CONSENT_SCHEMAS)
def test_fast_path_agrees_on_tricky_strings_in_every_position(name: str) -> None:
    schema_validator = validator(name)
    for pointer in _pointers(EXAMPLES[name]):
        for text in TRICKY:
            instance = _with(EXAMPLES[name], pointer, text)
            assert schema_validator.is_valid(instance) == (schema_validator.issues(instance) == []), (
                pointer,
                text,
            )


SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=False),
    st.text(max_size=20),
    st.sampled_from(TRICKY),
)


@st.composite
def _mutants(draw: st.DrawFn, name: str) -> Any:
    document = EXAMPLES[name]
    for _ in range(draw(st.integers(min_value=1, max_value=3))):
        pointers = _pointers(document)
        if not pointers:  # an earlier mutation deleted the last member: nothing left to change
            break
        pointer = draw(st.sampled_from(pointers))
        document = _with(document, pointer, draw(st.one_of(SCALARS, st.just(_DELETE))))
    return document


@pytest.mark.parametrize("name", CONSENT_SCHEMAS)
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_fast_path_agrees_on_generated_mutants(name: str, data: st.DataObject) -> None:
    instance = data.draw(_mutants(name))
    schema_validator = validator(name)
    assert schema_validator.is_valid(instance) == (schema_validator.issues(instance) == [])
