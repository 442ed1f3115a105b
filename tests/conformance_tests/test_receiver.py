"""The callback receiver: records deliveries over real HTTP, wakes waiters, verifies RFC 9421 signatures."""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest

from conformance_tests import CallbackReceiver, CallbackTimeout, verify_callback_signature
from dpi.keys import SigningKey
from dpi.signing import SignatureError, sign_request


async def deliver(
    url: str, document: object, key: SigningKey | None = None, **headers: str
) -> httpx.Response:
    body = json.dumps(document).encode()
    sent = {"content-type": "application/json", **headers}
    if key is not None:
        sent |= sign_request("POST", url, sent, body, key)
    async with httpx.AsyncClient() as client:
        return await client.post(url, content=body, headers=sent)


async def test_a_signed_callback_is_received_and_verifies() -> None:
    key = SigningKey.generate()
    async with CallbackReceiver() as receiver:
        url = f"{receiver.url}/on-search"
        response = await deliver(url, {"message": {"correlation_id": "corr-1", "status": "succ"}}, key)
        message = await receiver.wait_for("corr-1", timeout=5)
    assert response.status_code == 202
    assert message.method == "POST"
    assert message.path == "/on-search"
    assert message.json()["message"]["status"] == "succ"
    assert verify_callback_signature(message, {"keys": [key.public_jwk()]}) == key.kid


async def test_a_waiter_is_woken_by_a_later_delivery() -> None:
    async with CallbackReceiver() as receiver:
        waiting = asyncio.create_task(receiver.wait_for(lambda m: m.path == "/notify", timeout=5))
        await deliver(f"{receiver.url}/other", {"n": 1})
        await deliver(f"{receiver.url}/notify", {"n": 2})
        message = await waiting
    assert message.json() == {"n": 2}
    assert [m.path for m in receiver.messages] == ["/other", "/notify"]


async def test_correlation_by_header() -> None:
    async with CallbackReceiver() as receiver:
        await deliver(receiver.url + "/x", {"n": 1}, **{"X-Correlation-Id": "abc"})
        message = await receiver.wait_for("abc", timeout=5)
    assert message.header("X-Correlation-Id") == "abc"


async def test_timeout_says_what_was_awaited() -> None:
    async with CallbackReceiver() as receiver:
        await deliver(receiver.url + "/x", {"message": {"correlation_id": "other"}})
        with pytest.raises(CallbackTimeout, match=r"correlation id 'expected'.*1 other message"):
            await receiver.wait_for("expected", timeout=0.2)


async def test_a_tampered_body_fails_verification() -> None:
    key = SigningKey.generate()
    async with CallbackReceiver() as receiver:
        url = receiver.url + "/on-search"
        body = json.dumps({"correlation_id": "c"}).encode()
        headers = {"content-type": "application/json"}
        headers |= sign_request("POST", url, headers, body, key)
        async with httpx.AsyncClient() as client:
            await client.post(url, content=body.replace(b'"c"', b'"d"'), headers=headers)
        message = await receiver.wait_for("d", timeout=5)
    with pytest.raises(SignatureError) as raised:
        verify_callback_signature(message, {"keys": [key.public_jwk()]})
    assert raised.value.reason_code == "auth.digest_mismatch"


async def test_an_unsigned_callback_fails_verification() -> None:
    async with CallbackReceiver() as receiver:
        await deliver(receiver.url + "/x", {"correlation_id": "u"})
        message = await receiver.wait_for("u", timeout=5)
    with pytest.raises(SignatureError) as raised:
        verify_callback_signature(message, {"keys": [SigningKey.generate().public_jwk()]})
    assert raised.value.reason_code == "auth.signature_missing"
