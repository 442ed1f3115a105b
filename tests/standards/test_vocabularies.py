"""Vocabularies and the requirement catalogue: validated data, complete and consistent."""

import json
import re
from pathlib import Path

import pytest

import standards
from standards import (
    identifier_types,
    legal_bases,
    purpose_codes,
    reason_code,
    reason_codes,
    requirements,
    validator,
)

DATA = Path(standards.__file__).parent
KERNEL_CODES = {
    "request.malformed_json": 400,
    "request.invalid": 422,
    "request.too_large": 413,
    "request.unsupported_media_type": 415,
    "request.invalid_parameter": 400,
    "route.not_found": 404,
    "method.not_allowed": 405,
    "internal.error": 500,
    "service.not_ready": 503,
    "schema.not_found": 404,
    "auth.signature_missing": 401,
    "auth.signature_invalid": 401,
    "auth.key_unknown": 401,
    "auth.digest_mismatch": 400,
    "auth.signature_expired": 401,
    "request.rate_limited": 429,
}


@pytest.mark.parametrize(
    "path",
    [
        "vocabularies/reason-codes.json",
        "vocabularies/purpose-codes.json",
        "vocabularies/legal-bases.json",
        "vocabularies/identifier-types.json",
        "requirements/catalogue.json",
    ],
)
def test_data_file_is_valid_against_the_schema_it_names(path: str) -> None:
    document = json.loads((DATA / path).read_text(encoding="utf-8"))
    assert validator(document["schema"]).issues(document) == []


@pytest.mark.parametrize(("code", "status"), KERNEL_CODES.items())
def test_kernel_reason_codes_have_their_status_and_three_languages(code: str, status: int) -> None:
    entry = reason_code(code)
    assert entry.http_status == status
    assert {"en", "fr", "ar"} <= set(entry.messages)
    assert len({entry.message("en"), entry.message("fr"), entry.message("ar")}) == 3


def test_reason_code_messages_fall_back_by_language() -> None:
    entry = reason_code("route.not_found")
    assert entry.message("fr-SN") == entry.messages["fr"]
    assert entry.message("sw") == entry.messages["en"]
    assert re.search(r"[\u0600-\u06ff]", entry.message("ar"))


def test_every_code_has_the_vocabulary_form() -> None:
    for code, entry in reason_codes().items():
        assert re.fullmatch(r"[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+", code)
        assert entry.code == code


@pytest.mark.parametrize("code", ["nope", "", "schema", "ROUTE.NOT_FOUND"])
def test_unknown_reason_code_raises_key_error(code: str) -> None:
    with pytest.raises(KeyError):
        reason_code(code)


def test_purposes_name_a_dpv_purpose_and_a_known_legal_basis() -> None:
    purposes = purpose_codes()
    assert {
        "jobseeker-registration",
        "social-benefit-eligibility",
        "benefit-payment",
        "identity-verification",
        "official-statistics",
        "fraud-prevention",
        "service-provision",
    } <= set(purposes)
    for entry in purposes.values():
        assert entry["dpv_purpose"].startswith("https://w3id.org/dpv#")
        assert entry["default_legal_basis"] in legal_bases()


def test_legal_bases_are_the_six_of_the_regulation() -> None:
    bases = legal_bases()
    assert set(bases) == {
        "consent",
        "contract",
        "legal-obligation",
        "vital-interest",
        "public-task",
        "legitimate-interest",
    }
    assert [name for name, entry in bases.items() if entry["requires_consent"]] == ["consent"]


def test_identifier_types_patterns_compile_and_the_uin_never_leaves_identity() -> None:
    types = identifier_types()
    assert {"UIN", "VID", "SECTOR_PSEUDONYM", "BRN", "DRN", "MRN", "MSISDN", "IBAN", "PASSPORT"} <= set(types)
    for entry in types.values():
        re.compile(entry["value_pattern"])
    assert types["UIN"]["shareable"] is False
    assert types["SECTOR_PSEUDONYM"]["shareable"] is False


def test_returned_vocabularies_are_copies() -> None:
    purpose_codes()["jobseeker-registration"]["default_legal_basis"] = "contract"
    assert purpose_codes()["jobseeker-registration"]["default_legal_basis"] == "consent"


def test_requirement_catalogue_holds_exactly_the_platform_requirements() -> None:
    catalogue = [r for r in requirements() if r.profile == "platform"]
    assert [r.id for r in catalogue] == [f"PLT-{n:03d}" for n in range(1, 15)]
    assert all(r.id.startswith("PLT-") for r in catalogue)
    assert [r.id for r in catalogue if r.level == "SHOULD"] == ["PLT-012"]
    assert all(r.level == "MUST" for r in catalogue if r.id != "PLT-012")
    assert "route.not_found" in catalogue[3].statement


def test_requirement_ids_are_unique_and_prefixed_by_profile() -> None:
    prefixes = {
        "platform": "PLT-",
        "consent": "CNS-",
        "identity-oidc": "IDN-",
        "registry-dci": "RDC-",
        "payments-provider": "PAY-",
    }
    catalogue = requirements()
    assert len({r.id for r in catalogue}) == len(catalogue)
    for requirement in catalogue:
        assert requirement.id.startswith(prefixes[requirement.profile])
