"""The identity block's chapter of the demo: reproducible synthetic people, the named people with the UINs
the documentation gives, the demo clients, loading twice, and a sign-in whose code appears on the console
with the consent and identity blocks mounted together."""

from __future__ import annotations

import json
import re
from collections import Counter
from datetime import UTC, date, datetime
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import phonenumbers
import pytest
from sqlalchemy import func, select

import identity.block
from consent.block import consent_block
from consent.receipts import verify_receipt
from dpi import db
from dpi.app import create_app, migrate
from dpi.blocks import Block
from dpi.cli import _load_demo
from dpi.settings import Settings
from identity.block import DEMO_PROVIDER, identity_block
from identity.clients import ClientRegistry
from identity.demo import (
    AMINA_UIN,
    CLIENTS,
    COUNTRY,
    NAMED_PEOPLE,
    YOUSSEF_UIN,
    demo_directory,
    seeded_uins,
    synthetic_people,
)
from identity.models import PersonRow
from identity.oidc_models import ClaimConsentRow
from identity.service import is_uin, normalise_demographics
from tests.identity.test_oidc import form_of, pkce
from tests.serving import serving

ARABIC_LETTER = re.compile("[\u0600-\u06ff]")
REFERENCE = date(2026, 1, 1)


def age(document: dict[str, Any]) -> int:
    born = date.fromisoformat(document["date_of_birth"])
    return REFERENCE.year - born.year - ((REFERENCE.month, REFERENCE.day) < (born.month, born.day))


def test_synthetic_people_are_reproducible_and_the_register_accepts_every_one() -> None:
    people = synthetic_people(3000)
    assert people == synthetic_people(3000)
    assert people != synthetic_people(3000, seed=1)
    today = datetime.now(UTC).date()
    for document in people:
        assert normalise_demographics(document, today) == document
        assert ARABIC_LETTER.search(document["names"]["arabic"]["given_name"])
        assert ARABIC_LETTER.search(document["names"]["arabic"]["family_name"])
        assert not ARABIC_LETTER.search(" ".join(document["names"]["latin"].values()))
        if "phone" in document:
            number = phonenumbers.parse(document["phone"])
            assert phonenumbers.region_code_for_number(number) == COUNTRY
    identities = {
        (
            tuple(document["names"]["latin"].values()),
            tuple(document["names"]["arabic"].values()),
            document["date_of_birth"],
            document["place_of_birth"]["locality"],
        )
        for document in people
    }
    assert len(identities) == len(people), "the register would refuse some as duplicates"


def test_synthetic_people_look_like_a_population() -> None:
    people = synthetic_people(3000)
    ages = [age(document) for document in people]
    assert sum(a < 18 for a in ages) > 200
    assert sum(a > 65 for a in ages) > 200
    assert Counter(document["preferred_language"] for document in people).keys() == {"fr", "ar", "en"}
    assert Counter(document["sex"] for document in people).keys() == {"female", "male"}
    assert len({document["place_of_birth"]["locality"] for document in people}) >= 10
    given = {document["names"]["latin"]["given_name"] for document in people}
    assert {"Amina", "Youssef", "Marie", "Pierre"} <= given
    assert 0 < sum("phone" not in document for document in people) < 500


def test_the_named_people_keep_the_uins_the_documentation_gives() -> None:
    assert AMINA_UIN == "1523665439"
    assert YOUSSEF_UIN == "3634409102"
    assert all(is_uin(uin) for uin in (AMINA_UIN, YOUSSEF_UIN))
    first = seeded_uins("synthetic")
    again = seeded_uins("synthetic")
    drawn = [next(first) for _ in range(100)]
    assert drawn == [next(again) for _ in range(100)]
    assert all(is_uin(uin) for uin in drawn)


def demo_block(people: int = 40) -> Block:
    return identity_block(demo_people=people)


async def load_demo(settings: Settings, blocks: list[Block]) -> list[str]:
    """What ``dpi demo`` does before it serves: each block's chapter, through the kernel's own loader."""
    return await _load_demo(settings, blocks)


async def only_receipt(settings: Settings) -> str:
    engine = db.create_engine(settings.database)
    try:
        async with db.session_factory(engine)() as session:
            (receipt,) = (await session.scalars(select(ClaimConsentRow.receipt))).all()
    finally:
        await engine.dispose()
    assert receipt is not None
    return receipt


async def people_count(settings: Settings) -> int:
    engine = db.create_engine(settings.database)
    try:
        async with db.session_factory(engine)() as session:
            return int(await session.scalar(select(func.count()).select_from(PersonRow)) or 0)
    finally:
        await engine.dispose()


