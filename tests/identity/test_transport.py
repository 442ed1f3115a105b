"""OpenID Connect requires TLS: the provider refuses to start on a plain-http public URL other than a
loopback one, and a request authlib would refuse for its transport is answered as a bad request, never
with a server error."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from authlib.oauth2.rfc6749 import InsecureTransportError  # type: ignore[import-untyped]

from dpi.app import create_app
from dpi.settings import Settings, SettingsError
from identity.block import identity_block
from identity.oidc import require_tls
from tests.identity.conftest import Provider
from tests.identity.test_oidc import authorize_query, pkce


@pytest.mark.parametrize(
    "overrides",
    [
        {"base_url": "http://idp.gov.example"},
        {"base_url": "http://10.0.0.7:8000"},
        {"base_url": "http://localhost.gov.example"},
        {"host": "192.0.2.10"},
    ],
)
def test_a_plain_http_public_url_stops_the_block_with_one_line_naming_the_setting(
    tmp_path: Path, overrides: dict[str, Any]
) -> None:
    settings = Settings(var_dir=tmp_path / "var", **overrides)
    with pytest.raises(SettingsError) as refused:
        create_app(settings, blocks=[identity_block()])
    message = str(refused.value)
    assert message.startswith("DPI_BASE_URL: ")
    assert "https://" in message
    assert "\n" not in message


@pytest.mark.parametrize(
    "overrides",
    [
        {"base_url": "https://idp.gov.example"},
        {"base_url": "http://localhost:8000"},
        {"base_url": "http://127.0.0.1:8000"},
        {"base_url": "http://[::1]:8000"},
        {},
    ],
)
def test_https_and_loopback_http_are_accepted(tmp_path: Path, overrides: dict[str, Any]) -> None:
    require_tls(Settings(var_dir=tmp_path / "var", **overrides))


def _insecure(_cls: Any, _uri: str) -> None:
    raise InsecureTransportError()


async def test_a_transport_authlib_refuses_is_a_bad_request_not_a_server_error(
    provider: Provider, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(InsecureTransportError, "check", classmethod(_insecure))
    _, challenge = pkce()
    query = authorize_query(code_challenge=challenge, code_challenge_method="S256")
    page = await provider.http.get("/identity/authorize", params=query)
    assert page.status_code == 400
    assert page.headers["content-type"].startswith("text/html")
    assert "location" not in page.headers
    token = await provider.http.post(
        "/identity/token",
        data={"grant_type": "authorization_code", "code": "x", "redirect_uri": query["redirect_uri"]},
        auth=("labour-portal", provider.secrets["labour-portal"]),
    )
    assert token.status_code == 400
    assert token.json()["error"] == "invalid_request"
    pushed = await provider.http.post(
        "/identity/par", data=query, auth=("labour-portal", provider.secrets["labour-portal"])
    )
    assert pushed.status_code == 400
    assert pushed.json()["error"] == "invalid_request"
