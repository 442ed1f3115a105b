"""Schema validation throughput: a typical person record through ``issues()`` and through ``is_valid()``.

Prints a human line, then one JSON object on the last line:
{"name", "value" (fast validations/s), "unit", "baseline" (full-path validations/s), "ratio"}.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

from standards import validator

PERSON: dict[str, Any] = {
    "names": [
        {"script": "Latn", "given_name": "Amina", "family_name": "Benali"},
        {"script": "Arab", "given_name": "أمينة", "family_name": "بن علي"},
    ],
    "date_of_birth": "2001-03-14",
    "sex": "female",
    "place_of_birth": {"locality": "Oran", "country": "DZ"},
    "address": {
        "lines": ["12 rue des Oliviers"],
        "locality": "Oran",
        "postal_code": "31000",
        "country": "DZ",
    },
    "phone": "+213555123456",
    "preferred_language": "ar",
}
SECONDS_PER_PATH = 1.5


def _rate(check: Callable[[], object]) -> float:
    for _ in range(50):
        check()
    count, started = 0, time.perf_counter()
    deadline = started + SECONDS_PER_PATH
    while time.perf_counter() < deadline:
        for _ in range(100):
            check()
        count += 100
    return count / (time.perf_counter() - started)


def main() -> None:
    person = validator("person")
    if not person.is_valid(PERSON) or person.issues(PERSON):
        raise SystemExit("the benchmark record is not valid against person@1.0.0")
    full = _rate(lambda: person.issues(PERSON))
    fast = _rate(lambda: person.is_valid(PERSON))
    print(f"person@1.0.0: is_valid() {fast:,.0f}/s, issues() {full:,.0f}/s, fast path {fast / full:.1f}x")
    result = {
        "name": "schema-validation-person",
        "value": round(fast, 1),
        "unit": "validations/s",
        "baseline": round(full, 1),
        "ratio": round(fast / full, 2),
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
