"""The FSPIOP 1.1 wire pieces of the Mojaloop adapter: error codes as data, media types and version
negotiation, identifiers, amounts, times, the ILP condition, the FSPIOP-Signature, configuration."""

from __future__ import annotations

import json
import re
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from importlib.metadata import entry_points
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from hypothesis import given, settings
from hypothesis import strategies as st

import payments_adapter.mojaloop as mojaloop
import standards
from payments_adapter.contract import ENTRY_POINT_GROUP, Money
from payments_adapter.mojaloop import (
    FSPIOP_ERROR_CODES,
    Disposition,
    MojaloopProvider,
    MojaloopSettings,
    create_provider,
    fspiop_error,
    signature,
    wire,
)

# -- error codes ---------------------------------------------------------------------------------------


def test_the_table_holds_every_fspiop_1_1_code_in_its_category_with_a_shared_reason_code() -> None:
    assert len(FSPIOP_ERROR_CODES) == 56
    for code, entry in FSPIOP_ERROR_CODES.items():
        assert re.fullmatch(r"[1-5][0-9]{3}", code)
        assert entry.code == code
        assert entry.name
        assert entry.reason_code in standards.reason_codes()
    for generic in ("1000", "2000", "3000", "3100", "3200", "3300", "4000", "4100", "4200", "4300", "4400"):
        assert generic in FSPIOP_ERROR_CODES
    for generic in ("5000", "5100", "5200", "5300", "5400"):
        assert generic in FSPIOP_ERROR_CODES


@pytest.mark.parametrize(
    ("code", "reason", "disposition"),
    [
        ("3204", "payments.address.not_found", Disposition.REJECTED),
        ("4001", "payments.payer.insufficient_funds", Disposition.REJECTED),
        ("4200", "payments.payer.limit_exceeded", Disposition.REJECTED),
        ("5104", "payments.payee.rejected", Disposition.REJECTED),
        ("5106", "payments.currency.not_supported", Disposition.REJECTED),
        ("5200", "payments.payee.limit_exceeded", Disposition.REJECTED),
        ("3303", "payments.request.expired", Disposition.REJECTED),
        ("3106", "payments.request.duplicate", Disposition.REFUSED),
        ("3001", "payments.provider.error", Disposition.REFUSED),
        ("3208", "payments.provider.error", Disposition.NOT_FOUND),
        ("2004", "payments.outcome.unknown", Disposition.UNKNOWN),
        ("1001", "payments.provider.unavailable", Disposition.UNKNOWN),
        # Scheme-specific codes (xx40 and above) read as their category's generic code.
        ("5140", "payments.payee.rejected", Disposition.REJECTED),
        ("4241", "payments.payer.limit_exceeded", Disposition.REJECTED),
        ("2099", "payments.provider.error", Disposition.UNKNOWN),
        ("3999", "payments.provider.error", Disposition.REJECTED),
        # Not FSPIOP error codes at all.
        ("6000", "payments.provider.invalid_response", Disposition.REFUSED),
        ("0123", "payments.provider.invalid_response", Disposition.REFUSED),
        ("40011", "payments.provider.invalid_response", Disposition.REFUSED),
        ("abcd", "payments.provider.invalid_response", Disposition.REFUSED),
        ("4001\n", "payments.provider.invalid_response", Disposition.REFUSED),
        ("", "payments.provider.invalid_response", Disposition.REFUSED),
    ],
)
def test_fspiop_errors_map_to_a_reason_code_and_a_disposition(
    code: str, reason: str, disposition: Disposition
) -> None:
    entry = fspiop_error(code)
    assert (entry.reason_code, entry.disposition) == (reason, disposition)


def test_no_payer_or_payee_error_can_read_as_an_unknown_outcome_and_no_communication_error_as_rejected() -> (
    None
):
    for code, entry in FSPIOP_ERROR_CODES.items():
        if code[0] in "45":
            assert entry.disposition is Disposition.REJECTED
        if code[0] in "12":
            assert entry.disposition in (Disposition.UNKNOWN, Disposition.REFUSED)


# -- media types and version negotiation ---------------------------------------------------------------


