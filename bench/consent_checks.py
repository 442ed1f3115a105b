"""Consent checks: decisions per second in-process with a warm cache (and without one), the check route
at a fixed rate through an in-process ASGI transport (no socket), the check route over the network against
a real `dpi serve` subprocess at fixed open-loop rates (p50/p95/p99), and the time from a committed
withdrawal to the first denied check through a cache (in-process listener; PostgreSQL LISTEN/NOTIFY with
--postgres or DPI_TEST_DATABASE_URL).

SQLite in a temporary directory by default (with --postgres, the served process uses a scratch schema of
that database); the whole run takes well under a minute.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import signal
import socket
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import jwt
from litestar.testing import AsyncTestClient
from sqlalchemy.engine import make_url

from conformance_tests import CallbackReceiver
from conformance_tests.tokens import TokenMinter
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
NETWORK_RATES = (100, 200, 400)
NETWORK_SECONDS = 3.0
NETWORK_SUBJECTS = 40
NETWORK_DRAIN_SECONDS = 5.0
NETWORK_CONNECTIONS = 32
SERVER_READY_SECONDS = 20.0
SERVER_STOP_SECONDS = 10.0
ISSUER = "https://identity.bench.example"
WITHDRAWALS = 20
REPOSITORY = Path(__file__).resolve().parents[1]
MIGRATIONS = REPOSITORY / "consent" / "migrations"

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
    issuer = ISSUER
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


@dataclass(frozen=True)
class RateResult:
    """One fixed-rate run of checks against the served process."""

    target: int
    sent: int
    ok: int
    errors: int
    p50_ms: float
    p95_ms: float
    p99_ms: float
    achieved: float

    @property
    def sustained(self) -> bool:
        return self.errors == 0 and self.achieved >= 0.9 * self.target


def finite(milliseconds: float) -> float | None:
    """A latency for the JSON line: NaN (no successful response) becomes null."""
    return None if math.isnan(milliseconds) else round(milliseconds, 3)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


async def stop_server(process: asyncio.subprocess.Process) -> None:
    """SIGINT (granian shuts its workers down), then kill the whole process group if it lingers."""
    if process.returncode is not None:
        return
    process.send_signal(signal.SIGINT)
    try:
        await asyncio.wait_for(process.wait(), SERVER_STOP_SECONDS)
    except TimeoutError:
        os.killpg(process.pid, signal.SIGKILL)
        await process.wait()
        print(f"dpi serve ignored SIGINT for {SERVER_STOP_SECONDS:.0f} s and was killed", file=sys.stderr)


async def wait_ready(client: httpx.AsyncClient, process: asyncio.subprocess.Process, log: Path) -> None:
    deadline = time.monotonic() + SERVER_READY_SECONDS
    while time.monotonic() < deadline:
        if process.returncode is not None:
            output = await asyncio.to_thread(log.read_text)
            raise RuntimeError(f"dpi serve exited with {process.returncode}:\n{output[-2000:]}")
        try:
            if (await client.get("/readyz")).status_code == 200:
                return
        except httpx.TransportError:
            pass
        await asyncio.sleep(0.1)
    output = await asyncio.to_thread(log.read_text)
    raise RuntimeError(f"dpi serve not ready within {SERVER_READY_SECONDS:.0f} s:\n{output[-2000:]}")


async def seed_over_http(client: httpx.AsyncClient, minter: TokenMinter, run: str) -> list[str]:
    """Publish the agreement (admin), ask each subject (consumer) and approve (subject, notice hash)."""

    def bearer(subject: str, *scopes: str, member: str | None = None) -> dict[str, str]:
        return {"authorization": f"Bearer {minter.mint(subject, scopes, member=member)}"}

    published = await client.post(
        "/consent/v1/agreements", json=AGREEMENT, headers=bearer("bench-admin", "consent:admin")
    )
    if published.status_code != 201:
        raise RuntimeError(f"publishing the agreement answered {published.status_code}: {published.text}")
    notice = {"language": "en", "hash": published.json()["notices"]["en"]["hash"]}
    consumer = bearer("bench-consumer", "consent:request", member=CONSUMER)
    subjects = [subject_name(index, run) for index in range(NETWORK_SUBJECTS)]
    for subject in subjects:
        asked = await client.post(
            "/consent/v1/consents",
            json={"agreement_id": AGREEMENT["agreement_id"], "subject": subject},
            headers=consumer,
        )
        if asked.status_code not in (200, 201):
            raise RuntimeError(f"asking for consent answered {asked.status_code}: {asked.text}")
        approved = await client.post(
            f"/consent/v1/me/consents/{asked.json()['consent_id']}/approve",
            json={"channel": "web", "notice": notice},
            headers=bearer(subject, "consent:self"),
        )
        if approved.status_code != 200:
            raise RuntimeError(f"approving answered {approved.status_code}: {approved.text}")
    return subjects


async def checks_at_rate(
    client: httpx.AsyncClient, headers: dict[str, str], subjects: list[str], target: int
) -> RateResult:
    """Open loop: each send is scheduled on the clock and never waits for an earlier response; latency is
    counted from the scheduled send, so a server falling behind shows in the figures. Responses still
    missing ``NETWORK_DRAIN_SECONDS`` after the last send are cancelled and counted as errors."""
    latencies: list[float] = []
    errors = 0
    finished = 0.0
    interval = 1 / target
    total = int(target * NETWORK_SECONDS)

    # Sends beyond the connection count wait here, in a cheap FIFO, rather than in httpx's pool, whose
    # bookkeeping grows with its queue and would make an overloaded run measure the client.
    in_flight = asyncio.Semaphore(NETWORK_CONNECTIONS)

    async def one(index: int, scheduled: float) -> None:
        nonlocal errors, finished
        try:
            async with in_flight:
                answer = await client.post(
                    "/consent/v1/checks", json=check_request(subjects[index % len(subjects)]), headers=headers
                )
            permitted = answer.status_code == 200 and answer.json().get("decision") == "permit"
        except httpx.HTTPError:
            permitted = False
        now = time.perf_counter()
        finished = max(finished, now)
        if permitted:
            latencies.append((now - scheduled) * 1000)
        else:
            errors += 1

    started = time.perf_counter()
    sends: list[asyncio.Task[None]] = []
    for index in range(total):
        scheduled = started + index * interval
        await asyncio.sleep(max(0.0, scheduled - time.perf_counter()))
        sends.append(asyncio.create_task(one(index, scheduled)))
    _, late = await asyncio.wait(sends, timeout=NETWORK_DRAIN_SECONDS)
    for send in late:
        send.cancel()
    await asyncio.gather(*late, return_exceptions=True)
    return RateResult(
        target=target,
        sent=total,
        ok=len(latencies),
        errors=errors + len(late),
        p50_ms=percentile(latencies, 0.5) if latencies else float("nan"),
        p95_ms=percentile(latencies, 0.95) if latencies else float("nan"),
        p99_ms=percentile(latencies, 0.99) if latencies else float("nan"),
        achieved=len(latencies) / (finished - started) if latencies else 0.0,
    )


async def http_over_network(postgres: str | None) -> list[RateResult]:
    """The check route of a real ``dpi serve --blocks consent`` subprocess over TCP on 127.0.0.1."""
    minter = TokenMinter(SigningKey.generate(), ISSUER)
    schema: str | None = None
    admin: asyncpg.Connection | None = None
    with tempfile.TemporaryDirectory() as directory:
        env = {key: value for key, value in os.environ.items() if not key.startswith("DPI_")}
        env |= {"DPI_VAR_DIR": str(Path(directory) / "var"), "DPI_TOKEN_ISSUER": ISSUER}
        env |= {"DPI_LOG_LEVEL": "WARNING", "DPI_WORKERS": "1"}
        try:
            if postgres:
                parsed = make_url(postgres)
                admin = await asyncpg.connect(
                    parsed.set(drivername="postgresql").render_as_string(hide_password=False)
                )
                schema = f"dpi_bench_{uuid.uuid4().hex[:12]}"
                await admin.execute(f'CREATE SCHEMA "{schema}"')
                served_url = parsed.update_query_dict({"search_path": schema})
                env["DPI_DATABASE_URL"] = served_url.render_as_string(hide_password=False)
            async with CallbackReceiver(response_status=200, response_body=minter.jwks()) as jwks:
                env["DPI_TOKEN_JWKS_URL"] = f"{jwks.url}/jwks.json"
                return await _against_served(env, minter, Path(directory) / "serve.log")
        finally:
            if admin is not None:
                if schema is not None:
                    await admin.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
                await admin.close()


async def _against_served(env: dict[str, str], minter: TokenMinter, log_path: Path) -> list[RateResult]:
    port = free_port()
    command = [sys.executable, "-m", "dpi", "serve", "--blocks", "consent", "--port", str(port)]
    with log_path.open("wb") as log:
        process = await asyncio.create_subprocess_exec(
            *command, env=env, cwd=REPOSITORY, stdout=log, stderr=log, start_new_session=True
        )
    try:
        limits = httpx.Limits(
            max_connections=NETWORK_CONNECTIONS, max_keepalive_connections=NETWORK_CONNECTIONS
        )
        async with httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{port}", limits=limits, timeout=5.0
        ) as client:
            await wait_ready(client, process, log_path)
            subjects = await seed_over_http(client, minter, "net")
            headers = {"authorization": f"Bearer {minter.mint('bench-exchange', ['consent:check'])}"}
            for subject in subjects:  # warm connections, caches and the JWKS fetch
                answer = await client.post("/consent/v1/checks", json=check_request(subject), headers=headers)
                if answer.status_code != 200 or answer.json().get("decision") != "permit":
                    raise RuntimeError(f"a warm-up check answered {answer.status_code}: {answer.text}")
            runs: list[RateResult] = []
            for target in NETWORK_RATES:  # step up until a rate is not sustained
                runs.append(await checks_at_rate(client, headers, subjects, target))
                if not runs[-1].sustained:
                    break
            return runs
    finally:
        await stop_server(process)


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
            f"in-process ASGI transport, no socket (consent block route, SQLite, bearer JWT verified per"
            f" request) at {HTTP_RATE}/s for {HTTP_SECONDS:.0f} s: p50 {p50:.2f} ms, p99 {p99:.2f} ms,"
            f" achieved {achieved:.0f}/s"
        )
        network = await http_over_network(postgres)
        database = "PostgreSQL, scratch schema" if postgres else "SQLite"
        for run in network:
            print(
                f"network HTTP/1.1 to `dpi serve --blocks consent` (1 worker, {database}, keep-alive,"
                f" open loop) at {run.target}/s for {NETWORK_SECONDS:.0f} s: p50 {run.p50_ms:.2f} ms,"
                f" p95 {run.p95_ms:.2f} ms, p99 {run.p99_ms:.2f} ms, achieved {run.achieved:.0f}/s,"
                f" {run.errors} errors of {run.sent}"
            )
        best = max((run for run in network if run.sustained), key=lambda run: run.target, default=None)
        result: dict[str, Any] = {
            "name": "consent-checks",
            "value": round(cached),
            "unit": "decisions/s",
            "baseline": round(uncached),
            "ratio": round(cached / uncached, 1),
            "http_p50_ms": round(p50, 3),
            "http_p99_ms": round(p99, 3),
            "http_rate_per_s": round(achieved, 1),
            "http_network_p50_ms": round(best.p50_ms, 3) if best else None,
            "http_network_p95_ms": round(best.p95_ms, 3) if best else None,
            "http_network_p99_ms": round(best.p99_ms, 3) if best else None,
            "http_network_rate_per_s": round(best.achieved, 1) if best else None,
            "http_network_target_per_s": best.target if best else None,
            "http_network_runs": [
                {
                    "target_per_s": run.target,
                    "rate_per_s": round(run.achieved, 1),
                    "p50_ms": finite(run.p50_ms),
                    "p95_ms": finite(run.p95_ms),
                    "p99_ms": finite(run.p99_ms),
                    "errors": run.errors,
                    "sent": run.sent,
                }
                for run in network
            ],
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
