"""The DCI API over HTTP: envelopes and their signatures, sync search per item, pagination and cursors,
asynchronous search with a signed on-search callback, transaction status, capabilities."""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from litestar.testing import AsyncTestClient
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

import standards
from dpi import db
from dpi.app import DpiApp, create_app, migrate
from dpi.keys import KeyStore
from dpi.models import OutboxMessage
from dpi.openapi import undocumented_bodies
from dpi.settings import Settings
from dpi.signing import verify_detached, verify_request
from registry.block import registry_block
from registry.dci.callbacks import dispatch_once
from registry.dci.search import Searcher
from registry.dci.senders import add_sender, disable_sender
from registry.definition import load_definitions
from registry.keyfile import subject_key
from registry.models import ReadRow
from registry.service import RegistryService
from tests.consent.conftest import TokenIssuer
from tests.registry.conftest import sample
from tests.registry.dci.conftest import DciClient, comparison, item

SYNC = "/registry/civil/registry/sync/search"


@pytest.fixture
async def app(settings: Settings) -> DpiApp:
    issuer = TokenIssuer()
    block = registry_block(token_verifier=lambda _settings: issuer.verifier(), dci_interval_seconds=0)
    await migrate(settings, [block])
    return create_app(settings, blocks=[block])


@pytest.fixture
async def client(app: DpiApp) -> AsyncIterator[httpx.AsyncClient]:
    async with AsyncTestClient(app=app) as client:
        yield client


@pytest.fixture
async def sessions(settings: Settings, app: DpiApp) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    """Sessions on the app's database, for setting up senders and records and reading what was stored."""
    del app
    engine = db.create_engine(settings.database)
    try:
        yield db.session_factory(engine)
    finally:
        await engine.dispose()


@pytest.fixture
def service(settings: Settings, sessions: async_sessionmaker[AsyncSession]) -> RegistryService:
    return RegistryService(sessions, load_definitions(), subject_key=subject_key(settings))


@pytest.fixture
def searcher(settings: Settings, service: RegistryService) -> Searcher:
    key = hmac.new(subject_key(settings), b"dci-cursor", hashlib.sha256).digest()
    return Searcher(service, cursor_key=key)


@pytest.fixture
def sender() -> DciClient:
    return DciClient()


@pytest.fixture
async def registered(service: RegistryService, sender: DciClient) -> DciClient:
    await add_sender(
        service.sessions,
        service.definitions,
        sender.sender_id,
        jwks=sender.jwks(),
        grants=["civil:names-and-birth-date"],
        callback_url="http://callback.test/dci",
    )
    return sender


@pytest.fixture
async def persons(service: RegistryService) -> list[dict[str, Any]]:
    documents = [sample("civil", index) for index in range(1, 8)]
    documents = [document for document in documents if document["record_type"] == "person"]
    await service.create_many("civil", documents, actor="officer-17", reason="test data")
    return documents


def _app_keys(settings: Settings) -> KeyStore:
    return KeyStore(settings.key_directory)


async def _post(client: httpx.AsyncClient, path: str, body: Any) -> httpx.Response:
    return await client.post(path, content=json.dumps(body), headers={"Content-Type": "application/json"})


def _status_request(sender: DciClient, attribute_type: str, value: str) -> dict[str, Any]:
    """A txn/status envelope asking about a search by ``attribute_type``."""
    return sender.envelope(
        {
            "transaction_id": f"status-{value}"[:100],
            "txnstatus_request": {
                "reference_id": "status",
                "txn_type": "search",
                "attribute_type": attribute_type,
                "attribute_value": value,
            },
        },
        action="txn-status",
    )


def _refused(response: httpx.Response, status: int, code: str) -> None:
    assert response.status_code == status, response.text
    body = response.json()
    standards.validator("dci-error@1.0.0").check(body)
    assert body["message"]["ack_status"] == "ERR"
    assert body["message"]["error"]["code"] == code


