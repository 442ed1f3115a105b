"""``dpi registry sender add|list|disable``: registering the systems allowed to call the DCI API."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from dpi.keys import SigningKey
from registry.block import registry_group


@pytest.fixture
def jwks_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("DPI_VAR_DIR", str(tmp_path / "var"))
    path = tmp_path / "jwks.json"
    path.write_text(json.dumps({"keys": [SigningKey.generate("EdDSA").public_jwk()]}))
    return path


def _invoke(*arguments: str) -> tuple[int, str]:
    result = CliRunner().invoke(registry_group, ["sender", *arguments])
    return result.exit_code, result.output


def test_add_list_disable(jwks_file: Path) -> None:
    code, output = _invoke(
        "add",
        "DPI/GOV/MOL/jobseekers",
        "--jwks",
        str(jwks_file),
        "--grant",
        "civil:names-and-birth-date",
        "--grant",
        "jobseekers",
        "--callback",
        "https://mol.example/dci/on-search",
    )
    assert code == 0, output
    code, output = _invoke("list")
    assert code == 0
    assert "DPI/GOV/MOL/jobseekers" in output
    assert "active" in output
    assert "civil:names-and-birth-date,jobseekers" in output
    code, output = _invoke("disable", "DPI/GOV/MOL/jobseekers")
    assert code == 0
    assert "disabled" in _invoke("list")[1]


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (("bad id!", "--grant", "civil"), "a sender id"),
        (("S1", "--grant", "land"), "no hosted registry"),
        (("S1", "--grant", "civil:salaries"), "no field group"),
        (("S1", "--grant", "civil", "--callback", "ftp://x.example/"), "callback URL"),
        (("S1", "--grant", "civil", "--callback", "https://user:pw@x.example/"), "callback URL"),
    ],
)
def test_add_refuses_what_cannot_work(jwks_file: Path, arguments: tuple[str, ...], message: str) -> None:
    sender_id, *rest = arguments
    code, output = _invoke("add", sender_id, "--jwks", str(jwks_file), *rest)
    assert code == 2
    assert message in output


@pytest.mark.parametrize(
    ("jwks", "message"),
    [
        ({"keys": []}, "non-empty"),
        ({"keys": [{"kty": "oct", "k": "c2VjcmV0", "kid": "h"}]}, "private members"),
        ({"keys": [{"kty": "EC", "crv": "P-384", "x": "AA", "y": "AA", "kid": "p384"}]}, "key p384"),
        ({"keys": [{"kty": "OKP", "crv": "Ed25519", "x": "AA"}]}, "has a kid"),
    ],
)
def test_add_refuses_unusable_key_sets(jwks_file: Path, jwks: dict[str, object], message: str) -> None:
    jwks_file.write_text(json.dumps(jwks))
    code, output = _invoke("add", "S1", "--jwks", str(jwks_file), "--grant", "civil")
    assert code == 2
    assert message in output


def test_disable_of_an_unknown_sender(jwks_file: Path) -> None:
    del jwks_file
    code, output = _invoke("disable", "nobody")
    assert code == 2
    assert "no sender" in output
