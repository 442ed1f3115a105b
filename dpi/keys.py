"""Signing keys and their JWK Set (RFC 7517 https://www.rfc-editor.org/rfc/rfc7517; kid per RFC 7638).

A :class:`SigningKey` is one private key with its ``kid`` and JWS algorithm: Ed25519 (``EdDSA``, the default),
P-256 (``ES256``) or RSA 3072 (``PS256``). A :class:`KeyStore` keeps the keys of one system in a directory,
with exactly one active key, rotation with a grace period during which the retired key stays published, and
a JWKS of the keys a verifier may meet.

Directory layout (one pair of files per key; a vendor may inspect it but should not edit it by hand)::

    <kid>.pem    PKCS#8 private key, mode 0600
    <kid>.json   {"kid", "alg", "created_at", "status", "retired_at", "expires_at"}
                 where status is active, retired or expired
    .lock        advisory lock taken by every change, so concurrent processes agree on the one active key
"""

from __future__ import annotations

import base64
import contextlib
import errno
import fcntl
import hashlib
import json
import os
import re
import secrets
import stat
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal, cast, get_args

import rfc8785
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from jwt.algorithms import ECAlgorithm, OKPAlgorithm, RSAAlgorithm
from jwt.exceptions import InvalidKeyError

__all__ = [
    "DEFAULT_ROTATION_GRACE",
    "SECRET_SIZE",
    "Algorithm",
    "KeyNotFound",
    "KeyRecord",
    "KeyStatus",
    "KeyStore",
    "KeyStoreError",
    "PrivateKey",
    "PublicKey",
    "SecretFileError",
    "SigningKey",
    "jwk_thumbprint",
    "load_or_create_secret",
]

Algorithm = Literal["EdDSA", "ES256", "PS256"]
KeyStatus = Literal["active", "retired", "expired"]
PrivateKey = ed25519.Ed25519PrivateKey | ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey
PublicKey = ed25519.Ed25519PublicKey | ec.EllipticCurvePublicKey | rsa.RSAPublicKey

ALGORITHMS: tuple[str, ...] = get_args(Algorithm)
DEFAULT_ROTATION_GRACE = timedelta(days=1)
_RSA_BITS = 3072
_RSA_MIN_BITS = 2048
# The members RFC 7638 section 3.2 requires in the thumbprint input, per key type.
_THUMBPRINT_MEMBERS = {"OKP": ("crv", "kty", "x"), "EC": ("crv", "kty", "x", "y"), "RSA": ("e", "kty", "n")}
# A kid becomes a file name in the store: base64url characters only, so it can never leave the directory.
_KID_PATTERN = re.compile(r"^[A-Za-z0-9_-]{1,128}$")


class KeyStoreError(Exception):
    """A key store file is missing, unreadable, corrupt or inconsistent; the message names the file."""


class KeyNotFound(KeyStoreError, LookupError):
    """No key with the requested ``kid``, or no active key."""


def jwk_thumbprint(jwk: dict[str, Any]) -> str:
    """RFC 7638 JWK thumbprint (SHA-256, base64url without padding) of a public JWK.

    https://www.rfc-editor.org/rfc/rfc7638: the required members, in lexicographic order and without
    whitespace, which is exactly their RFC 8785 canonical form.
    """
    try:
        members = _THUMBPRINT_MEMBERS[jwk["kty"]]
        required = {name: jwk[name] for name in members}
    except KeyError as error:
        raise ValueError(f"JWK lacks a member required for its thumbprint: {error}") from None
    digest = hashlib.sha256(rfc8785.dumps(required)).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def _check_key_matches(private_key: object, alg: str) -> PrivateKey:
    if alg == "EdDSA" and isinstance(private_key, ed25519.Ed25519PrivateKey):
        return private_key
    if (
        alg == "ES256"
        and isinstance(private_key, ec.EllipticCurvePrivateKey)
        and isinstance(private_key.curve, ec.SECP256R1)
    ):
        return private_key
    if alg == "PS256" and isinstance(private_key, rsa.RSAPrivateKey):
        if private_key.key_size < _RSA_MIN_BITS:
            raise ValueError(f"RSA key of {private_key.key_size} bits is too short for PS256")
        return private_key
    if alg not in ALGORITHMS:
        raise ValueError(f"unsupported algorithm {alg!r}; expected one of {', '.join(ALGORITHMS)}")
    raise ValueError(f"the key type {type(private_key).__name__} does not match the algorithm {alg}")


