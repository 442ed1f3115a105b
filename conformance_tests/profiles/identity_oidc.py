"""Profile ``identity-oidc``: an OpenID provider a ministry's portal can rely on (IDN-001..IDN-016).

Modelled on the OpenID Foundation's Config OP and Basic OP test plans
(https://openid.net/certification/connect_op_testing/): the discovery document, the authorization code
flow with ``state`` and ``nonce``, ID token validation, PKCE, a reused code, a wrong redirect URI, unknown
parameters, client authentication failures and userinfo errors; plus the privacy rules of dpi-blocks:
a different ``sub`` per sector and no UIN anywhere a client or a user agent can read.

The suite plays the relying parties the operator registered for the run (``--oidc-client``), the person's
browser (:class:`~conformance_tests.user_agent.UserAgent`) and the SMS gateway: the provider posts the
one-time code to a :class:`~conformance_tests.receiver.CallbackReceiver` the suite hosts, and the suite
reads the code from the message. The person signs in once per run; later flows reuse the session.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final
from urllib.parse import parse_qsl, urlencode, urlsplit

import jwt

from conformance_tests.model import Finding, Profile
from conformance_tests.receiver import CallbackReceiver, CallbackTimeout, ReceivedCallback
from conformance_tests.registry import register_profile
from conformance_tests.relying_party import OidcClient, OidcOptions, Pkce, id_token_problems
from conformance_tests.target import Exchange, TargetSession
from conformance_tests.user_agent import Arrival, UserAgent, same_origin
from dpi.keys import SigningKey

__all__ = ["IDENTITY_OIDC"]

IDENTITY_OIDC = register_profile(
    Profile(
        name="identity-oidc",
        version="1.0.0",
        description="OpenID provider: discovery, code flow, PKCE, tokens, userinfo, pairwise subjects.",
    )
)

NO_OPTIONS: Final = (
    "the identity-oidc profile needs client registrations and a test person: run with --oidc-client "
    "(twice, clients of different sectors) and --oidc-person, the provider posting one-time codes to the "
    "suite's SMS gateway (--sms-gateway-listen)"
)
REQUIRED_METADATA: Final = (
    "issuer",
    "authorization_endpoint",
    "token_endpoint",
    "userinfo_endpoint",
    "jwks_uri",
    "response_types_supported",
    "subject_types_supported",
    "id_token_signing_alg_values_supported",
)
ENDPOINT_METADATA: Final = (
    "authorization_endpoint",
    "token_endpoint",
    "userinfo_endpoint",
    "jwks_uri",
    "registration_endpoint",
    "end_session_endpoint",
    "introspection_endpoint",
    "revocation_endpoint",
    "pushed_authorization_request_endpoint",
)
PRIVATE_JWK_MEMBERS: Final = frozenset({"d", "p", "q", "dp", "dq", "qi", "oth", "k"})
_IDENTIFIER_FIELDS: Final = frozenset({"identifier", "uin", "vid", "individual_id", "username", "login"})
_CODE_FIELDS: Final = frozenset({"otp", "code", "one_time_code", "otp_code", "sms_code"})
_OTP: Final = re.compile(r"(?<!\d)(\d{4,8})(?!\d)")
_JWT: Final = re.compile(r"eyJ[\w-]+\.eyJ[\w-]+\.[\w-]*")


@dataclass
class _Flow:
    """One authorization request and where the user agent ended."""

    client: OidcClient
    state: str
    nonce: str
    pkce: Pkce | None
    arrival: Arrival
    params: dict[str, str] = field(default_factory=dict)

    @property
    def code(self) -> str | None:
        return self.params.get("code")

    @property
    def evidence_exchange(self) -> Exchange:
        return self.arrival.last


@dataclass
class _Tokens:
    """A redeemed code: the token response and what the suite made of it."""

    client: OidcClient
    response: Exchange
    body: dict[str, Any]
    claims: dict[str, Any]
    problems: list[str]

    @property
    def access_token(self) -> str | None:
        value = self.body.get("access_token")
        return value if isinstance(value, str) else None

    @property
    def sub(self) -> str | None:
        value = self.claims.get("sub")
        return value if isinstance(value, str) else None


@dataclass
class _World:
    """What the setup learnt and obtained, shared by the profile's tests."""

    options: OidcOptions
    issuer: str
    discovery: Exchange | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    jwks: dict[str, Any] = field(default_factory=dict)
    browser: UserAgent | None = None
    first: _Flow | None = None
    first_tokens: _Tokens | None = None
    problems: list[str] = field(default_factory=list)
    setup: list[Exchange] = field(default_factory=list)
    otp_messages_seen: int = 0
    receiver: CallbackReceiver | None = None

    @property
    def clients(self) -> tuple[OidcClient, ...]:
        return self.options.clients

    def endpoint(self, name: str, fallback: str) -> str:
        value = self.metadata.get(name)
        return value if isinstance(value, str) and value else f"{self.issuer}{fallback}"


