"""The ``dpi consent`` commands as an operator or a citizen uses them: verify a real receipt and a tampered
one, verify a downloaded chain, sweep expired consents and sign chain heads; one clear line, never a
traceback."""

from __future__ import annotations

import asyncio
import base64
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner

from consent.chain import CHAIN_HEAD_TYPE, chain_document, sign_heads
from consent.cli import consent_group
from consent.lifecycle import Action, ActorRole, Channel
from consent.receipts import sign_receipt
from consent.service import Actor, ConsentService
from dpi import db
from dpi.keys import KeyStore, SigningKey
from dpi.signing import sign_compact
from tests.consent.agreements import AMINA, CONSUMER, agreement_draft

MIGRATIONS = Path(__file__).resolve().parents[2] / "consent" / "migrations"
LONG_AGO = datetime(2020, 1, 6, 9, 0, tzinfo=UTC)


@dataclass
class Deployment:
    env: dict[str, str]
    keys: KeyStore
    receipt: str
    chain: dict[str, Any]


async def _prepare(database_url: str, var_dir: Path) -> Deployment:
    """A migrated database where Amina approved (in 2020, so it has expired since) and withdrew nothing."""
    engine = db.create_engine(database_url)
    try:
        await db.upgrade(engine, [MIGRATIONS])
        keys = KeyStore(var_dir / "keys")
        keys.ensure_active()
        sessions = db.session_factory(engine)
        service = ConsentService(sessions, keys, issuer="DPI/GOV/MOI/consent", clock=lambda: LONG_AGO)
        agreement = await service.publish_agreement(agreement_draft())
        record = await service.request(
            {"agreement_id": agreement["agreement_id"], "subject": AMINA},
            Actor(ActorRole.CONTROLLER, CONSUMER),
        )
        notice = {"language": "en", "hash": agreement["notices"]["en"]["hash"]}
        result = await service.act(
            record["consent_id"],
            Action.APPROVE,
            Actor(ActorRole.SUBJECT, AMINA),
            channel=Channel.WEB,
            notice=notice,
        )
        assert result.receipt is not None
        await sign_heads(sessions, keys.active(), now=LONG_AGO)
        chain = await chain_document(sessions, AMINA)
    finally:
        await engine.dispose()
    env = {"DPI_VAR_DIR": str(var_dir), "DPI_DATABASE_URL": database_url}
    return Deployment(env, keys, result.receipt, chain)


@pytest.fixture
def deployment(tmp_path: Path, database_url: str) -> Deployment:
    return asyncio.run(_prepare(database_url, tmp_path / "var"))


@pytest.fixture
def local(tmp_path: Path) -> Deployment:
    """The same on the embedded SQLite database, for commands that read only files."""
    return asyncio.run(_prepare(f"sqlite+aiosqlite:///{tmp_path / 'var' / 'dpi.sqlite3'}", tmp_path / "var"))


def run(args: list[str], env: dict[str, str] | None = None) -> tuple[int, str, str]:
    result = CliRunner().invoke(consent_group, args, env=env or {}, catch_exceptions=False)
    assert "Traceback" not in result.stdout + result.stderr
    return result.exit_code, result.stdout, result.stderr


def write(path: Path, content: str | dict[str, Any]) -> str:
    path.write_text(content if isinstance(content, str) else json.dumps(content), encoding="utf-8")
    return str(path)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


# --- verify-receipt ---------------------------------------------------------------------------------------


def test_receipt_from_the_service_is_valid(local: Deployment, tmp_path: Path) -> None:
    jwks = write(tmp_path / "jwks.json", local.keys.jwks())
    code, out, _ = run(
        ["verify-receipt", write(tmp_path / "receipt.jws", local.receipt + "\n"), "--jwks", jwks]
    )
    assert code == 0
    lines = out.splitlines()
    assert lines[-1] == "valid"
    assert "action:      approve" in lines
    assert "agreement:   mol-jobseeker-registration version 1" in lines
    assert "consumer:    DPI/GOV/MOL/jobseekers" in lines


