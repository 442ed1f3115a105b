"""The composition root: one ASGI application serving the kernel endpoints and the chosen blocks.

Every process serves ``/healthz``, ``/readyz``, ``/.well-known/dpi-capabilities``,
``/.well-known/jwks.json``, ``/openapi.json`` and the schema validation service
``/standards/validate``; each block is mounted under its own prefix.
"""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as distribution_version
from typing import Any, Final

from litestar import Litestar, Request, Response, Router, get, post
from litestar.datastructures import State
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

import standards
from dpi import db
from dpi.blocks import Block, BlockContext, discover_blocks, select_blocks
from dpi.contract import Contract
from dpi.errors import DpiError, handle_exception, read_json
from dpi.keys import KeyStore
from dpi.openapi import build_openapi
from dpi.settings import Settings
from dpi.telemetry import RequestContext, Telemetry
from dpi.types import Receive, Scope, Send

__all__ = ["DpiApp", "create_app", "migrate", "migration_state", "package_version"]

_READINESS_TIMEOUT_SECONDS: Final = 3.0
_JWKS_CACHE_SECONDS: Final = 5.0
_MAX_REPORTED_ISSUES: Final = 100
_JWS_ALGORITHMS: Final = ["EdDSA", "ES256", "PS256"]
_HTTP_SIGNATURE_ALGORITHMS: Final = ["ed25519", "ecdsa-p256-sha256", "rsa-pss-sha512"]
PLATFORM_PROFILE: Final = {"name": "platform", "version": "1.0.0"}


@functools.cache
def package_version() -> str:
    """The installed version of the dpi-blocks distribution (read once: reading it parses metadata files,
    and ``/healthz`` answers with it)."""
    try:
        return distribution_version("dpi-blocks")
    except PackageNotFoundError:
        return "0.0.0"


@dataclass
class Runtime:
    """What the kernel's handlers need, kept on the app state."""

    settings: Settings
    blocks: list[Block]
    engine: AsyncEngine
    keys: KeyStore
    telemetry: Telemetry
    openapi: dict[str, Any] | None = None
    _jwks: tuple[float, dict[str, Any]] | None = None

    def published_keys(self) -> dict[str, Any]:
        """The JWKS, re-read from the key store at most every few seconds.

        Reading the store parses every key file; a short cache keeps that off a hot endpoint while
        a rotation made by another process still shows within seconds.
        """
        now = time.monotonic()
        if self._jwks is None or now - self._jwks[0] > _JWKS_CACHE_SECONDS:
            self._jwks = (now, self.keys.jwks())
        return self._jwks[1]


def _runtime(request: Request[Any, Any, Any]) -> Runtime:
    runtime = request.app.state["runtime"]
    assert isinstance(runtime, Runtime)
    return runtime


@get("/healthz", opt=Contract("Liveness: the process answers", {200: "health"}, tags=("platform",)).as_opt())
async def healthz(request: Request[Any, Any, Any]) -> dict[str, Any]:
    return {
        "status": "pass",
        "version": package_version(),
        "service": _runtime(request).settings.service_name,
    }


Check = tuple[str, dict[str, str]]


def _passed(name: str) -> Check:
    return name, {"status": "pass"}


def _failed(name: str, message: str) -> Check:
    return name, {"status": "fail", "message": message}


async def _database_check(runtime: Runtime) -> Check:
    try:
        async with asyncio.timeout(_READINESS_TIMEOUT_SECONDS):
            async with runtime.engine.connect() as connection:
                await connection.execute(text("SELECT 1"))
    except Exception as error:  # any failure to reach the database means "not ready"
        return _failed("database", f"unreachable ({type(error).__name__})")
    return _passed("database")


