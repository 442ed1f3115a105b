"""A registry to run the ``registry-dci`` profile against: our registry block with synthetic civil-registry
persons, the suite registered as a DCI sender with its callback on a local port, and an event request
(a records-API create with a token of the block's issuer)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from conformance_tests.dci_sender import DciOptions, EventRequest
from dpi.app import DpiApp, create_app, migrate
from dpi.blocks import Block
from dpi.db import create_engine, session_factory
from dpi.keys import SigningKey
from dpi.settings import Settings
from registry.block import registry_block
from registry.dci.senders import add_sender
from registry.definition import load_definitions
from registry.keyfile import subject_key
from registry.service import RegistryService
from tests.consent.conftest import TokenIssuer
from tests.registry.conftest import sample

SENDER_ID = "DPI/TEST/CONFORMANCE/registry-client"


@dataclass
class RegistryTarget:
    app: DpiApp
    options: DciOptions
    settings: Settings


def dci_block(issuer: TokenIssuer) -> Block:
    """Our registry block trusting ``issuer``'s tokens, its dispatcher polling often enough for a test."""
    return registry_block(token_verifier=lambda _settings: issuer.verifier(), dci_interval_seconds=0.2)


async def registry_target(
    var_dir: Path,
    *,
    callback_port: int,
    blocks: Sequence[Block] | None = None,
    issuer: TokenIssuer | None = None,
    **overrides: Any,
) -> RegistryTarget:
    """Our registry block (or ``blocks``, holding it) in-process, prepared for the profile."""
    issuer = issuer or TokenIssuer()
    chosen = list(blocks) if blocks is not None else [dci_block(issuer)]
    settings = Settings(var_dir=var_dir, allow_private_callbacks=True, **overrides)
    await migrate(settings, chosen)
    key = SigningKey.generate("EdDSA")
    engine = create_engine(settings.database)
    try:
        service = RegistryService(
            session_factory(engine), load_definitions(), subject_key=subject_key(settings)
        )
        persons = [document for document in (sample("civil", i) for i in range(1, 12))]
        persons = [document for document in persons if document["record_type"] == "person"]
        await service.create_many("civil", persons, actor="officer-17", reason="conformance test data")
        await add_sender(
            service.sessions,
            service.definitions,
            SENDER_ID,
            jwks={"keys": [key.public_jwk()]},
            grants=["civil"],
            callback_url=f"http://127.0.0.1:{callback_port}/dci",
        )
    finally:
        await engine.dispose()
    event = EventRequest(
        "POST",
        "/registry/civil/v1/records",
        issuer.headers("officer-17", "registry:civil:write"),
        {"document": sample("civil", 40), "reason": "conformance event"},
    )
    options = DciOptions(
        registry="civil",
        sender_id=SENDER_ID,
        key=key,
        id_type="UIN",
        id_value=str(persons[0]["uin"]),
        callback_port=callback_port,
        event=event,
    )
    return RegistryTarget(create_app(settings, blocks=chosen), options, settings)
