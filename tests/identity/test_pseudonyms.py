"""Sector pseudonyms: the key file, the derivation, and translation for the exchange."""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import re
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import select

from dpi.errors import DpiError
from identity.models import TranslationRow
from identity.pseudonyms import (
    KEY_SIZE,
    PseudonymKeyError,
    load_or_create_key,
    sector_pseudonym,
    subject_hash,
)
from identity.service import PersonRegister, new_uin
from tests.identity.conftest import EXCHANGE, HEALTH, LABOUR, OPERATOR, amina

KEY = bytes(range(32))
SUBJECT = re.compile(r"^[A-Za-z0-9_-]{16,128}$")
sectors = st.from_regex(r"\A[A-Za-z0-9][A-Za-z0-9._/-]{0,40}\Z")


def test_the_derivation_is_the_documented_one() -> None:
    uin = "2345678902"
    expected = hmac.new(KEY, b"dpi-sector-pseudonym\x00labour\x00" + uin.encode(), hashlib.sha256).digest()
    assert sector_pseudonym(KEY, uin, "labour") == base64.urlsafe_b64encode(expected).rstrip(b"=").decode()


@given(sectors, sectors)
def test_pseudonyms_are_stable_differ_per_sector_and_fit_the_subject_pattern(first: str, second: str) -> None:
    uin = new_uin()
    one = sector_pseudonym(KEY, uin, first)
    assert one == sector_pseudonym(KEY, uin, first)
    assert len(one) == 43
    assert SUBJECT.match(one)
    assert (one == sector_pseudonym(KEY, uin, second)) == (first == second)
    assert uin not in one
    assert one != sector_pseudonym(bytes(32), uin, first)


@pytest.mark.parametrize("sector", ["", "-labour", "labour ministry", "x" * 256, "lab\nour"])
def test_a_sector_must_match_its_pattern(sector: str) -> None:
    with pytest.raises(ValueError, match="a sector is"):
        sector_pseudonym(KEY, "2345678902", sector)


def test_the_key_is_created_once_private_and_kept(tmp_path: Path) -> None:
    path = tmp_path / "identity" / "pseudonym.key"
    key = load_or_create_key(path)
    assert len(key) == KEY_SIZE
    assert path.stat().st_mode & 0o777 == 0o600
    assert load_or_create_key(path) == key
    assert [entry.name for entry in path.parent.iterdir()] == ["pseudonym.key"]


@pytest.mark.parametrize(
    ("content", "mode", "message"),
    [(b"short", 0o600, "exactly 32 bytes"), (b"k" * 32, 0o644, "owner only"), (b"k" * 33, 0o600, "exactly")],
)
def test_an_unusable_key_file_is_refused_never_replaced(
    tmp_path: Path, content: bytes, mode: int, message: str
) -> None:
    path = tmp_path / "pseudonym.key"
    path.write_bytes(content)
    os.chmod(path, mode)
    with pytest.raises(PseudonymKeyError, match=message):
        load_or_create_key(path)
    assert path.read_bytes() == content


async def test_translation_returns_the_other_sectors_pseudonym_and_is_recorded(
    register: PersonRegister,
) -> None:
    uin = (await register.enrol(amina(), operator_id=OPERATOR, channel="assisted"))["uin"]
    labour = await register.sector_pseudonym_for(uin, LABOUR)
    health = await register.sector_pseudonym_for(uin, HEALTH)
    assert labour != health
    translated = await register.translate(
        pseudonym=labour, from_sector=LABOUR, to_sector=HEALTH, purpose="benefit-payment", requester=EXCHANGE
    )
    assert translated == health
    # A sector never configured: its pseudonym is issued by the translation itself.
    pensions = await register.translate(
        pseudonym=health,
        from_sector=HEALTH,
        to_sector="pensions",
        purpose="benefit-payment",
        requester=EXCHANGE,
    )
    assert pensions == await register.sector_pseudonym_for(uin, "pensions")
    assert (
        await register.translate(
            pseudonym=pensions,
            from_sector="pensions",
            to_sector=LABOUR,
            purpose="benefit-payment",
            requester=EXCHANGE,
        )
        == labour
    )
    async with register.sessions() as session:
        rows = (await session.scalars(select(TranslationRow).order_by(TranslationRow.id))).all()
    assert [(row.requester, row.from_sector, row.to_sector, row.purpose) for row in rows] == [
        (EXCHANGE, LABOUR, HEALTH, "benefit-payment"),
        (EXCHANGE, HEALTH, "pensions", "benefit-payment"),
        (EXCHANGE, "pensions", LABOUR, "benefit-payment"),
    ]
    assert {row.subject_hash for row in rows} == {subject_hash(b"p" * 32, uin)}
    assert not [row for row in rows if uin in row.subject_hash]


async def test_an_unknown_pseudonym_or_one_from_another_sector_is_not_found(register: PersonRegister) -> None:
    uin = (await register.enrol(amina(), operator_id=OPERATOR, channel="assisted"))["uin"]
    labour = await register.sector_pseudonym_for(uin, LABOUR)
    for pseudonym, sector in (
        (labour, HEALTH),
        ("A" * 43, LABOUR),
        (sector_pseudonym(b"p" * 32, uin, "never"), "never"),
    ):
        with pytest.raises(DpiError) as refused:
            await register.translate(
                pseudonym=pseudonym,
                from_sector=sector,
                to_sector=LABOUR,
                purpose="benefit-payment",
                requester=EXCHANGE,
            )
        assert refused.value.reason_code == "identity.not_found"
    async with register.sessions() as session:
        assert (await session.scalars(select(TranslationRow))).all() == []
