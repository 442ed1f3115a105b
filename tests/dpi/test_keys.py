"""Signing keys, their JWKs, and the key store: rotation, grace, expiry, corruption, concurrency."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import textwrap
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from dpi.keys import KeyNotFound, KeyStore, KeyStoreError, SigningKey, jwk_thumbprint
from dpi.signing import sign_detached, verify_detached
from standards import validator

ALGORITHMS = ["EdDSA", "ES256", "PS256"]
PRIVATE_MEMBERS = {"d", "p", "q", "dp", "dq", "qi", "oth", "k"}
START = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def keys() -> dict[str, SigningKey]:
    return {alg: SigningKey.generate(alg) for alg in ALGORITHMS}


class Clock:
    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def store(tmp_path: Path, clock: Clock) -> KeyStore:
    return KeyStore(tmp_path / "keys", clock=clock)


# --- SigningKey -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("alg", "expected"),
    [
        ("EdDSA", {"kty": "OKP", "crv": "Ed25519"}),
        ("ES256", {"kty": "EC", "crv": "P-256"}),
        ("PS256", {"kty": "RSA", "e": "AQAB"}),
    ],
)
def test_public_jwk_describes_the_key_and_nothing_private(
    alg: str, expected: dict[str, str], keys: dict[str, SigningKey]
) -> None:
    jwk = keys[alg].public_jwk()
    assert expected.items() <= jwk.items()
    assert (jwk["alg"], jwk["use"], jwk["kid"]) == (alg, "sig", keys[alg].kid)
    assert not PRIVATE_MEMBERS & jwk.keys()


@pytest.mark.parametrize("alg", ALGORITHMS)
def test_default_kid_is_the_rfc7638_thumbprint(alg: str, keys: dict[str, SigningKey]) -> None:
    assert keys[alg].kid == jwk_thumbprint(keys[alg].public_jwk())
    assert len(keys[alg].kid) == 43


def test_rfc7638_thumbprint_example() -> None:
    # RFC 7638 section 3.1: the RSA key and its published thumbprint.
    jwk = {
        "kty": "RSA",
        "n": (
            "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3o"
            "knjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHz"
            "u6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8"
            "awapJzKnqDKgw"
        ),
        "e": "AQAB",
        "alg": "RS256",
        "kid": "2011-04-29",
    }
    assert jwk_thumbprint(jwk) == "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"


def test_an_explicit_kid_is_kept() -> None:
    assert SigningKey.generate(kid="moi-2026-11").public_jwk()["kid"] == "moi-2026-11"


@pytest.mark.parametrize("alg", ALGORITHMS)
def test_pem_round_trip_keeps_the_key(alg: str, keys: dict[str, SigningKey]) -> None:
    key = keys[alg]
    assert key.private_pem().startswith(b"-----BEGIN PRIVATE KEY-----")
    loaded = SigningKey.from_pem(key.private_pem(), key.kid, alg)
    assert loaded.public_jwk() == key.public_jwk()


@pytest.mark.parametrize(
    ("pem_of", "alg"),
    [("EdDSA", "ES256"), ("ES256", "PS256"), ("PS256", "EdDSA"), ("EdDSA", "HS256"), ("EdDSA", "none")],
)
def test_from_pem_refuses_a_key_of_another_algorithm(
    pem_of: str, alg: str, keys: dict[str, SigningKey]
) -> None:
    with pytest.raises(ValueError, match=r"algorithm|match"):
        SigningKey.from_pem(keys[pem_of].private_pem(), "k1", alg)


def test_from_pem_refuses_other_curves_and_garbage() -> None:
    other_curve = ec.generate_private_key(ec.SECP384R1())
    with pytest.raises(ValueError, match="match"):
        SigningKey(kid="k", alg="ES256", private_key=other_curve)
    with pytest.raises(ValueError, match="PEM"):
        SigningKey.from_pem(b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n", "k", "EdDSA")


def test_generate_refuses_an_unknown_algorithm() -> None:
    with pytest.raises(ValueError, match="unsupported"):
        SigningKey.generate("HS256")


def test_private_material_is_not_in_the_repr(keys: dict[str, SigningKey]) -> None:
    assert "private_key" not in repr(keys["EdDSA"])


# --- KeyStore ---------------------------------------------------------------------------------------------


def _metadata(store: KeyStore, kid: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((store.directory / f"{kid}.json").read_text())
    return data


def test_an_empty_store_has_no_active_key(store: KeyStore) -> None:
    with pytest.raises(KeyNotFound, match="no active key"):
        store.active()
    assert store.jwks() == {"keys": []}


def test_ensure_active_creates_one_key_and_then_keeps_it(store: KeyStore) -> None:
    first = store.ensure_active()
    assert store.ensure_active().kid == first.kid
    assert store.active().kid == first.kid
    assert [record.kid for record in store.records()] == [first.kid]
    assert store.jwks()["keys"] == [first.public_jwk()]


@pytest.mark.parametrize("alg", ["ES256", "PS256"])
def test_ensure_active_uses_the_requested_algorithm(store: KeyStore, alg: str) -> None:
    assert store.ensure_active(alg).alg == alg
    assert store.active().public_jwk()["alg"] == alg


def test_files_are_private_and_metadata_is_complete(store: KeyStore) -> None:
    key = store.generate()
    pem = store.directory / f"{key.kid}.pem"
    assert stat.S_IMODE(pem.stat().st_mode) == 0o600
    assert stat.S_IMODE(store.directory.stat().st_mode) == 0o700
    assert _metadata(store, key.kid) == {
        "kid": key.kid,
        "alg": "EdDSA",
        "created_at": "2026-11-23T10:00:00Z",
        "status": "active",
        "retired_at": None,
        "expires_at": None,
    }
    assert b"PRIVATE KEY" not in (store.directory / f"{key.kid}.json").read_bytes()


def test_a_stored_key_signs_and_its_jwks_verifies(store: KeyStore) -> None:
    key = store.ensure_active()
    reloaded = KeyStore(store.directory).get(key.kid)
    jws = sign_detached({"a": 1}, reloaded)
    assert verify_detached({"a": 1}, jws, store.jwks())["kid"] == key.kid


def test_rotation_keeps_the_old_key_published_for_the_grace_period(store: KeyStore, clock: Clock) -> None:
    old = store.ensure_active()
    clock.now = START + timedelta(hours=1)
    new = store.rotate(timedelta(hours=2))
    assert store.active().kid == new.kid
    assert [record.status for record in store.records()] == ["retired", "active"]
    assert _metadata(store, old.kid)["retired_at"] == "2026-11-23T11:00:00Z"
    assert _metadata(store, old.kid)["expires_at"] == "2026-11-23T13:00:00Z"

    published = [jwk["kid"] for jwk in store.jwks(now=START + timedelta(hours=2, minutes=59))["keys"]]
    assert published == [new.kid, old.kid]
    assert [jwk["kid"] for jwk in store.jwks(now=START + timedelta(hours=3))["keys"]] == [new.kid]
    clock.now = START + timedelta(hours=3)
    assert [jwk["kid"] for jwk in store.jwks()["keys"]] == [new.kid]


def test_expired_keys_are_marked_at_the_next_rotation_and_stay_loadable(
    store: KeyStore, clock: Clock
) -> None:
    first = store.ensure_active()
    store.rotate(timedelta(minutes=10))
    clock.now = START + timedelta(minutes=11)
    third = store.rotate(timedelta(minutes=10))
    statuses = {record.kid: record.status for record in store.records()}
    assert statuses[first.kid] == "expired"
    assert statuses[third.kid] == "active"
    assert list(statuses.values()).count("active") == 1
    assert store.get(first.kid).kid == first.kid
    assert first.kid not in {jwk["kid"] for jwk in store.jwks()["keys"]}


def test_rotation_keeps_the_algorithm_unless_told(store: KeyStore) -> None:
    store.ensure_active("ES256")
    assert store.rotate(timedelta(0)).alg == "ES256"
    assert store.rotate(timedelta(0), alg="EdDSA").alg == "EdDSA"


def test_zero_grace_unpublishes_at_once(store: KeyStore) -> None:
    old = store.ensure_active()
    new = store.rotate(timedelta(0))
    assert [jwk["kid"] for jwk in store.jwks()["keys"]] == [new.kid]
    assert old.kid != new.kid


def test_generate_retires_the_active_key(store: KeyStore) -> None:
    old = store.generate()
    new = store.generate("ES256")
    assert store.active().kid == new.kid
    assert {record.kid: record.status for record in store.records()} == {
        old.kid: "retired",
        new.kid: "active",
    }


@pytest.mark.parametrize("grace", [timedelta(seconds=-1)])
def test_negative_grace_is_refused(store: KeyStore, grace: timedelta) -> None:
    with pytest.raises(ValueError, match="negative"):
        store.rotate(grace)


@pytest.mark.parametrize("kid", ["missing", "../keys/x", "", "a/b", "a" * 200])
def test_get_refuses_unknown_and_unsafe_kids(store: KeyStore, kid: str) -> None:
    store.ensure_active()
    with pytest.raises(KeyNotFound):
        store.get(kid)


def test_naive_now_is_refused(store: KeyStore) -> None:
    with pytest.raises(ValueError, match="timezone"):
        store.jwks(now=datetime(2026, 11, 23, 10, 0))


Corruption = Callable[[Path, str], Path]


def _write_json(text: str) -> Corruption:
    def corrupt(directory: Path, kid: str) -> Path:
        path = directory / f"{kid}.json"
        path.write_text(text)
        return path

    return corrupt


def _edit_json(**changes: Any) -> Corruption:
    def corrupt(directory: Path, kid: str) -> Path:
        path = directory / f"{kid}.json"
        path.write_text(json.dumps({**json.loads(path.read_text()), **changes}))
        return path

    return corrupt


def _pem(content: bytes | None, mode: int = 0o600) -> Corruption:
    def corrupt(directory: Path, kid: str) -> Path:
        path = directory / f"{kid}.pem"
        if content is None:
            path.unlink()
        else:
            path.write_bytes(content)
            path.chmod(mode)
        return path

    return corrupt


def _second_active(directory: Path, kid: str) -> Path:
    other = SigningKey.generate()
    (directory / f"{other.kid}.pem").write_bytes(other.private_pem())
    (directory / f"{other.kid}.pem").chmod(0o600)
    record = {**json.loads((directory / f"{kid}.json").read_text()), "kid": other.kid}
    (directory / f"{other.kid}.json").write_text(json.dumps(record))
    return directory


CORRUPTIONS: list[tuple[str, Corruption, str]] = [
    ("metadata not JSON", _write_json("{not json"), "not valid JSON"),
    ("metadata not an object", _write_json("[]"), "JSON object"),
    (
        "metadata not UTF-8",
        lambda d, k: (d / f"{k}.json", (d / f"{k}.json").write_bytes(b"\xff\xfe"))[0],
        "UTF-8",
    ),
    ("kid differs from file name", _edit_json(kid="someone-else"), "file name"),
    ("unknown alg", _edit_json(alg="HS256"), "alg"),
    ("unknown status", _edit_json(status="dormant"), "status"),
    ("created_at missing", _edit_json(created_at=None), "created_at"),
    ("created_at not a timestamp", _edit_json(created_at="yesterday"), "created_at"),
    ("created_at without zone", _edit_json(created_at="2026-11-23T10:00:00"), "time zone"),
    ("retired_at a number", _edit_json(retired_at=5), "retired_at"),
    ("private key missing", _pem(None), "cannot be read"),
    ("private key garbage", _pem(b"garbage"), "not a usable"),
    ("private key of another algorithm", _pem(SigningKey.generate("ES256").private_pem()), "not a usable"),
    (
        "private key readable by others",
        lambda d, k: (d / f"{k}.pem", (d / f"{k}.pem").chmod(0o640))[0],
        "0600",
    ),
    ("two active keys", _second_active, "several active keys"),
]


@pytest.mark.parametrize(("corrupt", "message"), [pytest.param(c, m, id=name) for name, c, m in CORRUPTIONS])
def test_corrupt_stores_raise_a_clear_error_naming_the_file(
    store: KeyStore, corrupt: Corruption, message: str
) -> None:
    kid = store.ensure_active().kid
    culprit = corrupt(store.directory, kid)
    with pytest.raises(KeyStoreError, match=message) as caught:
        store.jwks()
    assert str(culprit) in str(caught.value)


def test_a_world_readable_private_key_is_refused(store: KeyStore) -> None:
    kid = store.ensure_active().kid
    pem = store.directory / f"{kid}.pem"
    pem.chmod(0o644)
    with pytest.raises(KeyStoreError, match="0600") as caught:
        store.get(kid)
    assert str(pem) in str(caught.value)


def test_an_unwritable_location_gives_a_key_store_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with pytest.raises(KeyStoreError, match=str(blocker)):
        KeyStore(blocker / "keys").ensure_active()


_RACE = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from dpi.keys import KeyStore
    go = Path(sys.argv[2])
    while not go.exists():
        time.sleep(0.005)
    print(KeyStore(Path(sys.argv[1])).ensure_active().kid)
    """
)


def test_two_processes_racing_on_ensure_active_agree_on_one_key(tmp_path: Path) -> None:
    directory, go = tmp_path / "keys", tmp_path / "go"
    environment = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    racers = [
        subprocess.Popen(
            [sys.executable, "-c", _RACE, str(directory), str(go)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=environment,
            text=True,
        )
        for _ in range(2)
    ]
    go.touch()
    results = [racer.communicate(timeout=60) for racer in racers]
    assert all(racer.returncode == 0 for racer in racers), results
    kids = {stdout.strip() for stdout, _ in results}
    assert len(kids) == 1
    records = KeyStore(directory).records()
    assert [(record.kid, record.status) for record in records] == [(kids.pop(), "active")]


def test_the_published_jwks_is_valid_against_the_jwks_schema(store: KeyStore) -> None:
    store.ensure_active("EdDSA")
    store.rotate(timedelta(hours=1), alg="ES256")
    store.rotate(timedelta(hours=1), alg="PS256")
    jwks = store.jwks()
    assert len(jwks["keys"]) == 3
    assert validator("jwks").issues(jwks) == []