def test_content_type_and_accept_name_the_resource_and_version() -> None:
    assert wire.content_type("transfers") == "application/vnd.interoperability.transfers+json;version=1.1"
    assert wire.accept("quotes") == "application/vnd.interoperability.quotes+json;version=1"


@pytest.mark.parametrize(
    ("header", "admitted"),
    [
        ("application/vnd.interoperability.parties+json;version=1", True),
        ("application/vnd.interoperability.parties+json;version=1.0", True),
        ("application/vnd.interoperability.parties+json;version=1.1", True),
        ("application/vnd.interoperability.parties+json", True),
        (
            "application/vnd.interoperability.parties+json;version=2,application/vnd.interoperability.parties+json",
            True,
        ),
        ("application/vnd.interoperability.parties+json;version=1.2", False),
        ("application/vnd.interoperability.parties+json;version=2", False),
        ("application/vnd.interoperability.parties+json;version=x", False),
        ("application/vnd.interoperability.quotes+json;version=1", False),
        ("application/json", False),
        ("", False),
        (None, False),
    ],
)
def test_accept_admits_version_1_and_its_minors_up_to_1_1(header: str | None, admitted: bool) -> None:
    assert wire.accepts(header, "parties") is admitted


def test_the_406_body_lists_the_supported_version_as_major_key_and_minor_value() -> None:
    body = wire.error_body("3001", "unsupported", versions=True)
    assert standards.validator("fspiop-error").is_valid(body)
    assert body["errorInformation"]["extensionList"] == {"extension": [{"key": "1", "value": "1"}]}


# -- identifiers, paths and headers --------------------------------------------------------------------


def test_ids_derive_from_the_key_deterministically_and_are_fspiop_correlation_ids() -> None:
    pattern = re.compile(standards.load_schema("fspiop-common")["$defs"]["CorrelationId"]["pattern"])
    first = wire.correlation_id("spafsp", "transfer", "P1-C1-B0001-E1")
    assert first == wire.correlation_id("spafsp", "transfer", "P1-C1-B0001-E1")
    assert pattern.match(first)
    assert uuid.UUID(first).version == 5
    others = {
        wire.correlation_id("spafsp", "quote", "P1-C1-B0001-E1"),
        wire.correlation_id("spafsp", "transfer", "P1-C1-B0001-E2"),
        wire.correlation_id("otherfsp", "transfer", "P1-C1-B0001-E1"),
    }
    assert first not in others
    assert len(others) == 3


@pytest.mark.parametrize(
    "value", ["..", ".", "a/b", "a\r\nb", "0700\n", "", "a b", "x" * 129, "%2e%2e", "a?b", "a#b"]
)
def test_path_segments_that_could_climb_or_split_the_path_are_refused(value: str) -> None:
    with pytest.raises(ValueError, match="party identifier"):
        wire.path_segment(value)


@pytest.mark.parametrize("value", ["0700123456", "amina.diallo@example.org", "+221700000000", "ACC-12_3"])
def test_ordinary_identifiers_are_path_segments(value: str) -> None:
    assert wire.path_segment(value).replace("%40", "@").replace("%2B", "+") == value


@pytest.mark.parametrize("value", ["spafsp", "payee-fsp.1", "FSP_2"])
def test_fsp_ids_that_fit_a_header(value: str) -> None:
    assert wire.is_fsp_id(value)


@pytest.mark.parametrize("value", ["", "a\r\nX-Injected: 1", "fsp id", "x" * 33, "-fsp", "fsp\n"])
def test_fsp_ids_that_could_inject_headers_are_refused(value: str) -> None:
    assert not wire.is_fsp_id(value)


# -- amounts and times ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("amount", "currency", "expected"),
    [
        ("1500", "XOF", "1500"),
        ("1500.00", "USD", "1500"),
        ("12.50", "USD", "12.5"),
        ("0.05", "USD", "0.05"),
        ("0", "XOF", "0"),
        ("1000000", "XOF", "1000000"),
        ("1.234", "KWD", "1.234"),
    ],
)
def test_fspiop_amounts_have_no_trailing_zeros(amount: str, currency: str, expected: str) -> None:
    assert wire.wire_amount(Money.parse(amount, currency)) == expected


