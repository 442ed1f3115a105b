"""Deliberately non-conformant payment providers: our G2P Connect server with exactly one thing broken,
by an ASGI middleware around the app or by a patched piece of the server."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import pytest
from sqlalchemy import delete
from sqlalchemy.ext.asyncio import AsyncSession

from dpi import egress
from dpi.keys import SigningKey
from dpi.models import OutboxMessage
from dpi.types import Receive, Scope, Send
from payments_adapter.g2p import messages, server
from payments_adapter.g2p.models import G2pItemRow

__all__ = [
    "NoAcknowledgement",
    "callback_never_sent",
    "duplicates_accepted",
    "signed_with_another_key",
    "status_reports_unknown_as_paid",
]


class NoAcknowledgement:
    """Takes disburse requests with 202 and an empty body: no ACK, and nothing behind it."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"].endswith("/g2p/disburse"):
            body = json.dumps({"message": {}}).encode()
            await send(
                {
                    "type": "http.response.start",
                    "status": 202,
                    "headers": [
                        (b"content-type", b"application/json"),
                        (b"content-length", b"%d" % len(body)),
                    ],
                }
            )
            await send({"type": "http.response.body", "body": body})
            return
        await self.app(scope, receive, send)


def signed_with_another_key(monkeypatch: pytest.MonkeyPatch) -> None:
    """Signs its callbacks and answers with a key it does not publish."""
    stranger = SigningKey.generate("EdDSA")
    real = messages.signed

    def signed(header: Mapping[str, Any], message: Mapping[str, Any], key: SigningKey) -> dict[str, Any]:
        return real(header, message, stranger)

    monkeypatch.setattr(messages, "signed", signed)


def duplicates_accepted(monkeypatch: pytest.MonkeyPatch) -> None:
    """Forgets the items of earlier requests when a reference id comes again, and takes it as new."""
    real = server._admit

    async def admit(session: AsyncSession, target: Any, sender: Any, received: Any, now: Any) -> Any:
        references = [str(item["reference_id"]) for item in received.message["disburse_request"]]
        await session.execute(
            delete(G2pItemRow).where(
                G2pItemRow.sender_id == sender.sender_id, G2pItemRow.reference_id.in_(references)
            )
        )
        return await real(session, target, sender, received, now)

    monkeypatch.setattr(server, "_admit", admit)


def callback_never_sent(monkeypatch: pytest.MonkeyPatch) -> None:
    """Marks its callbacks delivered without sending them."""

    async def post_signed(*_args: Any, **_kwargs: Any) -> None:
        return None

    monkeypatch.setattr(egress, "post_signed", post_signed)


def status_reports_unknown_as_paid(monkeypatch: pytest.MonkeyPatch) -> None:
    """Answers a status query about a reference it never received as paid."""
    real = server._on_status

    async def on_status(target: Any, client: Any, message: OutboxMessage, tally: Any) -> None:
        message.payload = {
            **message.payload,
            "answers": [
                {k: v for k, v in {**answer, "status": "SUCC"}.items() if not k.startswith("status_reason")}
                for answer in message.payload["answers"]
            ],
        }
        await real(target, client, message, tally)

    monkeypatch.setattr(server, "_on_status", on_status)
