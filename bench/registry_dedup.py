"""Deduplication quality: precision and recall of ``Deduplicator.find`` on synthetic civil-registry
persons with injected duplicates.

    .venv/bin/python bench/registry_dedup.py [--count 20000] [--duplicates 0.1]

Persons from the seed generator are loaded into a temporary SQLite registry, plus a share of them again
under a new UIN with one or two of these changes: a typing slip in a name, the name in one script only
(Latin or Arabic), given and family names swapped, a one-digit or day/month slip in the birth date, the
place of birth missing. Every pair the batch job finds at the review threshold is compared with the
injected pairs. Prints a human line, then one JSON object: {"name", "value" (F1), "unit", "baseline"
(0.9), "ratio", "precision", "recall" (review threshold 0.70), "precision_likely", "recall_likely"
(refusal threshold 0.85), "pairs_compared", "pairs_quadratic", "blocking_ratio"}.
"""

from __future__ import annotations

import argparse
import asyncio
import copy
import json
import random
import tempfile
import time
from collections import Counter
from datetime import date
from pathlib import Path
from typing import Any

from sqlalchemy import select

from dpi import db
from registry.dedup import LIKELY, POSSIBLE, Deduplicator
from registry.definition import load_definitions
from registry.models import IdentifierRow
from registry.service import RegistryService
from registry.synthetic import generate, uin

MIGRATIONS = Path(__file__).resolve().parent.parent / "registry" / "migrations"
F1_BASELINE = 0.9


def _typo(rng: random.Random, word: str) -> str:
    if len(word) < 4:
        return word + word[-1]
    index = rng.randrange(1, len(word) - 1)
    if rng.random() < 0.5:
        return word[:index] + word[index + 1] + word[index] + word[index + 2 :]
    return word[:index] + rng.choice("aeioulnrst") + word[index + 1 :]


def _date_slip(rng: random.Random, text: str) -> str:
    born = date.fromisoformat(text)
    if born.day <= 12 and born.day != born.month and rng.random() < 0.5:
        return born.replace(month=born.day, day=born.month).isoformat()
    for _ in range(20):
        digits = list(born.strftime("%Y%m%d"))
        position = rng.choice([3, 7])
        digits[position] = str((int(digits[position]) + rng.choice([1, 9])) % 10)
        try:
            text = "".join(digits)
            return date(int(text[:4]), int(text[4:6]), int(text[6:])).isoformat()
        except ValueError:
            continue
    return text


def _variant(rng: random.Random, person: dict[str, Any], number: int) -> dict[str, Any]:
    twin = copy.deepcopy(person)
    twin["uin"] = uin(900_000_000 + number)
    for field in ("mother_uin", "father_uin", "spouses"):
        twin.pop(field, None)
    changes = rng.sample(["typo", "script", "swap", "date", "place"], rng.choice([1, 2]))
    latin = [name for name in twin["names"] if name.get("script") == "Latn"]
    if "typo" in changes and latin:
        latin[0]["given"] = _typo(rng, latin[0]["given"])
    if "script" in changes and len(twin["names"]) > 1:
        twin["names"] = [rng.choice(twin["names"])]
    if "swap" in changes:
        name = twin["names"][0]
        name["given"], name["family"] = name["family"], name["given"]
    if "date" in changes:
        twin["date_of_birth"] = _date_slip(rng, twin["date_of_birth"])
    if "place" in changes:
        twin.pop("place_of_birth", None)
    return twin


async def _measure(count: int, share: float) -> dict[str, Any]:
    rng = random.Random(5)
    generated = generate("civil", count * 2, seed=3)
    persons = [document for document in generated if document["record_type"] == "person"][:count]
    originals = rng.sample(persons, int(count * share))
    twins = [_variant(rng, person, number) for number, person in enumerate(originals)]
    truth = {frozenset((person["uin"], twin["uin"])) for person, twin in zip(originals, twins, strict=True)}
    with tempfile.TemporaryDirectory() as directory:
        engine = db.create_engine(f"sqlite+aiosqlite:///{directory}/dedup.db")
        try:
            await db.upgrade(engine, [MIGRATIONS])
            service = RegistryService(db.session_factory(engine), load_definitions(), subject_key=b"d" * 32)
            documents = persons + twins
            for start in range(0, len(documents), 2000):
                batch = documents[start : start + 2000]
                await service.create_many("civil", batch, actor="bench", reason="bench")
            counts: Counter[str] = Counter()
            began = time.perf_counter()
            found = await Deduplicator(service).find("civil", threshold=POSSIBLE, counts=counts)
            elapsed = time.perf_counter() - began
            async with service.sessions() as session:
                rows = await session.execute(select(IdentifierRow.record_id, IdentifierRow.value))
                uin_of = {row.record_id: row.value for row in rows}
        finally:
            await engine.dispose()
    predicted = {frozenset((uin_of[first], uin_of[match.record_id])) for first, match in found}
    likely = {
        frozenset((uin_of[first], uin_of[match.record_id])) for first, match in found if match.score >= LIKELY
    }
    likely_hits = len(likely & truth)
    hits = len(predicted & truth)
    precision = hits / len(predicted) if predicted else 0.0
    recall = hits / len(truth) if truth else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    records = counts["records"]
    quadratic = records * (records - 1) // 2
    return {
        "name": "registry-dedup-civil",
        "value": round(f1, 4),
        "unit": "F1",
        "baseline": F1_BASELINE,
        "ratio": round(f1 / F1_BASELINE, 3),
        "precision": round(precision, 4),
        "recall": round(recall, 4),
        "records": records,
        "injected_pairs": len(truth),
        "found_pairs": len(predicted),
        "pairs_compared": counts["compared"],
        "pairs_quadratic": quadratic,
        "blocking_ratio": round(counts["compared"] / quadratic, 6) if quadratic else None,
        "find_seconds": round(elapsed, 2),
        "threshold": POSSIBLE,
        "precision_likely": round(likely_hits / len(likely), 4) if likely else 0.0,
        "recall_likely": round(likely_hits / len(truth), 4) if truth else 0.0,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=20_000)
    parser.add_argument("--duplicates", type=float, default=0.1, help="share of persons duplicated")
    arguments = parser.parse_args()
    result = asyncio.run(_measure(arguments.count, arguments.duplicates))
    print(
        f"registry dedup: precision {result['precision']}, recall {result['recall']}, F1 {result['value']} "
        f"({result['injected_pairs']} injected pairs in {result['records']:,} records); "
        f"{result['pairs_compared']:,} pairs compared of {result['pairs_quadratic']:,} "
        f"(blocking ratio {result['blocking_ratio']})"
    )
    print(json.dumps(result))


if __name__ == "__main__":
    main()
