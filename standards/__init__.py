"""The dpi-blocks contract: versioned JSON Schemas (https://json-schema.org/draft/2020-12), vocabularies,
the requirement catalogue, validation and schema compatibility.

Every block speaks these schemas on the wire; this package depends on nothing else of the project.
"""

# The version of the contract as a whole, reported in capabilities and conformance summaries.
# MINOR grows when schemas or vocabulary entries are added; MAJOR only with a schema's MAJOR.
__version__ = "1.0.0"

from standards._catalogue import Requirement, requirements
from standards._openapi import component_key, openapi_components
from standards._schemas import SchemaNotFound, load_schema, schema_names, schema_versions
from standards._validation import SchemaValidationError, SchemaValidator, ValidationIssue, validator
from standards._vocabulary import (
    PAYMENT_STANDARDS,
    ReasonCode,
    identifier_types,
    isco08_unit_groups,
    iso20022_statuses,
    legal_bases,
    payment_reasons,
    payment_reasons_inbound,
    purpose_codes,
    reason_code,
    reason_codes,
)

__all__ = [
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