def _leaves(world: _World, session: TargetSession) -> Any:
    provider = [session.base_url, world.issuer, world.endpoint("authorization_endpoint", "/authorize")]
    redirects = [client.redirect_uri for client in world.clients]

    def leaves(url: str) -> bool:
        if any(url.split("?", 1)[0].split("#", 1)[0] == r for r in redirects):
            return True
        return not same_origin(url, provider)

    return leaves


def _browser(session: TargetSession, world: _World) -> UserAgent:
    async def fill(name: str) -> str | None:
        lowered = name.lower()
        if lowered in _IDENTIFIER_FIELDS:
            if world.receiver is not None:
                world.otp_messages_seen = len(world.receiver.messages)
            return world.options.person
        if lowered in _CODE_FIELDS:
            return await _one_time_code(session, world)
        return None

    return UserAgent(session, fill, _leaves(world, session))


async def _one_time_code(session: TargetSession, world: _World) -> str | None:
    receiver = world.receiver
    if receiver is None:
        return None
    already = world.otp_messages_seen

    def new_code(message: ReceivedCallback) -> bool:
        return receiver.messages.index(message) >= already and _code_in(message) is not None

    try:
        message = await receiver.wait_for(new_code, timeout=session.options.callback_timeout)
    except CallbackTimeout as timeout:
        world.problems.append(f"no one-time code reached the suite's SMS gateway ({timeout})")
        return None
    world.otp_messages_seen = receiver.messages.index(message) + 1
    return _code_in(message)


def _code_in(message: ReceivedCallback) -> str | None:
    try:
        document = message.json()
    except ValueError:
        return None
    text = document.get("text") if isinstance(document, dict) else None
    found = _OTP.search(text) if isinstance(text, str) else None
    return found.group(1) if found else None


def _authorization_url(
    world: _World, client_id: str, redirect_uri: str, parameters: Mapping[str, str | None]
) -> str:
    query = {
        "response_type": "code",
        "client_id": client_id,
        "redirect_uri": redirect_uri,
        "scope": "openid",
        **parameters,
    }
    sent = {name: value for name, value in query.items() if value is not None}
    return f"{world.endpoint('authorization_endpoint', '/authorize')}?{urlencode(sent)}"


def _redirect_parameters(url: str) -> dict[str, str]:
    parts = urlsplit(url)
    return dict(parse_qsl(parts.query, keep_blank_values=True)) | dict(
        parse_qsl(parts.fragment, keep_blank_values=True)
    )


async def _authorize(
    session: TargetSession,
    world: _World,
    client: OidcClient,
    *,
    browser: UserAgent | None = None,
    parameters: Mapping[str, str | None] | None = None,
) -> _Flow:
    """Run one authorization request in ``browser`` (the run's signed-in one by default)."""
    agent = browser or world.browser or _browser(session, world)
    state, nonce = secrets.token_urlsafe(16), secrets.token_urlsafe(16)
    pair = Pkce()
    parameters = dict(parameters or {})
    challenge = {"code_challenge": pair.challenge, "code_challenge_method": "S256"}
    url = _authorization_url(
        world,
        client.client_id,
        client.redirect_uri,
        {"state": state, "nonce": nonce, **challenge, **parameters},
    )
    async with CallbackReceiver(world.options.sms_host, world.options.sms_port) as receiver:
        world.receiver = receiver
        try:
            arrival = await agent.navigate(url)
        finally:
            world.receiver = None
    flow = _Flow(client, parameters.get("state") or state, parameters.get("nonce") or nonce, pair, arrival)
    if arrival.redirect is not None:
        flow.params = _redirect_parameters(arrival.redirect)
    return flow


async def _redeem(
    session: TargetSession,
    world: _World,
    client: OidcClient,
    code: str,
    *,
    verifier: str | None,
    headers: Mapping[str, str] | None = None,
    form: Mapping[str, str] | None = None,
) -> Exchange:
    token_endpoint = world.endpoint("token_endpoint", "/token")
    auth_headers, auth_form = client.authenticate(token_endpoint)
    fields = {"grant_type": "authorization_code", "code": code, "redirect_uri": client.redirect_uri}
    if verifier is not None:
        fields["code_verifier"] = verifier
    fields |= auth_form
    fields |= dict(form or {})
    return await session.request(
        "POST",
        token_endpoint,
        headers={
            "content-type": "application/x-www-form-urlencoded",
            "accept": "application/json",
            **auth_headers,
            **(headers or {}),
        },
        content=urlencode(fields).encode(),
    )


