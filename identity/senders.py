"""How one-time codes reach a person: a one-method sender interface, an HTTP SMS-gateway sender, a console
sender for the demo and an in-memory one for tests.

Every sender takes the destination phone number in E.164 (https://www.itu.int/rec/T-REC-E.164), the text
of the message already written in the person's language, and that language (``en``, ``fr`` or ``ar``) for
gateways that pick an encoding or a sender id by language. A sender that cannot deliver raises
:class:`dpi.errors.DpiError` with reason code ``otp.delivery_failed``; the authenticator then leaves no
usable transaction behind. Senders never log the destination or the text: both are personal data, and the
text holds the code.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from typing import Final, Protocol, TextIO, runtime_checkable

import httpx

from dpi.errors import DpiError

__all__ = [
    "ConsoleOtpSender",
    "HttpSmsGatewaySender",
    "MemoryOtpSender",
    "OtpMessage",
    "OtpSender",
    "mask_phone",
]

_TIMEOUT: Final = 10.0


def mask_phone(phone: str) -> str:
    """A phone number with all but its first four and last two digits hidden: ``+2126•••••45``."""
    digits = phone.removeprefix("+")
    if len(digits) <= 6:
        return "•" * max(len(digits) - 2, 0) + digits[-2:]
    return "+" + digits[:4] + "•" * (len(digits) - 6) + digits[-2:]


@runtime_checkable
class OtpSender(Protocol):
    """Delivers one message holding a one-time code to a phone."""

    async def send(self, destination: str, text: str, language: str) -> None:
        """Deliver ``text`` to ``destination`` (E.164); raise ``DpiError("otp.delivery_failed")`` if not."""
        ...


@dataclass(frozen=True)
class OtpMessage:
    """A message a :class:`MemoryOtpSender` was asked to deliver."""

    destination: str
    text: str
    language: str


@dataclass
class MemoryOtpSender:
    """Keeps every message in :attr:`messages` instead of sending it; ``fail=True`` refuses them all."""

    messages: list[OtpMessage] = field(default_factory=list)
    fail: bool = False

    async def send(self, destination: str, text: str, language: str) -> None:
        if self.fail:
            raise DpiError("otp.delivery_failed")
        self.messages.append(OtpMessage(destination, text, language))


@dataclass
class ConsoleOtpSender:
    """Prints each message to standard output (``OTP for +2126•••••45: <text>``), for development and the
    demo, where the person reading the console plays the phone.

    Deliberately not the logging system: logs are shipped and kept, and must never hold a code.
    """

    stream: TextIO | None = None

    async def send(self, destination: str, text: str, language: str) -> None:
        print(f"OTP for {mask_phone(destination)}: {text}", file=self.stream or sys.stdout, flush=True)


class HttpSmsGatewaySender:
    """Sends each message through an SMS gateway's HTTP API: ``POST url`` with the JSON body
    ``{"to": destination, "text": text}``, and ``Authorization: Bearer <token>`` when a token is given.

    Any 2xx answer is a delivery accepted by the gateway. Another status, a timeout (10 seconds unless the
    given ``client`` says otherwise) or a transport error is ``otp.delivery_failed``. Pass ``client`` to
    share a connection pool or to test with ``httpx.MockTransport``; without one, each message opens its own.
    """

    def __init__(
        self, url: str, *, token: str | None = None, client: httpx.AsyncClient | None = None
    ) -> None:
        parsed = httpx.URL(url)
        if parsed.scheme not in ("http", "https") or not parsed.host:
            raise ValueError("an SMS gateway URL is an http(s) URL with a host")
        self.url = url
        self._token = token
        self._client = client

    async def send(self, destination: str, text: str, language: str) -> None:
        headers = {"Authorization": f"Bearer {self._token}"} if self._token else {}
        body = {"to": destination, "text": text}
        try:
            if self._client is not None:
                response = await self._client.post(self.url, json=body, headers=headers)
            else:
                async with httpx.AsyncClient(timeout=_TIMEOUT) as client:
                    response = await client.post(self.url, json=body, headers=headers)
        except httpx.HTTPError as error:
            raise DpiError("otp.delivery_failed") from error
        if not response.is_success:
            raise DpiError("otp.delivery_failed")
