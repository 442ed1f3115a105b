"""Sector pseudonyms: one-way keyed identifiers of a person per sector, and their translation for the
exchange (DESIGN section 3; pairwise subject identifiers, OpenID Connect Core 1.0 section 8.1,
https://openid.net/specs/openid-connect-core-1_0.html#PairwiseAlg).

``pseudonym(uin, sector) = base64url(HMAC-SHA256(key, "dpi-sector-pseudonym" NUL sector NUL uin))``
without padding: 43 characters, matching the consent subject pattern ``^[A-Za-z0-9_-]{16,128}$``. Two
sectors' pseudonyms of one person cannot be linked without the key, which only this block holds: a
32-byte secret in ``<var_dir>/identity/pseudonym.key`` (mode 0600), created on first use.

**Rotating the key re-keys every sector**: every pseudonym any ministry holds stops matching, every
OpenID ``sub`` changes, and the consent records filed under the old pseudonyms are orphaned. Never
replace the key file casually; a rotation is a migration of every sector at once.

Translation cannot search the key space (a pseudonym is one-way), so the register keeps a table
``identity_pseudonym(sector, pseudonym, person_id)`` filled whenever a pseudonym is issued: at
enrolment for the sectors the block is configured with, and whenever
:meth:`identity.service.PersonRegister.sector_pseudonym_for` hands one out (the OpenID provider does
so when it names a person to a client's sector). A pseudonym that was never issued cannot be
translated: no sector can know it. Every translation is written to ``identity_translation`` (who asked,
when, from and to which sector, for which purpose) with the person only as a keyed hash
(:func:`subject_hash`), never the UIN; the person's own view can re-derive that hash after sign-in.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from collections.abc import Callable
from datetime import datetime
from typing import Final, Protocol, cast

from sqlalchemy import Table, bindparam, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from dpi.errors import DpiError
from dpi.keys import SecretFileError, load_or_create_secret
from identity.models import PersonRow, PseudonymRow, TranslationRow

__all__ = [
    "KEY_SIZE",
    "SECTOR_PATTERN",
    "NamedPerson",
    "PseudonymKeyError",
    "is_sector",
    "load_or_create_key",
    "record_pseudonym",
    "sector_pseudonym",
    "subject_hash",
    "translate",
]

KEY_SIZE: Final = 32
SECTOR_PATTERN: Final = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/-]{0,254}$")
_PSEUDONYM_LABEL: Final = b"dpi-sector-pseudonym\x00"
_AUDIT_LABEL: Final = b"dpi-translation-subject\x00"
_UIN: Final = re.compile(r"^[1-9][0-9]{9}$")
_PSEUDONYMS: Final = cast(Table, PseudonymRow.__table__)
# Built once, run with bound parameters: building a statement cost more CPU than running it.
_RECORDED: Final = select(_PSEUDONYMS.c.pseudonym).where(
    _PSEUDONYMS.c.person_id == bindparam("person_"), _PSEUDONYMS.c.sector == bindparam("sector_")
)
# A pseudonym is derived from the UIN and the sector alone: a concurrent writer of the same row wrote the
# same value, so a conflict leaves nothing to do (and does not abort the caller's transaction).
_RECORD: Final = {
    "postgresql": postgresql.insert(_PSEUDONYMS).on_conflict_do_nothing(),
    "sqlite": sqlite.insert(_PSEUDONYMS).on_conflict_do_nothing(),
}


# The key files are the kernel's 32-byte secret files; these names are kept for the block's callers.
PseudonymKeyError = SecretFileError
load_or_create_key = load_or_create_secret


def is_sector(value: str) -> bool:
    return SECTOR_PATTERN.fullmatch(value) is not None


def sector_pseudonym(key: bytes, uin: str, sector: str) -> str:
    """The person's pseudonym in ``sector`` (43 characters of base64url)."""
    if not is_sector(sector):
        raise ValueError("a sector is a subsystem id or a name matching ^[A-Za-z0-9][A-Za-z0-9._/-]{0,254}$")
    if not _UIN.fullmatch(uin):
        raise ValueError("not a UIN")
    message = _PSEUDONYM_LABEL + sector.encode("ascii") + b"\x00" + uin.encode("ascii")
    digest = hmac.new(key, message, hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def subject_hash(key: bytes, uin: str) -> str:
    """The keyed hash that names a person in audit records (hex HMAC-SHA256, its own domain label)."""
    return hmac.new(key, _AUDIT_LABEL + uin.encode("ascii"), hashlib.sha256).hexdigest()


class NamedPerson(Protocol):
    """What :func:`record_pseudonym` needs of a person: a ``PersonRow`` or a row of its columns."""

    @property
    def id(self) -> str: ...

    @property
    def uin(self) -> str: ...


async def record_pseudonym(
    session: AsyncSession, key: bytes, person: NamedPerson, sector: str, now: datetime
) -> str:
    """The person's pseudonym in ``sector``, recorded (once) so that it can be translated later."""
    pseudonym = sector_pseudonym(key, person.uin, sector)
    existing = await session.scalar(_RECORDED, {"person_": person.id, "sector_": sector})
    if existing is None:
        await session.execute(
            _RECORD["postgresql" if session.get_bind().dialect.name == "postgresql" else "sqlite"],
            {"sector": sector, "pseudonym": pseudonym, "person_id": person.id, "issued_at": now},
        )
    return pseudonym


async def translate(
    sessions: async_sessionmaker[AsyncSession],
    key: bytes,
    *,
    pseudonym: str,
    from_sector: str,
    to_sector: str,
    purpose: str,
    requester: str,
    clock: Callable[[], datetime],
) -> str:
    """The pseudonym in ``to_sector`` of the person ``from_sector`` knows as ``pseudonym``.

    ``identity.not_found`` when ``from_sector`` was never given that pseudonym. The translation and its
    audit record are written in one transaction: no answer without its record. Whether the exchange
    may ask (consent or legal basis for ``purpose``) is the exchange's decision; this only records it.
    """
    if not is_sector(from_sector) or not is_sector(to_sector):
        raise ValueError("not a sector")
    now = clock()
    async with sessions() as session, session.begin():
        person = await session.scalar(
            select(PersonRow)
            .join(PseudonymRow, PseudonymRow.person_id == PersonRow.id)
            .where(PseudonymRow.sector == from_sector, PseudonymRow.pseudonym == pseudonym)
        )
        if person is None:
            raise DpiError("identity.not_found", "no person has this pseudonym in this sector")
        translated = await record_pseudonym(session, key, person, to_sector, now)
        session.add(
            TranslationRow(
                at=now,
                requester=requester,
                from_sector=from_sector,
                to_sector=to_sector,
                purpose=purpose,
                subject_hash=subject_hash(key, person.uin),
            )
        )
    return translated
