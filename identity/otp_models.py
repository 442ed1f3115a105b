"""Tables of OTP authentication (migration ``identity_0002`` of the ``identity`` branch).

No table holds a code or a phone number. Transactions keep an HMAC of (transaction id, code); throttles
and guards are keyed by an HMAC of the person's UIN (or, for an identifier that names nobody, of that
identifier), so those tables alone do not say who asked for a code.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from identity.models import IdentityBase

__all__ = ["AuthTypeLockRow", "OtpGuardRow", "OtpThrottleRow", "OtpTransactionRow"]

_KEY = String(64)


class OtpTransactionRow(IdentityBase):
    """One code sent (or pretended sent, for an identifier that cannot receive one: ``uin`` is then null).

    ``state`` is ``pending`` until the sender accepted the message (``sent``), then ``used`` once verified;
    ``failed`` when delivery failed. Only a ``sent`` transaction with a ``uin`` can ever verify. Rows are
    also the send history the rate limits count.
    """

    __tablename__ = "identity_otp_transaction"
    __table_args__ = (
        Index("ix_identity_otp_transaction_subject", "subject_key", "created_at"),
        Index("ix_identity_otp_transaction_client", "client_id", "created_at"),
        Index("ix_identity_otp_transaction_created", "created_at"),
    )

    transaction_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    subject_key: Mapped[str] = mapped_column(_KEY)
    client_id: Mapped[str] = mapped_column(String(255))
    uin: Mapped[str | None] = mapped_column(String(10))
    code_hash: Mapped[str] = mapped_column(_KEY)
    state: Mapped[str] = mapped_column(String(16))
    failures: Mapped[int] = mapped_column(Integer)
    attempts: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class OtpThrottleRow(IdentityBase):
    """A row per rate-limited key (a client, a subject): sends lock it while they count recent transactions,
    so that concurrent sends in any process see each other's counts."""

    __tablename__ = "identity_otp_throttle"

    key: Mapped[str] = mapped_column(String(80), primary_key=True)
    touched_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class OtpGuardRow(IdentityBase):
    """Verification failures of one subject, and until when OTP is locked for them after too many."""

    __tablename__ = "identity_otp_guard"

    subject_key: Mapped[str] = mapped_column(_KEY, primary_key=True)
    failures: Mapped[int] = mapped_column(Integer)
    last_failure_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    locked_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class AuthTypeLockRow(IdentityBase):
    """An authentication type the holder locked for themself (``otp`` for now); present means locked."""

    __tablename__ = "identity_auth_type_lock"

    uin: Mapped[str] = mapped_column(String(10), primary_key=True)
    auth_type: Mapped[str] = mapped_column(String(32), primary_key=True)
    locked_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