def test_receipt_wrapped_in_json_and_jwks_from_a_url(
    local: Deployment, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    served = local.keys.jwks()

    def fake_get(url: str, **_: Any) -> httpx.Response:
        return httpx.Response(200, json=served, request=httpx.Request("GET", url))

    monkeypatch.setattr(httpx, "get", fake_get)
    receipt = write(tmp_path / "receipt.json", {"receipt": local.receipt})
    code, out, _ = run(["verify-receipt", receipt, "--jwks", "https://consent.example/.well-known/jwks.json"])
    assert code == 0
    assert out.splitlines()[-1] == "valid"


def _tampered_payload(token: str) -> str:
    header, payload, signature = token.split(".")
    document = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    document["state"] = "WITHDRAWN"
    return ".".join([header, _b64(json.dumps(document).encode()), signature])


def _other_key(token: str) -> str:
    payload = token.split(".")[1]
    document = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    return sign_receipt(document, SigningKey.generate())


def _not_a_receipt(token: str) -> str:
    return sign_compact({"subject": AMINA}, SigningKey.generate(kid="unused"), typ=CHAIN_HEAD_TYPE)


BAD_RECEIPTS = [
    ("tampered payload", _tampered_payload, "auth.signature_invalid"),
    ("signed by another key", _other_key, "auth.key_unknown"),
    ("cut short", lambda token: token.rsplit(".", 1)[0], "auth.signature_invalid"),
    ("empty", lambda token: "", "auth.signature_missing"),
]


@pytest.mark.parametrize(
    ("change", "reason"), [b[1:] for b in BAD_RECEIPTS], ids=[b[0] for b in BAD_RECEIPTS]
)
def test_bad_receipt_is_invalid_with_its_reason(
    local: Deployment, tmp_path: Path, change: Any, reason: str
) -> None:
    jwks = write(tmp_path / "jwks.json", local.keys.jwks())
    code, out, _ = run(
        ["verify-receipt", write(tmp_path / "receipt.jws", change(local.receipt)), "--jwks", jwks]
    )
    assert code == 1
    assert out.count("\n") == 1
    assert out.startswith(f"invalid: {reason}: ")


def test_a_signed_document_that_is_not_a_receipt_is_refused(local: Deployment, tmp_path: Path) -> None:
    key = local.keys.active()
    token = sign_compact({"subject": AMINA, "seq": 1}, key, typ=CHAIN_HEAD_TYPE)
    jwks = write(tmp_path / "jwks.json", local.keys.jwks())
    code, out, _ = run(["verify-receipt", write(tmp_path / "head.jws", token), "--jwks", jwks])
    assert code == 1
    assert out.startswith("invalid: receipt.invalid: not a consent receipt")


def _unreachable(url: str, **_: Any) -> httpx.Response:
    raise httpx.ConnectError("connection refused", request=httpx.Request("GET", url))


UNREADABLE = [
    ("missing receipt", "missing.jws", "jwks.json", "cannot read receipt"),
    ("missing jwks", "receipt.jws", "missing.json", "cannot read JWKS file"),
    ("jwks not json", "receipt.jws", "garbage.txt", "is not JSON"),
    ("jwks not a set", "receipt.jws", "list.json", "is not a JWK Set"),
    ("receipt json without token", "wrapper.json", "jwks.json", 'has no "receipt" or "jws" string'),
    ("jwks url unreachable", "receipt.jws", "https://consent.example/jwks.json", "cannot fetch the JWKS"),
]


@pytest.mark.parametrize(
    ("receipt", "jwks", "message"), [u[1:] for u in UNREADABLE], ids=[u[0] for u in UNREADABLE]
)
def test_unreadable_input_exits_2_with_one_line(
    local: Deployment, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, receipt: str, jwks: str, message: str
) -> None:
    monkeypatch.setattr(httpx, "get", _unreachable)
    write(tmp_path / "receipt.jws", local.receipt)
    write(tmp_path / "jwks.json", local.keys.jwks())
    write(tmp_path / "garbage.txt", "not json")
    write(tmp_path / "list.json", "[]")
    write(tmp_path / "wrapper.json", {"other": 1})
    source = jwks if jwks.startswith("https://") else str(tmp_path / jwks)
    code, out, err = run(["verify-receipt", str(tmp_path / receipt), "--jwks", source])
    assert code == 2
    assert out == ""
    assert err.count("\n") == 1
    assert message in err


# --- verify-chain -----------------------------------------------------------------------------------------


def test_downloaded_chain_verifies(local: Deployment, tmp_path: Path) -> None:
    jwks = write(tmp_path / "jwks.json", local.keys.jwks())
    chain = write(tmp_path / "chain.json", local.chain)
    code, out, _ = run(["verify-chain", chain, "--jwks", jwks, "--require-signed"])
    assert code == 0
    assert out.splitlines() == ["2 events, head seq 2, signed through seq 2", "valid"]


def test_edited_chain_lists_its_problems(local: Deployment, tmp_path: Path) -> None:
    local.chain["events"][0]["actor"] = {"role": "operator", "id": "operator-17"}
    jwks = write(tmp_path / "jwks.json", local.keys.jwks())
    code, out, _ = run(["verify-chain", write(tmp_path / "chain.json", local.chain), "--jwks", jwks])
    assert code == 1
    lines = out.splitlines()
    assert lines[-1] == "invalid"
    assert "problem: event at position 1 (seq 1): content does not match its hash" in lines
    assert "problem: signature 1 (seq 2): the chain has no intact event 2 any more" in lines


def test_chain_that_is_not_json_exits_2(local: Deployment, tmp_path: Path) -> None:
    jwks = write(tmp_path / "jwks.json", local.keys.jwks())
    code, _, err = run(["verify-chain", write(tmp_path / "chain.json", "{broken"), "--jwks", jwks])
    assert code == 2
    assert "is not JSON" in err


# --- sweep and sign-chains on the configured database ----------------------------------------------------


def test_sweep_expires_and_sign_chains_signs_the_new_head(deployment: Deployment) -> None:
    code, out, _ = run(["sign-chains"], deployment.env)
    assert (code, out) == (0, "0 chain heads signed\n")
    code, out, _ = run(["sweep"], deployment.env)
    assert (code, out) == (0, "1 consents brought up to date\n")
    assert run(["sweep"], deployment.env)[1] == "0 consents brought up to date\n"
    code, out, _ = run(["sign-chains"], deployment.env)
    assert (code, out) == (0, "1 chain heads signed\n")


BROKEN_SETUPS = [
    ("bad setting", {"DPI_PORT": "eighty"}, ["sweep"], "DPI_PORT"),
    ("no key", {"DPI_KEYS_DIR": "empty-keys"}, ["sign-chains"], "no active key"),
    ("not migrated", {"DPI_DATABASE_URL": "fresh"}, ["sign-chains"], "database error"),
]


@pytest.mark.parametrize(
    ("overrides", "args", "message"), [b[1:] for b in BROKEN_SETUPS], ids=[b[0] for b in BROKEN_SETUPS]
)
def test_broken_setup_exits_2_with_one_line(
    tmp_path: Path, overrides: dict[str, str], args: list[str], message: str
) -> None:
    env = {"DPI_VAR_DIR": str(tmp_path / "var")}
    for name, value in overrides.items():
        env[name] = {
            "empty-keys": str(tmp_path / "empty-keys"),
            "fresh": f"sqlite+aiosqlite:///{tmp_path / 'fresh.sqlite3'}",
        }.get(value, value)
    if "DPI_DATABASE_URL" in overrides:
        KeyStore(tmp_path / "var" / "keys").ensure_active()
    code, out, err = run(args, env)
    assert code == 2
    assert out == ""
    assert err.count("\n") == 1
    assert message in err
