"""Identity sign-ins: complete OpenID Connect sign-ins per second over HTTP, the way a browser and a relying
party drive them (GET /authorize, the sign-in form, the one-time code read from the SMS, the code form, the
consent page when the provider shows one, the redirect with the code, POST /token with client_secret_basic,
GET /userinfo), with p50/p95 per endpoint, and the same transport's GET /healthz round trips as baseline.

In-process by default (the kernel app behind httpx's ASGI transport, one process). With --workers N the
app is served by granian with N worker processes on 127.0.0.1 and driven over TCP by light browsers (one
keep-alive connection each, h11 on asyncio streams, a cookie jar); codes then travel through the
SMS-gateway sender to a receiver the benchmark runs, as in a deployment.

SQLite in a temporary directory by default; --postgres URL (default DPI_TEST_DATABASE_URL) runs on a
scratch schema of that database, created and dropped by the run. People are enrolled from the demo's
synthetic register, each signing in once; the per-client OTP rate (120 a minute by contract) is raised
for the benchmark's client only through the block's ``otp_policy``.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import html
import json
import os
import re
import signal
import socket
import sys
import tempfile
import time
import uuid
from collections import defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from http.cookies import SimpleCookie
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import asyncpg
import h11
import httpx
from sqlalchemy.engine import make_url

from dpi import db
from dpi.app import create_app, migrate
from dpi.blocks import Block
from dpi.keys import KeyStore
from dpi.settings import Settings
from identity.authentication import OtpPolicy
from identity.block import identity_block, key_paths
from identity.clients import ClientRegistry
from identity.demo import OPERATOR, synthetic_people
from identity.pseudonyms import load_or_create_key
from identity.senders import HttpSmsGatewaySender, OtpSender
from identity.service import PersonRegister

REPOSITORY = Path(__file__).resolve().parents[1]
CLIENT_ID = "bench-portal"
SECTOR = "DPI/GOV/MOL/jobseekers"
REDIRECT = "http://127.0.0.1/bench/callback"
STEPS = ("authorize", "identifier", "otp", "consent", "token", "userinfo")
BENCH_POLICY = OtpPolicy(sends_per_client=1_000_000, client_window=timedelta(minutes=1))
SERVER_READY_SECONDS = 30.0
VERIFIER = "bench-" + "v" * 60
CHALLENGE = base64.urlsafe_b64encode(hashlib.sha256(VERIFIER.encode()).digest()).rstrip(b"=").decode()
CODE = re.compile(r"\b(\d{6})\b")
FORM = re.compile(r'<form[^>]*method="post"[^>]*action="([^"]+)"', re.IGNORECASE)
INPUT = re.compile(r"<input\b([^>]*)>", re.IGNORECASE)
BUTTON = re.compile(r"<button\b([^>]*)>", re.IGNORECASE)
ATTRIBUTE = re.compile(r'([a-zA-Z_:-]+)="([^"]*)"')
ALLOW = re.compile(r"allow|approve|accept|grant|consent|yes|oui", re.IGNORECASE)


def percentile(samples: list[float], fraction: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))] if ordered else float("nan")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def attributes(tag: str) -> dict[str, str]:
    return {name.lower(): html.unescape(value) for name, value in ATTRIBUTE.findall(tag)}


def form_fields(page: str) -> tuple[str, list[tuple[str, str]]]:
    """The first post form of a page: its action and what a person accepting everything would send
    (hidden fields, every checkbox ticked, the allowing submit button)."""
    action = FORM.search(page)
    if action is None:
        raise AssertionError(f"no form on the page: {page[:300]}")
    fields: list[tuple[str, str]] = []
    for tag in INPUT.findall(page):
        found = attributes(tag)
        kind = found.get("type", "text").lower()
        if "name" in found and kind in {"hidden", "checkbox", "radio"}:
            if kind == "radio" and any(name == found["name"] for name, _ in fields):
                continue
            fields.append((found["name"], found.get("value", "on")))
    buttons = [attributes(tag) for tag in BUTTON.findall(page)]
    named = [button for button in buttons if "name" in button]
    if named:
        chosen = next((b for b in named if ALLOW.search(b.get("value", ""))), named[0])
        fields.append((chosen["name"], chosen.get("value", "")))
    return html.unescape(action.group(1)), fields


def as_form(fields: list[tuple[str, str]]) -> dict[str, list[str]]:
    form: dict[str, list[str]] = defaultdict(list)
    for name, value in fields:
        form[name].append(value)
    return form


@dataclass
class Codes:
    """One-time codes by destination phone, however they arrive."""

    waiting: dict[str, asyncio.Future[str]] = field(default_factory=dict)

    def deliver(self, destination: str, text: str) -> None:
        match = CODE.search(text)
        future = self.waiting.get(destination)
        if match is not None and future is not None and not future.done():
            future.set_result(match.group(1))

    def expect(self, destination: str) -> asyncio.Future[str]:
        future: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        self.waiting[destination] = future
        return future


@dataclass
class InMemorySender:
    """An OTP sender handing each code straight to the benchmark (in-process runs)."""

    codes: Codes

    async def send(self, destination: str, text: str, language: str) -> None:
        self.codes.deliver(destination, text)


@dataclass
class Timings:
    per_step: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    failures: list[str] = field(default_factory=list)
    cpu_ms_per_signin: float = 0.0
    server_cpu_ms_per_signin: float | None = None

    def add(self, step: str, started: float) -> None:
        self.per_step[step].append((time.perf_counter() - started) * 1000)


class Answer:
    """A response as :func:`sign_in` reads it (the part of ``httpx.Response`` it uses)."""

    def __init__(self, status_code: int, headers: dict[str, str], body: bytes) -> None:
        self.status_code = status_code
        self.headers = headers
        self.content = body

    @property
    def text(self) -> str:
        return self.content.decode("utf-8")

    def json(self) -> Any:
        return json.loads(self.content)


class Browser:
    """A browser's HTTP/1.1 over one keep-alive TCP connection (asyncio streams, h11 for the protocol),
    with its cookie jar; far less client CPU per request than httpx, so the run measures the server.

    Cookies are kept by name with their path and sent on requests under that path; ``Max-Age=0`` (or a
    past ``Expires``) deletes one, as browsers do. Redirects are not followed (the flow reads them).
    """

    def __init__(self, host: str, port: int, timeout: float = 10.0) -> None:
        self.host, self.port, self.timeout = host, port, timeout
        self.cookies: dict[str, tuple[str, str]] = {}
        self._streams: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None
        self._protocol: h11.Connection | None = None

    async def __aenter__(self) -> Browser:
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        if self._streams is not None:
            self._streams[1].close()
            self._streams = None

    async def get(
        self, path: str, params: dict[str, str] | None = None, headers: dict[str, str] | None = None
    ) -> Answer:
        target = f"{path}?{urlencode(params)}" if params else path
        return await self.request("GET", target, dict(headers or {}))

    async def post(
        self, path: str, data: Any, auth: tuple[str, str] | None = None, headers: dict[str, str] | None = None
    ) -> Answer:
        fields = dict(headers or {})
        if auth is not None:
            fields["authorization"] = "Basic " + base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode()
        fields["content-type"] = "application/x-www-form-urlencoded"
        return await self.request("POST", path, fields, urlencode(data, doseq=True).encode())

    async def request(self, method: str, target: str, headers: dict[str, str], body: bytes = b"") -> Answer:
        return await asyncio.wait_for(self._exchange(method, target, headers, body), self.timeout)

    async def _exchange(self, method: str, target: str, headers: dict[str, str], body: bytes) -> Answer:
        path = urlsplit(target).path
        jar = "; ".join(
            f"{name}={value}" for name, (value, where) in self.cookies.items() if path.startswith(where)
        )
        fields = [("host", f"{self.host}:{self.port}"), *headers.items(), ("content-length", str(len(body)))]
        if jar:
            fields.append(("cookie", jar))
        for attempt in (1, 2):
            reused = self._streams is not None
            if self._streams is None or self._protocol is None or self._protocol.our_state is not h11.IDLE:
                await self.close()
                reused = False
                self._streams = await asyncio.open_connection(self.host, self.port)
                self._protocol = h11.Connection(h11.CLIENT)
            reader, writer = self._streams
            protocol = self._protocol
            writer.write(protocol.send(h11.Request(method=method, target=target, headers=fields)))
            writer.write(protocol.send(h11.Data(data=body)) + protocol.send(h11.EndOfMessage()))
            try:
                answer = await self._read(reader, protocol)
            except (ConnectionError, h11.RemoteProtocolError):
                # A keep-alive connection the server closed meanwhile: once more on a fresh one.
                await self.close()
                if attempt == 2 or not reused:
                    raise
                continue
            if protocol.our_state is h11.DONE and protocol.their_state is h11.DONE:
                protocol.start_next_cycle()
            return answer
        raise AssertionError("unreachable")

    async def _read(self, reader: asyncio.StreamReader, protocol: h11.Connection) -> Answer:
        status, headers, body = 0, {}, bytearray()
        set_cookies: list[str] = []
        while True:
            event = protocol.next_event()
            if event is h11.NEED_DATA:
                chunk = await reader.read(65536)
                if not chunk:
                    raise ConnectionResetError("the server closed the connection")
                protocol.receive_data(chunk)
            elif isinstance(event, h11.Response):
                status = event.status_code
                for name, value in event.headers:
                    if name == b"set-cookie":
                        set_cookies.append(value.decode("latin-1"))
                    else:
                        headers[name.decode("latin-1")] = value.decode("latin-1")
            elif isinstance(event, h11.Data):
                body += event.data
            elif isinstance(event, h11.EndOfMessage):
                break
        for line in set_cookies:
            self._store(line)
        return Answer(status, headers, bytes(body))

    def _store(self, line: str) -> None:
        parsed = SimpleCookie()
        parsed.load(line)
        for name, morsel in parsed.items():
            expired = morsel["max-age"] not in ("", None) and int(morsel["max-age"]) <= 0
            if expired or not morsel.value:
                self.cookies.pop(name, None)
            else:
                self.cookies[name] = (morsel.value, morsel["path"] or "/")


async def timed(timings: Timings, step: str, request: Awaitable[Any]) -> Any:
    started = time.perf_counter()
    response = await request
    timings.add(step, started)
    return response


async def sign_in(http: Any, person: tuple[str, str], secret: str, codes: Codes, timings: Timings) -> None:
    """One complete sign-in; raises on anything a browser or relying party would not accept."""
    uin, phone = person
    http.cookies.clear()
    query = {
        "response_type": "code",
        "client_id": CLIENT_ID,
        "redirect_uri": REDIRECT,
        "scope": "openid profile phone",
        "state": "bench",
        "code_challenge": CHALLENGE,
        "code_challenge_method": "S256",
    }
    page = await timed(timings, "authorize", http.get("/identity/authorize", params=query))
    if page.status_code != 200:
        raise AssertionError(f"authorize answered {page.status_code}")
    action, fields = form_fields(page.text)
    code = codes.expect(phone)
    form = as_form([*fields, ("identifier", uin)])
    otp_page = await timed(timings, "identifier", http.post(action, data=form))
    if otp_page.status_code != 200:
        raise AssertionError(f"the identifier form answered {otp_page.status_code}")
    action, fields = form_fields(otp_page.text)
    form = as_form([*fields, ("otp", await asyncio.wait_for(code, 10))])
    answer = await timed(timings, "otp", http.post(action, data=form))
    if answer.status_code == 200:  # a consent page: allow every claim asked for
        action, fields = form_fields(answer.text)
        answer = await timed(timings, "consent", http.post(action, data=as_form(fields)))
    if answer.status_code != 302:
        raise AssertionError(f"the code form answered {answer.status_code}")
    authorization_code = parse_qs(urlsplit(answer.headers["location"]).query)["code"][0]
    redeem = {
        "grant_type": "authorization_code",
        "code": authorization_code,
        "redirect_uri": REDIRECT,
        "code_verifier": VERIFIER,
    }
    tokens = await timed(
        timings, "token", http.post("/identity/token", data=redeem, auth=(CLIENT_ID, secret))
    )
    if tokens.status_code != 200:
        raise AssertionError(f"the token endpoint answered {tokens.status_code}: {tokens.text}")
    bearer = {"Authorization": f"Bearer {tokens.json()['access_token']}"}
    claims = await timed(timings, "userinfo", http.get("/identity/userinfo", headers=bearer))
    if claims.status_code != 200 or "name" not in claims.json():
        raise AssertionError(f"userinfo answered {claims.status_code}")


async def prepare(settings: Settings, count: int) -> tuple[list[tuple[str, str]], str]:
    """Enrol ``count`` people with a phone through the register and register the benchmark's client."""
    engine = db.create_engine(settings.database)
    try:
        sessions = db.session_factory(engine)
        pseudonym_path, vid_path = key_paths(settings)
        register = PersonRegister(
            sessions, pseudonym_key=load_or_create_key(pseudonym_path), vid_key=load_or_create_key(vid_path)
        )
        people = [person for person in synthetic_people(count * 2) if "phone" in person][:count]
        enrolled: list[tuple[str, str]] = []
        for start in range(0, len(people), 500):
            batch = people[start : start + 500]
            outcomes = await register.enrol_many(batch, operator_id=OPERATOR, channel="assisted")
            for document, outcome in zip(batch, outcomes, strict=True):
                if not isinstance(outcome, dict):
                    raise RuntimeError(f"enrolment refused: {outcome.reason_code}")
                enrolled.append((outcome["uin"], document["phone"]))
        _stored, secret = await ClientRegistry(sessions).add(
            {
                "client_id": CLIENT_ID,
                "client_name": "Benchmark portal",
                "redirect_uris": [REDIRECT],
                "sector": SECTOR,
                "scope": ["openid", "profile", "phone"],
            }
        )
    finally:
        await engine.dispose()
    assert secret is not None
    return enrolled, secret