def _tokens(world: _World, client: OidcClient, response: Exchange, nonce: str | None) -> _Tokens:
    body = response.json_object() or {}
    problems: list[str] = []
    claims: dict[str, Any] = {}
    if response.status != 200:
        problems.append(f"the token endpoint answered {response.status}")
    id_token = body.get("id_token")
    if isinstance(id_token, str):
        claims, problems_found = id_token_problems(
            id_token,
            world.jwks,
            issuer=world.issuer,
            client_id=client.client_id,
            access_token=body.get("access_token") if isinstance(body.get("access_token"), str) else None,
        )
        problems += problems_found
    elif response.status == 200:
        problems.append("the token response holds no id_token")
    return _Tokens(client, response, body, claims, problems)


async def _signed_in_flow(
    session: TargetSession,
    world: _World,
    client: OidcClient,
    parameters: Mapping[str, str | None] | None = None,
) -> tuple[_Flow, _Tokens | None]:
    """A complete code flow for ``client`` in the run's browser: the flow and the redeemed tokens."""
    flow = await _authorize(session, world, client, parameters=parameters)
    if flow.code is None:
        return flow, None
    response = await _redeem(
        session, world, client, flow.code, verifier=flow.pkce.verifier if flow.pkce else None
    )
    return flow, _tokens(world, client, response, flow.nonce)


async def _world(session: TargetSession) -> _World | None:
    """Read the discovery document and the JWKS, sign the person in once, and redeem a first code."""
    if "identity-oidc" in session.state:
        known: _World | None = session.state["identity-oidc"]
        return known
    options = session.options.oidc
    if options is None:
        session.state["identity-oidc"] = None
        return None
    world = _World(options=options, issuer=(options.issuer or f"{session.base_url}/identity").rstrip("/"))
    session.state["identity-oidc"] = world
    discovery = await session.request("GET", f"{world.issuer}/.well-known/openid-configuration")
    world.discovery = discovery
    world.setup.append(discovery)
    world.metadata = discovery.json_object() or {} if discovery.status == 200 else {}
    if not world.metadata:
        world.problems.append(f"the discovery document answered {discovery.status}")
    jwks = await session.request("GET", world.endpoint("jwks_uri", "/.well-known/jwks.json"))
    world.setup.append(jwks)
    world.jwks = jwks.json_object() or {"keys": []}
    world.browser = _browser(session, world)
    flow, tokens = await _signed_in_flow(session, world, world.clients[0])
    world.setup += flow.arrival.steps
    world.first, world.first_tokens = flow, tokens
    if flow.code is None:
        world.problems.append(
            "the person could not be signed in: "
            + (flow.arrival.problem or f"the provider redirected to {flow.arrival.redirect}")
        )
    elif tokens is None or tokens.response.status != 200:
        world.problems.append("the first code could not be redeemed")
    return world


def _unavailable(requirements: Sequence[str], world: _World | None) -> list[Finding] | None:
    if world is None:
        return [Finding.skipped(requirement, NO_OPTIONS) for requirement in requirements]
    if world.first_tokens is None or world.first_tokens.response.status != 200:
        reason = "; ".join(world.problems) or "the setup failed"
        evidence = (
            world.setup[-1].evidence("the sign-in and first code flow to succeed") if world.setup else None
        )
        return [Finding.failed(r, f"setup failed: {reason}", evidence) for r in requirements]
    return None


def _result(requirement: str, problems: Sequence[str], passed: str, evidence: Exchange | None) -> Finding:
    if problems:
        return Finding.failed(
            requirement, "; ".join(problems[:4]), evidence.evidence(passed) if evidence else None
        )
    return Finding.passed(requirement, passed)


def _oauth_error(exchange: Exchange) -> str | None:
    body = exchange.json_object() or {}
    error = body.get("error")
    return error if isinstance(error, str) else None


# --- discovery and keys -------------------------------------------------------------------------------------


