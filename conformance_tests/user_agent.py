"""A user agent without a screen: it follows a provider's redirects, keeps its cookies and submits the HTML
forms of its pages (HTML Living Standard, form submission, https://html.spec.whatwg.org/#form-submission-2),
so the suite can sign a person in the way a browser would, without a browser.

Forms are filled by field name, never by page: hidden fields keep their values, checkboxes are all
checked (a consent page asking which claims to release gets every claim allowed), a choice among submit
buttons goes to the one that allows, and the visible fields are asked of a ``fill`` function (the person's
identifier, the one-time code). Every request goes through the run's :class:`TargetSession`, so the
traffic is recorded like any other.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from html.parser import HTMLParser
from typing import Final
from urllib.parse import urlencode, urljoin, urlsplit

import httpx

from conformance_tests.target import Exchange, TargetSession

__all__ = ["Arrival", "Form", "UserAgent", "parse_forms"]

Fill = Callable[[str], Awaitable[str | None]]

_MAX_STEPS: Final = 12
_ALLOW: Final = re.compile(r"allow|approve|accept|agree|consent|continue|confirm|yes|autoris|valider", re.I)
_DENY: Final = re.compile(r"deny|refuse|reject|cancel|decline|\bno\b|annul|refus", re.I)
_TEXT_TYPES: Final = frozenset({"text", "password", "number", "tel", "email", "search", "url", ""})


@dataclass
class Form:
    """One ``<form>`` of a page: where it goes, how, its fields and its submit buttons."""

    action: str
    method: str
    hidden: list[tuple[str, str]] = field(default_factory=list)
    visible: list[tuple[str, bool]] = field(default_factory=list)  # (name, required)
    checkboxes: list[tuple[str, str]] = field(default_factory=list)
    radios: dict[str, str] = field(default_factory=dict)
    selects: dict[str, str] = field(default_factory=dict)
    buttons: list[tuple[str | None, str, str]] = field(default_factory=list)  # (name, value, label)

    def submit_button(self) -> tuple[str | None, str] | None:
        """The button that allows (or the first that does not refuse), as ``(name, value)``."""
        candidates = [b for b in self.buttons if not _DENY.search(f"{b[0] or ''} {b[1]} {b[2]}")]
        allowing = [b for b in candidates if _ALLOW.search(f"{b[0] or ''} {b[1]} {b[2]}")]
        chosen = allowing or candidates
        return (chosen[0][0], chosen[0][1]) if chosen else None


class _FormParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.forms: list[Form] = []
        self._select: str | None = None
        self._button: list[str | None] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = {name: value or "" for name, value in attrs}
        if tag == "form":
            self.forms.append(
                Form(action=attributes.get("action", ""), method=attributes.get("method", "get").lower())
            )
            return
        if not self.forms:
            return
        form = self.forms[-1]
        name = attributes.get("name")
        if tag == "input":
            kind = attributes.get("type", "text").lower()
            if kind in ("submit", "image"):
                form.buttons.append((name, attributes.get("value", ""), attributes.get("value", "")))
            elif not name or "disabled" in attributes:
                return
            elif kind == "hidden":
                form.hidden.append((name, attributes.get("value", "")))
            elif kind == "checkbox":
                form.checkboxes.append((name, attributes.get("value", "on")))
            elif kind == "radio":
                if name not in form.radios or "checked" in attributes:
                    form.radios[name] = attributes.get("value", "on")
            elif kind in _TEXT_TYPES:
                form.visible.append((name, "required" in attributes))
        elif tag == "button" and attributes.get("type", "submit").lower() == "submit":
            self._button = [name, attributes.get("value", ""), ""]
        elif tag == "select" and name:
            self._select = name
        elif tag == "option" and self._select is not None:
            if self._select not in form.selects or "selected" in attributes:
                form.selects[self._select] = attributes.get("value", "")
        elif tag == "textarea" and name:
            form.visible.append((name, "required" in attributes))

    def handle_data(self, data: str) -> None:
        if self._button is not None:
            self._button[2] = f"{self._button[2]}{data}".strip()

    def handle_endtag(self, tag: str) -> None:
        if tag == "button" and self._button is not None and self.forms:
            name, value, label = self._button
            self.forms[-1].buttons.append((name, value or "", label or ""))
            self._button = None
        elif tag == "select":
            self._select = None


def parse_forms(html: str) -> list[Form]:
    """Every form of ``html``, in document order."""
    parser = _FormParser()
    parser.feed(html)
    parser.close()
    return parser.forms


@dataclass
class Arrival:
    """Where a navigation ended: a redirect out of the provider (``redirect``), or a page with no way on."""

    steps: list[Exchange]
    redirect: str | None = None
    problem: str | None = None

    @property
    def last(self) -> Exchange:
        return self.steps[-1]


class UserAgent:
    """One browser: its own cookies, leaving the provider at any URL ``leaves`` says is outside it."""

    def __init__(self, session: TargetSession, fill: Fill, leaves: Callable[[str], bool]) -> None:
        self.session = session
        self.fill = fill
        self.leaves = leaves
        self.cookies = httpx.Cookies()

    async def navigate(self, url: str) -> Arrival:
        """Open ``url`` and go on (redirects, forms) until the provider sends the agent elsewhere."""
        steps: list[Exchange] = []
        method, target, content = "GET", url, None
        for _ in range(_MAX_STEPS):
            exchange = await self._send(method, target, content)
            steps.append(exchange)
            if exchange.status is None:
                return Arrival(steps, problem=f"no answer ({exchange.error})")
            location = exchange.headers.get("location")
            if 300 <= exchange.status < 400 and location:
                absolute = urljoin(exchange.url, location)
                if self.leaves(absolute):
                    return Arrival(steps, redirect=absolute)
                method, target, content = "GET", absolute, None
                continue
            if "html" not in exchange.content_type:
                return Arrival(steps, problem=f"a {exchange.status} answer that is not a page")
            forms = [f for f in parse_forms(exchange.body.decode("utf-8", "replace")) if f.method == "post"]
            if not forms:
                return Arrival(steps, problem=f"a {exchange.status} page with no form to go on")
            submission = await self._submission(forms[0])
            if isinstance(submission, str):
                return Arrival(steps, problem=submission)
            method, target = "POST", urljoin(exchange.url, forms[0].action or exchange.url)
            content = urlencode(submission).encode()
        return Arrival(steps, problem=f"still inside the provider after {_MAX_STEPS} steps")

    async def fetch(self, url: str) -> Exchange:
        """One ``GET`` of ``url`` with this agent's cookies, redirects not followed."""
        return await self._send("GET", url, None)

    async def _submission(self, form: Form) -> list[tuple[str, str]] | str:
        fields: list[tuple[str, str]] = list(form.hidden)
        for name, required in form.visible:
            value = await self.fill(name)
            if value is None:
                if required:
                    return f"a page asks for {name!r}, which the suite cannot give"
                continue
            fields.append((name, value))
        fields += form.checkboxes
        fields += list(form.radios.items()) + list(form.selects.items())
        button = form.submit_button()
        if button is not None and button[0]:
            fields.append((button[0], button[1]))
        return fields

    async def _send(self, method: str, url: str, content: bytes | None) -> Exchange:
        headers = {"accept": "text/html", "accept-language": "en"}
        probe = httpx.Request(method, url)
        self.cookies.set_cookie_header(probe)
        if probe.headers.get("cookie"):
            headers["cookie"] = probe.headers["cookie"]
        if content is not None:
            headers["content-type"] = "application/x-www-form-urlencoded"
        exchange = await self.session.request(method, url, headers=headers, content=content)
        # The run's client keeps cookies of its own; this agent's must not leak into other requests.
        self.session.client.cookies.clear()
        if exchange.status is not None:
            self.cookies.extract_cookies(
                httpx.Response(exchange.status, headers=exchange.headers, request=httpx.Request(method, url))
            )
        return exchange


def same_origin(url: str, others: Sequence[str]) -> bool:
    """Whether ``url`` has the scheme, host and port of one of ``others``."""
    parts = urlsplit(url)
    return any((parts.scheme, parts.netloc) == (urlsplit(o).scheme, urlsplit(o).netloc) for o in others)
