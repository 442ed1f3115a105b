"""The OpenID provider's signing keys: one active key per JWS algorithm a client may ask for (OpenID Connect
Registration 1.0 section 2, ``id_token_signed_response_alg`` and ``userinfo_signed_response_alg``,
https://openid.net/specs/openid-connect-registration-1_0.html#ClientMetadata), published together at
``/identity/.well-known/jwks.json`` (RFC 7517).

The kernel's key store (``DPI_KEYS_DIR``, EdDSA by default) serves its own algorithm, so access tokens
and the default ID tokens are signed by the key every block already trusts. Each other algorithm of
:data:`ID_TOKEN_ALGORITHMS` has a key store of its own in ``<keys dir>/identity/<algorithm>/``, created
on first use; all of them rotate the same way (:meth:`dpi.keys.KeyStore.rotate`: the retired key stays
published for its grace period, so tokens signed before a rotation still verify).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Final

from dpi.keys import KeyNotFound, KeyStore, SigningKey

__all__ = ["ID_TOKEN_ALGORITHMS", "ProviderKeys"]

ID_TOKEN_ALGORITHMS: Final = ("EdDSA", "ES256", "PS256")


class ProviderKeys:
    """The kernel's store for its algorithm and one store per other algorithm under ``directory``."""

    def __init__(self, kernel: KeyStore, directory: Path, kernel_algorithm: str) -> None:
        self.kernel = kernel
        self.kernel_algorithm = kernel_algorithm
        self.stores = {
            algorithm: KeyStore(directory / algorithm.lower()) for algorithm in ID_TOKEN_ALGORITHMS
        }

    def store(self, algorithm: str) -> KeyStore:
        """The store whose active key signs with ``algorithm``."""
        if algorithm not in self.stores:
            raise KeyNotFound(f"no signing key for {algorithm!r}")
        if self.kernel.ensure_active(self.kernel_algorithm).alg == algorithm:
            return self.kernel
        return self.stores[algorithm]

    def signing_key(self, algorithm: str) -> SigningKey:
        """The active key for ``algorithm``, created if its store has none."""
        return self.store(algorithm).ensure_active(algorithm)

    def jwks(self) -> dict[str, Any]:
        """Every algorithm's active key and the retired keys still in their grace, each kid once."""
        keys: dict[str, dict[str, Any]] = {}
        for algorithm in ID_TOKEN_ALGORITHMS:
            store = self.store(algorithm)
            store.ensure_active(algorithm)
            for key in store.jwks()["keys"]:
                keys.setdefault(str(key["kid"]), key)
        for key in self.kernel.jwks()["keys"]:
            keys.setdefault(str(key["kid"]), key)
        return {"keys": list(keys.values())}
