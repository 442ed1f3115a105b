"""An OpenID provider to run the ``identity-oidc`` profile against: our identity block (and the consent
block where asked) with three clients registered (two of the labour sector, one of health), Amina enrolled,
and one-time codes posted to the suite's SMS gateway."""

from __future__ import annotations

import copy
import socket
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jwt.algorithms import OKPAlgorithm

from conformance_tests.relying_party import OidcClient, OidcOptions
from dpi.app import DpiApp, create_app, migrate
from dpi.blocks import Block
from dpi.db import create_engine, session_factory
from dpi.keys import SigningKey
from dpi.settings import Settings
from identity.block import identity_block, key_paths
from identity.clients import ClientRegistry
from identity.pseudonyms import load_or_create_key
from identity.senders import HttpSmsGatewaySender
from identity.service import PersonRegister

TARGET = "https://idp.test"
LABOUR = "DPI/GOV/MOL/jobseekers"
HEALTH = "DPI/GOV/MOH/patients"
AMINA: dict[str, Any] = {
    "names": {"latin": {"given_name": "Amina", "family_name": "El Idrissi"}},
    "date_of_birth": "1990-04-12",
    "sex": "female",
    "place_of_birth": {"locality": "Fès", "country": "MA"},
    "phone": "+212612345678",
    "preferred_language": "en",
}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def private_jwk(key: SigningKey) -> dict[str, Any]:
    return {**OKPAlgorithm.to_jwk(key.private_key, as_dict=True), "kid": key.kid, "alg": key.alg}


@dataclass
class IdentityTarget:
    app: DpiApp
    options: OidcOptions
    uin: str
    settings: Settings


def gateway_block(sms_port: int) -> Block:
    """The identity block posting one-time codes to an SMS gateway on ``sms_port`` (the suite's)."""
    return identity_block(otp_sender=lambda _s: HttpSmsGatewaySender(f"http://127.0.0.1:{sms_port}/sms"))


async def prepare(settings: Settings, blocks: Sequence[Block], sms_port: int) -> tuple[OidcOptions, str]:
    """Migrate ``settings``' database for ``blocks``, register the clients, enrol Amina."""
    await migrate(settings, list(blocks))
    engine = create_engine(settings.database)
    try:
        sessions = session_factory(engine)
        clients = ClientRegistry(sessions)
        pseudonym_path, vid_path = key_paths(settings)
        register = PersonRegister(
            sessions, pseudonym_key=load_or_create_key(pseudonym_path), vid_key=load_or_create_key(vid_path)
        )
        registered: list[OidcClient] = []
        key = SigningKey.generate("EdDSA")
        for client_id, sector, uri, method in (
            ("labour-portal", LABOUR, "https://labour.example/callback", "client_secret_basic"),
            ("health-portal", HEALTH, "https://health.example/callback", "private_key_jwt"),
            ("labour-mobile", LABOUR, "https://mobile.labour.example/callback", "client_secret_basic"),
        ):
            metadata: dict[str, Any] = {
                "client_id": client_id,
                "client_name": client_id.replace("-", " ").title(),
                "redirect_uris": [uri],
                "sector": sector,
                "scope": ["openid", "profile", "phone"],
                "token_endpoint_auth_method": method,
            }
            if method == "private_key_jwt":
                metadata["jwks"] = {"keys": [key.public_jwk()]}
            _, secret = await clients.add(metadata)
            registered.append(
                OidcClient(
                    client_id,
                    uri,
                    secret=secret,
                    private_jwk=private_jwk(key) if secret is None else None,
                )
            )
        person = await register.enrol(copy.deepcopy(AMINA), operator_id="operator-1", channel="assisted")
    finally:
        await engine.dispose()
    options = OidcOptions(clients=tuple(registered), person=person["uin"], sms_port=sms_port)
    return options, str(person["uin"])


async def identity_target(
    var_dir: Path, *, sms_port: int, extra_blocks: Sequence[Block] = (), **overrides: Any
) -> IdentityTarget:
    """The identity block (plus ``extra_blocks``) in-process, ready for the profile."""
    settings = Settings(var_dir=var_dir, base_url=TARGET, **overrides)
    blocks = [*extra_blocks, gateway_block(sms_port)]
    options, uin = await prepare(settings, blocks, sms_port)
    return IdentityTarget(create_app(settings, blocks=blocks), options, uin, settings)