async def _migrations_check(runtime: Runtime) -> Check:
    locations = [block.migrations for block in runtime.blocks if block.migrations is not None]
    try:
        async with asyncio.timeout(_READINESS_TIMEOUT_SECONDS):
            state = await db.migration_state(runtime.engine, locations)
    except Exception as error:  # an unreadable version table is "not ready", never a 500
        return _failed("migrations", f"version table unreadable ({type(error).__name__})")
    if not state.is_current:
        pending = ", ".join(sorted(state.pending)) or "unknown revisions applied"
        return _failed("migrations", f"pending: {pending}")
    return _passed("migrations")


def _keys_check(runtime: Runtime) -> Check:
    try:
        runtime.keys.active()
    except Exception as error:  # a missing or unreadable key store cannot sign anything
        return _failed("signing_keys", f"no usable active key ({type(error).__name__})")
    return _passed("signing_keys")


@get(
    "/readyz",
    opt=Contract(
        "Readiness: database reachable, migrations current, a signing key active",
        {200: "readiness", 503: "readiness"},
        tags=("platform",),
    ).as_opt(),
)
async def readyz(request: Request[Any, Any, Any]) -> Response[dict[str, Any]]:
    runtime = _runtime(request)
    database = await _database_check(runtime)
    checks = dict([database])
    if database[1]["status"] == "pass":
        checks.update([await _migrations_check(runtime)])
    checks.update([_keys_check(runtime)])
    ready = all(check["status"] == "pass" for check in checks.values())
    return Response(
        {"status": "ready" if ready else "not_ready", "checks": checks},
        status_code=200 if ready else 503,
    )


def capabilities_document(runtime: Runtime) -> dict[str, Any]:
    """The ``capabilities`` document: the platform profile plus what each loaded block declares."""
    settings = runtime.settings
    system: dict[str, Any] = {"name": "dpi-blocks", "version": package_version()}
    if settings.member_id is not None:
        system["member_id"] = settings.member_id
    profiles = [PLATFORM_PROFILE]
    for block in runtime.blocks:
        profiles += [claim.as_document() for claim in block.profiles if claim.as_document() not in profiles]
    return {
        "capabilities_version": "1.0.0",
        "system": system,
        "profiles": profiles,
        "blocks": [block.capability_entry(settings) for block in runtime.blocks],
        "schemas": [
            f"{name}@{version}"
            for name in standards.schema_names()
            for version in standards.schema_versions(name)
        ],
        "signature": {
            "jws_algorithms": _JWS_ALGORITHMS,
            "http_signature_algorithms": _HTTP_SIGNATURE_ALGORITHMS,
            "jwks_uri": f"{settings.public_url}/.well-known/jwks.json",
        },
        "endpoints": {"openapi": "/openapi.json", "health": "/healthz", "readiness": "/readyz"},
    }


@get(
    "/.well-known/dpi-capabilities",
    opt=Contract(
        "What this system implements: profiles, blocks, schemas, algorithms",
        {200: "capabilities"},
        tags=("platform",),
    ).as_opt(),
)
async def capabilities(request: Request[Any, Any, Any]) -> dict[str, Any]:
    return capabilities_document(_runtime(request))


@get(
    "/.well-known/jwks.json",
    opt=Contract(
        "Public signing keys (RFC 7517), including rotated keys still in their grace period",
        {200: "jwks"},
        tags=("platform",),
    ).as_opt(),
)
async def jwks(request: Request[Any, Any, Any]) -> dict[str, Any]:
    return _runtime(request).published_keys()


@get(
    "/openapi.json",
    opt=Contract("This OpenAPI 3.1 document", {200: "openapi-document"}, tags=("platform",)).as_opt(),
)
async def openapi(request: Request[Any, Any, Any]) -> dict[str, Any]:
    runtime = _runtime(request)
    if runtime.openapi is None:
        runtime.openapi = build_openapi(
            request.app, title="dpi-blocks", version=package_version(), server_url="/"
        )
    return runtime.openapi


