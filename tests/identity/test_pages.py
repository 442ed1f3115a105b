"""The OpenID provider's pages (sign-in, code, consent, error) in French, English and Arabic: checked for
what a person with a screen reader, a keyboard, low vision or a slow mobile link needs. Every form control
has a label, the language and direction are declared, one heading, no positive tab order, text contrast
of at least 4.5:1 (WCAG 2.2 success criterion 1.4.3) from the colours of the inline style sheet, nothing
loaded from elsewhere, no script, and the page under :data:`BUDGET` bytes."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from html.parser import HTMLParser
from typing import Any

import pytest

from identity.pages import LANGUAGES, render, strings
from tests.identity.test_oidc import authorize_query, form_of, pkce

from .conftest import Provider

BUDGET = 20 * 1024
_WHITE = "#fff"


@dataclass
class _Page(HTMLParser):
    """What the checks need from a page, read with the standard library's parser."""

    html: dict[str, str] = field(default_factory=dict)
    headings: list[str] = field(default_factory=list)
    controls: list[dict[str, str]] = field(default_factory=list)
    labels: set[str] = field(default_factory=set)
    tabindexes: list[int] = field(default_factory=list)
    fetched: list[str] = field(default_factory=list)
    scripts: int = 0
    style: str = ""
    buttons: list[str] = field(default_factory=list)
    _in: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        super().__init__(convert_charrefs=True)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {name: value or "" for name, value in attrs}
        self._in.append(tag)
        if tag == "html":
            self.html = values
        if tag == "h1":
            self.headings.append(tag)
        if tag in {"input", "select", "textarea"} and values.get("type") != "hidden":
            self.controls.append(values)
        if tag == "label" and "for" in values:
            self.labels.add(values["for"])
        if "tabindex" in values:
            self.tabindexes.append(int(values["tabindex"]))
        if tag == "script":
            self.scripts += 1
        if tag == "button":
            self.buttons.append("")
        for name in ("src", "href"):
            if tag in {"img", "link", "iframe", "source", "audio", "video", "embed"} and values.get(name):
                self.fetched.append(values[name])

    def handle_endtag(self, tag: str) -> None:
        if self._in and self._in[-1] == tag:
            self._in.pop()

    def handle_data(self, data: str) -> None:
        if self._in and self._in[-1] == "style":
            self.style += data
        if "button" in self._in and self.buttons:
            self.buttons[-1] += data.strip()


def _read(page: str) -> _Page:
    parsed = _Page()
    parsed.feed(page)
    parsed.close()
    return parsed


def _rgb(colour: str) -> tuple[float, float, float]:
    digits = colour.lstrip("#")
    if len(digits) == 3:
        digits = "".join(digit * 2 for digit in digits)
    red, green, blue = (int(digits[index : index + 2], 16) / 255 for index in (0, 2, 4))
    return red, green, blue


def _luminance(colour: str) -> float:
    """Relative luminance (WCAG 2.2, https://www.w3.org/TR/WCAG22/#dfn-relative-luminance)."""
    linear = [c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in _rgb(colour)]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


def contrast(foreground: str, background: str) -> float:
    lighter, darker = sorted((_luminance(foreground), _luminance(background)), reverse=True)
    return (lighter + 0.05) / (darker + 0.05)


def _rules(style: str) -> dict[str, dict[str, str]]:
    rules: dict[str, dict[str, str]] = {}
    for selectors, body in re.findall(r"([^{}]+)\{([^{}]*)\}", style):
        declarations = dict(
            (name.strip(), value.strip())
            for name, _, value in (part.partition(":") for part in body.split(";") if ":" in part)
        )
        for selector in selectors.split(","):
            rules.setdefault(selector.strip(), {}).update(declarations)
    return rules


def _colour(value: str | None) -> str | None:
    if value is None:
        return None
    found = re.search(r"#[0-9a-fA-F]{3,6}\b", value)
    return found.group(0) if found else None


def text_pairs(style: str) -> list[tuple[str, str, str]]:
    """(selector, text colour, background colour) for every rule that sets a text colour; a rule without
    its own background sits on the page's."""
    rules = _rules(style)
    page = _colour(rules.get("body", {}).get("background")) or _WHITE
    pairs = []
    for selector, declarations in rules.items():
        foreground = _colour(declarations.get("color"))
        if foreground is None:
            continue
        background = _colour(declarations.get("background") or declarations.get("background-color")) or page
        pairs.append((selector, foreground, background))
    return pairs


_CLAIMS = [
    {"name": "age_over_18", "label": "", "essential": True, "checked": False},
    {"name": "name", "label": "", "essential": False, "checked": True},
    {"name": "phone_number", "label": "", "essential": False, "checked": False},
]


