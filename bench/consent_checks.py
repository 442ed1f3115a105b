"""Consent checks: decisions per second in-process with a warm cache (and without one), the check route
over HTTP at a fixed rate (p50/p99), and the time from a committed withdrawal to the first denied check
through a cache (in-process listener; PostgreSQL LISTEN/NOTIFY with --postgres or DPI_TEST_DATABASE_URL).

SQLite in a temporary directory by default; the whole run takes well under a minute.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import asyncpg
import jwt
from litestar.testing import AsyncTestClient
from sqlalchemy.engine import make_url

from consent.auth import JwtTokenVerifier
from consent.block import consent_block
from consent.checks import ConsentChecker
from consent.client import CachingConsentChecker, HttpConsentClient
from consent.lifecycle import Action, ActorRole, Channel
from consent.service import Actor, ConsentService
from dpi import db
from dpi.app import create_app, migrate
from dpi.keys import KeyStore, SigningKey
from dpi.settings import Settings

CONSUMER = "DPI/GOV/MOL/jobseekers"
PROVIDER = "DPI/GOV/MOI/civil-registry"
EXCHANGE = "DPI/GOV/EXCHANGE/gateway"
SUBJECTS = 200
MEASURE_SECONDS = 1.5
HTTP_RATE = 100
HTTP_SECONDS = 3.0
WITHDRAWALS = 20
MIGRATIONS = Path(__file__).resolve().parents[1] / "consent" / "migrations"

AGREEMENT: dict[str, Any] = {
    "agreement_id": "mol-jobseeker-registration",
    "consumer": CONSUMER,
    "providers": [{"provider": PROVIDER, "service": "person"}],
    "purpose": "jobseeker-registration",
    "legal_basis": "consent",
    "data_items": [{"schema": "person@1.0.0", "fields": ["/names", "/date_of_birth"]}],
    "retention_days": 365,
    "max_validity_days": 180,
    "revocable": True,
    "controller": {"name": "Ministry of Labour", "contact": "dpo@labour.gov.example"},
    "notices": {
        "en": {"text": "The Ministry of Labour reads your name and date of birth to register you."},
        "fr": {"text": "Le ministère du Travail lit votre nom et votre date de naissance."},
        "ar": {"text": "تقرأ وزارة العمل اسمك وتاريخ ميلادك لتسجيلك."},
    },
}


def check_request(subject: str) -> dict[str, Any]:
    return {
        "consumer": CONSUMER,
        "provider": PROVIDER,
        "service": "person",
        "purpose": "jobseeker-registration",
        "subject": subject,
        "fields": ["/names", "/date_of_birth"],
    }


def subject_name(index: int, run: str) -> str:
    return f"bench-{run}-{index:06d}-pseudonym"


async def approve(service: ConsentService, subject: str) -> str:
    record = await service.request(
        {"agreement_id": AGREEMENT["agreement_id"], "subject": subject}, Actor(ActorRole.CONTROLLER, CONSUMER)
    )
    agreement = await service.agreement(AGREEMENT["agreement_id"])
    await service.act(
        record["consent_id"],
        Action.APPROVE,
        Actor(ActorRole.SUBJECT, subject),
        channel=Channel.WEB,
        notice={"language": "en", "hash": agreement["notices"]["en"]["hash"]},
    )
    return str(record["consent_id"])


async def rate(call: Callable[[int], Awaitable[Any]], seconds: float = MEASURE_SECONDS) -> float:
    for index in range(200):
        await call(index)
    done, started = 0, time.perf_counter()
    deadline = started + seconds
    while True:
        for _ in range(500):
            await call(done)
            done += 1
        if time.perf_counter() >= deadline:
            return done / (time.perf_counter() - started)


def percentile(samples: list[float], fraction: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


async def withdrawal_to_deny(
    service: ConsentService, cache: CachingConsentChecker, run: str, count: int = WITHDRAWALS
) -> list[float]:
    """Milliseconds from ``act(WITHDRAW)`` returning to the first deny through ``cache``."""
    samples: list[float] = []
    for index in range(count):
        subject = subject_name(index, run)
        consent_id = await approve(service, subject)
        request = check_request(subject)
        for _ in range(3):
            assert (await cache.check(request))["decision"] == "permit"
        await service.act(consent_id, Action.WITHDRAW, Actor(ActorRole.SUBJECT, subject), channel=Channel.WEB)
        committed = time.perf_counter()
        while (await cache.check(request))["decision"] == "permit":
            await asyncio.sleep(0)
            if time.perf_counter() - committed > 5:
                raise AssertionError("a withdrawn consent kept being permitted")
        samples.append((time.perf_counter() - committed) * 1000)
    return samples


async def http_at_fixed_rate(settings: Settings, subjects: list[str]) -> tuple[float, float, float]:
    issuer_key = SigningKey.generate("EdDSA")
    issuer = "https://identity.bench.example"
    verifier = JwtTokenVerifier(issuer, jwks={"keys": [issuer_key.public_jwk()]})
    block = consent_block(token_verifier=lambda _settings: verifier, background_interval_seconds=3600.0)
    now = int(time.time())
    token = jwt.encode(
        {
            "iss": issuer,
            "sub": "exchange-gateway",
            "aud": "dpi",
            "client_id": "exchange",
            "jti": str(uuid.uuid4()),
            "scope": "consent:check",
            "member": EXCHANGE,
            "iat": now,
            "exp": now + 600,
        },
        issuer_key.private_key,
        algorithm=issuer_key.alg,
        headers={"kid": issuer_key.kid, "typ": "at+jwt"},
    )

    async def bearer() -> str:
        return token

    async with AsyncTestClient(app=create_app(settings, blocks=[block])) as served:
        client = HttpConsentClient(str(served.base_url), client=served, token=bearer)
        for subject in subjects[:20]:
            assert (await client.check(check_request(subject)))["decision"] == "permit"
        latencies: list[float] = []
        interval = 1 / HTTP_RATE
        total = int(HTTP_RATE * HTTP_SECONDS)
        started = time.perf_counter()

        async def one(index: int) -> None:
            scheduled = started + index * interval
            await asyncio.sleep(max(0.0, scheduled - time.perf_counter()))
            decision = await client.check(check_request(subjects[index % len(subjects)]))
            assert decision["decision"] == "permit"
            latencies.append((time.perf_counter() - scheduled) * 1000)

        await asyncio.gather(*(one(index) for index in range(total)))
        achieved = total / (time.perf_counter() - started)
    return percentile(latencies, 0.5), percentile(latencies, 0.99), achieved


async def postgres_window(url: str, keys: KeyStore) -> list[float]:
    """Withdrawal to deny through a cache that learns only from LISTEN/NOTIFY, on a scratch database."""
    parsed = make_url(url)
    name = f"dpi_bench_{uuid.uuid4().hex[:12]}"
    admin_dsn = parsed.set(drivername="postgresql").render_as_string(hide_password=False)
    admin = await asyncpg.connect(admin_dsn)
    await admin.execute(f'CREATE DATABASE "{name}"')
    scratch = parsed.set(database=name).render_as_string(hide_password=False)
    engine = db.create_engine(scratch)
    try:
        await db.upgrade(engine, [MIGRATIONS])
        sessions = db.session_factory(engine)
        service = ConsentService(sessions, keys, issuer="DPI/GOV/MOI/consent")
        await service.publish_agreement(AGREEMENT)
        cache = CachingConsentChecker(ConsentChecker(sessions), ttl_seconds=3600)
        ready = asyncio.Event()
        listening = asyncio.create_task(cache.listen(scratch, ready=ready))
        try:
            await asyncio.wait_for(ready.wait(), 10)
            return await withdrawal_to_deny(service, cache, "pg")
        finally:
            listening.cancel()
            await asyncio.gather(listening, return_exceptions=True)
    finally:
        await engine.dispose()
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


async def main(postgres: str | None) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as directory:
        settings = Settings(var_dir=Path(directory) / "var")
        block = consent_block(background_interval_seconds=3600.0)
        await migrate(settings, [block])
        engine = db.create_engine(settings.database)
        keys = KeyStore(Path(directory) / "keys")
        keys.ensure_active()
        sessions = db.session_factory(engine)
        service = ConsentService(sessions, keys, issuer="DPI/GOV/MOI/consent")
        await service.publish_agreement(AGREEMENT)
        subjects = [subject_name(index, "warm") for index in range(SUBJECTS)]
        for subject in subjects:
            await approve(service, subject)
        requests = [check_request(subject) for subject in subjects]

        checker = ConsentChecker(sessions)
        cache = CachingConsentChecker(checker, ttl_seconds=3600)
        cache.attach(service)
        cached = await rate(lambda index: cache.check(requests[index % SUBJECTS]))
        uncached = await rate(lambda index: checker.check(requests[index % SUBJECTS]))
        print(f"in-process, warm cache : {cached:12,.0f} decisions/s (one core, {SUBJECTS} subjects)")
        print(f"in-process, no cache   : {uncached:12,.0f} decisions/s (SQLite)")

        in_process = await withdrawal_to_deny(service, cache, "attached")
        print(
            f"withdrawal -> deny, in-process listener: median {statistics.median(in_process):.3f} ms,"
            f" max {max(in_process):.3f} ms over {len(in_process)} withdrawals"
        )
        await engine.dispose()

        p50, p99, achieved = await http_at_fixed_rate(settings, subjects)
        print(
            f"HTTP (consent block route, in-process ASGI transport, SQLite, bearer JWT verified per request)"
            f" at {HTTP_RATE}/s for {HTTP_SECONDS:.0f} s: p50 {p50:.2f} ms, p99 {p99:.2f} ms,"
            f" achieved {achieved:.0f}/s"
        )
        result: dict[str, Any] = {
            "name": "consent-checks",
            "value": round(cached),
            "unit": "decisions/s",
            "baseline": round(uncached),
            "ratio": round(cached / uncached, 1),
            "http_p50_ms": round(p50, 3),
            "http_p99_ms": round(p99, 3),
            "http_rate_per_s": round(achieved, 1),
            "withdrawal_to_deny_ms": round(max(in_process), 3),
        }
        if postgres:
            notified = await postgres_window(postgres, keys)
            print(
                f"withdrawal -> deny, PostgreSQL LISTEN/NOTIFY: median {statistics.median(notified):.3f} ms,"
                f" max {max(notified):.3f} ms over {len(notified)} withdrawals"
            )
            result["withdrawal_to_deny_notify_ms"] = round(max(notified), 3)
        return result


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--postgres", default=os.environ.get("DPI_TEST_DATABASE_URL") or None)
    arguments = parser.parse_args()
    print(json.dumps(asyncio.run(main(arguments.postgres))))
