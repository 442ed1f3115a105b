"""Status by push: payment events from the kernel's outbox, delivered to webhooks, signed, retried.

Every item state change is announced by :func:`payments_adapter.service.move` on the outbox (topic
``payments.item.state``) in the transaction that makes it, one event per group of items that moved
together. :func:`dispatch_once` claims those events, POSTs each to every webhook registered for the
batch's programme (or for all programmes) as a compact JWS (RFC 7515,
https://www.rfc-editor.org/rfc/rfc7515) typed ``dpi-payments-event+jws`` over a ``payments-event``
document, with an HTTP message signature (RFC 9421, https://www.rfc-editor.org/rfc/rfc9421), and marks it
delivered when every webhook answered 2xx. Otherwise the event is retried later with exponential back-off
(to every webhook again: delivery is at least once, receivers deduplicate on ``event_id``, also sent as
``Idempotency-Key``). Redirects are never followed and a URL must pass the kernel's egress guard.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, Final

import httpx
from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from dpi import egress, outbox
from dpi.keys import SigningKey
from dpi.signing import sign_compact, sign_request
from payments_adapter.models import batches, webhooks
from payments_adapter.service import EVENT_TOPIC

__all__ = ["EVENT_JWS_TYPE", "WebhookRegistry", "dispatch_once"]

EVENT_JWS_TYPE: Final = "dpi-payments-event+jws"
_SEND_TIMEOUT: Final = 10
_MAX_BACKOFF: Final = timedelta(minutes=30)


def _now() -> datetime:
    return datetime.now(UTC)


class WebhookRegistry:
    """The webhooks that receive payment events."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    async def register(self, url: str, programme_id: str | None, actor: str) -> dict[str, Any]:
        webhook_id, now = str(uuid.uuid4()), _now()
        async with self.engine.begin() as connection:
            await connection.execute(
                insert(webhooks).values(
                    webhook_id=webhook_id,
                    url=url,
                    programme_id=programme_id,
                    created_by=actor,
                    created_at=now,
                )
            )
        return {
            "webhook_id": webhook_id,
            "url": url,
            "programme_id": programme_id,
            "created_at": now.isoformat(),
        }

    async def remove(self, webhook_id: str) -> bool:
        async with self.engine.begin() as connection:
            result = await connection.execute(
                update(webhooks)
                .where(webhooks.c.webhook_id == webhook_id, webhooks.c.deleted_at.is_(None))
                .values(deleted_at=_now())
            )
        return bool(result.rowcount)

    async def active(self) -> list[Any]:
        async with self.engine.connect() as connection:
            return list(await connection.execute(select(webhooks).where(webhooks.c.deleted_at.is_(None))))


async def _send(
    client: httpx.AsyncClient, key: SigningKey, url: str, event: dict[str, Any], allow_private: bool
) -> bool:
    body = sign_compact(event, key, typ=EVENT_JWS_TYPE).encode("ascii")
    try:
        target = httpx.URL(url)
        if await egress.refusal(target, allow_private_networks=allow_private) is not None:
            return False
        headers = {"Content-Type": "application/jose", "Idempotency-Key": event["event_id"]}
        target_uri = f"{target.scheme}://{target.netloc.decode('ascii')}{target.raw_path.decode('ascii')}"
        headers.update(sign_request("POST", target_uri, headers, body, key))
        async with asyncio.timeout(_SEND_TIMEOUT):
            response = await client.post(target, content=body, headers=headers, follow_redirects=False)
        return response.is_success
    except (TimeoutError, httpx.HTTPError, httpx.InvalidURL, OSError, UnicodeError):
        return False


async def dispatch_once(
    engine: AsyncEngine,
    sessions: async_sessionmaker[AsyncSession],
    key: SigningKey,
    client: httpx.AsyncClient,
    *,
    allow_private_networks: bool = False,
    limit: int = 100,
) -> tuple[int, int]:
    """Deliver up to ``limit`` due events; returns (delivered, failed)."""
    async with sessions.begin() as session:
        messages = await outbox.claim(session, topics=[EVENT_TOPIC], limit=limit)
    if not messages:
        return 0, 0
    hooks = await WebhookRegistry(engine).active()
    batch_ids = sorted({str(message.payload.get("batch_id")) for message in messages})
    async with engine.connect() as connection:
        programme_of = {
            row.batch_id: row.programme_id
            for row in await connection.execute(
                select(batches.c.batch_id, batches.c.programme_id).where(batches.c.batch_id.in_(batch_ids))
            )
        }
    delivered: list[int] = []
    failed: list[tuple[int, int]] = []
    for message in messages:
        event = {"event_id": f"payments-event-{message.id}", **message.payload}
        programme = programme_of.get(str(message.payload.get("batch_id")))
        targets: Sequence[Any] = [hook for hook in hooks if hook.programme_id in (None, programme)]
        answers = await asyncio.gather(
            *(_send(client, key, hook.url, event, allow_private_networks) for hook in targets)
        )
        if all(answers):
            delivered.append(message.id)
        else:
            failed.append((message.id, message.attempts))
    now = _now()
    async with sessions.begin() as session:
        await outbox.mark_delivered(session, delivered)
        for message_id, attempts in failed:
            backoff = min(_MAX_BACKOFF, timedelta(seconds=2) * (2 ** min(attempts, 16)))
            await outbox.mark_failed(session, message_id, "a webhook did not acknowledge", now + backoff)
    return len(delivered), len(failed)