@IDENTITY_OIDC.test("discovery", ["IDN-001"])
async def discovery(session: TargetSession) -> list[Finding]:
    """The discovery document names the issuer exactly, holds the required members, and points at https
    endpoints (or at the issuer's own origin when the issuer was configured with http)."""
    world = await _world(session)
    if world is None:
        return [Finding.skipped("IDN-001", NO_OPTIONS)]
    exchange = world.discovery
    document = world.metadata
    problems: list[str] = []
    if exchange is None or exchange.status != 200 or not document:
        problems.append("no JSON discovery document")
    else:
        if exchange.content_type != "application/json":
            problems.append(f"served as {exchange.content_type!r}, not application/json")
        if document.get("issuer") != world.issuer:
            problems.append(f"issuer is {document.get('issuer')!r}, not {world.issuer!r}")
        missing = [name for name in REQUIRED_METADATA if name not in document]
        if missing:
            problems.append(f"missing {', '.join(missing)}")
        for name in ENDPOINT_METADATA:
            value = document.get(name)
            if value is None:
                continue
            if not isinstance(value, str) or not (
                value.startswith("https://")
                or (world.issuer.startswith("http://") and same_origin(value, [world.issuer]))
            ):
                problems.append(f"{name} {value!r} is neither https nor at the issuer's origin")
    return [_result("IDN-001", problems, "the discovery document is complete and names its issuer", exchange)]


@IDENTITY_OIDC.test("advertised-values", ["IDN-002"])
async def advertised_values(session: TargetSession) -> list[Finding]:
    """Every response type, scope and code challenge method listed works in an authorization request; the
    ID token's algorithm and the clients' authentication methods are among those listed."""
    world = await _world(session)
    unavailable = _unavailable(["IDN-002"], world)
    if unavailable is not None or world is None or world.first_tokens is None:
        return unavailable or []
    document = world.metadata
    problems: list[str] = []
    evidence: Exchange | None = world.discovery

    def listed(name: str) -> list[str]:
        value = document.get(name)
        return [str(v) for v in value] if isinstance(value, list) else []

    for name, needed in (
        ("response_types_supported", "code"),
        ("scopes_supported", "openid"),
        ("code_challenge_methods_supported", "S256"),
    ):
        if needed not in listed(name):
            problems.append(f"{name} does not list {needed}")
    if listed("subject_types_supported") != ["pairwise"]:
        problems.append(f"subject_types_supported is {document.get('subject_types_supported')!r}")
    client = world.clients[0]
    trials: list[tuple[str, dict[str, str | None]]] = []
    trials += [(f"response_type {v}", {"response_type": v}) for v in listed("response_types_supported")]
    trials += [
        (f"scope {v}", {"scope": " ".join(dict.fromkeys(["openid", v]))}) for v in listed("scopes_supported")
    ]
    trials += [
        (f"code_challenge_method {v}", {"code_challenge_method": v})
        for v in listed("code_challenge_methods_supported")
    ]
    for label, parameters in trials:
        flow = await _authorize(session, world, client, parameters=parameters)
        if flow.arrival.redirect is None or "error" in flow.params:
            problems.append(
                f"{label} is listed but refused ({flow.params.get('error') or flow.arrival.problem})"
            )
            evidence = flow.evidence_exchange
    id_token = world.first_tokens.body.get("id_token")
    algorithm = _header(id_token).get("alg") if isinstance(id_token, str) else None
    if algorithm not in listed("id_token_signing_alg_values_supported"):
        problems.append(f"the ID token is signed with {algorithm!r}, not a listed algorithm")
    methods = listed("token_endpoint_auth_methods_supported") or ["client_secret_basic"]
    for registered in world.clients:
        if registered.auth_method not in methods:
            problems.append(f"{registered.auth_method} works but is not listed")
    return [_result("IDN-002", problems, f"{len(trials)} listed values each accepted", evidence)]