@dataclass(frozen=True)
class SigningKey:
    """One private signing key with its ``kid`` and JWS algorithm (``EdDSA``, ``ES256`` or ``PS256``)."""

    kid: str
    alg: Algorithm
    private_key: PrivateKey = field(repr=False)

    def __post_init__(self) -> None:
        _check_key_matches(self.private_key, self.alg)
        if not self.kid:
            raise ValueError("a signing key needs a non-empty kid")

    @classmethod
    def generate(cls, alg: str = "EdDSA", kid: str | None = None) -> SigningKey:
        """A fresh key; ``kid`` defaults to the RFC 7638 thumbprint of its public key."""
        private_key: PrivateKey
        if alg == "EdDSA":
            private_key = ed25519.Ed25519PrivateKey.generate()
        elif alg == "ES256":
            private_key = ec.generate_private_key(ec.SECP256R1())
        elif alg == "PS256":
            private_key = rsa.generate_private_key(public_exponent=65537, key_size=_RSA_BITS)
        else:
            raise ValueError(f"unsupported algorithm {alg!r}; expected one of {', '.join(ALGORITHMS)}")
        return cls._with_default_kid(private_key, cast(Algorithm, alg), kid)

    @classmethod
    def from_pem(cls, pem: bytes, kid: str | None, alg: str) -> SigningKey:
        """Load an unencrypted PEM (PKCS#8 or traditional) private key; ``kid=None`` means its thumbprint."""
        try:
            private_key = serialization.load_pem_private_key(pem, password=None)
        except (ValueError, TypeError, UnsupportedAlgorithm) as error:
            raise ValueError(f"not an unencrypted PEM private key: {error}") from None
        checked = _check_key_matches(private_key, alg)
        return cls._with_default_kid(checked, cast(Algorithm, alg), kid)

    @classmethod
    def from_jwk(cls, jwk: Mapping[str, Any]) -> SigningKey:
        """Load a private JWK (RFC 7517, with ``d``); ``alg`` is inferred from the key type when absent.

        ``kid`` is taken from the JWK, or else its RFC 7638 thumbprint. Used for published test keys.
        """
        kty, crv = str(jwk.get("kty")), str(jwk.get("crv"))
        inferred = {("OKP", "Ed25519"): "EdDSA", ("EC", "P-256"): "ES256"}.get((kty, crv), "PS256")
        alg = str(jwk.get("alg") or inferred)
        if "d" not in jwk:
            raise ValueError("the JWK holds no private key (no d member)")
        try:
            private_key: object
            if kty == "OKP":
                private_key = OKPAlgorithm.from_jwk(dict(jwk))
            elif kty == "EC":
                private_key = ECAlgorithm.from_jwk(dict(jwk))
            elif kty == "RSA":
                private_key = RSAAlgorithm.from_jwk(dict(jwk))
            else:
                raise ValueError(f"unsupported JWK key type {kty!r}")
        except (InvalidKeyError, KeyError, TypeError) as error:
            raise ValueError(f"not a usable private JWK: {error}") from None
        checked = _check_key_matches(private_key, alg)
        kid = jwk.get("kid")
        return cls._with_default_kid(checked, cast(Algorithm, alg), kid if isinstance(kid, str) else None)

    @classmethod
    def _with_default_kid(cls, private_key: PrivateKey, alg: Algorithm, kid: str | None) -> SigningKey:
        if kid is None:
            kid = jwk_thumbprint(_public_members(private_key.public_key()))
        return cls(kid=kid, alg=alg, private_key=private_key)

    def public_key(self) -> PublicKey:
        """The public half, as a ``cryptography`` object."""
        return self.private_key.public_key()

    def public_jwk(self) -> dict[str, Any]:
        """The public JWK (RFC 7517) with ``kid``, ``alg`` and ``use: "sig"``; never any private member."""
        return {**_public_members(self.public_key()), "kid": self.kid, "alg": self.alg, "use": "sig"}

    def private_pem(self) -> bytes:
        """The private key as unencrypted PKCS#8 PEM (keep it secret: files holding it must be mode 0600)."""
        return self.private_key.private_bytes(
            encoding=serialization.Encoding.PEM,
            format=serialization.PrivateFormat.PKCS8,
            encryption_algorithm=serialization.NoEncryption(),
        )


