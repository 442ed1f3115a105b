"""Run an app's lifespan in the test's own event loop, as a server would.

Litestar's test clients start the lifespan in a portal thread with a loop of its own; requests sent
through ``httpx.ASGITransport`` then run in the test's loop. Background tasks and requests would share
the database pool across two loops, which asyncpg does not survive. Everything here stays in one loop.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from litestar import Litestar

from dpi.app import DpiApp


def _framework_app(app: Any) -> Litestar | None:
    while app is not None:
        if isinstance(app, DpiApp):
            return app.litestar
        if isinstance(app, Litestar):
            return app
        app = getattr(app, "app", None)
    return None


@asynccontextmanager
async def serving(app: Any) -> AsyncIterator[None]:
    """Start and stop ``app`` (a DpiApp, a Litestar app, or a middleware wrapping one) around the block;
    a bare ASGI callable without a framework inside has no lifespan to run."""
    framework = _framework_app(app)
    if framework is None:
        yield
        return
    async with framework.lifespan():
        yield