@post(
    "/standards/validate",
    status_code=200,
    opt=Contract(
        "Validate a document against a published schema; every problem with its JSON pointer",
        {200: "validation-report"},
        request="validation-request",
        tags=("standards",),
        errors=(400, 404, 413, 415, 422, 500),
    ).as_opt(),
)
async def validate_document(request: Request[Any, Any, Any]) -> dict[str, Any]:
    body = await read_json(request, "validation-request")
    reference: str = body["schema"]
    try:
        checker = standards.validator(reference)
    except standards.SchemaNotFound:
        raise DpiError("schema.not_found", f"no published schema {reference}") from None
    issues = checker.issues(body["instance"], limit=_MAX_REPORTED_ISSUES)
    return {
        "schema": f"{checker.name}@{checker.version}",
        "valid": not issues,
        "issues": [
            {
                "pointer": issue.pointer,
                "reason_code": issue.reason_code,
                "message": issue.message,
                "keyword": issue.keyword,
            }
            for issue in issues
        ],
    }


class DpiApp:
    """The ASGI application: the request-context layer around the Litestar app."""

    def __init__(self, litestar: Litestar, runtime: Runtime) -> None:
        self.litestar = litestar
        self.runtime = runtime
        self._asgi = RequestContext(litestar, runtime.telemetry)  # type: ignore[arg-type]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self._asgi(scope, receive, send)


async def migrate(settings: Settings, blocks: Sequence[Block]) -> db.MigrationState:
    """Apply the kernel's and ``blocks``' pending migrations through a short-lived engine of its own."""
    engine = db.create_engine(settings.database)
    try:
        return await db.upgrade(
            engine, [block.migrations for block in blocks if block.migrations is not None]
        )
    finally:
        await engine.dispose()


async def migration_state(settings: Settings, blocks: Sequence[Block]) -> db.MigrationState:
    """Which revisions are applied and which the kernel and ``blocks`` expect."""
    engine = db.create_engine(settings.database)
    try:
        return await db.migration_state(
            engine, [block.migrations for block in blocks if block.migrations is not None]
        )
    finally:
        await engine.dispose()


def create_app(settings: Settings | None = None, blocks: Sequence[Block] | None = None) -> DpiApp:
    """Assemble the application for ``settings`` with ``blocks`` (default: every installed block,
    narrowed by ``DPI_BLOCKS``)."""
    settings = settings or Settings.from_environment()
    available = list(blocks) if blocks is not None else discover_blocks()
    chosen = select_blocks(available, settings.blocks)
    engine = db.create_engine(settings.database)
    runtime = Runtime(
        settings=settings,
        blocks=chosen,
        engine=engine,
        keys=KeyStore(settings.key_directory),
        telemetry=Telemetry.from_settings(settings),
    )
    context = BlockContext(
        settings=settings, engine=engine, sessions=db.session_factory(engine), keys=runtime.keys
    )

    @asynccontextmanager
    async def lifespan(_app: Litestar) -> AsyncIterator[None]:
        runtime.keys.ensure_active(settings.key_algorithm)
        try:
            async with AsyncExitStack() as stack:
                for block in chosen:
                    if block.lifespan is not None:
                        await stack.enter_async_context(block.lifespan(context))
                yield
        finally:
            await engine.dispose()
            runtime.telemetry.shutdown()

    routers = [Router(path=block.prefix, route_handlers=list(block.routes(context))) for block in chosen]
    litestar = Litestar(
        route_handlers=[healthz, readyz, capabilities, jwks, openapi, validate_document, *routers],
        exception_handlers={Exception: handle_exception},
        request_max_body_size=settings.max_body_bytes,
        openapi_config=None,
        lifespan=[lifespan],
        state=State({"runtime": runtime}),
        logging_config=None,
    )
    return DpiApp(litestar, runtime)


def application_from_environment() -> DpiApp:
    """Factory the server's worker processes call: settings from the environment."""
    from dpi.telemetry import configure_logging

    settings = Settings.from_environment()
    configure_logging(settings.log_level)
    return create_app(settings)
