"""Tables of the OpenID provider (migrations ``identity_0003`` and ``identity_0006`` of the ``identity``
branch).

No table holds a client secret, an authorization code or a session id in clear: each is stored as its
SHA-256 (they are long random values, so a plain hash cannot be reversed by search). Codes and issued
tokens name the person only by the pseudonym of the client's sector; the sign-in session alone holds the
UIN, as the register does.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, DateTime, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from identity.models import IdentityBase

__all__ = ["AuthorizationCodeRow", "ClaimConsentRow", "ClientRow", "IssuedTokenRow", "SignInSessionRow"]

_HASH = String(64)
_TS = DateTime(timezone=True)


class ClientRow(IdentityBase):
    """A registered relying party: its validated ``identity-client`` metadata and its hashed secret."""

    __tablename__ = "identity_oidc_client"

    client_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    metadata_document: Mapped[dict[str, Any]] = mapped_column("metadata", JSON)
    secret_hash: Mapped[str | None] = mapped_column(_HASH)
    status: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(_TS)
    disabled_at: Mapped[datetime | None] = mapped_column(_TS)


class AuthorizationCodeRow(IdentityBase):
    """An authorization code, usable once before ``expires_at``; ``used_at`` marks its use.

    ``claims`` names the claims the person released for the ID token and for userinfo
    (``{"id_token": [...], "userinfo": [...]}``); the values are read when the tokens are issued.
    """

    __tablename__ = "identity_oidc_code"

    code_hash: Mapped[str] = mapped_column(_HASH, primary_key=True)
    client_id: Mapped[str] = mapped_column(String(64))
    redirect_uri: Mapped[str] = mapped_column(Text)
    scope: Mapped[str] = mapped_column(Text)
    nonce: Mapped[str | None] = mapped_column(Text)
    code_challenge: Mapped[str | None] = mapped_column(String(128))
    code_challenge_method: Mapped[str | None] = mapped_column(String(16))
    subject: Mapped[str] = mapped_column(String(128))
    auth_time: Mapped[datetime] = mapped_column(_TS)
    acr: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(_TS)
    expires_at: Mapped[datetime] = mapped_column(_TS)
    used_at: Mapped[datetime | None] = mapped_column(_TS)
    claims: Mapped[dict[str, list[str]] | None] = mapped_column(JSON)


class IssuedTokenRow(IdentityBase):
    """An access token issued for a code (by its ``jti``): revoked when the code is replayed.

    ``claims`` names the claims userinfo may release for it (``sub`` aside).
    """

    __tablename__ = "identity_oidc_token"
    __table_args__ = (Index("ix_identity_oidc_token_code", "code_hash"),)

    jti: Mapped[str] = mapped_column(String(64), primary_key=True)
    code_hash: Mapped[str] = mapped_column(_HASH)
    client_id: Mapped[str] = mapped_column(String(64))
    issued_at: Mapped[datetime] = mapped_column(_TS)
    expires_at: Mapped[datetime] = mapped_column(_TS)
    revoked_at: Mapped[datetime | None] = mapped_column(_TS)
    claims: Mapped[list[str] | None] = mapped_column(JSON)


class SignInSessionRow(IdentityBase):
    """A person signed in at the provider (the browser holds the id in an HTTP-only cookie)."""

    __tablename__ = "identity_oidc_session"

    session_hash: Mapped[str] = mapped_column(_HASH, primary_key=True)
    uin: Mapped[str] = mapped_column(String(10))
    auth_time: Mapped[datetime] = mapped_column(_TS)
    acr: Mapped[str] = mapped_column(String(64))
    expires_at: Mapped[datetime] = mapped_column(_TS)


class ClaimConsentRow(IdentityBase):
    """A person's choice of the claims a client may receive, by the person's pseudonym in the client's
    sector: what the client asked (``requested``), what the person released (``granted``), until when,
    and the consent block's record of it with its signed receipts (none when no recorder is configured).
    A new choice replaces the row; the consent block keeps the history."""

    __tablename__ = "identity_oidc_claim_consent"

    client_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    subject: Mapped[str] = mapped_column(String(128), primary_key=True)
    requested: Mapped[list[str]] = mapped_column(JSON)
    granted: Mapped[list[str]] = mapped_column(JSON)
    given_at: Mapped[datetime] = mapped_column(_TS)
    expires_at: Mapped[datetime] = mapped_column(_TS)
    withdrawn_at: Mapped[datetime | None] = mapped_column(_TS)
    consent_id: Mapped[str | None] = mapped_column(String(64))
    receipt: Mapped[str | None] = mapped_column(Text)
    withdrawal_receipt: Mapped[str | None] = mapped_column(Text)