def _header(token: str) -> dict[str, Any]:
    try:
        decoded = json.loads(_unb64(token.split(".")[0]))
    except (ValueError, binascii.Error):
        return {}
    return decoded if isinstance(decoded, dict) else {}


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@IDENTITY_OIDC.test("signing-keys", ["IDN-003"])
async def jwks(session: TargetSession) -> list[Finding]:
    """The JWKS holds public keys only, and the ID token and the JWT access token verify with it."""
    world = await _world(session)
    unavailable = _unavailable(["IDN-003"], world)
    if unavailable is not None or world is None or world.first_tokens is None:
        return unavailable or []
    problems: list[str] = []
    keys = world.jwks.get("keys")
    if not isinstance(keys, list) or not keys:
        problems.append("the JWKS holds no keys")
    else:
        leaking = sorted(
            {m for key in keys if isinstance(key, dict) for m in key if m in PRIVATE_JWK_MEMBERS}
        )
        if leaking:
            problems.append(f"the JWKS holds private members {leaking}")
    tokens = world.first_tokens
    problems += [p for p in tokens.problems if "signature" in p or "kid" in p]
    access = tokens.access_token
    if access is not None and access.count(".") == 2:
        header = _header(access)
        try:
            key = next(k for k in world.jwks.get("keys", []) if k.get("kid") == header.get("kid"))
            algorithm = str(header.get("alg"))
            jwt.decode(
                access,
                jwt.PyJWK(key, algorithm=algorithm).key,
                algorithms=[algorithm],
                options={"verify_aud": False, "verify_exp": False, "verify_iat": False},
            )
        except StopIteration:
            problems.append(f"no key of the JWKS has the access token's kid {header.get('kid')!r}")
        except Exception as error:  # PyJWT reports bad keys and signatures with several exception types
            problems.append(f"the access token does not verify with the JWKS ({type(error).__name__})")
    return [
        _result(
            "IDN-003",
            problems,
            "public keys only; the ID token and the access token verify with them",
            world.setup[1] if len(world.setup) > 1 else None,
        )
    ]


# --- the code flow ------------------------------------------------------------------------------------------


@IDENTITY_OIDC.test("code-flow", ["IDN-004", "IDN-005", "IDN-006", "IDN-007"])
async def code_flow(session: TargetSession) -> list[Finding]:
    """Sign-in, redirect with code and state, token response, nonce, ID token validation; the state also
    comes back with an error (``prompt=none`` in a browser nobody signed in)."""
    requirements = ["IDN-004", "IDN-005", "IDN-006", "IDN-007"]
    world = await _world(session)
    unavailable = _unavailable(requirements, world)
    if unavailable is not None or world is None or world.first is None or world.first_tokens is None:
        return unavailable or []
    flow, tokens = world.first, world.first_tokens
    findings: list[Finding] = []
    problems: list[str] = []
    redirect = flow.arrival.redirect or ""
    if redirect.split("?", 1)[0] != flow.client.redirect_uri:
        problems.append(f"redirected to {redirect!r}, not the registered redirect URI")
    body = tokens.body
    for name in ("access_token", "id_token", "expires_in"):
        if name not in body:
            problems.append(f"the token response has no {name}")
    if str(body.get("token_type", "")).lower() != "bearer":
        problems.append(f"token_type is {body.get('token_type')!r}")
    if "no-store" not in tokens.response.headers.get("cache-control", ""):
        problems.append("the token response is not Cache-Control: no-store")
    findings.append(_result("IDN-004", problems, "code flow completed, tokens issued", tokens.response))
    state_problems = []
    if flow.params.get("state") != flow.state:
        state_problems.append(f"state came back as {flow.params.get('state')!r}")
    stranger = _browser(session, world)
    refused = await _authorize(
        session, world, world.clients[0], browser=stranger, parameters={"prompt": "none"}
    )
    if refused.arrival.redirect is None or "error" not in refused.params:
        state_problems.append("prompt=none without a session did not redirect an error to the client")
    elif refused.params.get("state") != refused.state:
        state_problems.append(
            f"the {refused.params['error']} redirect carries state {refused.params.get('state')!r}"
        )
    findings.append(
        _result(
            "IDN-005",
            state_problems,
            "state echoed with the code and with an error",
            refused.evidence_exchange,
        )
    )
    nonce = tokens.claims.get("nonce")
    findings.append(
        _result(
            "IDN-006",
            [] if nonce == flow.nonce else [f"the ID token's nonce is {nonce!r}, not the one sent"],
            "the ID token carries the nonce sent",
            tokens.response,
        )
    )
    findings.append(_result("IDN-007", tokens.problems, "the ID token validates", tokens.response))
    return findings


@IDENTITY_OIDC.test("pkce", ["IDN-008"])
async def pkce(session: TargetSession) -> list[Finding]:
    """A code bound to an S256 challenge yields tokens only with its verifier."""
    world = await _world(session)
    unavailable = _unavailable(["IDN-008"], world)
    if unavailable is not None or world is None:
        return unavailable or []
    client = world.clients[0]
    findings: list[Finding] = []
    for label, verifier, accepted in (
        ("a wrong code_verifier", Pkce().verifier, ("invalid_grant",)),
        ("no code_verifier", None, ("invalid_grant", "invalid_request")),
    ):
        flow = await _authorize(session, world, client)
        if flow.code is None:
            findings.append(Finding.failed("IDN-008", f"no code for the PKCE check ({flow.arrival.problem})"))
            continue
        answer = await _redeem(session, world, client, flow.code, verifier=verifier)
        error = _oauth_error(answer)
        if answer.status == 400 and error in accepted:
            findings.append(Finding.passed("IDN-008", f"{label}: 400 {error}"))
        else:
            findings.append(
                Finding.failed(
                    "IDN-008",
                    f"{label}: answered {answer.status} {error or ''}".rstrip(),
                    answer.evidence(f"400 {' or '.join(accepted)}"),
                )
            )
    return findings