def _public_members(public_key: PublicKey) -> dict[str, Any]:
    jwk: dict[str, Any]
    if isinstance(public_key, ed25519.Ed25519PublicKey):
        jwk = OKPAlgorithm.to_jwk(public_key, as_dict=True)
    elif isinstance(public_key, ec.EllipticCurvePublicKey):
        jwk = ECAlgorithm.to_jwk(public_key, as_dict=True)
    else:
        jwk = RSAAlgorithm.to_jwk(public_key, as_dict=True)
    return {name: jwk[name] for name in _THUMBPRINT_MEMBERS[jwk["kty"]]}


@dataclass(frozen=True)
class KeyRecord:
    """What the store knows about one key besides its private material (the ``<kid>.json`` file)."""

    kid: str
    alg: Algorithm
    created_at: datetime
    status: KeyStatus
    retired_at: datetime | None = None
    expires_at: datetime | None = None

    def published(self, now: datetime) -> bool:
        """Whether the key belongs in the JWKS at ``now``: active, or retired and still within its grace."""
        if self.status == "active":
            return True
        return self.status == "retired" and self.expires_at is not None and now < self.expires_at

    def to_json(self) -> dict[str, Any]:
        def moment(value: datetime | None) -> str | None:
            return None if value is None else value.isoformat().replace("+00:00", "Z")

        return {
            "kid": self.kid,
            "alg": self.alg,
            "created_at": moment(self.created_at),
            "status": self.status,
            "retired_at": moment(self.retired_at),
            "expires_at": moment(self.expires_at),
        }

    @classmethod
    def from_json(cls, data: object, source: Path) -> KeyRecord:
        def moment(value: object, name: str) -> datetime | None:
            if value is None:
                return None
            if not isinstance(value, str):
                raise KeyStoreError(f"key metadata file {source}: {name} must be an RFC 3339 string")
            try:
                parsed = datetime.fromisoformat(value)
            except ValueError:
                raise KeyStoreError(
                    f"key metadata file {source}: {name} is not a timestamp: {value!r}"
                ) from None
            if parsed.tzinfo is None:
                raise KeyStoreError(f"key metadata file {source}: {name} has no time zone: {value!r}")
            return parsed.astimezone(UTC)

        if not isinstance(data, dict):
            raise KeyStoreError(f"key metadata file {source} does not hold a JSON object")
        kid, alg, status = data.get("kid"), data.get("alg"), data.get("status")
        if not isinstance(kid, str) or not _KID_PATTERN.match(kid) or f"{kid}.json" != source.name:
            raise KeyStoreError(f"key metadata file {source}: kid {kid!r} does not match the file name")
        if alg not in ALGORITHMS:
            raise KeyStoreError(f"key metadata file {source}: unsupported alg {alg!r}")
        if status not in get_args(KeyStatus):
            raise KeyStoreError(f"key metadata file {source}: unknown status {status!r}")
        created_at = moment(data.get("created_at"), "created_at")
        if created_at is None:
            raise KeyStoreError(f"key metadata file {source}: created_at is missing")
        return cls(
            kid=kid,
            alg=cast(Algorithm, alg),
            created_at=created_at,
            status=cast(KeyStatus, status),
            retired_at=moment(data.get("retired_at"), "retired_at"),
            expires_at=moment(data.get("expires_at"), "expires_at"),
        )


def _utc_now() -> datetime:
    return datetime.now(UTC)


def _aware(moment: datetime, name: str) -> datetime:
    if moment.tzinfo is None:
        raise ValueError(f"{name} must be timezone-aware")
    return moment.astimezone(UTC)