def process_group_cpu(group: int) -> float:
    """CPU seconds (user and system) of the live processes of process group ``group`` (Linux ``/proc``):
    the granian server and its workers."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rpartition(")")[2].split()
        except OSError:
            continue
        if int(fields[2]) == group:
            total += int(fields[11]) + int(fields[12])
    return total / ticks


async def run_flows(
    client_for: Any,
    people: list[tuple[str, str]],
    secret: str,
    codes: Codes,
    concurrency: int,
    server_cpu: Callable[[], float] | None = None,
) -> tuple[float, Timings]:
    """Every person signs in once, ``concurrency`` at a time; sign-ins per second over the whole run."""
    timings = Timings()
    queue: asyncio.Queue[tuple[str, str]] = asyncio.Queue()
    for person in people:
        queue.put_nowait(person)

    async def worker() -> None:
        async with client_for() as http:
            while not queue.empty():
                person = queue.get_nowait()
                try:
                    await sign_in(http, person, secret, codes, timings)
                except (
                    AssertionError,
                    httpx.HTTPError,
                    OSError,
                    h11.ProtocolError,
                    TimeoutError,
                    KeyError,
                ) as error:
                    timings.failures.append(f"{type(error).__name__}: {error}")

    server_started = server_cpu() if server_cpu is not None else 0.0
    started, cpu = time.perf_counter(), time.process_time()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    elapsed = time.perf_counter() - started
    timings.cpu_ms_per_signin = (time.process_time() - cpu) * 1000 / max(1, len(people))
    if server_cpu is not None:
        timings.server_cpu_ms_per_signin = (server_cpu() - server_started) * 1000 / max(1, len(people))
    return (len(people) - len(timings.failures)) / elapsed, timings


async def healthz_rate(client_for: Any, concurrency: int, total: int) -> float:
    done = 0

    async def worker() -> None:
        nonlocal done
        async with client_for() as http:
            while done < total:
                done += 1
                answer = await http.get("/healthz")
                if answer.status_code != 200:
                    raise AssertionError(f"/healthz answered {answer.status_code}")

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return total / (time.perf_counter() - started)


@asynccontextmanager
async def scratch_database(postgres: str | None) -> AsyncIterator[str | None]:
    if not postgres:
        yield None
        return
    parsed = make_url(postgres)
    admin = await asyncpg.connect(parsed.set(drivername="postgresql").render_as_string(hide_password=False))
    schema = f"dpi_bench_{uuid.uuid4().hex[:12]}"
    await admin.execute(f'CREATE SCHEMA "{schema}"')
    try:
        yield parsed.update_query_dict({"search_path": schema}).render_as_string(hide_password=False)
    finally:
        await admin.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        await admin.close()


def bench_block(sender: OtpSender) -> Block:
    return identity_block(otp_sender=lambda _settings: sender, otp_policy=BENCH_POLICY)


def application() -> Any:
    """The app a granian worker serves (``--workers``): the identity block with the benchmark's OTP
    policy, codes sent to the SMS-gateway receiver the benchmark runs."""
    settings = Settings.from_environment()
    assert settings.sms_gateway_url is not None
    sender = HttpSmsGatewaySender(settings.sms_gateway_url, client=httpx.AsyncClient(timeout=10.0))
    return create_app(settings, blocks=[bench_block(sender)])


@asynccontextmanager
async def in_process(settings: Settings, codes: Codes) -> AsyncIterator[Any]:
    app = create_app(settings, blocks=[bench_block(InMemorySender(codes=codes))])
    transport = httpx.ASGITransport(app=app)

    def client_for() -> httpx.AsyncClient:
        return httpx.AsyncClient(transport=transport, base_url=settings.public_url)

    async with app.litestar.lifespan():
        yield client_for, None


@asynccontextmanager
async def sms_gateway(codes: Codes) -> AsyncIterator[str]:
    """A minimal HTTP/1.1 server playing the SMS gateway: each ``POST {to, text}`` hands its code over."""

    async def connection(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n"):
                    name, _, value = line.partition(b":")
                    if name.strip().lower() == b"content-length":
                        length = int(value)
                body = json.loads(await reader.readexactly(length)) if length else {}
                codes.deliver(str(body.get("to")), str(body.get("text")))
                writer.write(b"HTTP/1.1 202 Accepted\r\ncontent-length: 0\r\n\r\n")
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(connection, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}/sms"
    finally:
        server.close()


@asynccontextmanager
async def served(settings: Settings, codes: Codes, workers: int, directory: Path) -> AsyncIterator[Any]:
    """``workers`` granian processes serving :func:`application`, and a receiver playing the SMS gateway."""

    port = free_port()
    async with sms_gateway(codes) as gateway:
        env = {key: value for key, value in os.environ.items() if not key.startswith("DPI_")}
        env |= {
            "DPI_VAR_DIR": str(settings.var_dir),
            "DPI_LOG_LEVEL": "WARNING",
            "DPI_OTP_SENDER": "http",
            "DPI_SMS_GATEWAY_URL": gateway,
            "DPI_BASE_URL": settings.public_url,
            "PYTHONPATH": str(REPOSITORY),
        }
        if settings.database_url is not None:
            env["DPI_DATABASE_URL"] = settings.database_url
        command = [
            sys.executable,
            "-m",
            "granian",
            "--interface",
            "asgi",
            "--factory",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            str(workers),
            "--no-log",
            "bench.identity_signins:application",
        ]
        log_path = directory / "serve.log"
        with log_path.open("wb") as log:
            process = await asyncio.create_subprocess_exec(
                *command, env=env, cwd=REPOSITORY, stdout=log, stderr=log, start_new_session=True
            )
        base = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + SERVER_READY_SECONDS
            async with httpx.AsyncClient(base_url=base) as probe:
                while True:
                    if process.returncode is not None or time.monotonic() > deadline:
                        raise RuntimeError(f"granian did not start:\n{log_path.read_text()[-2000:]}")
                    try:
                        if (await probe.get("/readyz")).status_code == 200:
                            break
                    except httpx.TransportError:
                        await asyncio.sleep(0.1)

            def client_for() -> Browser:
                return Browser("127.0.0.1", port)

            yield client_for, lambda: process_group_cpu(process.pid)
        finally:
            if process.returncode is None:
                process.send_signal(signal.SIGINT)
                try:
                    await asyncio.wait_for(process.wait(), 10)
                except TimeoutError:
                    os.killpg(process.pid, signal.SIGKILL)
                    await process.wait()


def report(label: str, rate: float, people: int, timings: Timings, workers: int) -> dict[str, Any]:
    """Print one run's figures and return them as JSON fields."""
    print(f"  {label}: {rate:.1f} complete sign-ins/s over {people} people, {len(timings.failures)} failed")
    for step in STEPS:
        samples = timings.per_step.get(step)
        if samples:
            p50, p95 = percentile(samples, 0.5), percentile(samples, 0.95)
            print(f"    {step:<10} p50 {p50:7.2f} ms  p95 {p95:7.2f} ms  ({len(samples)} requests)")
    print(
        f"    CPU time of the benchmark process ({'client only' if workers else 'client and server'}): "
        f"{timings.cpu_ms_per_signin:.1f} ms per sign-in"
    )
    if timings.server_cpu_ms_per_signin is not None:
        print(f"    CPU time of the granian processes: {timings.server_cpu_ms_per_signin:.1f} ms per sign-in")
    for failure in timings.failures[:5]:
        print(f"    failed: {failure}")
    server_cpu = timings.server_cpu_ms_per_signin
    return {
        "value": round(rate, 1),
        "failures": len(timings.failures),
        "cpu_ms_per_signin": round(timings.cpu_ms_per_signin, 1),
        "server_cpu_ms_per_signin": None if server_cpu is None else round(server_cpu, 1),
        "p50_ms": {step: round(percentile(s, 0.5), 2) for step, s in timings.per_step.items()},
        "p95_ms": {step: round(percentile(s, 0.95), 2) for step, s in timings.per_step.items()},
    }


