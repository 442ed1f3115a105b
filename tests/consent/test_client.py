"""The consent client contract, over HTTP and in-process (one table, both implementations), and the
caching checker: what it keeps, what it never keeps, and that a committed change reaches it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from typing import Any

import asyncpg
import httpx
import pytest
from litestar import Litestar, Request, Response, post
from litestar.testing import AsyncTestClient

from consent.block import consent_block
from consent.checks import ConsentChecker, Decision
from consent.client import (
    CHECKS_PATH,
    CachingConsentChecker,
    ConsentClient,
    HttpConsentClient,
    InProcessConsentClient,
)
from consent.lifecycle import Action, ActorRole, Channel
from consent.service import Actor
from dpi.app import create_app, migrate
from dpi.errors import DpiError, handle_exception, read_json
from dpi.settings import Settings
from tests.consent.conftest import TokenIssuer
from tests.consent.test_checks import (
    AMINA,
    DENIALS,
    INVALID,
    Scenario,
    World,
    _expired,
    _reconfirmation,
    _unanswered_request_expired,
    assert_valid_decision,
    check_request,
    world,
)

__all__ = ["world"]

TOKEN = "checks-test-token"
EXCHANGE = "DPI/GOV/EXCHANGE/gateway"


def checks_app(checker: ConsentChecker) -> Litestar:
    """The check route's contract around a checker: bearer token, ``consent-check-request`` in,
    ``consent-check-decision`` out with ``Cache-Control`` saying whether it may be kept."""

    @post(CHECKS_PATH, status_code=200)
    async def checks(request: Request[Any, Any, Any]) -> Response[dict[str, Any]]:
        if request.headers.get("authorization") != f"Bearer {TOKEN}":
            raise DpiError("auth.token_missing")
        decision = await checker.decide(await read_json(request, "consent-check-request"))
        return Response(
            decision.document, headers={"Cache-Control": "private" if decision.cacheable else "no-store"}
        )

    return Litestar([checks], exception_handlers={Exception: handle_exception})


async def _token() -> str:
    return TOKEN


# Scenarios that move the test clock, which the served block (on the real clock) cannot see.
_CLOCKED = {_reconfirmation, _expired, _unanswered_request_expired}


@pytest.fixture(params=["in-process", "http", "http-consent-block"])
async def client(request: pytest.FixtureRequest, world: World) -> AsyncIterator[ConsentClient]:
    if request.param == "in-process":
        yield InProcessConsentClient(world.checker)
        return
    if request.param == "http-consent-block":
        if request.node.callspec.params.get("scenario") in _CLOCKED:
            pytest.skip("the served block runs on the real clock")
        # The block's own route, served by the kernel app over the same database.
        issuer = TokenIssuer()
        block = consent_block(
            token_verifier=lambda _settings: issuer.verifier(), background_interval_seconds=3600.0
        )
        settings: Settings = request.getfixturevalue("settings")
        await migrate(settings, [block])

        async def token() -> str:
            return issuer.token("exchange-gateway", "consent:check", member=EXCHANGE)

        async with AsyncTestClient(app=create_app(settings, blocks=[block])) as served:
            yield HttpConsentClient(str(served.base_url), client=served, token=token)
        return
    transport = httpx.ASGITransport(app=checks_app(world.checker))
    async with httpx.AsyncClient(transport=transport, base_url="http://consent.test") as http:
        yield HttpConsentClient("http://consent.test", client=http, token=_token)


# --- the contract, for both implementations -----------------------------------------------------


async def test_contract_permit(world: World, client: ConsentClient) -> None:
    await world.agreement()
    consent_id = await world.approved()

    decision = await client.check(check_request())

    assert_valid_decision(decision)
    assert (decision["decision"], decision["consent_id"]) == ("permit", consent_id)
    assert decision["permitted_fields"] == ["/names", "/date_of_birth"]


@pytest.mark.parametrize(
    ("scenario", "reason_code"),
    [pytest.param(scenario, reason, id=name) for name, scenario, reason, _ in DENIALS],
)
async def test_contract_deny(
    world: World, client: ConsentClient, scenario: Scenario, reason_code: str
) -> None:
    request = await scenario(world)

    decision = await client.check(request)

    assert_valid_decision(decision)
    assert (decision["decision"], decision["reason_code"]) == ("deny", reason_code)


@pytest.mark.parametrize(
    ("request_body", "pointer"),
    # Every bad input is tested against the checker in test_checks; here one of each kind of problem.
    [pytest.param(body, pointer, id=name) for name, body, pointer in INVALID[::3]],
)
async def test_contract_bad_input(client: ConsentClient, request_body: Any, pointer: str) -> None:
    with pytest.raises(DpiError) as refused:
        await client.check(request_body)

    assert refused.value.reason_code == "request.invalid"
    assert pointer in {detail.pointer for detail in refused.value.details}


async def test_contract_concurrent_frequency(world: World, client: ConsentClient) -> None:
    await world.agreement(frequency={"max_accesses": 3, "period_days": 1})
    await world.approved()

    decisions = await asyncio.gather(*(client.check(check_request()) for _ in range(12)))

    assert [decision["decision"] for decision in decisions].count("permit") == 3


# --- HTTP specifics --------------------------------------------------------------------------------


async def test_http_without_a_token_is_refused(world: World) -> None:
    transport = httpx.ASGITransport(app=checks_app(world.checker))
    async with httpx.AsyncClient(transport=transport) as http:
        client = HttpConsentClient("http://consent.test/", client=http)
        with pytest.raises(DpiError) as refused:
            await client.check(check_request())

    assert refused.value.reason_code == "auth.token_missing"


@pytest.mark.parametrize(
    ("response", "reason_code"),
    [
        pytest.param(httpx.Response(200, json={"decision": "permit"}), "internal.error", id="not a decision"),
        pytest.param(httpx.Response(502, text="<html>bad gateway</html>"), "internal.error", id="not JSON"),
        pytest.param(
            httpx.Response(500, json={"reason_code": "no.such_code", "message": "x"}),
            "internal.error",
            id="unknown reason code",
        ),
        pytest.param(
            httpx.Response(503, json={"reason_code": "service.not_ready", "message": "x", "details": []}),
            "service.not_ready",
            id="the server's own refusal",
        ),
    ],
)
async def test_http_answers_that_are_not_decisions_fail_closed(
    response: httpx.Response, reason_code: str
) -> None:
    async with httpx.AsyncClient(transport=httpx.MockTransport(lambda _request: response)) as http:
        client = HttpConsentClient("http://consent.test", client=http)
        with pytest.raises(DpiError) as refused:
            await client.check(check_request())

    assert refused.value.reason_code == reason_code


async def test_http_unreachable_service_is_not_ready() -> None:
    def unreachable(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    async with httpx.AsyncClient(transport=httpx.MockTransport(unreachable)) as http:
        client = HttpConsentClient("http://consent.test", client=http)
        with pytest.raises(DpiError) as refused:
            await client.check(check_request())

    assert refused.value.reason_code == "service.not_ready"


async def test_http_sends_the_request_to_the_check_route_with_the_bearer_token() -> None:
    seen: list[httpx.Request] = []
    permit = {"decision": "deny", "reason_code": "consent.not_found", "permitted_fields": []}

    def record(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json=permit)

    async with (
        httpx.AsyncClient(transport=httpx.MockTransport(record)) as http,
        HttpConsentClient("https://consent.example/base/", client=http, token=_token) as client,
    ):
        await client.check(check_request())

    assert str(seen[0].url) == "https://consent.example/base/consent/v1/checks"
    assert seen[0].headers["authorization"] == f"Bearer {TOKEN}"


# --- the cache -------------------------------------------------------------------------------------


class Counting:
    """An inner checker that counts the checks reaching it."""

    def __init__(self, inner: ConsentChecker) -> None:
        self.inner = inner
        self.calls = 0

    async def decide(self, request: Mapping[str, Any]) -> Decision:
        self.calls += 1
        return await self.inner.decide(request)

    async def check(self, request: Mapping[str, Any]) -> dict[str, Any]:
        return (await self.decide(request)).document


def caching(world: World, inner: ConsentClient | None = None, **options: Any) -> CachingConsentChecker:
    cache = CachingConsentChecker(inner or world.checker, clock=world.clock.seconds, **options)
    cache.attach(world.service)
    return cache


async def test_a_repeated_check_is_answered_from_memory(world: World) -> None:
    await world.agreement()
    await world.approved()
    counting = Counting(world.checker)
    cache = caching(world, counting)

    decisions = [await cache.check(check_request()) for _ in range(5)]

    assert counting.calls == 1
    assert all(decision == decisions[0] for decision in decisions)
    assert decisions[0]["decision"] == "permit"


async def test_a_cached_decision_cannot_be_changed_by_its_caller(world: World) -> None:
    await world.agreement()
    await world.approved()
    cache = caching(world)
    first = await cache.check(check_request())
    first["decision"] = "deny"
    first["permitted_fields"].append("/phone")

    again = await cache.check(check_request())

    assert (again["decision"], again["permitted_fields"]) == ("permit", ["/names", "/date_of_birth"])


@pytest.mark.parametrize(
    ("action", "actor", "reason_code"),
    [
        (Action.WITHDRAW, Actor(ActorRole.SUBJECT, AMINA), "consent.withdrawn"),
        (Action.PAUSE, Actor(ActorRole.SUBJECT, AMINA), "consent.paused"),
        (Action.REVOKE, Actor(ActorRole.CONTROLLER, "DPI/GOV/MOL/jobseekers"), "consent.revoked"),
        (Action.INVALIDATE, Actor(ActorRole.AUTHORITY, "DPI/GOV/DPA/supervision"), "consent.invalidated"),
    ],
)
async def test_after_a_committed_change_the_cache_denies_at_once(
    world: World, action: Action, actor: Actor, reason_code: str
) -> None:
    await world.agreement()
    consent_id = await world.approved()
    cache = caching(world)
    assert (await cache.check(check_request()))["decision"] == "permit"

    await world.act(consent_id, action, actor)

    assert (await cache.check(check_request()))["reason_code"] == reason_code


async def test_a_cached_deny_gives_way_to_an_approval(world: World) -> None:
    await world.agreement()
    consent_id = await world.requested()
    cache = caching(world)
    assert (await cache.check(check_request()))["reason_code"] == "consent.pending"
    agreement = await world.service.agreement("mol-jobseeker-registration")

    await world.service.act(
        consent_id,
        Action.APPROVE,
        Actor(ActorRole.SUBJECT, AMINA),
        channel=Channel.WEB,
        notice={"language": "en", "hash": agreement["notices"]["en"]["hash"]},
    )

    assert (await cache.check(check_request()))["decision"] == "permit"


async def test_a_consent_known_only_by_id_drops_every_cached_deny(world: World) -> None:
    await world.agreement()
    cache = CachingConsentChecker(world.checker, clock=world.clock.seconds)
    assert (await cache.check(check_request()))["reason_code"] == "consent.not_found"
    consent_id = await world.approved()

    # What a notification from another process carries: the consent id only.
    cache.invalidate(consent_id)

    assert (await cache.check(check_request()))["decision"] == "permit"


async def test_a_frequency_limited_consent_always_reaches_the_checker(world: World) -> None:
    await world.agreement(frequency={"max_accesses": 3, "period_days": 1})
    await world.approved()
    counting = Counting(world.checker)
    cache = caching(world, counting)

    decisions = [await cache.check(check_request()) for _ in range(5)]

    assert [decision["decision"] for decision in decisions] == ["permit"] * 3 + ["deny"] * 2
    assert counting.calls == 5


async def test_a_cached_permit_ends_with_its_consent(world: World) -> None:
    await world.agreement(max_validity_days=10)
    await world.approved()
    cache = caching(world, ttl_seconds=30 * 86400)
    assert (await cache.check(check_request()))["decision"] == "permit"

    world.clock.advance(days=10)

    assert (await cache.check(check_request()))["reason_code"] == "consent.expired"


async def test_entries_live_no_longer_than_the_ttl(world: World) -> None:
    await world.agreement()
    await world.approved()
    counting = Counting(world.checker)
    cache = caching(world, counting, ttl_seconds=5)
    await cache.check(check_request())

    world.clock.advance(seconds=6)
    await cache.check(check_request())

    assert counting.calls == 2


async def test_the_cache_keeps_at_most_max_entries(world: World) -> None:
    await world.agreement()
    cache = caching(world, max_entries=3)

    for index in range(5):
        await cache.check(check_request(subject=f"subject-{index:04d}-pseudonym"))

    assert len(cache) == 3


async def test_a_check_in_flight_across_a_change_is_not_kept(world: World) -> None:
    await world.agreement()
    consent_id = await world.approved()
    gate = asyncio.Event()

    class Slow:
        async def decide(self, request: Mapping[str, Any]) -> Decision:
            decision = await world.checker.decide(request)
            await gate.wait()
            return decision

        async def check(self, request: Mapping[str, Any]) -> dict[str, Any]:
            return (await self.decide(request)).document

    cache = caching(world, Slow())
    in_flight = asyncio.create_task(cache.check(check_request()))
    await asyncio.sleep(0.05)
    await world.act(consent_id, Action.WITHDRAW)
    gate.set()
    assert (await in_flight)["decision"] == "permit"  # decided before the withdrawal committed

    assert (await cache.check(check_request()))["reason_code"] == "consent.withdrawn"


@pytest.mark.parametrize(
    ("request_body", "pointer"), [pytest.param(body, pointer, id=name) for name, body, pointer in INVALID]
)
async def test_the_cache_refuses_bad_input_even_after_a_valid_hit(
    world: World, request_body: Any, pointer: str
) -> None:
    await world.agreement()
    await world.approved()
    cache = caching(world)
    await cache.check(check_request())

    with pytest.raises(DpiError) as refused:
        await cache.check(request_body)

    assert refused.value.reason_code == "request.invalid"


async def test_the_cache_over_http_keeps_only_what_the_server_allows(world: World) -> None:
    await world.agreement(frequency={"max_accesses": 2, "period_days": 1})
    await world.approved()
    transport = httpx.ASGITransport(app=checks_app(world.checker))
    async with httpx.AsyncClient(transport=transport) as http:
        cache = CachingConsentChecker(
            HttpConsentClient("http://consent.test", client=http, token=_token), clock=world.clock.seconds
        )
        decisions = [await cache.check(check_request()) for _ in range(3)]

    assert [decision["decision"] for decision in decisions] == ["permit", "permit", "deny"]
    assert len(cache) == 0


# --- across processes: PostgreSQL LISTEN/NOTIFY --------------------------------------------------


async def _until_denied(cache: CachingConsentChecker) -> dict[str, Any]:
    for _ in range(500):
        decision = await cache.check(check_request())
        if decision["decision"] == "deny":
            return decision
        await asyncio.sleep(0.01)
    raise AssertionError("the cache kept permitting after the withdrawal was committed")


async def test_a_listening_cache_denies_after_a_withdrawal_elsewhere(world: World, database_url: str) -> None:
    if not database_url.startswith("postgresql"):
        pytest.skip("LISTEN/NOTIFY is PostgreSQL's")
    await world.agreement()
    consent_id = await world.approved()
    counting = Counting(world.checker)
    # Not attached to the service: it learns only what the database announces.
    cache = CachingConsentChecker(counting, clock=world.clock.seconds)
    ready = asyncio.Event()
    listening = asyncio.create_task(cache.listen(database_url, ready=ready))
    try:
        await asyncio.wait_for(ready.wait(), 10)
        for _ in range(3):
            assert (await cache.check(check_request()))["decision"] == "permit"
        assert counting.calls == 1

        await world.act(consent_id, Action.WITHDRAW)

        assert (await _until_denied(cache))["reason_code"] == "consent.withdrawn"
    finally:
        listening.cancel()
        await asyncio.gather(listening, return_exceptions=True)


async def test_a_cache_that_lost_its_listener_serves_nothing_from_memory(
    world: World, database_url: str
) -> None:
    if not database_url.startswith("postgresql"):
        pytest.skip("LISTEN/NOTIFY is PostgreSQL's")
    await world.agreement()
    await world.approved()
    counting = Counting(world.checker)
    cache = CachingConsentChecker(counting, clock=world.clock.seconds)
    ready = asyncio.Event()
    listening = asyncio.create_task(cache.listen(database_url, ready=ready, retry_seconds=30))
    try:
        await asyncio.wait_for(ready.wait(), 10)
        await cache.check(check_request())
        admin = await asyncpg.connect(database_url.replace("postgresql+asyncpg://", "postgresql://"))
        try:
            await admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE query ILIKE 'LISTEN%' AND pid <> pg_backend_pid()"
            )
        finally:
            await admin.close()
        for _ in range(500):
            if len(cache) == 0:
                break
            await asyncio.sleep(0.01)
        calls = counting.calls

        await cache.check(check_request())
        await cache.check(check_request())

        assert counting.calls == calls + 2
        assert len(cache) == 0
    finally:
        listening.cancel()
        await asyncio.gather(listening, return_exceptions=True)
