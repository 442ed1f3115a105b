"""The requirement catalogue the conformance suite checks (levels per RFC 2119, https://www.rfc-editor.org/rfc/rfc2119)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Literal, cast

from standards._validation import validator

__all__ = ["CATALOGUE_PATH", "Requirement", "requirements"]

CATALOGUE_PATH = Path(__file__).parent / "requirements" / "catalogue.json"

Level = Literal["MUST", "SHOULD", "MAY"]


@dataclass(frozen=True, slots=True)
class Requirement:
    """One requirement: its ID (``PLT-001``), the profile it belongs to, its level and what it demands."""

    id: str
    profile: str
    level: Level
    statement: str


@cache
def _requirements() -> tuple[Requirement, ...]:
    document = json.loads(CATALOGUE_PATH.read_text(encoding="utf-8"))
    validator(document["schema"]).check(document)
    return tuple(
        Requirement(entry["id"], entry["profile"], cast(Level, entry["level"]), entry["statement"])
        for entry in document["requirements"]
    )


def requirements() -> list[Requirement]:
    """Every requirement of the catalogue, in catalogue order."""
    return list(_requirements())
