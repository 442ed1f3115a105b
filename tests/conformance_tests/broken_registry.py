"""Deliberately non-conformant DCI registries: our registry block with exactly one thing broken, by an ASGI
middleware around the app (requests rewritten) or by a patched piece of the block."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

import pytest

from dpi.keys import SigningKey
from dpi.signing import sign_detached
from dpi.types import Receive, Scope, Send
from registry.dci import api as dci_api
from registry.dci import callbacks, search
from registry.dci.search import Searcher
from tests.conformance_tests.broken_identity import _body, _replay

__all__ = [
    "SignsForTheSender",
    "batch_fails_together",
    "duplicates_accepted",
    "page_cap_ignored",
    "unsigned_on_search",
]


class SignsForTheSender:
    """Accepts unsigned envelopes: one without a signature (or with an empty one) is signed on its way
    in with the sender's own key, as if the registry never asked for one."""

    def __init__(self, app: Any, key: SigningKey) -> None:
        self.app = app
        self.key = key

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "POST" and scope["path"].count("/registry/") == 2:
            body = await _body(receive)
            try:
                document = json.loads(body)
            except ValueError:
                document = None
            if isinstance(document, dict) and not document.get("signature") and "header" in document:
                signed_part = {"header": document["header"], "message": document.get("message")}
                body = json.dumps({"signature": sign_detached(signed_part, self.key), **signed_part}).encode()
                headers = [(k, v) for k, v in scope["headers"] if k != b"content-length"]
                headers.append((b"content-length", str(len(body)).encode()))
                scope = {**scope, "headers": headers}
            receive = _replay(body)
        await self.app(scope, receive, send)


def duplicates_accepted(monkeypatch: pytest.MonkeyPatch) -> None:
    """Never remembers a message id."""

    async def forget(*_args: Any, **_kwargs: Any) -> None:
        return None

    monkeypatch.setattr(dci_api, "record_message_id", forget)
    monkeypatch.setattr(callbacks, "record_message_id", forget)


def page_cap_ignored(monkeypatch: pytest.MonkeyPatch) -> None:
    """Declares its page cap but serves pages of any size."""
    monkeypatch.setattr(search, "MAX_PAGE_SIZE", 10**9)


def unsigned_on_search(monkeypatch: pytest.MonkeyPatch) -> None:
    """Delivers on-search callbacks without their signature."""
    real = callbacks.signed

    def signed(header: Mapping[str, Any], message: Mapping[str, Any], key: SigningKey) -> dict[str, Any]:
        envelope = real(header, message, key)
        if header.get("action") == "on-search":
            envelope.pop("signature")
        return envelope

    monkeypatch.setattr(callbacks, "signed", signed)


def batch_fails_together(monkeypatch: pytest.MonkeyPatch) -> None:
    """One refused item refuses the whole batch, every item with the first refusal's reason."""
    real = Searcher.answer

    async def answer(self: Searcher, *args: Any, **kwargs: Any) -> list[dict[str, Any]]:
        answers: Sequence[dict[str, Any]] = await real(self, *args, **kwargs)
        refused = next((a for a in answers if a["status"] == "rjct"), None)
        if refused is None:
            return list(answers)
        keep = ("status", "status_reason_code", "status_reason_message")
        return [
            {"reference_id": a["reference_id"], "timestamp": a["timestamp"], **{k: refused[k] for k in keep}}
            for a in answers
        ]

    monkeypatch.setattr(Searcher, "answer", answer)
