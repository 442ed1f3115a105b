"""The identity block as the kernel sees it: routes under ``/identity`` and its migrations.

Not yet registered under the ``dpi.blocks`` entry points (the OpenID provider is still to come);
mount it explicitly with ``dpi.app.create_app(settings, blocks=[identity_block()])``. One
:class:`IdentityRuntime` (register, token verifier) exists per mounted app.

Its secrets live in ``<var_dir>/identity/``: ``pseudonym.key`` derives every sector pseudonym (rotating
it re-keys every sector, see :mod:`identity.pseudonyms`) and ``vid.key`` keys the hashes under which
virtual IDs are stored (replacing it makes every issued virtual ID unresolvable). Both are 32 random
bytes, mode 0600, created on first use.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Final

from dpi.blocks import Block, BlockContext
from dpi.settings import Settings
from dpi.tokens import JwtTokenVerifier, TokenVerifier
from identity import api
from identity.pseudonyms import load_or_create_key
from identity.service import PersonRegister

__all__ = ["VERSION", "IdentityRuntime", "block", "identity_block", "jwt_verifier", "key_paths"]

VERSION: Final = "0.1.0"


def _utcnow() -> datetime:
    return datetime.now(UTC)


def jwt_verifier(settings: Settings) -> TokenVerifier:
    """The production verifier: access tokens of the issuer the kernel settings name."""
    return JwtTokenVerifier(settings.access_token_issuer, jwks_url=settings.access_token_jwks_url)


def key_paths(settings: Settings) -> tuple[Path, Path]:
    """Where the pseudonym key and the virtual-ID key of this deployment live."""
    directory = settings.var_dir / "identity"
    return directory / "pseudonym.key", directory / "vid.key"


@dataclass
class IdentityRuntime:
    """What the block's routes share within one app."""

    context: BlockContext
    register: PersonRegister
    verifier: TokenVerifier


def identity_block(
    *,
    token_verifier: Callable[[Settings], TokenVerifier] = jwt_verifier,
    clock: Callable[[], datetime] = _utcnow,
    pseudonym_sectors: Sequence[str] = (),
) -> Block:
    """The identity block; tests give a verifier for their own token issuer and a clock they control.

    ``pseudonym_sectors`` get a pseudonym for every person at enrolment (so the exchange can translate
    from them at once); other sectors get one when it is first handed out.
    """
    runtimes: weakref.WeakKeyDictionary[BlockContext, IdentityRuntime] = weakref.WeakKeyDictionary()

    def runtime_for(context: BlockContext) -> IdentityRuntime:
        runtime = runtimes.get(context)
        if runtime is None:
            pseudonym_path, vid_path = key_paths(context.settings)
            register = PersonRegister(
                context.sessions,
                pseudonym_key=load_or_create_key(pseudonym_path),
                vid_key=load_or_create_key(vid_path),
                clock=clock,
                pseudonym_sectors=pseudonym_sectors,
            )
            runtime = IdentityRuntime(
                context=context, register=register, verifier=token_verifier(context.settings)
            )
            runtimes[context] = runtime
        return runtime

    return Block(
        name="identity",
        prefix="/identity",
        version=VERSION,
        routes=lambda context: api.build_routes(runtime_for(context)),
        migrations=Path(__file__).parent / "migrations",
    )


block: Final = identity_block()
