"""OTP senders: the SMS gateway's request and every way it can fail, the console sender's line on standard
output (never in the logs), the in-memory sender, and the phone mask."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable

import httpx
import pytest

from dpi.errors import DpiError
from identity.senders import (
    ConsoleOtpSender,
    HttpSmsGatewaySender,
    MemoryOtpSender,
    OtpMessage,
    OtpSender,
    mask_phone,
)

GATEWAY = "https://sms.gateway.example/v1/messages"
PHONE = "+212612345645"
TEXT = "Your code is 493027. It expires in 5 minutes. Never share it."


def gateway_client(handler: Callable[[httpx.Request], httpx.Response]) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.MockTransport(handler))


async def test_gateway_posts_the_destination_and_text_with_the_bearer_token() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(202, json={"id": "msg-1"})

    async with gateway_client(handler) as client:
        await HttpSmsGatewaySender(GATEWAY, token="gateway-token", client=client).send(PHONE, TEXT, "en")
    assert len(seen) == 1
    request = seen[0]
    assert (request.method, str(request.url)) == ("POST", GATEWAY)
    assert request.headers["Authorization"] == "Bearer gateway-token"
    assert request.headers["Content-Type"] == "application/json"
    assert json.loads(request.content) == {"to": PHONE, "text": TEXT}


async def test_gateway_without_a_token_sends_no_authorization() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200)

    async with gateway_client(handler) as client:
        await HttpSmsGatewaySender(GATEWAY, client=client).send(PHONE, "نص", "ar")
    assert "Authorization" not in seen[0].headers
    assert json.loads(seen[0].content) == {"to": PHONE, "text": "نص"}


@pytest.mark.parametrize("status", [301, 400, 401, 403, 404, 429, 500, 502, 503])
async def test_gateway_answer_other_than_2xx_is_a_failed_delivery(status: int) -> None:
    async with gateway_client(lambda _request: httpx.Response(status)) as client:
        with pytest.raises(DpiError) as raised:
            await HttpSmsGatewaySender(GATEWAY, client=client).send(PHONE, TEXT, "en")
    assert raised.value.reason_code == "otp.delivery_failed"
    assert raised.value.status_code == 502


@pytest.mark.parametrize(
    "failure",
    [
        httpx.ReadTimeout("slow"),
        httpx.ConnectTimeout("slow"),
        httpx.ConnectError("refused"),
        httpx.RemoteProtocolError("broken"),
    ],
    ids=["read-timeout", "connect-timeout", "connect-error", "protocol-error"],
)
async def test_gateway_timeouts_and_transport_errors_are_failed_deliveries(failure: httpx.HTTPError) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise failure

    async with gateway_client(handler) as client:
        with pytest.raises(DpiError) as raised:
            await HttpSmsGatewaySender(GATEWAY, client=client).send(PHONE, TEXT, "en")
    assert raised.value.reason_code == "otp.delivery_failed"
    assert PHONE not in str(raised.value)
    assert TEXT not in str(raised.value)


@pytest.mark.parametrize("url", ["", "sms.gateway.example", "ftp://sms.gateway.example/", "https:///path"])
def test_gateway_url_must_be_http_with_a_host(url: str) -> None:
    with pytest.raises(ValueError, match="http"):
        HttpSmsGatewaySender(url)


async def test_console_sender_prints_a_masked_destination_and_never_logs(
    capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    await ConsoleOtpSender().send(PHONE, TEXT, "en")
    output = capsys.readouterr().out
    assert output == f"OTP for +2126••••••45: {TEXT}\n"
    assert PHONE not in output
    assert caplog.records == []


async def test_memory_sender_keeps_messages_and_can_refuse_them() -> None:
    sender = MemoryOtpSender()
    await sender.send(PHONE, TEXT, "fr")
    assert sender.messages == [OtpMessage(PHONE, TEXT, "fr")]
    refusing = MemoryOtpSender(fail=True)
    with pytest.raises(DpiError) as raised:
        await refusing.send(PHONE, TEXT, "fr")
    assert raised.value.reason_code == "otp.delivery_failed"
    assert refusing.messages == []


def test_every_sender_is_an_otp_sender() -> None:
    for sender in (MemoryOtpSender(), ConsoleOtpSender(), HttpSmsGatewaySender(GATEWAY)):
        assert isinstance(sender, OtpSender)


@pytest.mark.parametrize(
    ("phone", "masked"),
    [
        ("+212612345645", "+2126••••••45"),
        ("+33612345678", "+3361•••••78"),
        ("+2126123", "+2126•23"),
        ("+1234567", "+1234•67"),
        ("+123456", "••••56"),
        ("+12", "12"),
    ],
)
def test_mask_phone_keeps_only_the_first_four_and_last_two_digits(phone: str, masked: str) -> None:
    assert mask_phone(phone) == masked