async def test_the_demo_enrols_people_and_registers_clients_once(settings: Settings) -> None:
    block = demo_block()
    await migrate(settings, [block])
    first = "\n".join(await load_demo(settings, [block]))
    assert f"Amina El Idrissi enrolled, UIN {AMINA_UIN}" in first
    assert f"Youssef Benali enrolled, UIN {YOUSSEF_UIN}" in first
    assert "40 synthetic people (seed 20261123), 40 enrolled now" in first
    assert await people_count(settings) == 42
    for client in CLIENTS:
        assert f"client {client.client_id} registered" in first

    second = "\n".join(await load_demo(settings, [block]))
    assert f"Amina El Idrissi already enrolled, UIN {AMINA_UIN}" in second
    assert "0 enrolled now, 40 already in the register" in second
    assert await people_count(settings) == 42
    # The pseudonyms printed are stable: the exchange and the consent demo can rely on them.
    pseudonyms = re.findall(r"DPI/GOV/MOL/jobseekers ([A-Za-z0-9_-]{43})", first)
    assert pseudonyms
    assert pseudonyms == re.findall(r"DPI/GOV/MOL/jobseekers ([A-Za-z0-9_-]{43})", second)

    directory = demo_directory(settings.var_dir)
    secret = (directory / "citizen-portal.secret").read_text()
    assert f"secret {secret}" in second
    assert (directory / "citizen-portal.secret").stat().st_mode & 0o777 == 0o600
    assert (directory / "mol-jobseekers.key.pem").stat().st_mode & 0o777 == 0o600
    engine = db.create_engine(settings.database)
    try:
        registry = ClientRegistry(db.session_factory(engine))
        stored = {client["client_id"]: client for client in await registry.list()}
        portal = await registry.client("citizen-portal")
    finally:
        await engine.dispose()
    assert set(stored) == {client.client_id for client in CLIENTS}
    assert stored["mol-jobseekers"]["token_endpoint_auth_method"] == "private_key_jwt"
    assert stored["mol-jobseekers"]["sector"] == "DPI/GOV/MOL/jobseekers"
    assert stored["moi-civil-registry"]["sector"] == "DPI/GOV/MOI/civil-registry"
    assert portal is not None
    assert portal.check_client_secret(secret)
    assert stored["citizen-portal"]["redirect_uris"] == [f"{settings.public_url}/portal/callback"]


async def test_a_demo_sign_in_shows_the_code_on_the_console(
    settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    """The registered block as it stands (no arguments, the console sender the settings name) beside the
    consent block: the demo loads, Amina signs in to the portal, her code is printed on the console."""
    blocks = [consent_block(background_interval_seconds=3600.0), identity.block.block]
    await migrate(settings, blocks)
    lines = await load_demo(settings, blocks)
    assert any(line.startswith("consent: agreement mol-jobseeker-registration") for line in lines)
    assert any(f"UIN {AMINA_UIN}" in line for line in lines)
    capsys.readouterr()
    secret = (demo_directory(settings.var_dir) / "citizen-portal.secret").read_text()
    redirect = f"{settings.public_url}/portal/callback"
    verifier, challenge = pkce()
    app = create_app(settings, blocks=blocks)
    async with (
        serving(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=settings.public_url) as http,
    ):
        page = await http.get(
            "/identity/authorize",
            params={
                "response_type": "code",
                "client_id": "citizen-portal",
                "redirect_uri": redirect,
                "scope": "openid profile phone",
                "state": "demo",
                "code_challenge": challenge,
                "code_challenge_method": "S256",
            },
        )
        assert page.status_code == 200, page.text
        action, csrf = form_of(page.text)
        code_page = await http.post(action, data={"csrf_token": csrf, "identifier": AMINA_UIN})
        assert code_page.status_code == 200, code_page.text
        console = capsys.readouterr().out
        printed = re.search(r"OTP for \+2126•+78: \D*(\d{6})", console)
        assert printed is not None, console
        action, csrf = form_of(code_page.text)
        consent_page = await http.post(action, data={"csrf_token": csrf, "otp": printed.group(1)})
        assert consent_page.status_code == 200, consent_page.text
        action, csrf = form_of(consent_page.text)
        assert action == "/identity/authorize/consent"
        claims = re.findall(r'name="claim" value="([^"]+)"', consent_page.text)
        assert "name" in claims
        redirected = await http.post(action, data={"csrf_token": csrf, "decision": "allow", "claim": claims})
        assert redirected.status_code == 302, redirected.text
        location = redirected.headers["location"]
        assert location.startswith(redirect + "?")
        tokens = await http.post(
            "/identity/token",
            data={
                "grant_type": "authorization_code",
                "code": parse_qs(urlsplit(location).query)["code"][0],
                "redirect_uri": redirect,
                "code_verifier": verifier,
            },
            auth=("citizen-portal", secret),
        )
        assert tokens.status_code == 200, tokens.text
        userinfo = await http.get(
            "/identity/userinfo", headers={"Authorization": f"Bearer {tokens.json()['access_token']}"}
        )
        # The registered block records the release through the consent block beside it: a signed receipt.
        jwks = (await http.get("/consent/.well-known/jwks.json")).json()
    receipt_jws = await only_receipt(settings)
    receipt = verify_receipt(receipt_jws, jwks)
    assert receipt["subject"] == userinfo.json()["sub"]
    assert receipt["providers"] == [{"provider": DEMO_PROVIDER, "service": "userinfo"}]
    assert AMINA_UIN not in json.dumps(receipt)
    assert userinfo.status_code == 200
    assert userinfo.json()["name"] == "Amina El Idrissi"
    assert userinfo.json()["phone_number"] == NAMED_PEOPLE[0].demographics["phone"]
    assert await people_count(settings) == 3002
