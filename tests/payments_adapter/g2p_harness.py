"""A payments block serving only the G2P Connect disburse API, for tests: the server in front of a
provider, one registered sender (the social protection agency) with its key, and envelope builders."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

import payments_adapter
from dpi.app import DpiApp, create_app, migrate
from dpi.blocks import Block, BlockContext, ProfileClaim
from dpi.keys import SigningKey
from dpi.settings import Settings
from dpi.signing import sign_detached
from payments_adapter.contract import PaymentProvider
from payments_adapter.g2p.server import (
    DisburseServer,
    G2pSender,
    capabilities_entry,
    dispatch_once,
    routes,
    running,
)

__all__ = [
    "PAYER_FA",
    "SENDER_ID",
    "SYSTEM_ID",
    "Callbacks",
    "G2pTarget",
    "envelope",
    "g2p_target",
    "item",
]

SYSTEM_ID = "DPI/COM/WALLET1/payments"
SENDER_ID = "DPI/GOV/SPA/benefits"
PAYER_FA = "spa-stipends@wallet1"
MIGRATIONS = Path(payments_adapter.__file__).parent / "migrations"


def _time(moment: datetime | None = None) -> str:
    return (moment or datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def item(reference: str, amount: str = "1500.00", currency: str = "XOF", **extra: Any) -> dict[str, Any]:
    """A disburse_request item paying ``amount`` to a wallet from the agency's account."""
    return {
        "reference_id": reference,
        "payer_fa": PAYER_FA,
        "payee_fa": "0700123456@wallet1",
        "amount": amount,
        "currency_code": currency,
        **extra,
    }


def envelope(
    key: SigningKey, action: str, message: Mapping[str, Any], *, sign: bool = True, **header: Any
) -> dict[str, Any]:
    """A request envelope of the agency, signed with ``key``."""
    head = {
        "version": "0.1.0",
        "message_id": str(uuid.uuid4()),
        "timestamp": _time(),
        "action": action,
        "sender_id": SENDER_ID,
        "receiver_id": SYSTEM_ID,
        **header,
    }
    body: dict[str, Any] = {"header": head, "message": dict(message)}
    return {"signature": sign_detached(body, key), **body} if sign else body


def disburse(key: SigningKey, *items: Mapping[str, Any], transaction_id: str | None = None) -> dict[str, Any]:
    return envelope(
        key,
        "disburse",
        {"transaction_id": transaction_id or str(uuid.uuid4()), "disburse_request": list(items)},
    )


@dataclass
class Callbacks:
    """Deliveries the server made, received by a mock transport answering ``status``."""

    status: int = 200
    received: list[httpx.Request] = field(default_factory=list)

    def handler(self, request: httpx.Request) -> httpx.Response:
        self.received.append(request)
        return httpx.Response(self.status, json={"message": {"ack": {"status": "ACK"}}})

    def bodies(self, path_end: str) -> list[dict[str, Any]]:
        return [json.loads(r.content) for r in self.received if r.url.path.endswith(path_end)]

    def __iter__(self) -> Iterator[httpx.Request]:
        return iter(self.received)


@dataclass
class G2pTarget:
    app: DpiApp
    holder: dict[str, DisburseServer]
    key: SigningKey
    settings: Settings
    callbacks: Callbacks = field(default_factory=Callbacks)

    @property
    def server(self) -> DisburseServer:
        return self.holder["server"]

    def client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(transport=httpx.ASGITransport(app=self.app), base_url="http://testserver")

    async def post(self, path: str, document: Any, **headers: str) -> httpx.Response:
        async with self.client() as client:
            return await client.post(
                f"/payments/g2p{path}",
                content=json.dumps(document).encode() if not isinstance(document, bytes) else document,
                headers={"content-type": "application/json", **headers},
            )

    @asynccontextmanager
    async def opened(self) -> AsyncIterator[G2pTarget]:
        """The app ready for requests without its background tasks (the test drives the dispatcher)."""
        self.app.runtime.keys.ensure_active(self.settings.key_algorithm)
        try:
            yield self
        finally:
            await self.app.runtime.engine.dispose()
            self.app.runtime.telemetry.shutdown()

    async def dispatch(self, rounds: int = 1) -> None:
        """Rounds of the dispatcher, delivering to :attr:`callbacks`."""
        async with httpx.AsyncClient(transport=httpx.MockTransport(self.callbacks.handler)) as client:
            for _ in range(rounds):
                await dispatch_once(self.server, client)


def g2p_block(
    provider: PaymentProvider,
    senders: Mapping[str, G2pSender],
    holder: dict[str, DisburseServer],
    *,
    background: timedelta | None = None,
    name: str = "payments",
) -> Block:
    """The payments block as the G2P Connect server alone; ``background`` is the dispatcher's interval
    (None: the test drives the dispatcher)."""

    def build(context: BlockContext) -> Sequence[Any]:
        holder["server"] = DisburseServer.for_block(
            context, provider=provider, senders=senders, system_id=SYSTEM_ID
        )
        return routes(holder["server"])

    lifespan: Callable[[BlockContext], AbstractAsyncContextManager[None]] | None = None
    if background is not None:
        interval = background

        def lifespan(_context: BlockContext) -> AbstractAsyncContextManager[None]:
            return running(holder["server"], interval=interval)

    return Block(
        name=name,
        prefix="/payments",
        version="0.1.0",
        routes=build,
        lifespan=lifespan,
        migrations=MIGRATIONS,
        profiles=(ProfileClaim("payments-provider", "1.0.0"),),
        capabilities=lambda _settings: capabilities_entry(holder["server"]),
    )


async def g2p_target(
    var_dir: Path,
    provider: PaymentProvider,
    *,
    callback_url: str = "http://127.0.0.1:9/spa",
    background: timedelta | None = None,
    **overrides: Any,
) -> G2pTarget:
    """Our G2P Connect server in front of ``provider``, migrated, with the agency registered."""
    key = SigningKey.generate("EdDSA")
    senders = {
        SENDER_ID: G2pSender(SENDER_ID, {"keys": [key.public_jwk()]}, callback_url, (PAYER_FA,)),
    }
    holder: dict[str, DisburseServer] = {}
    block = g2p_block(provider, senders, holder, background=background)
    settings = Settings(var_dir=var_dir, **{"allow_private_callbacks": True, **overrides})
    await migrate(settings, [block])
    return G2pTarget(create_app(settings, blocks=[block]), holder, key, settings)
