"""The consent block's background work while the app runs: write the system events of consents whose
validity ended (and of minors who came of age), sign the subjects' chain heads, and deliver the signed
notices waiting in the outbox.

Each step runs every few seconds and on its own: a failure is logged (its kind only, never a message
that could carry personal data) and the next round tries again; nothing here can stop the app.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Final

import httpx

from consent.chain import sign_heads
from consent.notifications import dispatch_once

if TYPE_CHECKING:
    from consent.block import ConsentRuntime

__all__ = ["STEPS", "lifespan", "run_once"]

STEPS: Final = ("sweep", "sign_heads", "dispatch")

_log = logging.getLogger("consent.background")


async def run_once(runtime: ConsentRuntime, client: httpx.AsyncClient) -> dict[str, bool]:
    """One round of every step; which of them completed."""
    context = runtime.context

    async def sweep() -> None:
        await runtime.service.sweep()

    async def sign() -> None:
        await sign_heads(context.sessions, context.keys.active(), issuer=runtime.service.issuer)

    async def dispatch() -> None:
        await dispatch_once(
            context.sessions,
            context.keys.active(),
            client,
            allow_private_networks=context.settings.allow_private_callbacks,
        )

    steps: dict[str, Callable[[], Awaitable[None]]] = {
        "sweep": sweep,
        "sign_heads": sign,
        "dispatch": dispatch,
    }
    completed: dict[str, bool] = {}
    for name, step in steps.items():
        try:
            await step()
        except asyncio.CancelledError:
            raise
        except Exception as error:
            # The type only: the message of a database or HTTP error can quote a subject's pseudonym.
            _log.warning(
                "consent background step failed",
                extra={
                    "event": "consent_background_failed",
                    "step": name,
                    "exception_type": type(error).__name__,
                },
            )
            completed[name] = False
        else:
            completed[name] = True
    return completed


@asynccontextmanager
async def lifespan(runtime: ConsentRuntime) -> AsyncIterator[None]:
    """Run :func:`run_once` every ``runtime.interval_seconds`` for as long as the app serves."""

    async def loop(client: httpx.AsyncClient) -> None:
        while True:
            await asyncio.sleep(runtime.interval_seconds)
            await run_once(runtime, client)

    async with runtime.webhook_client() as client:
        task = asyncio.create_task(loop(client), name="consent-background")
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