async def main(postgres: str | None, count: int, concurrency: int, workers: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as directory:
        async with scratch_database(postgres) as database_url:
            settings = Settings(
                var_dir=Path(directory) / "var",
                database_url=database_url,
                base_url="http://127.0.0.1",
                log_level="WARNING",
            )
            codes = Codes()
            await migrate(settings, [bench_block(InMemorySender(codes=codes))])
            KeyStore(settings.key_directory).ensure_active()
            people, secret = await prepare(settings, count)
            warm, people = people[: concurrency * 2], people[concurrency * 2 :]
            if workers:
                serving = served(settings, codes, workers, Path(directory))
                where = f"granian, {workers} worker process(es), HTTP/1.1 over 127.0.0.1"
            else:
                serving = in_process(settings, codes)
                where = "in-process ASGI transport, one process"
            async with serving as (client_for, server_cpu):
                await run_flows(client_for, warm, secret, codes, concurrency)
                baseline = await healthz_rate(client_for, concurrency, 2000)
                rate, first = await run_flows(client_for, people, secret, codes, concurrency, server_cpu)
                # The same people again: the consent they gave is remembered, so no consent page.
                again, returning = await run_flows(client_for, people, secret, codes, concurrency, server_cpu)
    database = "PostgreSQL, scratch schema" if postgres else "SQLite"
    print(
        f"identity sign-ins ({where}; {database}; {concurrency} concurrent browsers); "
        f"GET /healthz {baseline:.0f}/s on the same transport"
    )
    first_fields = report("first sign-in of each person (consent page)", rate, len(people), first, workers)
    returning_fields = report(
        "returning sign-in (consent remembered)", again, len(people), returning, workers
    )
    requests_per_signin = sum(len(samples) for samples in first.per_step.values()) / max(
        1, len(people) - len(first.failures)
    )
    return {
        "name": "identity-signins",
        **first_fields,
        "unit": "sign-ins/s",
        "baseline": round(baseline, 1),
        "ratio": round(rate * requests_per_signin / baseline, 3),
        "database": "postgresql" if postgres else "sqlite",
        "workers": workers,
        "concurrency": concurrency,
        "people": len(people),
        "returning": returning_fields,
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--postgres", default=os.environ.get("DPI_TEST_DATABASE_URL") or None)
    parser.add_argument("--people", type=int, default=300, help="sign-ins measured, one per person")
    parser.add_argument("--concurrency", type=int, default=8, help="browsers signing in at once")
    parser.add_argument("--workers", type=int, default=0, help="granian workers (0: in-process)")
    arguments = parser.parse_args()
    result = asyncio.run(main(arguments.postgres, arguments.people, arguments.concurrency, arguments.workers))
    print(json.dumps(result))