@settings(max_examples=40, deadline=None)
@given(st.integers(min_value=0, max_value=10**15), st.sampled_from([("USD", 2), ("XOF", 0), ("KWD", 3)]))
def test_every_amount_is_a_valid_fspiop_amount_and_reads_back_exactly(
    minor_units: int, currency: tuple[str, int]
) -> None:
    money = Money(Decimal(minor_units).scaleb(-currency[1]), currency[0])
    text = wire.wire_amount(money)
    assert re.fullmatch(r"(0|[1-9][0-9]{0,17})([.][0-9]{0,3}[1-9])?", text)
    assert wire.money_from_wire({"amount": text, "currency": currency[0]}) == money


def test_fspiop_datetimes_have_milliseconds_and_read_back() -> None:
    moment = datetime(2026, 11, 23, 18, 41, 24, 123456, tzinfo=UTC)
    text = wire.fspiop_datetime(moment)
    assert text == "2026-11-23T18:41:24.123Z"
    assert wire.parse_fspiop_datetime(text) == moment.replace(microsecond=123000)
    assert wire.parse_fspiop_datetime("2026-11-23T19:41:24.123+01:00") == moment.replace(microsecond=123000)


@pytest.mark.parametrize("text", ["2026-11-23T18:41:24Z", "2026-11-23 18:41:24.123Z", "yesterday", ""])
def test_datetimes_without_the_fspiop_form_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match="DateTime"):
        wire.parse_fspiop_datetime(text)


# -- the ILP condition ---------------------------------------------------------------------------------


def test_a_fulfilment_fulfils_exactly_its_condition() -> None:
    preimage = bytes(range(32))
    condition = wire.condition_of(preimage)
    assert len(condition) == 43
    assert wire.fulfils(wire.b64url(preimage), condition)
    assert not wire.fulfils(wire.b64url(bytes(32)), condition)
    assert not wire.fulfils(wire.b64url(preimage[:31]), wire.condition_of(preimage[:31]))
    assert not wire.fulfils("not base64 !", condition)


# -- FSPIOP-Signature ----------------------------------------------------------------------------------

_HEADERS = {
    "FSPIOP-Source": "walletfsp",
    "FSPIOP-Destination": "spafsp",
    "Date": "Mon, 23 Nov 2026 18:41:24 GMT",
}


def _signed(key: ec.EllipticCurvePrivateKey, body: bytes = b'{"transferState":"COMMITTED"}') -> str:
    return signature.sign(
        body, key=key, algorithm="ES256", uri="/transfers/1", method="PUT", headers=_HEADERS
    )


def test_a_signature_binds_the_body_and_the_routing_headers() -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    value = _signed(key)
    protected = json.loads(wire.b64url_decode(json.loads(value)["protectedHeader"]))
    assert protected["FSPIOP-URI"] == "/transfers/1"
    assert protected["FSPIOP-Source"] == "walletfsp"
    signature.verify(
        value,
        b'{"transferState":"COMMITTED"}',
        key=key.public_key(),
        uri="/transfers/1",
        method="PUT",
        headers=_HEADERS,
    )


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"body": b'{"transferState":"ABORTED"}'}, "does not verify"),
        ({"uri": "/transfers/2"}, "FSPIOP-URI"),
        ({"method": "POST"}, "FSPIOP-HTTP-Method"),
        ({"headers": {**_HEADERS, "FSPIOP-Source": "evilfsp"}}, "FSPIOP-Source"),
        ({"headers": {**_HEADERS, "FSPIOP-Destination": "otherfsp"}}, "FSPIOP-Destination"),
        ({"value": None}, "missing"),
        ({"value": "{}"}, "not a signature"),
        ({"value": "not json"}, "not a signature"),
        (
            {"value": json.dumps({"signature": "x", "protectedHeader": "eyJhbGciOiJub25lIn0"})},
            "does not verify",
        ),
        ({"key": "other"}, "does not verify"),
    ],
)
def test_a_signature_that_does_not_bind_this_request_is_refused(
    change: dict[str, object], message: str
) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    arguments: dict[str, object] = {
        "value": _signed(key),
        "body": b'{"transferState":"COMMITTED"}',
        "key": key.public_key(),
        "uri": "/transfers/1",
        "method": "PUT",
        "headers": _HEADERS,
    }
    arguments.update(change)
    if arguments["key"] == "other":
        arguments["key"] = ec.generate_private_key(ec.SECP256R1()).public_key()
    with pytest.raises(signature.SignatureError, match=message):
        signature.verify(
            arguments["value"],  # type: ignore[arg-type]
            arguments["body"],  # type: ignore[arg-type]
            key=arguments["key"],
            uri=arguments["uri"],  # type: ignore[arg-type]
            method=arguments["method"],  # type: ignore[arg-type]
            headers=arguments["headers"],  # type: ignore[arg-type]
        )