@IDENTITY_OIDC.test("reused-code", ["IDN-009"])
async def reused_code(session: TargetSession) -> list[Finding]:
    """A code redeemed twice: the second is invalid_grant and the first access token stops working."""
    world = await _world(session)
    unavailable = _unavailable(["IDN-009"], world)
    if unavailable is not None or world is None:
        return unavailable or []
    client = world.clients[0]
    flow, tokens = await _signed_in_flow(session, world, client)
    if flow.code is None or tokens is None or tokens.access_token is None:
        return [Finding.failed("IDN-009", "no code could be redeemed for the check")]
    again = await _redeem(
        session, world, client, flow.code, verifier=flow.pkce.verifier if flow.pkce else None
    )
    findings: list[Finding] = []
    error = _oauth_error(again)
    if again.status == 400 and error == "invalid_grant":
        findings.append(Finding.passed("IDN-009", "the reused code: 400 invalid_grant"))
    else:
        findings.append(
            Finding.failed(
                "IDN-009", f"the reused code: {again.status} {error}", again.evidence("400 invalid_grant")
            )
        )
    userinfo = await _userinfo(session, world, "GET", tokens.access_token)
    problem = _bearer_problem(userinfo, "invalid_token")
    findings.append(
        Finding.failed(
            "IDN-009",
            f"the access token of the reused code still works: {problem}",
            userinfo.evidence('401 with error="invalid_token"'),
        )
        if problem
        else Finding.passed("IDN-009", "the access token of the reused code was revoked")
    )
    return findings


@IDENTITY_OIDC.test("redirect-uri", ["IDN-010"])
async def redirect_uri(session: TargetSession) -> list[Finding]:
    """An unregistered redirect URI, or an unknown client, gets an error page and never a redirect."""
    world = await _world(session)
    unavailable = _unavailable(["IDN-010"], world)
    if unavailable is not None or world is None:
        return unavailable or []
    client = world.clients[0]
    registered = urlsplit(client.redirect_uri)
    findings: list[Finding] = []
    cases = (
        ("an unregistered redirect URI", client.client_id, "https://attacker.example/callback"),
        ("a registered URI with a suffix", client.client_id, client.redirect_uri + "/../evil"),
        (
            "another host",
            client.client_id,
            registered._replace(netloc="evil." + (registered.hostname or "example")).geturl(),
        ),
        ("an unknown client", "dpi-conformance-unknown-" + secrets.token_hex(4), client.redirect_uri),
    )
    for label, client_id, uri in cases:
        url = _authorization_url(
            world,
            client_id,
            uri,
            {
                "state": secrets.token_urlsafe(8),
                "nonce": secrets.token_urlsafe(8),
                "code_challenge": Pkce().challenge,
                "code_challenge_method": "S256",
            },
        )
        exchange = await _browser(session, world).fetch(url)
        location = exchange.headers.get("location")
        if exchange.status is not None and 400 <= exchange.status < 500 and not location:
            findings.append(Finding.passed("IDN-010", f"{label}: {exchange.status} error page"))
        else:
            findings.append(
                Finding.failed(
                    "IDN-010",
                    f"{label}: answered {exchange.status}"
                    + (f" redirecting to {location}" if location else ""),
                    exchange.evidence("a 4xx error page and no redirect"),
                )
            )
    return findings


@IDENTITY_OIDC.test("unknown-parameters", ["IDN-011"])
async def unknown_parameters(session: TargetSession) -> list[Finding]:
    """An authorization request with parameters nobody defined completes like any other."""
    world = await _world(session)
    unavailable = _unavailable(["IDN-011"], world)
    if unavailable is not None or world is None:
        return unavailable or []
    client = world.clients[0]
    flow, tokens = await _signed_in_flow(
        session, world, client, {"dpi_conformance_extra": "ignored", "vendor_hint": "x" * 40}
    )
    if flow.code is not None and tokens is not None and tokens.response.status == 200:
        return [Finding.passed("IDN-011", "unknown parameters were ignored")]
    evidence = tokens.response if tokens is not None else flow.evidence_exchange
    reason = flow.params.get("error") or flow.arrival.problem or "the code was not redeemed"
    return [
        Finding.failed(
            "IDN-011", f"a request with unknown parameters failed: {reason}", evidence.evidence("a code")
        )
    ]


