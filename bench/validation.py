"""Schema validation throughput: a typical person record through ``issues()`` and through ``is_valid()``.

Prints a human line, then one JSON object on the last line:
{"name", "value" (fast validations/s), "unit", "baseline" (full-path validations/s), "ratio"}.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path

from standards import validator

# The same record the validation tests prove valid, so the benchmark measures a record known to pass.
PERSON_FILE = Path(__file__).resolve().parent.parent / "tests" / "standards" / "person.json"
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
    record = json.loads(PERSON_FILE.read_text(encoding="utf-8"))
    person = validator("person")
    if not person.is_valid(record) or person.issues(record):
        raise SystemExit(f"the benchmark record {PERSON_FILE} is not valid against person@1.0.0")
    full = _rate(lambda: person.issues(record))
    fast = _rate(lambda: person.is_valid(record))
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
