"""The ``dpi consent`` commands: verify a signed receipt or a downloaded chain with the published JWKS
(RFC 7517, https://www.rfc-editor.org/rfc/rfc7517), bring expired consents up to date, sign chain heads.

Exit codes: 0 valid or done; 1 a receipt or chain that does not verify (with the reason); 2 input that
cannot be read or a configuration that does not work, in one line and never a traceback.
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, NoReturn, TypeVar

import click
import httpx
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from consent.chain import sign_heads, verify_chain
from consent.receipts import ReceiptInvalid, verify_receipt
from consent.service import ConsentService
from dpi import db
from dpi.keys import KeyStore, KeyStoreError
from dpi.settings import Settings, SettingsError

__all__ = ["consent_group"]

T = TypeVar("T")
_JWKS_TIMEOUT_SECONDS = 10.0


def _fail(message: str) -> NoReturn:
    click.echo(f"dpi consent: {message}", err=True)
    sys.exit(2)


def _read_text(path: Path, what: str) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        _fail(f"cannot read {what} {path}: {getattr(error, 'strerror', None) or error}")


def _load_jwks(source: str) -> dict[str, Any]:
    """The JWK Set in a file or at an http(s) URL."""
    if source.startswith(("http://", "https://")):
        try:
            response = httpx.get(source, timeout=_JWKS_TIMEOUT_SECONDS, follow_redirects=True)
            response.raise_for_status()
        except httpx.HTTPError as error:
            _fail(f"cannot fetch the JWKS from {source}: {error}")
        text = response.text
    else:
        text = _read_text(Path(source), "JWKS file")
    try:
        jwks = json.loads(text)
    except ValueError:
        _fail(f"the JWKS at {source} is not JSON")
    if not isinstance(jwks, dict) or not isinstance(jwks.get("keys"), list):
        _fail(f'the JWKS at {source} is not a JWK Set (an object with a "keys" array)')
    return jwks


def _receipt_token(text: str) -> str:
    """A receipt file holds the compact JWS, or a JSON object carrying it under ``receipt`` or ``jws``."""
    stripped = text.strip()
    if stripped.startswith("{"):
        try:
            wrapper = json.loads(stripped)
        except ValueError:
            _fail("the receipt file is neither a compact JWS nor JSON")
        token = wrapper.get("receipt", wrapper.get("jws")) if isinstance(wrapper, dict) else None
        if not isinstance(token, str):
            _fail('the receipt JSON has no "receipt" or "jws" string')
        return token.strip()
    return stripped


@click.group(name="consent")
def consent_group() -> None:
    """Consent receipts, event chains and upkeep."""


@consent_group.command(name="verify-receipt")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--jwks", "jwks_source", required=True, help="The issuer's JWKS: a file or an http(s) URL.")
def verify_receipt_command(file: Path, jwks_source: str) -> None:
    """Check a consent receipt's signature and content; print its key facts."""
    token = _receipt_token(_read_text(file, "receipt"))
    jwks = _load_jwks(jwks_source)
    try:
        receipt = verify_receipt(token, jwks)
    except ReceiptInvalid as error:
        click.echo(f"invalid: {error.reason_code}: {error.message}")
        sys.exit(1)
    agreement = receipt["agreement"]
    facts = [
        ("receipt", receipt["receipt_id"]),
        ("consent", receipt["consent_id"]),
        ("action", receipt["action"]),
        ("state", receipt["state"]),
        ("at", receipt["at"]),
        ("agreement", f"{agreement['agreement_id']} version {agreement['version']}"),
        ("consumer", receipt["consumer"]),
        ("purpose", receipt["purpose"]),
        ("legal basis", receipt["legal_basis"]),
        ("fields", ", ".join(receipt["fields"])),
        ("valid until", receipt.get("valid_until", "-")),
        ("issuer", receipt["issuer"]),
    ]
    for name, value in facts:
        click.echo(f"{name + ':':<13}{value}")
    click.echo("valid")


@consent_group.command(name="verify-chain")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--jwks", "jwks_source", required=True, help="The issuer's JWKS: a file or an http(s) URL.")
@click.option("--require-signed", is_flag=True, help="Also fail when the last events are not yet signed.")
def verify_chain_command(file: Path, jwks_source: str, require_signed: bool) -> None:
    """Check a downloaded consent-chain document: every hash, link and head signature."""
    try:
        document = json.loads(_read_text(file, "chain"))
    except ValueError:
        _fail(f"{file} is not JSON")
    jwks = _load_jwks(jwks_source)
    if not isinstance(document, dict):
        _fail(f"{file} is not a consent-chain document")
    verdict = verify_chain(document, jwks, require_signed=require_signed)
    click.echo(
        f"{len(document.get('events') or [])} events, head seq {verdict.head_seq}, "
        f"signed through seq {verdict.signed_seq}"
    )
    if not verdict.ok:
        for problem in verdict.problems:
            click.echo(f"problem: {problem}")
        click.echo("invalid")
        sys.exit(1)
    click.echo("valid")


def _run(work: Callable[[Settings, async_sessionmaker[AsyncSession], KeyStore], Awaitable[T]]) -> T:
    """Run ``work`` against the configured database and key store, turning setup errors into one line."""

    async def main(settings: Settings) -> T:
        engine = db.create_engine(settings.database)
        try:
            return await work(settings, db.session_factory(engine), KeyStore(settings.key_directory))
        finally:
            await engine.dispose()

    try:
        settings = Settings.from_environment()
        return asyncio.run(main(settings))
    except (SettingsError, KeyStoreError) as error:
        _fail(str(error))
    except SQLAlchemyError as error:
        first_line = str(getattr(error, "orig", None) or error).splitlines()[0]
        _fail(f"database error (is it migrated? see dpi db upgrade): {first_line}")


def _issuer(settings: Settings) -> str:
    return settings.member_id or settings.public_url


@consent_group.command(name="sweep")
def sweep_command() -> None:
    """Write the events of consents whose true state moved on (expiry, coming of age)."""

    async def work(settings: Settings, sessions: async_sessionmaker[AsyncSession], keys: KeyStore) -> int:
        return await ConsentService(sessions, keys, _issuer(settings)).sweep()

    click.echo(f"{_run(work)} consents brought up to date")


@consent_group.command(name="sign-chains")
def sign_chains_command() -> None:
    """Sign every subject's chain head that changed since its last signature."""

    async def work(settings: Settings, sessions: async_sessionmaker[AsyncSession], keys: KeyStore) -> int:
        return await sign_heads(sessions, keys.active(), issuer=_issuer(settings))

    click.echo(f"{_run(work)} chain heads signed")
