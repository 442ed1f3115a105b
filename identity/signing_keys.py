"""The OpenID provider's signing keys: one active key per JWS algorithm its clients use (OpenID Connect
Registration 1.0 section 2, ``id_token_signed_response_alg`` and ``userinfo_signed_response_alg``,
https://openid.net/specs/openid-connect-registration-1_0.html#ClientMetadata), published together at
``/identity/.well-known/jwks.json`` (RFC 7517).

The kernel's key store (``DPI_KEYS_DIR``, EdDSA by default) serves its own algorithm, so access tokens
and the default ID tokens are signed by the key every block already trusts. Each other algorithm of
:data:`ID_TOKEN_ALGORITHMS` has a key store of its own in ``<keys dir>/identity/<algorithm>/``.

Keys are made when they are needed, never when the JWKS is read: when a client that signs with an
algorithm is registered, and when the block starts for the algorithms of the clients already registered
(EdDSA always). A JWKS therefore lists the algorithms in use. All stores rotate the same way
(:meth:`ProviderKeys.rotate`, ``dpi identity keys rotate --alg ...``): the retired key stays published
for its grace period, so tokens signed before a rotation still verify.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import timedelta
from pathlib import Path
from typing import Any, Final

from dpi.keys import KeyNotFound, KeyStore, SigningKey
from dpi.settings import Settings

__all__ = ["ALWAYS", "ID_TOKEN_ALGORITHMS", "ProviderKeys"]

ID_TOKEN_ALGORITHMS: Final = ("EdDSA", "ES256", "PS256")
ALWAYS: Final = "EdDSA"
"""The default ID token algorithm, whose key exists whichever clients are registered."""

_log = logging.getLogger("identity.signing_keys")


class ProviderKeys:
    """The kernel's store for its algorithm and one store per other algorithm under ``directory``."""

    def __init__(self, kernel: KeyStore, directory: Path, kernel_algorithm: str) -> None:
        self.kernel = kernel
        self.kernel_algorithm = kernel_algorithm
        self.stores = {
            algorithm: KeyStore(directory / algorithm.lower()) for algorithm in ID_TOKEN_ALGORITHMS
        }

    @classmethod
    def of(cls, settings: Settings, kernel: KeyStore | None = None) -> ProviderKeys:
        """The provider's keys in the deployment's key directory (``DPI_KEYS_DIR``)."""
        directory = settings.key_directory
        return cls(kernel or KeyStore(directory), directory / "identity", settings.key_algorithm)

    def store(self, algorithm: str) -> KeyStore:
        """The store whose active key signs with ``algorithm``."""
        if algorithm not in self.stores:
            raise KeyNotFound(f"no signing key for {algorithm!r}")
        return self.kernel if algorithm == self.kernel_algorithm else self.stores[algorithm]

    def ensure(self, algorithms: Iterable[str]) -> None:
        """Make the active key of each of ``algorithms`` (and of EdDSA) that has none yet."""
        for algorithm in sorted({ALWAYS, *algorithms}):
            self.store(algorithm).ensure_active(algorithm)

    def signing_key(self, algorithm: str) -> SigningKey:
        """The active key for ``algorithm``; made now only if a client's key was not made at its
        registration nor at start (a client added straight to the database)."""
        store = self.store(algorithm)
        try:
            return store.active()
        except KeyNotFound:
            _log.warning(
                "signing key made at first use",
                extra={"event": "identity_signing_key_created", "algorithm": algorithm},
            )
            return store.ensure_active(algorithm)

    def rotate(self, algorithm: str, grace: timedelta) -> SigningKey:
        """A new active key for ``algorithm``; the one it replaces stays published for ``grace``."""
        return self.store(algorithm).rotate(grace, algorithm)

    def jwks(self) -> dict[str, Any]:
        """The active and in-grace keys of every store that has keys, each kid once; writes nothing."""
        keys: dict[str, dict[str, Any]] = {}
        for store in (self.kernel, *(self.store(algorithm) for algorithm in ID_TOKEN_ALGORITHMS)):
            for key in store.jwks()["keys"]:
                keys.setdefault(str(key["kid"]), key)
        return {"keys": list(keys.values())}
