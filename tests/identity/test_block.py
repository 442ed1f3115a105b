"""The identity block's wiring: the configured OTP sender, its key file, and the purge loop."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from dpi.app import create_app, migrate
from dpi.settings import Settings
from identity.authentication import OtpAuthenticator
from identity.block import configured_sender, identity_block, otp_key_path
from identity.senders import ConsoleOtpSender, HttpSmsGatewaySender, MemoryOtpSender
from tests.serving import serving


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
