"""The public API of ``standards`` is pinned: adding or removing a name is a deliberate act."""

import standards


def test_public_names_are_pinned() -> None:
    assert sorted(standards.__all__) == [
        "PAYMENT_STANDARDS",
        "ReasonCode",
        "Requirement",
        "SchemaNotFound",
        "SchemaValidationError",
        "SchemaValidator",
        "ValidationIssue",
        "component_key",
        "identifier_types",
        "isco08_unit_groups",
        "iso20022_statuses",
        "legal_bases",
        "load_schema",
        "openapi_components",
        "payment_reasons",
        "payment_reasons_inbound",
        "purpose_codes",
        "reason_code",
        "reason_codes",
        "requirements",
        "schema_names",
        "schema_versions",
        "validator",
    ]


def test_every_public_name_exists() -> None:
    for name in standards.__all__:
        assert getattr(standards, name) is not None
