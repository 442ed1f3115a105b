"""The DCI callback dispatcher while the app runs: every few seconds, one round of
:func:`registry.dci.callbacks.dispatch_once`. A failed round is logged (its kind only, never a message
that could quote personal data) and the next round tries again; nothing here can stop the app."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

import httpx

from dpi.settings import Settings
from registry.dci.callbacks import dispatch_once

if TYPE_CHECKING:
    from registry.dci.api import DciRuntime

__all__ = ["running"]

_log = logging.getLogger("registry.dci")


async def _loop(runtime: DciRuntime, settings: Settings, interval_seconds: float) -> None:
    async with httpx.AsyncClient(follow_redirects=False) as client:
        while True:
            try:
                await dispatch_once(
                    runtime.searcher,
                    runtime.keys.active(),
                    client,
                    system_id=runtime.system_id,
                    allow_private_networks=settings.allow_private_callbacks,
                    clock=runtime.clock,
                )
            except asyncio.CancelledError:
                raise
            except Exception as error:
                _log.warning(
                    "DCI dispatch round failed",
                    extra={"event": "dci_dispatch_failed", "exception_type": type(error).__name__},
                )
            await asyncio.sleep(interval_seconds)


@asynccontextmanager
async def running(runtime: DciRuntime, settings: Settings, *, interval_seconds: float) -> AsyncIterator[None]:
    """Dispatch in the background for as long as the context is open."""
    task = asyncio.create_task(_loop(runtime, settings, interval_seconds))
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
