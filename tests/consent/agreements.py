"""The agreement the consent tests publish (the demo's job-seeker registration) and the people in them."""

from __future__ import annotations

from typing import Any

CONSUMER = "DPI/GOV/MOL/jobseekers"
PROVIDER = "DPI/GOV/MOI/civil-registry"
AMINA = "amina-pseudonym-mol-0001"
YOUSSEF = "youssef-pseudonym-mol-02"
GUARDIAN = "guardian-pseudonym-0003"


def agreement_draft(**changes: Any) -> dict[str, Any]:
    """A valid ``consent-agreement-input``; keyword arguments replace top-level members."""
    draft: dict[str, Any] = {
        "agreement_id": "mol-jobseeker-registration",
        "consumer": CONSUMER,
        "providers": [{"provider": PROVIDER, "service": "person"}],
        "purpose": "jobseeker-registration",
        "legal_basis": "consent",
        "data_items": [{"schema": "person@1.0.0", "fields": ["/names", "/date_of_birth"]}],
        "retention_days": 365,
        "max_validity_days": 180,
        "revocable": True,
        "controller": {"name": "Ministry of Labour", "contact": "dpo@labour.gov.example"},
        "notices": {
            "en": {"text": "The Ministry of Labour reads your name and date of birth to register you."},
            "fr": {
                "text": "Le ministère du Travail lit votre nom et votre date de naissance pour vous inscrire."
            },
            "ar": {"text": "تقرأ وزارة العمل اسمك وتاريخ ميلادك لتسجيلك."},
        },
    }
    draft.update(changes)
    return draft
