"""Consent record exports: ISO/IEC TS 27560:2023 with W3C DPV terms (https://w3id.org/dpv/guides/consent-27560)
and the Kantara Initiative Consent Receipt v1.1 (https://kantarainitiative.org).

Both are built from the same three documents the block already serves: a ``consent-record``, the
``consent-agreement`` version it was given to, and the record's ``consent-event`` history. They are
validated against ``iso27560-consent-record`` and ``kantara-consent-receipt`` in ``standards``.

Agreements do not (yet) state a jurisdiction, a policy URL or the controller's postal address, which both
formats ask for. Until they do, the jurisdiction is the ISO 3166 user-assigned code ``ZZ`` ("unknown or
unspecified") unless the caller names one, and the controller's single ``contact`` stands in for every
contact field it can truthfully fill.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, Final

import standards

__all__ = [
    "DPV_STATUS",
    "ISO27560_SCHEMA_VERSION",
    "KANTARA_VERSION",
    "UNSPECIFIED_JURISDICTION",
    "iso27560_record",
    "kantara_receipt",
]

ISO27560_SCHEMA_VERSION: Final = "iso27560-consent-record@1.0.0"
KANTARA_VERSION: Final = "KI-CR-v1.1.0"
UNSPECIFIED_JURISDICTION: Final = "ZZ"

_DPV: Final = "https://w3id.org/dpv#"
#: The DPV consent status of each lifecycle state (https://w3id.org/dpv#ConsentStatus). DPV has no paused
#: status, and a superseded consent was ended by the controller's new agreement version.
DPV_STATUS: Final[Mapping[str, str]] = {
    "REQUESTED": _DPV + "ConsentRequested",
    "ACTIVE": _DPV + "ConsentGiven",
    "REFUSED": _DPV + "ConsentRefused",
    "DEFERRED": _DPV + "ConsentRequestDeferred",
    "PAUSED": _DPV + "ConsentStatusInvalidForProcessing",
    "WITHDRAWN": _DPV + "ConsentWithdrawn",
    "REVOKED": _DPV + "ConsentRevoked",
    "EXPIRED": _DPV + "ConsentExpired",
    "INVALIDATED": _DPV + "ConsentInvalidated",
    "SUPERSEDED": _DPV + "ConsentRevoked",
}
_RENEWED: Final = _DPV + "RenewedConsentGiven"
# Every consent this block records is asked for with a notice and given by an explicit act.
_CONSENT_TYPE: Final = _DPV + "ExplicitlyExpressedConsent"
_CONTROLLER_ROLE: Final = _DPV + "DataController"
_CHANNELS: Final[Mapping[str, str]] = {
    "web": "web portal",
    "sms": "SMS",
    "assisted": "assisted, by an operator at a service centre with the subject present",
    "api": "API",
    "system": "system",
}
_TERMINAL: Final = frozenset({"REFUSED", "WITHDRAWN", "REVOKED", "EXPIRED", "INVALIDATED", "SUPERSEDED"})
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_PHONE = re.compile(r"^\+[1-9][0-9]{6,14}$")
_URL = re.compile(r"^https?://[!-~]+$")
# Kantara requires a controller e-mail and phone; agreements name one contact of either kind.
_NOT_STATED: Final = "not stated"
_KANTARA_TEXT_LIMIT: Final = 200


def _history(record: Mapping[str, Any], events: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    own = sorted(
        (event for event in events if event["consent_id"] == record["consent_id"]),
        key=lambda event: int(event["seq"]),
    )
    if not own:
        raise ValueError("a consent record has at least the event that created it")
    return own


def _approvals(history: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    return [event for event in history if event["action"] == "approve"]


def _language(history: Sequence[Mapping[str, Any]]) -> str:
    """The language of the last notice the subject saw, else English (the agreement's first language)."""
    seen = [event["notice"]["language"] for event in history if "notice" in event]
    return str(seen[-1]) if seen else "en"


def _collection_channel(history: Sequence[Mapping[str, Any]]) -> str:
    approvals = _approvals(history)
    return str((approvals[-1] if approvals else history[0])["channel"])


def _seconds(moment: str) -> int:
    return int(datetime.fromisoformat(moment.replace("Z", "+00:00")).timestamp())


def _validity_days(record: Mapping[str, Any]) -> int | None:
    if "valid_from" not in record or "valid_until" not in record:
        return None
    span = datetime.fromisoformat(record["valid_until"].replace("Z", "+00:00")) - datetime.fromisoformat(
        record["valid_from"].replace("Z", "+00:00")
    )
    return max(0, -(-int(span.total_seconds()) // 86400))


def _covered_items(record: Mapping[str, Any], agreement: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The agreement's data items narrowed to the fields the record covers."""
    fields = set(record["fields"])
    items = [
        {"schema": item["schema"], "fields": [pointer for pointer in item["fields"] if pointer in fields]}
        for item in agreement["data_items"]
    ]
    covered = [item for item in items if item["fields"]]
    return covered or [
        {"schema": item["schema"], "fields": list(item["fields"])} for item in agreement["data_items"]
    ]


def _event_state(event: Mapping[str, Any], renewed: bool) -> str:
    if event["to_state"] == "ACTIVE" and renewed:
        return _RENEWED
    return DPV_STATUS[event["to_state"]]


def _iso_event(event: Mapping[str, Any], renewed: bool, validity_days: int | None) -> dict[str, Any]:
    document: dict[str, Any] = {
        "event_time": event["at"],
        "event_type": _CONSENT_TYPE,
        "event_state": _event_state(event, renewed),
        "state": event["to_state"],
        "action": event["action"],
        "entity_role": event["actor"]["role"],
        "channel": event["channel"],
    }
    if "id" in event["actor"]:
        document["entity_id"] = event["actor"]["id"]
    if validity_days is not None:
        document["validity_duration"] = f"P{validity_days}D"
    if "notice" in event:
        document["notice"] = dict(event["notice"])
    return document


def _controller_party(agreement: Mapping[str, Any]) -> dict[str, Any]:
    controller = agreement["controller"]
    contact = str(controller["contact"])
    party: dict[str, Any] = {
        "party_id": agreement["consumer"],
        "name": controller["name"],
        "contact": contact,
        "type": _CONTROLLER_ROLE,
    }
    if _EMAIL.match(contact):
        party["email"] = contact
    elif _PHONE.match(contact):
        party["phone"] = contact
    elif _URL.match(contact):
        party["url"] = contact
    return party


def _withdrawal_method(agreement: Mapping[str, Any]) -> str:
    contact = agreement["controller"]["contact"]
    if not agreement["revocable"]:
        return f"This agreement is not revocable: consent cannot be withdrawn. Controller contact: {contact}"
    return (
        "The subject withdraws at any time on the consent portal, by SMS, or at a service centre "
        f"(assisted). Controller contact: {contact}"
    )


def iso27560_record(
    record: Mapping[str, Any],
    agreement: Mapping[str, Any],
    events: Sequence[Mapping[str, Any]],
    *,
    jurisdiction: str = UNSPECIFIED_JURISDICTION,
    receipt_id: str | None = None,
) -> dict[str, Any]:
    """The record as an ISO/IEC TS 27560 consent record (schema ``iso27560-consent-record``).

    ``record`` is a ``consent-record``, ``agreement`` the ``consent-agreement`` version it names and
    ``events`` its history (``consent-event`` documents; events of other records are ignored).
    Statuses, purposes, legal bases and the controller's role are DPV IRIs; our own state and action are
    kept next to them, so nothing of the lifecycle is lost (PAUSED has no DPV status of its own).
    An approval after an earlier one (a reconfirmation) is ``dpv:RenewedConsentGiven``.
    ``receipt_id`` names the latest signed receipt of the record, when there is one.
    """
    history = _history(record, events)
    approvals = _approvals(history)
    validity = _validity_days(record)
    converted = []
    for event in history:
        renewed = event["action"] == "approve" and approvals.index(event) > 0
        validity_here = (
            validity if event["action"] == "approve" and event["at"] == record.get("valid_from") else None
        )
        converted.append(_iso_event(event, renewed, validity_here))
    status = DPV_STATUS[record["state"]]
    if record["state"] == "ACTIVE" and len(approvals) > 1:
        status = _RENEWED
    purpose = agreement["purpose"]
    legal_basis = agreement["legal_basis"]
    document: dict[str, Any] = {
        "schema_version": ISO27560_SCHEMA_VERSION,
        "record_id": record["consent_id"],
        "pii_principal_id": record["subject"],
        "created_at": record["created_at"],
        "language": _language(history),
        "state": record["state"],
        "status": status,
        "privacy_notice": {
            "agreement_id": agreement["agreement_id"],
            "agreement_version": agreement["version"],
            "hashes": {language: notice["hash"] for language, notice in agreement["notices"].items()},
        },
        "purposes": [{"code": purpose, "iri": standards.purpose_codes()[purpose]["dpv_purpose"]}],
        "lawful_basis": {"code": legal_basis, "iri": standards.legal_bases()[legal_basis]["dpv_legal_basis"]},
        "pii_information": [
            {"pii_type": item["schema"], "pii_attribute_ids": item["fields"]}
            for item in _covered_items(record, agreement)
        ],
        "pii_controllers": [_controller_party(agreement)],
        "services": [{"provider": p["provider"], "service": p["service"]} for p in agreement["providers"]],
        "collection_method": _collection_channel(history),
        "retention_period": f"P{agreement['retention_days']}D",
        "jurisdiction": jurisdiction,
        "recipient_third_parties": [agreement["consumer"]],
        "withdrawal_method": _withdrawal_method(agreement),
        "events": converted,
    }
    if receipt_id is not None:
        document["receipt_id"] = receipt_id
    for name in ("valid_from", "valid_until"):
        if name in record:
            document[name] = record[name]
    return document


def _termination(record: Mapping[str, Any], agreement: Mapping[str, Any], last: Mapping[str, Any]) -> str:
    if record["state"] in _TERMINAL:
        return f"Ended: {record['state'].lower()} on {last['at']}."
    if record["state"] in ("ACTIVE", "PAUSED") and "valid_until" in record:
        ends = f"Ends on {record['valid_until']} at the latest"
    else:
        ends = f"Valid for at most {agreement['max_validity_days']} days from approval"
    withdrawal = "; the subject may withdraw it at any time" if agreement["revocable"] else "; not revocable"
    return f"{ends}{withdrawal}."


def _kantara_controller(agreement: Mapping[str, Any], jurisdiction: str) -> dict[str, Any]:
    controller = agreement["controller"]
    contact = str(controller["contact"])
    entry: dict[str, Any] = {
        "piiController": controller["name"],
        "contact": contact,
        "address": dict(controller.get("address") or {"addressCountry": jurisdiction}),
        "email": controller.get("email") or (contact if _EMAIL.match(contact) else _NOT_STATED),
        "phone": controller.get("phone") or (contact if _PHONE.match(contact) else _NOT_STATED),
    }
    if _URL.match(contact):
        entry["piiControllerUrl"] = contact
    return entry


def _kantara_service(provider: Mapping[str, Any]) -> str:
    qualified = f"{provider['provider']}/{provider['service']}"
    return qualified if len(qualified) <= _KANTARA_TEXT_LIMIT else str(provider["service"])


def kantara_receipt(
    record: Mapping[str, Any],
    agreement: Mapping[str, Any],
    events: Sequence[Mapping[str, Any]],
    *,
    jurisdiction: str = UNSPECIFIED_JURISDICTION,
    policy_url: str | None = None,
    receipt_id: str | None = None,
) -> dict[str, Any]:
    """The record as a Kantara Consent Receipt 1.1 (schema ``kantara-consent-receipt``).

    ``consentTimestamp`` is the last approval (else the record's creation), in seconds since the epoch.
    Kantara has no status field, so ``termination`` says whether and when the consent ended. One
    ``services`` entry per provider service, each with the agreement's one purpose. ``consentReceiptID``
    is ``receipt_id`` when given, else derived from the record's last event hash, so exporting the same
    history twice gives the same receipt. ``policy_url`` defaults to the controller's contact when it is a
    URL, else to the DPV definition of the legal basis.
    """
    history = _history(record, events)
    approvals = _approvals(history)
    given_at = approvals[-1]["at"] if approvals else record["created_at"]
    last = history[-1]
    purpose_code = agreement["purpose"]
    purpose_entry = standards.purpose_codes()[purpose_code]
    legal_basis = standards.legal_bases()[agreement["legal_basis"]]
    contact = str(agreement["controller"]["contact"])
    policy = policy_url or (contact if _URL.match(contact) else str(legal_basis["dpv_legal_basis"]))
    purpose: dict[str, Any] = {
        "purpose": purpose_entry["labels"]["en"],
        "purposeCategory": [purpose_code, purpose_entry["dpv_purpose"]],
        "consentType": "EXPLICIT",
        "piiCategory": sorted({item["schema"] for item in _covered_items(record, agreement)}),
        "primaryPurpose": True,
        "termination": _termination(record, agreement, last),
        # The receiving controller is the consumer itself; this agreement lets it disclose to nobody.
        "thirdPartyDisclosure": False,
    }
    receipt: dict[str, Any] = {
        "version": KANTARA_VERSION,
        "jurisdiction": jurisdiction,
        "consentTimestamp": _seconds(given_at),
        "collectionMethod": _CHANNELS[_collection_channel(history)],
        "consentReceiptID": receipt_id
        or str(uuid.uuid5(uuid.NAMESPACE_URL, f"urn:dpi:consent:{last['hash']}")),
        "language": _language(history),
        "piiPrincipalId": record["subject"],
        "piiControllers": [_kantara_controller(agreement, jurisdiction)],
        "policyUrl": policy,
        "services": [
            {"service": _kantara_service(provider), "purposes": [dict(purpose)]}
            for provider in agreement["providers"]
        ],
        # The data items of an agreement carry no sensitivity class yet.
        "sensitive": False,
        "spiCat": [],
    }
    return receipt