async def test_every_dci_route_documents_its_bodies(client: httpx.AsyncClient) -> None:
    document = (await client.get("/openapi.json")).json()
    assert undocumented_bodies(document) == []
    operation = document["paths"]["/registry/{code}/registry/sync/search"]["post"]
    assert set(operation["responses"]) >= {"200", "400", "401", "403", "404", "409"}


async def test_sync_search_by_identifier_answers_signed_and_reduced_to_the_granted_fields(
    client: httpx.AsyncClient, settings: Settings, registered: DciClient, persons: list[dict[str, Any]]
) -> None:
    amina = persons[0]
    body = registered.search(item("idtype-value", {"type": "UIN", "value": amina["uin"]}))
    response = await _post(client, SYNC, body)
    assert response.status_code == 200, response.text
    answer = response.json()
    standards.validator("dci-search-response@1.0.0").check(answer)
    verify_detached(
        {"header": answer["header"], "message": answer["message"]},
        answer["signature"],
        _app_keys(settings).jwks(),
    )
    assert answer["header"]["receiver_id"] == registered.sender_id
    assert answer["header"]["completed_count"] == 1
    [found] = answer["message"]["search_response"]
    assert found["status"] == "succ"
    assert found["pagination"] == {"page_size": 20, "page_number": 1, "total_count": 1}
    [record] = found["data"]["reg_records"]
    assert record["field_groups"] == ["names-and-birth-date"]
    assert record["document"]["date_of_birth"] == amina["date_of_birth"]
    assert "uin" not in record["document"]


async def test_sync_search_by_a_merged_records_identifier_finds_the_survivor(
    client: httpx.AsyncClient, registered: DciClient, persons: list[dict[str, Any]], service: RegistryService
) -> None:
    survivor, loser = persons[0], persons[1]
    survivor_id = await service.find_by_identifier("civil", "UIN", survivor["uin"])
    loser_id = await service.find_by_identifier("civil", "UIN", loser["uin"])
    assert survivor_id is not None
    assert loser_id is not None
    await service.merge(
        "civil", survivor_id=survivor_id, loser_id=loser_id, actor="officer-17", reason="same person"
    )
    body = registered.search(
        item("idtype-value", {"type": "UIN", "value": loser["uin"]}, reference_id="loser"),
        item("idtype-value", {"type": "UIN", "value": "1999999999"}, reference_id="nobody"),
    )
    response = await _post(client, SYNC, body)
    assert response.status_code == 200, response.text
    found, nobody = response.json()["message"]["search_response"]
    assert found["pagination"]["total_count"] == 1
    [record] = found["data"]["reg_records"]
    assert record["document"]["date_of_birth"] == survivor["date_of_birth"]
    assert nobody["status"] == "succ"
    assert nobody["pagination"]["total_count"] == 0