class KeyStore:
    """The signing keys of one system, kept in ``directory``; exactly one of them is active.

    Every change (generate, ensure_active, rotate) holds an exclusive ``fcntl`` lock on ``directory/.lock``
    and writes files atomically, so several processes sharing the directory never see a half-written key
    and never create two active keys.
    """

    def __init__(self, directory: Path, *, clock: Callable[[], datetime] = _utc_now) -> None:
        self.directory = Path(directory)
        self._clock = clock

    def _now(self) -> datetime:
        return _aware(self._clock(), "the key store clock")

    # --- reading ---------------------------------------------------------------------------------------

    def records(self) -> list[KeyRecord]:
        """Every key the store knows, oldest first (expired ones included)."""
        if not self.directory.exists():
            return []
        records = [self._read_record(path) for path in sorted(self.directory.glob("*.json"))]
        records.sort(key=lambda record: (record.created_at, record.kid))
        active = [record.kid for record in records if record.status == "active"]
        if len(active) > 1:
            raise KeyStoreError(f"key store {self.directory} has several active keys: {', '.join(active)}")
        return records

    def _read_record(self, path: Path) -> KeyRecord:
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as error:
            raise KeyStoreError(f"key metadata file {path} cannot be read: {error.strerror}") from None
        except UnicodeDecodeError:
            raise KeyStoreError(f"key metadata file {path} is not UTF-8 text") from None
        try:
            data = json.loads(text)
        except json.JSONDecodeError as error:
            raise KeyStoreError(f"key metadata file {path} is not valid JSON: {error}") from None
        return KeyRecord.from_json(data, path)

    def _load(self, record: KeyRecord) -> SigningKey:
        path = self.directory / f"{record.kid}.pem"
        try:
            mode = path.stat().st_mode
            if mode & (stat.S_IRWXG | stat.S_IRWXO):
                raise KeyStoreError(
                    f"private key file {path} is accessible to group or others "
                    f"(mode {stat.S_IMODE(mode):04o}); it must be 0600"
                )
            pem = path.read_bytes()
        except OSError as error:
            raise KeyStoreError(f"private key file {path} cannot be read: {error.strerror}") from None
        try:
            return SigningKey.from_pem(pem, record.kid, record.alg)
        except ValueError as error:
            raise KeyStoreError(
                f"private key file {path} is not a usable {record.alg} key: {error}"
            ) from None

    def get(self, kid: str) -> SigningKey:
        """The key named ``kid`` whatever its status; raises :class:`KeyNotFound`."""
        if not _KID_PATTERN.match(kid):
            raise KeyNotFound(f"no key {kid!r} in {self.directory}")
        path = self.directory / f"{kid}.json"
        if not path.exists():
            raise KeyNotFound(f"no key {kid!r} in {self.directory}")
        return self._load(self._read_record(path))

    def active(self) -> SigningKey:
        """The key new signatures are made with; raises :class:`KeyNotFound` when there is none."""
        for record in self.records():
            if record.status == "active":
                return self._load(record)
        raise KeyNotFound(f"key store {self.directory} has no active key")

    def jwks(self, now: datetime | None = None) -> dict[str, Any]:
        """The public JWK Set (RFC 7517 section 5): the active key and retired keys within their grace."""
        moment = self._now() if now is None else _aware(now, "now")
        keys = [
            self._load(record).public_jwk() for record in reversed(self.records()) if record.published(moment)
        ]
        return {"keys": keys}

    # --- changing --------------------------------------------------------------------------------------

    def generate(self, alg: str = "EdDSA", *, grace: timedelta = DEFAULT_ROTATION_GRACE) -> SigningKey:
        """Create a key of ``alg`` and make it active; the key active before is retired with ``grace``."""
        if grace < timedelta(0):
            raise ValueError("grace must not be negative")
        with self._locked():
            return self._generate_locked(alg, grace)

    def ensure_active(self, alg: str = "EdDSA") -> SigningKey:
        """The active key, created with ``alg`` if the store has none (safe when processes race)."""
        with self._locked():
            for record in self.records():
                if record.status == "active":
                    return self._load(record)
            return self._generate_locked(alg, DEFAULT_ROTATION_GRACE)

    def rotate(self, grace: timedelta, alg: str | None = None) -> SigningKey:
        """Make a new active key (same algorithm unless ``alg`` is given) and retire the current one.

        The retired key stays in :meth:`jwks` until ``retired_at + grace``, so signatures made just before
        the rotation still verify wherever the JWKS is cached for less than ``grace``.
        """
        if grace < timedelta(0):
            raise ValueError("grace must not be negative")
        with self._locked():
            current = next((record for record in self.records() if record.status == "active"), None)
            chosen = alg if alg is not None else (current.alg if current is not None else "EdDSA")
            return self._generate_locked(chosen, grace)

    def _generate_locked(self, alg: str, grace: timedelta) -> SigningKey:
        key = SigningKey.generate(alg)
        now = self._now()
        for record in self.records():
            if record.status == "active":
                self._write_record(replace(record, status="retired", retired_at=now, expires_at=now + grace))
            elif record.status == "retired" and not record.published(now):
                self._write_record(replace(record, status="expired"))
        self._write_private_key(key)
        self._write_record(KeyRecord(kid=key.kid, alg=key.alg, created_at=now, status="active"))
        return key

    def _write_private_key(self, key: SigningKey) -> None:
        path = self.directory / f"{key.kid}.pem"
        try:
            descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except OSError as error:
            raise KeyStoreError(f"private key file {path} cannot be created: {error.strerror}") from None
        with os.fdopen(descriptor, "wb") as stream:
            stream.write(key.private_pem())
            stream.flush()
            os.fsync(stream.fileno())

    def _write_record(self, record: KeyRecord) -> None:
        # Written to a temporary name and renamed, so a reader sees the old or the new file, never a part.
        path = self.directory / f"{record.kid}.json"
        temporary = self.directory / f".{record.kid}.{secrets.token_hex(4)}.tmp"
        try:
            temporary.write_text(json.dumps(record.to_json(), indent=2) + "\n", encoding="utf-8")
            os.replace(temporary, path)
        except OSError as error:
            with contextlib.suppress(OSError):
                temporary.unlink()
            raise KeyStoreError(f"key metadata file {path} cannot be written: {error.strerror}") from None

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        try:
            self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
            descriptor = os.open(self.directory / ".lock", os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as error:
            if error.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
                raise KeyStoreError(f"key store {self.directory} is not writable: {error.strerror}") from None
            raise KeyStoreError(f"key store {self.directory} cannot be opened: {error.strerror}") from None
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX)
            yield
        finally:
            os.close(descriptor)


