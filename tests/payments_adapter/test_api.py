"""The payments API: programmes, cycles, batches, pre-flight, disbursement, status, items,
reconciliation and signed webhooks, with every refusal a reason code."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from litestar.testing import AsyncTestClient

import standards
from dpi import db
from dpi.app import create_app, migrate
from dpi.settings import Settings
from dpi.signing import verify_compact
from payments_adapter.block import payments_block
from payments_adapter.engine import RetryPolicy
from payments_adapter.keys import idempotency_key
from payments_adapter.webhooks import dispatch_once
from tests.consent.conftest import TokenIssuer

ADMIN = ("payments:admin",)
DISBURSE = ("payments:disburse",)
READ = ("payments:read",)


class _Receiver:
    def __init__(self) -> None:
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return httpx.Response(200, json={"ok": True})


@pytest.fixture
def receiver() -> _Receiver:
    return _Receiver()


@pytest.fixture
async def client(
    settings: Settings, tmp_path: Path, ledger_url: str, receiver: _Receiver
) -> AsyncIterator[tuple[httpx.AsyncClient, TokenIssuer, Any]]:
    issuer = TokenIssuer()
    providers = tmp_path / "providers.toml"
    providers.write_text(
        f'[providers.wallet1]\nfactory = "sandbox"\ndatabase_url = "{ledger_url}"\n'
        'lost_response_rate = "0.2"\n',
        encoding="utf-8",
    )
    block = payments_block(
        token_verifier=lambda _settings: issuer.verifier(),
        webhook_client=lambda: httpx.AsyncClient(transport=httpx.MockTransport(receiver)),
        providers_file=providers,
        background_interval=timedelta(hours=1),
        retry=RetryPolicy(base=timedelta(milliseconds=1)),
    )
    settings = Settings(
        var_dir=settings.var_dir, database_url=settings.database_url, allow_private_callbacks=True
    )
    await migrate(settings, [block])
    app = create_app(settings, blocks=[block])
    async with AsyncTestClient(app=app) as test_client:
        yield test_client, issuer, app


async def _setup(http: httpx.AsyncClient, issuer: TokenIssuer) -> None:
    answer = await http.post(
        "/payments/v1/programmes",
        json={"programme_id": "youth-stipend", "name": "Youth employment stipend"},
        headers=issuer.headers("spa-admin", *ADMIN),
    )
    assert answer.status_code == 201, answer.text
    answer = await http.post(
        "/payments/v1/programmes/youth-stipend/cycles",
        json={"cycle_id": "2026-11", "cutoff_at": "2026-11-01T00:00:00Z"},
        headers=issuer.headers("spa-admin", *ADMIN),
    )
    assert answer.status_code == 201, answer.text


def _batch(*items: dict[str, Any]) -> dict[str, Any]:
    return {
        "programme_id": "youth-stipend",
        "cycle_id": "2026-11",
        "provider": "wallet1",
        "items": list(items),
    }


def _item(number: int, amount: str = "15000", **extra: Any) -> dict[str, Any]:
    return {
        "beneficiary_id": f"B{number}",
        "entitlement": "stipend",
        "amount": amount,
        "currency": "XOF",
        "financial_address": f"07{number:04d}@wallet1",
        **extra,
    }


async def test_a_batch_is_uploaded_checked_paid_followed_and_reconciled(
    client: tuple[httpx.AsyncClient, TokenIssuer, Any], receiver: _Receiver
) -> None:
    http, issuer, app = client
    await _setup(http, issuer)
    hook = await http.post(
        "/payments/v1/webhooks",
        json={"url": "https://receiver.test/payments", "programme_id": "youth-stipend"},
        headers=issuer.headers("spa-admin", *ADMIN),
    )
    assert hook.status_code == 201, hook.text
    uploaded = await http.post(
        "/payments/v1/batches",
        json=_batch(
            *(_item(n) for n in range(1, 21)),
            _item(21, "15000.5"),
            _item(22, financial_address="0001@wallet1"),
        ),
        headers=issuer.headers("spa-operator", *DISBURSE),
    )
    assert uploaded.status_code == 201, uploaded.text
    receipt = uploaded.json()
    assert receipt["accepted"] == 21
    assert receipt["problems"] == [
        {"line": 21, "reason_code": "payments.amount.precision", "message": receipt["problems"][0]["message"]}
    ]
    batch_id = receipt["batch_id"]
    again = await http.post(
        "/payments/v1/batches", json=_batch(_item(1)), headers=issuer.headers("spa-operator", *DISBURSE)
    )
    assert again.json()["batch_id"] is None
    assert again.json()["problems"][0]["reason_code"] == "payments.item.duplicate"

    checked = await http.post(
        f"/payments/v1/batches/{batch_id}/preflight", headers=issuer.headers("spa-operator", *DISBURSE)
    )
    assert checked.status_code == 200, checked.text
    assert (checked.json()["ready"], checked.json()["invalid"]) == (20, 1)
    assert checked.json()["problems"][0]["reason_code"] == "payments.address.not_found"

    started = await http.post(
        f"/payments/v1/batches/{batch_id}/disbursement", headers=issuer.headers("spa-operator", *DISBURSE)
    )
    assert started.status_code == 202, started.text
    status: dict[str, Any] = {}
    for _ in range(200):
        status = (
            await http.get(f"/payments/v1/batches/{batch_id}", headers=issuer.headers("auditor", *READ))
        ).json()
        if not status["running"]:
            break
        await asyncio.sleep(timedelta(milliseconds=50).total_seconds())
    assert status["counts"] == {"completed": 20, "invalid": 1}
    assert status["sums"] == {"XOF": {"completed": "300000", "invalid": "15000"}}

    key = idempotency_key("youth-stipend", "2026-11", "B1", "stipend")
    item = await http.get(f"/payments/v1/items/{key}", headers=issuer.headers("auditor", *READ))
    assert item.status_code == 200, item.text
    assert item.json()["state"] == "completed"
    assert [h["to_state"] for h in item.json()["history"]][:2] == ["ready", "submitting"]
    assert item.json()["history"][1]["actor"] == "spa-operator"

    report = await http.get(
        f"/payments/v1/batches/{batch_id}/reconciliation", headers=issuer.headers("auditor", *READ)
    )
    assert report.status_code == 200, report.text
    assert report.json()["balanced"] is True
    assert report.json()["sums"]["recorded_paid"] == {"XOF": "300000"}

    # The app's own pool lives in the test client's loop: the dispatcher here gets an engine of its own.
    engine, keys = db.create_engine(app.runtime.settings.database), app.runtime.keys
    try:
        async with httpx.AsyncClient(transport=httpx.MockTransport(receiver)) as webhook_client:
            delivered, failed = await dispatch_once(
                engine, db.session_factory(engine), keys.active(), webhook_client, allow_private_networks=True
            )
    finally:
        await engine.dispose()
    assert (delivered > 0, failed) == (True, 0)
    events = [verify_compact(request.content.decode(), keys.jwks())[1] for request in receiver.requests]
    completed = {k for event in events if event["state"] == "completed" for k in event["idempotency_keys"]}
    assert key in completed
    assert all(standards.validator("payments-event@1.0.0").is_valid(event) for event in events)
    assert all(request.headers["signature-input"] for request in receiver.requests)


@pytest.mark.parametrize(
    ("method", "path", "body", "scopes", "status", "reason_code"),
    [
        (
            "post",
            "/payments/v1/programmes",
            {"programme_id": "p1", "name": "P"},
            None,
            401,
            "auth.token_missing",
        ),
        (
            "post",
            "/payments/v1/programmes",
            {"programme_id": "p1", "name": "P"},
            READ,
            403,
            "auth.scope_missing",
        ),
        (
            "post",
            "/payments/v1/programmes",
            {"programme_id": "P 1", "name": "P"},
            ADMIN,
            422,
            "request.invalid",
        ),
        ("post", "/payments/v1/batches", _batch(_item(1, amount=15000)), DISBURSE, 422, "request.invalid"),  # type: ignore[arg-type]
        (
            "post",
            "/payments/v1/batches",
            {**_batch(_item(1)), "provider": "nowhere"},
            DISBURSE,
            422,
            "payments.provider.unknown",
        ),
        (
            "post",
            "/payments/v1/batches",
            {**_batch(_item(1)), "cycle_id": "2099-01"},
            DISBURSE,
            404,
            "payments.cycle.not_found",
        ),
        ("get", "/payments/v1/batches/not-a-uuid", None, READ, 400, "request.invalid_parameter"),
        (
            "get",
            "/payments/v1/batches/00000000-0000-4000-8000-000000000000",
            None,
            READ,
            404,
            "payments.batch.not_found",
        ),
        ("get", "/payments/v1/items/AAAAAAAAAAAAAAAA", None, READ, 404, "payments.item.not_found"),
        ("get", "/payments/v1/items/..%2F..%2Fetc", None, READ, 404, "route.not_found"),
        ("get", "/payments/v1/items/bad!key!here", None, READ, 400, "request.invalid_parameter"),
        (
            "post",
            "/payments/v1/batches/00000000-0000-4000-8000-000000000000/disbursement",
            None,
            DISBURSE,
            404,
            "payments.batch.not_found",
        ),
        ("post", "/payments/v1/webhooks", {"url": "ftp://x"}, ADMIN, 422, "request.invalid"),
        (
            "delete",
            "/payments/v1/webhooks/00000000-0000-4000-8000-000000000000",
            None,
            ADMIN,
            404,
            "payments.webhook.not_found",
        ),
    ],
)
async def test_refusals_carry_reason_codes(
    client: tuple[httpx.AsyncClient, TokenIssuer, Any],
    method: str,
    path: str,
    body: dict[str, Any] | None,
    scopes: tuple[str, ...] | None,
    status: int,
    reason_code: str,
) -> None:
    http, issuer, _ = client
    await _setup(http, issuer)
    headers = issuer.headers("someone", *scopes) if scopes is not None else {}
    answer = await http.request(method.upper(), path, json=body, headers=headers)
    assert answer.status_code == status, answer.text
    assert answer.json()["reason_code"] == reason_code


async def test_malformed_json_is_refused(client: tuple[httpx.AsyncClient, TokenIssuer, Any]) -> None:
    http, issuer, _ = client
    answer = await http.post(
        "/payments/v1/batches",
        content=b"{",
        headers={**issuer.headers("op", *DISBURSE), "content-type": "application/json"},
    )
    assert (answer.status_code, answer.json()["reason_code"]) == (400, "request.malformed_json")