@IDENTITY_OIDC.test("client-authentication", ["IDN-012"])
async def client_authentication(session: TargetSession) -> list[Finding]:
    """A wrong client secret and a client assertion signed by a key nobody registered are invalid_client."""
    world = await _world(session)
    unavailable = _unavailable(["IDN-012"], world)
    if unavailable is not None or world is None:
        return unavailable or []
    findings: list[Finding] = []
    token_endpoint = world.endpoint("token_endpoint", "/token")
    for client in world.clients[:2]:
        flow = await _authorize(session, world, client)
        if flow.code is None or flow.pkce is None:
            findings.append(Finding.failed("IDN-012", f"no code for {client.client_id}"))
            continue
        if client.secret is not None:
            label = f"{client.client_id} with a wrong secret"
            headers = {"authorization": client.basic_authorization(client.secret + "-wrong")}
            answer = await _redeem(
                session, world, client, flow.code, verifier=flow.pkce.verifier, headers=headers
            )
            basic = True
        else:
            label = f"{client.client_id} with an assertion signed by an unregistered key"
            forged = client.assertion(token_endpoint, SigningKey.generate())
            answer = await _redeem(
                session,
                world,
                client,
                flow.code,
                verifier=flow.pkce.verifier,
                form={"client_assertion": forged},
            )
            basic = False
        error = _oauth_error(answer)
        problems = []
        if error != "invalid_client" or answer.status not in (400, 401):
            problems.append(f"answered {answer.status} {error}")
        if basic and (answer.status != 401 or not answer.headers.get("www-authenticate")):
            problems.append("HTTP Basic refused without 401 and WWW-Authenticate")
        findings.append(
            Finding.failed("IDN-012", f"{label}: {'; '.join(problems)}", answer.evidence("invalid_client"))
            if problems
            else Finding.passed("IDN-012", f"{label}: {answer.status} invalid_client")
        )
    return findings


# --- userinfo -----------------------------------------------------------------------------------------------


async def _userinfo(session: TargetSession, world: _World, method: str, token: str | None) -> Exchange:
    headers = {"accept": "application/json"}
    if token is not None:
        headers["authorization"] = f"Bearer {token}"
    content = None
    if method == "POST":
        headers["content-type"] = "application/x-www-form-urlencoded"
        content = b""
    return await session.request(
        method, world.endpoint("userinfo_endpoint", "/userinfo"), headers=headers, content=content
    )


def _bearer_problem(exchange: Exchange, error: str | None) -> str | None:
    challenge = exchange.headers.get("www-authenticate", "")
    if exchange.status != 401:
        return f"answered {exchange.status}, not 401"
    if not challenge.lower().startswith("bearer"):
        return f"WWW-Authenticate is {challenge!r}, not a Bearer challenge"
    if error is not None and not re.search(rf'error="{error}"', challenge):
        return f'WWW-Authenticate {challenge!r} has no error="{error}"'
    return None


def _userinfo_claims(exchange: Exchange) -> dict[str, Any] | None:
    if exchange.content_type == "application/jwt":
        parts = exchange.body.decode("ascii", "replace").strip().split(".")
        try:
            decoded = json.loads(_unb64(parts[1])) if len(parts) == 3 else None
        except (ValueError, binascii.Error):
            return None
        return decoded if isinstance(decoded, dict) else None
    return exchange.json_object()


@IDENTITY_OIDC.test("userinfo-errors", ["IDN-013"])
async def userinfo_errors(session: TargetSession) -> list[Finding]:
    """Userinfo without a token, with garbage and with a token signed by a stranger: 401 Bearer challenges."""
    world = await _world(session)
    unavailable = _unavailable(["IDN-013"], world)
    if unavailable is not None or world is None or world.first_tokens is None:
        return unavailable or []
    findings: list[Finding] = []
    genuine = world.first_tokens.access_token or "x.y.z"
    header, payload, _ = [*genuine.split("."), "", "", ""][:3]
    cases: tuple[tuple[str, str | None, str | None], ...] = (
        ("no token", None, None),
        ("a token that is not a JWT", "not-a-token", "invalid_token"),
        ("a token with a forged signature", f"{header}.{payload}.{'A' * 86}", "invalid_token"),
    )
    for label, token, error in cases:
        for method in ("GET", "POST"):
            exchange = await _userinfo(session, world, method, token)
            problem = _bearer_problem(exchange, error)
            findings.append(
                Finding.failed(
                    "IDN-013", f"{method} with {label}: {problem}", exchange.evidence("401 Bearer")
                )
                if problem
                else Finding.passed("IDN-013", f"{method} with {label}: 401 Bearer challenge")
            )
    return findings