SECRET_SIZE = 32


class SecretFileError(RuntimeError):
    """A secret file exists but cannot be used (unreadable, wrong size, readable by others)."""


def load_or_create_secret(path: Path) -> bytes:
    """The 32-byte secret at ``path``, created (mode 0600, parents 0700) when the file does not exist.

    Refuses with :class:`SecretFileError` a file that cannot be read, is not exactly 32 bytes, or is
    readable or writable by group or others: silently replacing it would lose what it keys
    (pseudonyms, hashes, sessions).
    """
    if not path.exists():
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        staging = path.with_name(f".{path.name}.{secrets.token_hex(8)}")
        descriptor = os.open(staging, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(descriptor, "wb") as handle:
                handle.write(secrets.token_bytes(SECRET_SIZE))
                handle.flush()
                os.fsync(handle.fileno())
            # A hard link never replaces: if another process created the key meanwhile, theirs wins.
            with contextlib.suppress(FileExistsError):
                os.link(staging, path)
        finally:
            staging.unlink(missing_ok=True)
    try:
        mode = path.stat().st_mode
        key = path.read_bytes()
    except OSError as error:
        raise SecretFileError(f"the key file {path} cannot be read ({error.strerror})") from None
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise SecretFileError(f"the key file {path} must be readable by its owner only (chmod 600)")
    if len(key) != SECRET_SIZE:
        raise SecretFileError(f"the key file {path} must hold exactly {SECRET_SIZE} bytes, not {len(key)}")
    return key