# -- configuration, registration, capabilities ---------------------------------------------------------


def test_the_adapter_is_registered_as_a_payment_provider() -> None:
    (entry,) = [e for e in entry_points(group=ENTRY_POINT_GROUP) if e.name == "mojaloop"]
    assert entry.load() is create_provider


async def test_the_factory_builds_the_adapter_from_configuration_strings(tmp_path: Path) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    (tmp_path / "payer.pem").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    (tmp_path / "hub.pem").write_bytes(
        key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    provider = create_provider(
        "hub1",
        {
            "base_url": "https://hub.example.org/fspiop",
            "fsp_id": "spafsp",
            "fsp_ids": "wallet1=walletfsp, bank2=bankfsp",
            "currencies": "XOF,USD",
            "callback_timeout": "2.5",
            "signing_key": str(tmp_path / "payer.pem"),
            "signing_algorithm": "ES256",
            "verify_keys": f"switch={tmp_path / 'hub.pem'}",
        },
    )
    try:
        assert provider.settings.fsp_ids == {"wallet1": "walletfsp", "bank2": "bankfsp"}
        assert provider.settings.callback_timeout == timedelta(milliseconds=2500)
        assert set(provider.settings.verify_keys) == {"switch"}
        capabilities = provider.capabilities
        assert (capabilities.idempotency, capabilities.status_query, capabilities.name_check) == (
            True,
            True,
            True,
        )
        assert (capabilities.reversal, capabilities.cancel, capabilities.single_flight) == (
            False,
            False,
            False,
        )
        assert capabilities.address_schemes == ("bank2", "wallet1")
        assert capabilities.currencies == ("XOF", "USD")
    finally:
        await provider.aclose()


@pytest.mark.parametrize(
    "config",
    [
        {"fsp_id": "spafsp"},
        {"base_url": "https://hub.example.org"},
        {"base_url": "ftp://hub.example.org", "fsp_id": "spafsp"},
        {"base_url": "https://hub.example.org", "fsp_id": "spa\r\nX-Injected: 1"},
        {"base_url": "https://hub.example.org", "fsp_id": "spafsp", "fsp_ids": "wallet1"},
        {"base_url": "https://hub.example.org", "fsp_id": "spafsp", "fsp_ids": "wallet1=bad fsp"},
        {"base_url": "https://hub.example.org", "fsp_id": "spafsp", "payee_id_type": "PHONE"},
        {"base_url": "https://hub.example.org", "fsp_id": "spafsp", "callback_timeout": "0"},
        {"base_url": "https://hub.example.org", "fsp_id": "spafsp", "signing_algorithm": "HS256"},
        {"base_url": "https://hub.example.org", "fsp_id": "spafsp", "payer_identifier": "../x"},
    ],
)
def test_configuration_that_would_misroute_or_inject_is_refused(config: dict[str, str]) -> None:
    with pytest.raises(ValueError):  # noqa: PT011 - each case names its own rule
        create_provider("hub1", config)


def test_settings_refuse_a_provider_name_that_is_not_a_path_segment() -> None:
    provider = MojaloopProvider(
        "Hub One", MojaloopSettings(base_url="https://hub.example.org", fsp_id="spafsp")
    )
    with pytest.raises(ValueError, match="path segment"):
        mojaloop.routes(provider)
