"""Systems allowed to call a registry's DCI API: who they are (``sender_id``, the DCI header member), the
JWK Set (RFC 7517) that verifies their envelope signatures, the base URL asynchronous answers go to
(``<callback>/on-search``, ``<callback>/notify``, as DCI's ``sender_uri``), and what they may read.

Grants name a registry (``civil``: whole records) or one field group of it (``civil:names-and-birth-date``),
as the management API's scopes do, so a sender receives only the fields its grants cover.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

import httpx
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from dpi.signing import SignatureError, verification_algorithm
from registry.definition import RegistryDefinition
from registry.models import DciSenderRow

__all__ = [
    "ACTIVE",
    "DISABLED",
    "SENDER_ID",
    "Sender",
    "SenderError",
    "add_sender",
    "disable_sender",
    "find_sender",
    "list_senders",
]

ACTIVE: Final = "active"
DISABLED: Final = "disabled"
SENDER_ID: Final = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:/-]{0,99}$")
_MAX_KEYS: Final = 20


class SenderError(ValueError):
    """A sender that cannot be registered as given (the message says why)."""


@dataclass(frozen=True)
class Sender:
    """A registered sender as the DCI API uses it."""

    sender_id: str
    jwks: Mapping[str, Any]
    callback_url: str | None
    grants: tuple[str, ...]
    status: str

    def may_search(self, code: str) -> bool:
        return any(grant == code or grant.startswith(code + ":") for grant in self.grants)

    def groups(self, code: str) -> frozenset[str] | None:
        """The field groups of registry ``code`` it may read; None for whole records."""
        if code in self.grants:
            return None
        return frozenset(grant.split(":", 1)[1] for grant in self.grants if grant.startswith(code + ":"))

    def as_document(self) -> dict[str, Any]:
        return {
            "sender_id": self.sender_id,
            "status": self.status,
            "callback_url": self.callback_url,
            "grants": list(self.grants),
            "keys": sorted(str(key.get("kid")) for key in self.jwks.get("keys", ())),
        }


def _sender(row: DciSenderRow) -> Sender:
    return Sender(row.sender_id, row.jwks, row.callback_url, tuple(row.grants), row.status)


def _check_jwks(jwks: Any) -> dict[str, Any]:
    if not isinstance(jwks, Mapping) or not isinstance(jwks.get("keys"), list) or not jwks["keys"]:
        raise SenderError('the JWK Set is an object with a non-empty "keys" array')
    if len(jwks["keys"]) > _MAX_KEYS:
        raise SenderError(f"a JWK Set of at most {_MAX_KEYS} keys")
    private = {"d", "p", "q", "dp", "dq", "qi", "oth", "k"}
    public: list[dict[str, Any]] = []
    for key in jwks["keys"]:
        if not isinstance(key, Mapping) or not isinstance(key.get("kid"), str):
            raise SenderError("every key of the JWK Set has a kid")
        if private & key.keys():
            raise SenderError(f"key {key['kid']} holds private members: register public keys only")
        public.append(dict(key))
    for key in public:
        try:
            verification_algorithm(key)
        except SignatureError as error:
            raise SenderError(f"key {key['kid']}: {error}") from None
    return {"keys": public}


def _check_grants(grants: Sequence[str], definitions: Mapping[str, RegistryDefinition]) -> list[str]:
    if not grants:
        raise SenderError("a sender is granted at least one registry (CODE or CODE:GROUP)")
    for grant in grants:
        code, _, group = grant.partition(":")
        definition = definitions.get(code)
        if definition is None:
            raise SenderError(f"no hosted registry {code!r}")
        if group and group not in definition.field_groups:
            raise SenderError(f"registry {code} has no field group {group!r}")
    return list(dict.fromkeys(grants))


def _check_callback(url: str | None) -> str | None:
    if url is None:
        return None
    try:
        parsed = httpx.URL(url)
    except httpx.InvalidURL:
        raise SenderError("the callback URL is not a URL") from None
    if parsed.scheme not in {"http", "https"} or not parsed.host or parsed.userinfo or parsed.fragment:
        raise SenderError("the callback URL is http(s) with a host, no credentials and no fragment")
    if len(url) > 500:
        raise SenderError("the callback URL is at most 500 characters")
    return url


async def add_sender(
    sessions: async_sessionmaker[AsyncSession],
    definitions: Mapping[str, RegistryDefinition],
    sender_id: str,
    *,
    jwks: Any,
    grants: Sequence[str],
    callback_url: str | None = None,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> Sender:
    """Register a sender, or replace the keys, grants and callback of one (enabling it again)."""
    if not SENDER_ID.match(sender_id):
        raise SenderError("a sender id is 1 to 100 letters, digits and . _ : / -")
    checked_jwks = _check_jwks(jwks)
    checked_grants = _check_grants(grants, definitions)
    url = _check_callback(callback_url)
    now = clock()
    async with sessions.begin() as session:
        row = await session.get(DciSenderRow, sender_id, with_for_update=True)
        if row is None:
            row = DciSenderRow(sender_id=sender_id, created_at=now)
            session.add(row)
        row.jwks, row.grants, row.callback_url = checked_jwks, checked_grants, url
        row.status, row.updated_at = ACTIVE, now
    return _sender(row)


async def disable_sender(
    sessions: async_sessionmaker[AsyncSession],
    sender_id: str,
    *,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> Sender:
    """Refuse every further message of a sender (its history stays)."""
    async with sessions.begin() as session:
        row = await session.get(DciSenderRow, sender_id, with_for_update=True)
        if row is None:
            raise SenderError(f"no sender {sender_id!r}")
        row.status, row.updated_at = DISABLED, clock()
    return _sender(row)


async def list_senders(sessions: async_sessionmaker[AsyncSession]) -> list[Sender]:
    async with sessions() as session:
        rows = (await session.scalars(select(DciSenderRow).order_by(DciSenderRow.sender_id))).all()
    return [_sender(row) for row in rows]


async def find_sender(session: AsyncSession, sender_id: str) -> Sender | None:
    """The active sender ``sender_id``, if there is one."""
    row = await session.get(DciSenderRow, sender_id)
    return _sender(row) if row is not None and row.status == ACTIVE else None