async def test_search_reads_are_logged_with_the_purpose_and_consent(
    client: httpx.AsyncClient,
    registered: DciClient,
    persons: list[dict[str, Any]],
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    body = registered.search(item("idtype-value", {"type": "UIN", "value": persons[0]["uin"]}))
    assert (await _post(client, SYNC, body)).status_code == 200
    async with sessions() as session:
        reads = (await session.scalars(select(ReadRow))).all()
    assert {(read.reader, read.purpose, read.consent_ref) for read in reads} == {
        (registered.sender_id, "jobseeker-registration", "consent:7f3e")
    }


async def test_each_item_gets_its_own_outcome(
    client: httpx.AsyncClient, registered: DciClient, persons: list[dict[str, Any]]
) -> None:
    good = item(
        "predicate",
        [{"expression1": comparison("date_of_birth", "eq", persons[0]["date_of_birth"])}],
        reference_id="good",
    )
    items = [
        good,
        item("predicate", [{"expression1": comparison("salary", "eq", 1)}], reference_id="unknown-attribute"),
        item(
            "predicate",
            [{"expression1": comparison("date_of_birth", "like", "m")}],
            reference_id="unknown-operator",
        ),
        item(
            "predicate", [{"expression1": comparison("date_of_birth", "gt", 1990)}], reference_id="bad-type"
        ),
        item(
            "expression", {"type": "ns:org:QueryType:Sql", "value": {"expression": "1=1"}}, reference_id="sql"
        ),
        item("idtype-value", {"type": "UIN", "value": "1"}, reference_id="no-purpose", consent=None),
        item(
            "predicate",
            [{"expression1": comparison("date_of_birth", "ge", "1900-01-01")}],
            reference_id="big-page",
            pagination={"page_size": 100000, "page_number": 1},
        ),
        item(
            "predicate",
            [{"expression1": comparison("date_of_birth", "ge", "1900-01-01")}],
            reference_id="bad-sort",
            sort=[{"attribute_name": "uin_secret", "sort_order": "asc"}],
        ),
        {"reference_id": "malformed", "timestamp": "2026-11-23T10:00:00Z", "search_criteria": {"query": {}}},
        {**good, "reference_id": "twice"},
        {**good, "reference_id": "twice"},
    ]
    response = await _post(client, SYNC, registered.search(*items))
    assert response.status_code == 200, response.text
    answer = response.json()
    standards.validator("dci-search-response@1.0.0").check(answer)
    outcomes = {
        entry["reference_id"]: (entry["status"], entry.get("status_reason_code"))
        for entry in answer["message"]["search_response"]
    }
    assert len(answer["message"]["search_response"]) == len(items)
    assert outcomes == {
        "good": ("succ", None),
        "unknown-attribute": ("rjct", "rjct.filter.invalid"),
        "unknown-operator": ("rjct", "rjct.filter.invalid"),
        "bad-type": ("rjct", "rjct.filter.invalid"),
        "sql": ("rjct", "rjct.search_criteria.invalid"),
        "no-purpose": ("rjct", "rjct.search_criteria.invalid"),
        "big-page": ("rjct", "rjct.pagination.invalid"),
        "bad-sort": ("rjct", "rjct.sort.invalid"),
        "malformed": ("rjct", "rjct.search_criteria.invalid"),
        "twice": ("rjct", "rjct.reference_id.duplicate"),
    }
    assert answer["header"]["completed_count"] == 1


async def test_a_sender_cannot_filter_or_sort_on_fields_it_may_not_read(
    client: httpx.AsyncClient, registered: DciClient, persons: list[dict[str, Any]]
) -> None:
    # The sender reads names and birth dates only: filtering on sex would reveal it as surely as reading it.
    items = [
        item("predicate", [{"expression1": comparison("sex", "eq", persons[0]["sex"])}], reference_id="sex"),
        item(
            "predicate",
            [
                {
                    "expression1": comparison("date_of_birth", "ge", "1900-01-01"),
                    "condition": "and",
                    "expression2": {
                        "expression1": comparison("date_of_birth", "le", "2100-01-01"),
                        "condition": "not",
                        "expression2": comparison("birth_region", "eq", "x"),
                    },
                }
            ],
            reference_id="nested",
        ),
        item(
            "predicate",
            [{"expression1": comparison("date_of_birth", "ge", "1900-01-01")}],
            reference_id="sort",
            sort=[{"attribute_name": "sex", "sort_order": "asc"}],
        ),
        item("idtype-value", {"type": "UIN", "value": persons[0]["uin"]}, reference_id="by-identifier"),
        item(
            "predicate",
            [{"expression1": comparison("date_of_birth", "eq", persons[0]["date_of_birth"])}],
            reference_id="granted",
        ),
    ]
    answer = (await _post(client, SYNC, registered.search(*items))).json()
    outcomes = {
        entry["reference_id"]: (entry["status"], entry.get("status_reason_code"))
        for entry in answer["message"]["search_response"]
    }
    assert outcomes == {
        "sex": ("rjct", "rjct.filter.invalid"),
        "nested": ("rjct", "rjct.filter.invalid"),
        "sort": ("rjct", "rjct.filter.invalid"),
        "by-identifier": ("succ", None),
        "granted": ("succ", None),
    }


async def test_pages_and_cursors(
    client: httpx.AsyncClient, registered: DciClient, persons: list[dict[str, Any]]
) -> None:
    everyone = [{"expression1": comparison("date_of_birth", "ge", "1900-01-01")}]
    sort = [{"attribute_name": "date_of_birth", "sort_order": "desc"}]
    first = item("predicate", everyone, sort=sort, pagination={"page_size": 2, "page_number": 1})
    seen: list[str] = []
    page = (await _post(client, SYNC, registered.search(first))).json()["message"]["search_response"][0]
    total = page["pagination"]["total_count"]
    assert total == len(persons)
    while True:
        seen += [record["record_id"] for record in page["data"]["reg_records"]]
        cursor = page["pagination"].get("next_cursor")
        if cursor is None:
            break
        following = item("predicate", everyone, sort=sort, pagination={"cursor": cursor})
        page = (await _post(client, SYNC, registered.search(following))).json()["message"]["search_response"][
            0
        ]
        assert page["status"] == "succ", page
    assert len(seen) == len(set(seen)) == total
    assert page["pagination"]["page_number"] == (total + 1) // 2

    cursor = (await _post(client, SYNC, registered.search(first))).json()["message"]["search_response"][0][
        "pagination"
    ]["next_cursor"]
    tampered = cursor[:-2] + ("A" if cursor[-2] != "A" else "B") + cursor[-1]
    other = [{"expression1": comparison("date_of_birth", "le", "2000-01-01")}]
    for criteria in (
        item("predicate", everyone, sort=sort, pagination={"cursor": tampered}),
        item("predicate", other, sort=sort, pagination={"cursor": cursor}),
        item("predicate", everyone, sort=sort, pagination={"page_size": 0, "page_number": 1}),
        item("predicate", everyone, sort=sort, pagination={"page_size": 2, "page_number": 0}),
    ):
        refused = (await _post(client, SYNC, registered.search(criteria))).json()["message"][
            "search_response"
        ][0]
        assert (refused["status"], refused["status_reason_code"]) == ("rjct", "rjct.pagination.invalid")


@pytest.mark.parametrize(
    ("change", "status", "code"),
    [
        ("no-signature", 401, "err.signature.missing"),
        ("empty-signature", 401, "err.signature.missing"),
        ("tampered", 401, "err.signature.invalid"),
        ("other-key", 401, "err.signature.invalid"),
        ("garbage-signature", 401, "err.signature.invalid"),
        ("unknown-sender", 401, "err.sender_id.invalid"),
        ("old", 400, "rjct.message_ts.invalid"),
        ("future", 400, "rjct.message_ts.invalid"),
        ("version", 400, "err.version.not_supported"),
        ("action", 400, "rjct.action.invalid"),
        ("no-header", 400, "err.request.bad"),
        ("not-json", 400, "err.request.bad"),
    ],
)
async def test_refused_envelopes(
    client: httpx.AsyncClient, registered: DciClient, change: str, status: int, code: str
) -> None:
    query = item("idtype-value", {"type": "UIN", "value": "1000000013"})
    body: Any = registered.search(query)
    now = datetime.now(UTC)
    match change:
        case "no-signature":
            body = registered.search(query, sign=False)
        case "empty-signature":
            body["signature"] = ""
        case "tampered":
            body["message"]["search_request"][0]["search_criteria"]["query"]["value"] = "1000000021"
        case "other-key":
            body = DciClient().search(query)
        case "garbage-signature":
            body["signature"] = "not-a-jws"
        case "unknown-sender":
            body = DciClient(sender_id="DPI/GOV/XYZ/unknown").search(query)
        case "old":
            body = registered.search(query, now=now - timedelta(minutes=6))
        case "future":
            body = registered.search(query, now=now + timedelta(minutes=6))
        case "version":
            body = registered.search(query, version="2.0.0")
        case "action":
            body = registered.search(query, action="subscribe")
        case "no-header":
            del body["header"]
        case "not-json":
            body = "{"
    content = body if isinstance(body, str) else json.dumps(body)
    response = await client.post(SYNC, content=content, headers={"Content-Type": "application/json"})
    _refused(response, status, code)


async def test_replayed_message_ids_are_refused(client: httpx.AsyncClient, registered: DciClient) -> None:
    body = registered.search(item("idtype-value", {"type": "UIN", "value": "1000000013"}))
    assert (await _post(client, SYNC, body)).status_code == 200
    _refused(await _post(client, SYNC, body), 409, "rjct.message_id.duplicate")


async def test_senders_reach_only_granted_registries_and_disabled_ones_nothing(
    client: httpx.AsyncClient, registered: DciClient, service: RegistryService
) -> None:
    query = item("idtype-value", {"type": "HOUSEHOLD_ID", "value": "12345674"})
    _refused(
        await _post(client, "/registry/social/registry/sync/search", registered.search(query)),
        403,
        "err.request.forbidden",
    )
    _refused(
        await _post(client, "/registry/land/registry/sync/search", registered.search(query)),
        404,
        "err.request.not_found",
    )
    await disable_sender(service.sessions, registered.sender_id)
    civil = registered.search(item("idtype-value", {"type": "UIN", "value": "1000000013"}))
    _refused(await _post(client, SYNC, civil), 401, "err.sender_id.invalid")


async def test_async_search_acknowledges_then_delivers_a_signed_on_search(
    client: httpx.AsyncClient,
    settings: Settings,
    registered: DciClient,
    persons: list[dict[str, Any]],
    searcher: Searcher,
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    body = registered.search(item("idtype-value", {"type": "UIN", "value": persons[0]["uin"]}))
    transaction_id = body["message"]["transaction_id"]
    ack = await _post(client, "/registry/civil/registry/search", body)
    assert ack.status_code == 200, ack.text
    standards.validator("dci-ack@1.0.0").check(ack.json())
    correlation_id = ack.json()["message"]["correlation_id"]

    status_body = _status_request(registered, "transaction_id", transaction_id)
    pending = await _post(client, "/registry/civil/registry/txn/status", status_body)
    assert pending.status_code == 200, pending.text
    standards.validator("dci-txn-status-response@1.0.0").check(pending.json())
    assert pending.json()["message"]["txnstatus_response"]["txn_status"] == "pdng"

    received: list[httpx.Request] = []
    answers = iter([503, 200])

    def receiver(request: httpx.Request) -> httpx.Response:
        received.append(request)
        return httpx.Response(next(answers))

    keys = _app_keys(settings)
    async with httpx.AsyncClient(transport=httpx.MockTransport(receiver)) as http:
        first = await dispatch_once(
            searcher,
            keys.active(),
            http,
            system_id=lambda code: f"registry:{code}",
            allow_private_networks=True,
        )
        assert (first.answered, first.delivered, first.failed) == (1, 0, 1)
        later = datetime.now(UTC) + timedelta(minutes=1)
        async with sessions.begin() as session:
            await session.execute(
                OutboxMessage.__table__.update().values(available_at=datetime.now(UTC) - timedelta(seconds=1))
            )
        second = await dispatch_once(
            searcher,
            keys.active(),
            http,
            system_id=lambda code: f"registry:{code}",
            allow_private_networks=True,
            clock=lambda: later,
        )
        assert (second.answered, second.delivered) == (0, 1)
    assert len(received) == 2
    delivered = received[-1]
    assert str(delivered.url) == "http://callback.test/dci/on-search"
    assert delivered.headers["idempotency-key"] == correlation_id
    verify_request(
        "POST", str(delivered.url), dict(delivered.headers), delivered.content, keys.jwks(), now=later
    )
    callback = json.loads(delivered.content)
    standards.validator("dci-search-response@1.0.0").check(callback)
    verify_detached(
        {"header": callback["header"], "message": callback["message"]}, callback["signature"], keys.jwks()
    )
    assert callback["header"]["action"] == "on-search"
    assert callback["message"]["correlation_id"] == correlation_id
    assert callback["message"]["search_response"][0]["status"] == "succ"
    async with sessions() as session:
        reads = await session.scalar(select(func.count(func.distinct(ReadRow.read_id))))
    assert reads == 1  # the search ran once, however many deliveries

    done = await _post(
        client,
        "/registry/civil/registry/txn/status",
        _status_request(registered, "transaction_id", transaction_id),
    )
    assert done.json()["message"]["txnstatus_response"]["txn_status"] == "succ"
    assert (
        done.json()["message"]["txnstatus_response"]["search_response"]
        == callback["message"]["search_response"]
    )


async def test_transaction_status_of_unknown_or_others_transactions_is_404(
    client: httpx.AsyncClient, registered: DciClient
) -> None:
    body = _status_request(registered, "correlation_id", "4b1c9a52-8d0c-4d0c-9d1e-6f1f1a2b3c4d")
    _refused(await _post(client, "/registry/civil/registry/txn/status", body), 404, "err.request.not_found")


async def test_capabilities_declare_what_is_accepted(client: httpx.AsyncClient) -> None:
    response = await client.get("/registry/civil/registry/capabilities")
    assert response.status_code == 200
    document = response.json()
    standards.validator("dci-capabilities@1.1.0").check(document)
    assert document["query_types"] == ["idtype-value", "predicate"]
    attributes = {entry["name"]: entry["operators"] for entry in document["attributes"]}
    assert attributes["date_of_birth"] == ["eq", "gt", "ge", "lt", "le", "between"]
    assert "UIN" in document["identifier_types"]
    kernel = (await client.get("/.well-known/dpi-capabilities")).json()
    [block] = [entry for entry in kernel["blocks"] if entry["name"] == "registry"]
    assert {entry["code"]: entry["dci"]["base_url"] for entry in block["registries"]}[
        "civil"
    ] == "/registry/civil"


async def test_callbacks_to_internal_addresses_are_not_sent_and_end_after_the_last_attempt(
    client: httpx.AsyncClient,
    settings: Settings,
    registered: DciClient,
    persons: list[dict[str, Any]],
    searcher: Searcher,
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    body = registered.search(item("idtype-value", {"type": "UIN", "value": persons[0]["uin"]}))
    assert (await _post(client, "/registry/civil/registry/search", body)).status_code == 200
    sent: list[httpx.Request] = []

    def receiver(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        return httpx.Response(200)

    async with httpx.AsyncClient(transport=httpx.MockTransport(receiver)) as http:
        for attempt in range(1, 9):
            report = await dispatch_once(
                searcher, _app_keys(settings).active(), http, system_id=lambda code: f"registry:{code}"
            )
            assert (report.delivered, report.failed + report.given_up) == (0, 1)
            assert report.given_up == (1 if attempt == 8 else 0)
            async with sessions.begin() as session:
                await session.execute(
                    OutboxMessage.__table__.update()
                    .where(OutboxMessage.delivered_at.is_(None), OutboxMessage.attempts < 8)
                    .values(available_at=datetime.now(UTC) - timedelta(seconds=1))
                )
        assert sent == []  # http:// to a name: refused before any connection
        async with sessions() as session:
            message = await session.scalar(select(OutboxMessage))
        assert message is not None
        assert message.last_error == "the receiver's URL is not https"
        assert (
            await dispatch_once(searcher, _app_keys(settings).active(), http, system_id=str)
        ).answered == 0


async def test_senders_without_a_callback_read_answers_by_transaction_status(
    client: httpx.AsyncClient,
    settings: Settings,
    service: RegistryService,
    sender: DciClient,
    persons: list[dict[str, Any]],
    searcher: Searcher,
) -> None:
    await add_sender(
        service.sessions, service.definitions, sender.sender_id, jwks=sender.jwks(), grants=["civil"]
    )
    body = sender.search(item("idtype-value", {"type": "UIN", "value": persons[1]["uin"]}))
    ack = (await _post(client, "/registry/civil/registry/search", body)).json()
    async with httpx.AsyncClient(transport=httpx.MockTransport(lambda _request: httpx.Response(500))) as http:
        report = await dispatch_once(searcher, _app_keys(settings).active(), http, system_id=str)
    assert (report.answered, report.failed) == (1, 0)
    status = _status_request(sender, "correlation_id", ack["message"]["correlation_id"])
    answer = (await _post(client, "/registry/civil/registry/txn/status", status)).json()
    [found] = answer["message"]["txnstatus_response"]["search_response"]
    [record] = found["data"]["reg_records"]
    assert record["document"] == persons[1]  # a whole-registry grant reads whole records


def _subscription(reference_id: str, events: Any) -> dict[str, Any]:
    return {
        "reference_id": reference_id,
        "timestamp": "2026-11-23T10:00:00Z",
        "subscribe_criteria": {"reg_event_type": events},
    }


async def test_subscribers_are_notified_of_matching_events_signed_until_they_unsubscribe(
    client: httpx.AsyncClient,
    settings: Settings,
    registered: DciClient,
    service: RegistryService,
    searcher: Searcher,
) -> None:
    subscribe = registered.envelope(
        {
            "transaction_id": "sub-1",
            "subscribe_request": [
                _subscription("deaths-and-persons", ["deleted", "person"]),
                _subscription("coronations", "coronation"),
                {"reference_id": "malformed", "timestamp": "2026-11-23T10:00:00Z"},
            ],
        },
        action="subscribe",
    )
    response = await _post(client, "/registry/civil/registry/subscribe", subscribe)
    assert response.status_code == 200, response.text
    answer = response.json()
    standards.validator("dci-subscribe-response@1.0.0").check(answer)
    outcomes = [
        (entry["status"], entry.get("status_reason_code"))
        for entry in answer["message"]["subscribe_response"]
    ]
    assert outcomes == [
        ("succ", None),
        ("rjct", "rjct.notify_types.invalid"),
        ("rjct", "rjct.notify_details.invalid"),
    ]
    code = answer["message"]["subscribe_response"][0]["subscription_code"]

    created = await service.create("civil", sample("civil", 21), actor="officer-17")
    await service.delete(
        "civil", created["record_id"], version=1, actor="officer-17", reason="registered twice"
    )
    received: list[httpx.Request] = []

    def receiver(request: httpx.Request) -> httpx.Response:
        received.append(request)
        return httpx.Response(200)

    keys = _app_keys(settings)
    async with httpx.AsyncClient(transport=httpx.MockTransport(receiver)) as http:
        report = await dispatch_once(
            searcher, keys.active(), http, system_id=str, allow_private_networks=True
        )
        assert (report.events, report.delivered) == (2, 2)
        again = await dispatch_once(searcher, keys.active(), http, system_id=str, allow_private_networks=True)
        assert (again.events, again.delivered) == (0, 0)
    notified = []
    for request in received:
        assert str(request.url) == "http://callback.test/dci/notify"
        verify_request("POST", str(request.url), dict(request.headers), request.content, keys.jwks())
        body = json.loads(request.content)
        standards.validator("dci-notify@1.0.0").check(body)
        verify_detached(
            {"header": body["header"], "message": body["message"]}, body["signature"], keys.jwks()
        )
        [event] = body["message"]["notify_event"]
        assert event["subscription_code"] == code
        notified.append((event["data"]["reg_event_type"], event["data"]["reg_records"][0]["record_id"]))
    assert notified == [("created", created["record_id"]), ("deleted", created["record_id"])]
    assert "names" not in received[0].content.decode()  # ids only

    unsubscribe = registered.envelope(
        {"transaction_id": "unsub-1", "subscription_codes": [code, "not-a-subscription"]},
        action="unsubscribe",
    )
    ended = await _post(client, "/registry/civil/registry/unsubscribe", unsubscribe)
    assert ended.status_code == 200, ended.text
    standards.validator("dci-unsubscribe-response@1.0.0").check(ended.json())
    assert [
        (entry["status"], entry.get("status_reason_code"))
        for entry in ended.json()["message"]["unsubscribe_response"]
    ] == [
        ("succ", None),
        ("rjct", "rjct.subscription_code.invalid"),
    ]
    await service.create("civil", sample("civil", 22), actor="officer-17")
    async with httpx.AsyncClient(transport=httpx.MockTransport(receiver)) as http:
        after = await dispatch_once(searcher, keys.active(), http, system_id=str, allow_private_networks=True)
    assert (after.events, after.delivered, len(received)) == (1, 0, 2)
