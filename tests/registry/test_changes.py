"""The change feed (``/registry/{code}/v1/changes?since=``): every new version in order, pages with a
cursor that never skips or repeats, versions too recent to be settled held back, read scopes required."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from litestar.testing import AsyncTestClient

import standards
from dpi.app import DpiApp, create_app, migrate
from dpi.settings import Settings
from registry.block import registry_block
from tests.consent.conftest import TokenIssuer
from tests.registry.conftest import sample


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@pytest.fixture
def issuer() -> TokenIssuer:
    return TokenIssuer()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def client(settings: Settings, issuer: TokenIssuer, clock: Clock) -> AsyncIterator[httpx.AsyncClient]:
    block = registry_block(
        token_verifier=lambda _settings: issuer.verifier(), clock=clock, dci_interval_seconds=0
    )
    await migrate(settings, [block])
    app: DpiApp = create_app(settings, blocks=[block])
    async with AsyncTestClient(app=app) as client:
        yield client


async def _create(client: httpx.AsyncClient, issuer: TokenIssuer, index: int) -> str:
    response = await client.post(
        "/registry/civil/v1/records",
        json={"document": sample("civil", index), "reason": "registration"},
        headers=issuer.headers("officer-17", "registry:civil:write"),
    )
    assert response.status_code == 201, response.text
    record_id: str = response.json()["record_id"]
    return record_id


async def test_the_feed_lists_every_version_once_in_order(
    client: httpx.AsyncClient, issuer: TokenIssuer, clock: Clock
) -> None:
    created = []
    for index in range(1, 6):
        created.append(await _create(client, issuer, index))
        clock.advance(1)
    writer = issuer.headers("officer-17", "registry:civil:write")
    deleted = await client.post(
        f"/registry/civil/v1/records/{created[0]}/deletion",
        json={"version": 1, "reason": "duplicate"},
        headers=writer,
    )
    assert deleted.status_code == 200
    reader = issuer.headers("DPI/GOV/MOL/jobseekers", "registry:civil:read:names-and-birth-date")

    settling = await client.get("/registry/civil/v1/changes", headers=reader)
    assert [item["record_id"] for item in settling.json()["items"]] == created[:1]  # the rest is too recent

    clock.advance(10)
    seen: list[tuple[str, int, str]] = []
    since: str | None = None
    while True:
        params = {"limit": "2", **({"since": since} if since else {})}
        page = await client.get("/registry/civil/v1/changes", params=params, headers=reader)
        assert page.status_code == 200, page.text
        body = page.json()
        standards.validator("registry-change-feed@1.0.0").check(body)
        seen += [(item["record_id"], item["version"], item["action"]) for item in body["items"]]
        since = body.get("next")
        if not body["more"]:
            break
    assert seen == [(record_id, 1, "created") for record_id in created] + [(created[0], 2, "deleted")]

    again = await client.get("/registry/civil/v1/changes", params={"since": since or ""}, headers=reader)
    assert again.json()["items"] == []
    assert again.json()["next"] == since
    later = await _create(client, issuer, 7)
    clock.advance(10)
    caught_up = await client.get("/registry/civil/v1/changes", params={"since": since or ""}, headers=reader)
    assert [item["record_id"] for item in caught_up.json()["items"]] == [later]

    from_time = await client.get(
        "/registry/civil/v1/changes", params={"since": "2026-11-23T10:00:02.5Z"}, headers=reader
    )
    assert [item["record_id"] for item in from_time.json()["items"]][:2] == created[3:5]


@pytest.mark.parametrize(
    ("params", "scopes", "status", "reason_code"),
    [
        ({}, (), 401, "auth.token_missing"),
        ({}, ("registry:social:read",), 403, "auth.scope_missing"),
        ({"since": "not a cursor"}, ("registry:civil:read",), 400, "request.invalid_parameter"),
        ({"since": "WzEsMiwzXQ"}, ("registry:civil:read",), 400, "request.invalid_parameter"),
        ({"limit": "0"}, ("registry:civil:read",), 400, "request.invalid_parameter"),
        ({"limit": "5000"}, ("registry:civil:read",), 400, "request.invalid_parameter"),
    ],
)
async def test_refusals(
    client: httpx.AsyncClient,
    issuer: TokenIssuer,
    params: dict[str, str],
    scopes: tuple[str, ...],
    status: int,
    reason_code: str,
) -> None:
    headers = issuer.headers("reader", *scopes) if scopes else {}
    response = await client.get("/registry/civil/v1/changes", params=params, headers=headers)
    assert response.status_code == status, response.text
    assert response.json()["reason_code"] == reason_code