def _pages(language: str) -> dict[str, str]:
    text = strings(language)
    claims = [{**claim, "label": text[f"claim_{claim['name']}"]} for claim in _CLAIMS]
    common = {"csrf_token": "t" * 32}
    return {
        "sign-in": render(
            "signin.html",
            language,
            title=text["title_signin"],
            client_name="Ministry of Labour",
            action="/identity/authorize/identifier",
            message=text["identifier_invalid"],
            **common,
        ),
        "code": render(
            "otp.html",
            language,
            title=text["title_otp"],
            destination="78",
            action="/identity/authorize/otp",
            restart_href="/identity/authorize/restart",
            message=text["otp_refused"],
            **common,
        ),
        "consent": render(
            "consent.html",
            language,
            title=text["title_consent"],
            client_name="Ministry of Labour",
            action="/identity/authorize/consent",
            claims=claims,
            days=180,
            message=text["consent_failed"],
            **common,
        ),
        "error": render("error.html", language, title=text["title_error"], message=text["error_session"]),
    }


PAGES = [(language, name) for language in LANGUAGES for name in ("sign-in", "code", "consent", "error")]


@pytest.mark.parametrize(("language", "name"), PAGES)
def test_every_page_is_accessible_and_light(language: str, name: str) -> None:
    page = _pages(language)[name]
    parsed = _read(page)
    assert parsed.html == {"lang": language, "dir": "rtl" if language == "ar" else "ltr"}
    assert len(parsed.headings) == 1
    for control in parsed.controls:
        assert control.get("id") in parsed.labels or control.get("aria-label"), control
    assert all(button for button in parsed.buttons)
    assert all(index <= 0 for index in parsed.tabindexes)
    assert parsed.scripts == 0
    assert parsed.fetched == []
    assert "url(" not in parsed.style
    assert "@import" not in parsed.style
    pairs = text_pairs(parsed.style)
    assert {selector for selector, _, _ in pairs} >= {"body", "button", ".hint", ".alert", ".secondary"}
    for selector, foreground, background in pairs:
        assert contrast(foreground, background) >= 4.5, (selector, foreground, background)
    assert len(page.encode("utf-8")) < BUDGET


def test_focus_outlines_and_control_borders_stand_out_from_the_page() -> None:
    """Non-text contrast of at least 3:1 (WCAG 2.2 success criterion 1.4.11)."""
    rules = _rules(_read(_pages("en")["consent"]).style)
    for selector, property_name in (
        ("input:focus", "outline"),
        ("input", "border"),
        ("fieldset", "border"),
        (".secondary", "border"),
    ):
        colour = _colour(rules[selector][property_name])
        assert colour is not None
        assert contrast(colour, _WHITE) >= 3, selector


@pytest.mark.parametrize(
    ("foreground", "background", "ratio"),
    [("#000", "#fff", 21.0), ("#fff", "#fff", 1.0), ("#777", "#fff", 4.48), ("#767676", "#fff", 4.54)],
)
def test_contrast_is_computed_as_wcag_defines_it(foreground: str, background: str, ratio: float) -> None:
    assert contrast(foreground, background) == pytest.approx(ratio, abs=0.01)


@pytest.mark.parametrize("language", LANGUAGES)
async def test_the_served_consent_page_passes_the_same_checks(provider: Provider, language: str) -> None:
    """The page as the provider serves it after sign-in, in each language, tab order following the
    document: the claims, then allow before deny."""
    _verifier, challenge = pkce()
    query: dict[str, Any] = authorize_query(
        code_challenge=challenge, code_challenge_method="S256", ui_locales=language
    )
    page = await provider.http.get("/identity/authorize", params=query)
    action, csrf = form_of(page.text)
    otp_page = await provider.http.post(action, data={"csrf_token": csrf, "identifier": provider.uin})
    code = re.search(r"\b(\d{6})\b", provider.sender.messages[-1].text)
    assert code is not None
    action, csrf = form_of(otp_page.text)
    consent = await provider.http.post(action, data={"csrf_token": csrf, "otp": code.group(1)})
    assert consent.status_code == 200
    assert consent.headers["content-security-policy"].startswith("default-src 'none'")
    parsed = _read(consent.text)
    assert parsed.html["lang"] == language
    assert len(parsed.headings) == 1
    assert [control["type"] for control in parsed.controls] == ["checkbox"] * 5
    assert all(control["id"] in parsed.labels for control in parsed.controls)
    text = strings(language)
    assert parsed.buttons == [text["allow"], text["deny"]]
    assert parsed.tabindexes == []
    assert len(consent.content) < BUDGET
