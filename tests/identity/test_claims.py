"""The claims request parameter read (OpenID Connect Core 1.0 section 5.5), the claims scopes stand for,
and derived age claims computed around birthdays, 29 February included."""

from __future__ import annotations

import json
from datetime import date
from typing import Any

import pytest

from identity.claims import (
    ClaimsParameterInvalid,
    ClaimsRequest,
    RequestedClaim,
    age_on,
    claim_values,
    delivery,
    parse_claims_parameter,
    requested_claims,
)
from tests.identity.conftest import amina

SUBJECT = "s" * 43


def test_a_well_formed_parameter_is_read_and_unknown_claims_are_ignored() -> None:
    parsed = parse_claims_parameter(
        json.dumps(
            {
                "id_token": {"age_over_18": {"essential": True}, "shoe_size": None},
                "userinfo": {"name": None, "phone_number": {"essential": False}, "birthdate": {"value": "x"}},
                "verified_claims": {"anything": 1},
            }
        )
    )
    assert parsed.id_token == {"age_over_18": RequestedClaim(essential=True)}
    assert parsed.userinfo == {
        "name": RequestedClaim(),
        "phone_number": RequestedClaim(),
        "birthdate": RequestedClaim(value="x"),
    }
    assert parse_claims_parameter(None) == ClaimsRequest()
    assert parse_claims_parameter("{}") == ClaimsRequest()
    assert parse_claims_parameter('{"id_token": null}') == ClaimsRequest()


@pytest.mark.parametrize(
    ("raw", "says"),
    [
        ("not json", "not valid JSON"),
        ('{"id_token": ', "not valid JSON"),
        ("[]", "must be a JSON object"),
        ('"id_token"', "must be a JSON object"),
        ("null", "must be a JSON object"),
        ('{"id_token": []}', "claims.id_token must be an object"),
        ('{"userinfo": "name"}', "claims.userinfo must be an object"),
        ('{"userinfo": {"name": true}}', "claims.userinfo.name must be null or an object"),
        ('{"userinfo": {"name": "essential"}}', "claims.userinfo.name must be null or an object"),
        (
            '{"id_token": {"acr": {"essential": "yes"}}}',
            "claims.id_token.acr.essential must be true or false",
        ),
        ('{"id_token": {"acr": {"values": "urn:x"}}}', "claims.id_token.acr.values must be an array"),
        ('{"id_token": {"acr": {"values": []}}}', "claims.id_token.acr.values must be an array"),
        ('{"userinfo": {"name": {"essential": NaN}}}', "NaN, which is not JSON"),
        ('{"userinfo": {"name": null}}' + " " * 2048, "longer than 2048"),
    ],
)
def test_malformed_parameters_are_refused_saying_why(raw: str, says: str) -> None:
    with pytest.raises(ClaimsParameterInvalid, match=says):
        parse_claims_parameter(raw)


def test_requested_claims_come_from_scopes_and_the_parameter_within_the_clients_scopes() -> None:
    parameter = parse_claims_parameter(
        json.dumps(
            {
                "id_token": {"age_over_18": {"essential": True}, "acr": None, "sub": None},
                "userinfo": {"phone_number": {"essential": True}, "given_name": None},
            }
        )
    )
    assert requested_claims(["openid"], parameter, ["openid", "profile"]) == {
        "age_over_18": True,
        "given_name": False,
    }
    assert requested_claims(["openid", "phone"], ClaimsRequest(), ["openid", "phone"]) == {
        "phone_number": False
    }
    assert requested_claims(["openid", "profile"], parameter, ["openid", "profile", "phone"]) == {
        "name": False,
        "given_name": False,
        "family_name": False,
        "birthdate": False,
        "phone_number": True,
        "age_over_18": True,
    }


def test_claims_go_where_they_are_asked_for_and_only_when_released() -> None:
    parameter = parse_claims_parameter(
        '{"id_token": {"age_over_18": null}, "userinfo": {"age_over_65": null}}'
    )
    assert delivery(["openid", "profile"], parameter, {"name", "age_over_18", "age_over_65"}) == {
        "id_token": ["age_over_18"],
        "userinfo": ["age_over_65", "name"],
    }
    assert delivery(["openid", "profile"], parameter, set()) == {"id_token": [], "userinfo": []}


@pytest.mark.parametrize(
    ("born", "today", "age"),
    [
        (date(2008, 5, 10), date(2026, 5, 9), 17),
        (date(2008, 5, 10), date(2026, 5, 10), 18),
        (date(2008, 5, 10), date(2026, 5, 11), 18),
        (date(2008, 12, 31), date(2026, 12, 31), 18),
        (date(2008, 12, 31), date(2026, 12, 30), 17),
        # Born on 29 February: a year older on 1 March in common years, on 29 February in leap years.
        (date(2008, 2, 29), date(2026, 2, 28), 17),
        (date(2008, 2, 29), date(2026, 3, 1), 18),
        (date(2008, 2, 29), date(2028, 2, 28), 19),
        (date(2008, 2, 29), date(2028, 2, 29), 20),
        (date(1961, 3, 1), date(2026, 3, 1), 65),
        (date(1961, 3, 1), date(2026, 2, 28), 64),
    ],
)
def test_age_on_a_day(born: date, today: date, age: int) -> None:
    assert age_on(born, today) == age


@pytest.mark.parametrize(
    ("born", "today", "over_18"),
    [
        ("2008-02-29", date(2026, 2, 28), False),
        ("2008-02-29", date(2026, 3, 1), True),
        ("2008-07-01", date(2026, 6, 30), False),
        ("2008-07-01", date(2026, 7, 1), True),
    ],
)
def test_derived_claims_answer_without_the_birth_date(born: str, today: date, over_18: bool) -> None:
    person: dict[str, Any] = {**amina(), "date_of_birth": born}
    values = claim_values(SUBJECT, person, ["age_over_18", "age_over_65"], locale="fr", today=today)
    assert values == {"sub": SUBJECT, "age_over_18": over_18, "age_over_65": False}


def test_claim_values_release_only_what_is_named_in_the_clients_script() -> None:
    values = claim_values(SUBJECT, amina(), ["name", "phone_number"], locale="ar", today=date(2026, 1, 1))
    assert values == {"sub": SUBJECT, "name": "أمينة الإدريسي", "phone_number": "+212612345678"}
    latin = claim_values(SUBJECT, amina(), ["given_name", "birthdate"], locale="fr", today=date(2026, 1, 1))
    assert latin == {"sub": SUBJECT, "given_name": "Amina", "birthdate": "1990-04-12"}
    without_birth = {key: value for key, value in amina().items() if key != "date_of_birth"}
    assert claim_values(SUBJECT, without_birth, ["age_over_18"], locale="fr", today=date(2026, 1, 1)) == {
        "sub": SUBJECT
    }