@IDENTITY_OIDC.test("userinfo", ["IDN-014"])
async def userinfo(session: TargetSession) -> list[Finding]:
    """Userinfo by GET and by POST answers the ID token's subject."""
    world = await _world(session)
    unavailable = _unavailable(["IDN-014"], world)
    if unavailable is not None or world is None or world.first_tokens is None:
        return unavailable or []
    tokens = world.first_tokens
    findings: list[Finding] = []
    for method in ("GET", "POST"):
        exchange = await _userinfo(session, world, method, tokens.access_token)
        claims = _userinfo_claims(exchange)
        if exchange.status == 200 and claims is not None and claims.get("sub") == tokens.sub:
            findings.append(Finding.passed("IDN-014", f"{method} userinfo names the ID token's subject"))
        else:
            found = None if claims is None else claims.get("sub")
            findings.append(
                Finding.failed(
                    "IDN-014",
                    f"{method} userinfo answered {exchange.status} with sub {found!r}",
                    exchange.evidence("200 with the ID token's sub"),
                )
            )
    return findings


# --- privacy ------------------------------------------------------------------------------------------------


@IDENTITY_OIDC.test("pairwise-subjects", ["IDN-015"])
async def pairwise_subjects(session: TargetSession) -> list[Finding]:
    """Clients of different sectors see different subjects; the same client (or sector) the same one."""
    world = await _world(session)
    unavailable = _unavailable(["IDN-015"], world)
    if unavailable is not None or world is None or world.first_tokens is None:
        return unavailable or []
    first = world.first_tokens.sub
    subjects: dict[str, str | None] = {}
    exchanges: dict[str, Exchange] = {}
    for name, client in (
        ("the same client again", world.clients[0]),
        ("a client of another sector", world.clients[1]),
        *((("a client of the same sector", world.clients[2]),) if len(world.clients) > 2 else ()),
    ):
        flow, tokens = await _signed_in_flow(session, world, client)
        subjects[name] = tokens.sub if tokens is not None else None
        exchanges[name] = tokens.response if tokens is not None else flow.evidence_exchange
    findings = []
    for name, subject in subjects.items():
        same_expected = name != "a client of another sector"
        if subject is None:
            findings.append(
                Finding.failed("IDN-015", f"{name}: no ID token", exchanges[name].evidence("tokens"))
            )
        elif (subject == first) != same_expected:
            relation = "differs from" if same_expected else "equals"
            findings.append(
                Finding.failed(
                    "IDN-015",
                    f"{name}: sub {relation} the first client's",
                    exchanges[name].evidence("a pairwise sub"),
                )
            )
        else:
            findings.append(
                Finding.passed("IDN-015", f"{name}: sub {'unchanged' if same_expected else 'different'}")
            )
    return findings


def _readable_texts(exchange: Exchange) -> list[str]:
    """What a client or user agent can read of one response: headers, body, and the claims of any JWT."""
    body = exchange.body.decode("utf-8", "replace")
    texts = [body, exchange.headers.get("location", ""), " ".join(exchange.headers.values())]
    for token in _JWT.findall(body + " " + texts[1]):
        for part in token.split(".")[:2]:
            try:
                texts.append(_unb64(part).decode("utf-8", "replace"))
            except (ValueError, binascii.Error):
                continue
    return texts


@IDENTITY_OIDC.test("no-uin", ["IDN-016"], observes_traffic=True)
async def no_uin(session: TargetSession) -> list[Finding]:
    """No response of this profile's run shows the person's UIN: redirects, pages, tokens, userinfo."""
    world = await _world(session)
    if world is None:
        return [Finding.skipped("IDN-016", NO_OPTIONS)]
    options = world.options
    uin = (options.uin or options.person).strip()
    ours = {test.name for test in IDENTITY_OIDC.tests}
    observed = [e for e in session.exchanges if e.test in ours and e.status is not None]
    leaks = [e for e in observed if any(uin in text for text in _readable_texts(e))]
    if leaks:
        return [
            Finding.failed(
                "IDN-016", f"{e.method} {e.url.split('?', 1)[0]} shows the UIN", e.evidence("no UIN")
            )
            for e in leaks[:3]
        ]
    return [Finding.passed("IDN-016", f"{len(observed)} responses, none showing the UIN")]
