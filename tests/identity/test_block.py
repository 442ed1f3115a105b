"""The identity block's wiring: the configured OTP sender, its key file, and the purge loop."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path

import httpx
import pytest

from dpi import db
from dpi.app import create_app, migrate
from dpi.settings import Settings, SettingsError
from identity.authentication import OtpAuthenticator, OtpPolicy
from identity.block import (
    DEFAULT_OTP_POLICY,
    DEMO_PROVIDER,
    configured_sender,
    identity_block,
    key_paths,
    otp_key_path,
    provider_subsystem,
)
from identity.clients import ClientRegistry
from identity.pseudonyms import load_or_create_key
from identity.senders import ConsoleOtpSender, HttpSmsGatewaySender, MemoryOtpSender
from identity.service import PersonRegister
from tests.identity.conftest import LABOUR, OPERATOR, REDIRECT, amina, youssef
from tests.identity.test_oidc import form_of
from tests.serving import serving


@pytest.mark.parametrize(
    ("environment", "expected"),
    [
        ({}, DEMO_PROVIDER),
        ({"DPI_MEMBER_ID": "DPI/GOV/NIA"}, "DPI/GOV/NIA/identity"),
        ({"DPI_MEMBER_ID": "DPI/GOV/NIA/oidc"}, "DPI/GOV/NIA/oidc"),
        (
            {"DPI_MEMBER_ID": "DPI/GOV/NIA", "DPI_IDENTITY_SUBSYSTEM": "DPI/GOV/NIA/signin"},
            "DPI/GOV/NIA/signin",
        ),
    ],
)
def test_claim_releases_name_the_provider_subsystem_the_settings_give(
    environment: dict[str, str], expected: str
) -> None:
    assert provider_subsystem(Settings.from_environment(environment)) == expected


@pytest.mark.parametrize("value", ["DPI/GOV/NIA", "not an id", "DPI/GOV/NIA/a/b"])
def test_an_identity_subsystem_that_is_not_a_subsystem_is_refused(value: str) -> None:
    with pytest.raises(SettingsError, match="DPI_IDENTITY_SUBSYSTEM"):
        Settings.from_environment({"DPI_IDENTITY_SUBSYSTEM": value})


def test_the_sender_follows_the_settings() -> None:
    assert isinstance(configured_sender(Settings()), ConsoleOtpSender)
    gateway = configured_sender(Settings(otp_sender="http", sms_gateway_url="https://sms.gov.example/send"))
    assert isinstance(gateway, HttpSmsGatewaySender)


async def test_the_block_keeps_its_otp_key_and_purges_in_the_background(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rounds: list[int] = []
    original = OtpAuthenticator.purge

    async def counted(self: OtpAuthenticator) -> int:
        rounds.append(await original(self))
        return rounds[-1]

    monkeypatch.setattr(OtpAuthenticator, "purge", counted)
    settings = Settings(var_dir=tmp_path / "var")
    sent = MemoryOtpSender()
    block = identity_block(otp_sender=lambda _settings: sent, purge_interval_seconds=0.01)
    await migrate(settings, [block])
    app = create_app(settings, blocks=[block])
    async with serving(app):
        await asyncio.sleep(0.1)
    assert rounds, "the purge loop never ran"
    key = otp_key_path(settings)
    assert key.stat().st_size == 32
    assert key.stat().st_mode & 0o777 == 0o600


async def test_the_block_takes_its_otp_limits_from_its_policy(tmp_path: Path) -> None:
    """A load test raises the per-client limit through ``otp_policy``; here it is lowered to one code a
    minute, and the second person signing in through the same client is refused."""
    assert DEFAULT_OTP_POLICY.sends_per_client == 120
    assert DEFAULT_OTP_POLICY.client_window == timedelta(minutes=1)
    settings = Settings(var_dir=tmp_path / "var")
    sent = MemoryOtpSender()
    block = identity_block(otp_sender=lambda _settings: sent, otp_policy=OtpPolicy(sends_per_client=1))
    await migrate(settings, [block])
    engine = db.create_engine(settings.database)
    try:
        pseudonym_path, vid_path = key_paths(settings)
        register = PersonRegister(
            db.session_factory(engine),
            pseudonym_key=load_or_create_key(pseudonym_path),
            vid_key=load_or_create_key(vid_path),
        )
        people = await register.enrol_many(
            [amina(), {**youssef(), "phone": "+212661234567"}], operator_id=OPERATOR, channel="assisted"
        )
        await ClientRegistry(db.session_factory(engine)).add(
            {
                "client_id": "labour-portal",
                "client_name": "Labour portal",
                "redirect_uris": [REDIRECT],
                "sector": LABOUR,
                "scope": ["openid"],
                "require_pkce": False,
            }
        )
    finally:
        await engine.dispose()
    app = create_app(settings, blocks=[block])
    answers = []
    async with serving(app):
        for person in people:
            assert isinstance(person, dict)
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url=settings.public_url) as http:
                page = await http.get(
                    "/identity/authorize",
                    params={
                        "response_type": "code",
                        "client_id": "labour-portal",
                        "redirect_uri": REDIRECT,
                        "scope": "openid",
                        "state": "s",
                    },
                )
                action, csrf = form_of(page.text)
                answer = await http.post(action, data={"csrf_token": csrf, "identifier": person["uin"]})
                answers.append(answer.status_code)
    assert answers == [200, 400]
    assert len(sent.messages) == 1
