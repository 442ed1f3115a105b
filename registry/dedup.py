"""Deduplication of records about persons: a check before a record is created, a batch job over a
whole registry, and a review queue whose decisions (merge, or not a duplicate) are audited.

Two passes, each match with its score (0 to 1) and an explanation per field:

- **Deterministic**: a record holding the same identifier (type and value) is the same record.
- **Probabilistic**, a weighted sum in the spirit of Fellegi and Sunter (1969): names (Latin and Arabic
  script, in any order, compared by a phonetic skeleton and by Jaro-Winkler similarity,
  https://rapidfuzz.github.io/RapidFuzz/), the birth date (equal, or one typing slip away: one digit,
  or day and month swapped), the place of birth and the sex.

Arabic names are normalised before comparison (diacritics and tatweel removed; alef, ya, ta marbuta
and hamza carriers unified; the article al- dropped) and transliterated to Latin letters, so أمينة,
امينه and Amina meet. Which fields hold names, birth date, place and sex is read from the registry
definition's searchable attributes (``given_name``, ``family_name``, ``date_of_birth``, ``birth_region``,
``sex``); a registry without names and a birth date has no probabilistic pass.

The batch job compares only records that share a blocking key (a phonetic name skeleton with the birth
year, or the two name skeletons together), so its cost grows with the block sizes, not with the
square of the registry.
"""

from __future__ import annotations

import re
import unicodedata
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any, Final

from rapidfuzz.distance import JaroWinkler
from sqlalchemy import func, or_, select, update
from sqlalchemy.exc import IntegrityError

from dpi.errors import DpiError, ErrorDetail
from registry.definition import RegistryDefinition, resolve
from registry.models import AttributeRow, DuplicateRow, IdentifierRow, RecordRow
from registry.service import ACTIVE, RegistryService, timestamp

__all__ = [
    "LIKELY",
    "POSSIBLE",
    "Deduplicator",
    "Match",
    "arabic_normalized",
    "latin_form",
    "name_similarity",
    "skeleton",
]

LIKELY: Final = 0.85
POSSIBLE: Final = 0.70
_WEIGHTS: Final = {"names": 0.60, "date_of_birth": 0.25, "place_of_birth": 0.10, "sex": 0.05}
_MAX_BLOCK: Final = 400
_MAX_CANDIDATES: Final = 200
_MAX_LISTED: Final = 1000

_ARABIC_MARKS: Final = re.compile("[\u0610-\u061a\u064b-\u065f\u0670\u06d6-\u06ed\u0640]")
_ARABIC_UNIFY: Final = str.maketrans(
    {"أ": "ا", "إ": "ا", "آ": "ا", "ٱ": "ا", "ى": "ي", "ة": "ه", "ؤ": "و", "ئ": "ي", "ء": ""}
)
_TRANSLITERATION: Final = str.maketrans(
    {
        "ا": "a", "ب": "b", "ت": "t", "ث": "th", "ج": "j", "ح": "h", "خ": "kh", "د": "d", "ذ": "dh",
        "ر": "r", "ز": "z", "س": "s", "ش": "sh", "ص": "s", "ض": "d", "ط": "t", "ظ": "z", "ع": "a",
        "غ": "gh", "ف": "f", "ق": "k", "ك": "k", "ل": "l", "م": "m", "ن": "n", "ه": "a", "و": "ou",
        "ي": "i", " ": " ",
    }
)  # fmt: skip
_DIGRAPHS: Final = (
    ("sch", "s"), ("sh", "s"), ("ch", "s"), ("kh", "k"), ("gh", "g"), ("th", "t"), ("dh", "d"),
    ("ph", "f"), ("ou", "u"), ("ck", "k"), ("ce", "se"), ("ci", "si"), ("c", "k"), ("q", "k"),
    ("z", "s"), ("x", "ks"), ("p", "b"), ("v", "f"),
)  # fmt: skip
_ARTICLE: Final = re.compile(r"^(?:al|el|ال)[- ]?(?=\S{3})")
_VOWELS: Final = frozenset("aeiouyw")
_ARTICLES: Final = frozenset({"al", "el"})
_FINAL_HA: Final = re.compile("ه(?=\\s|$)")


def arabic_normalized(text: str) -> str:
    """Arabic ``text`` without diacritics or tatweel, with alef, ya, ta marbuta and hamza carriers unified."""
    return _ARABIC_MARKS.sub("", unicodedata.normalize("NFKC", text)).translate(_ARABIC_UNIFY)


def latin_form(text: str) -> str:
    """``text`` in lower-case Latin letters: Arabic normalised and transliterated, accents removed,
    the article al-/el- dropped from each word, punctuation gone."""
    # A final ha (or ta marbuta, unified with it) is a vowel: فاطمة is Fatima, إبراهيم keeps its h.
    text = _FINAL_HA.sub("ا", arabic_normalized(text)).replace("ه", "h").translate(_TRANSLITERATION)
    text = "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c)).casefold()
    words = re.sub(r"[^a-z ]+", " ", text.replace("-", " ")).split()
    return " ".join(_ARTICLE.sub("", word) for word in words if word not in _ARTICLES)


def skeleton(word: str) -> str:
    """A phonetic key of one word in :func:`latin_form`: its first sound, then its consonants with
    near-equivalent spellings merged (Youssef, Yusuf, Youcef and يوسف all give ``ysf``)."""
    for spelling, sound in _DIGRAPHS:
        word = word.replace(spelling, sound)
    if not word:
        return ""
    head = "a" if word[0] in _VOWELS else word[0]
    consonants = [c for c in word[1:] if c not in _VOWELS and not (c == "h" and head == "h")]
    key = head
    for c in consonants:
        if c != key[-1]:
            key += c
    return key


@dataclass(frozen=True)
class _Person:
    """What the probabilistic pass compares of a record."""

    record_id: str
    names: tuple[tuple[str, ...], ...]
    born: date | None
    place: tuple[str, str]
    sex: str

    @property
    def keys(self) -> set[str]:
        keys: set[str] = set()
        year = str(self.born.year) if self.born else "-"
        for words in self.names:
            skeletons = [skeleton(word) for word in words]
            keys.update(f"{key}|{year}" for key in skeletons if len(key) >= 2)
            if len(skeletons) >= 2:
                keys.add("|".join(sorted(skeletons)))
        return keys


def name_similarity(first: Sequence[str], second: Sequence[str]) -> tuple[float, str]:
    """How alike two names are (words of :func:`latin_form`, in any order), and why."""
    if not first or not second:
        return 0.0, "no name to compare"
    joined = {skeleton("".join(first)), skeleton("".join(sorted(first)))}
    sound_alike = sorted(map(skeleton, first)) == sorted(map(skeleton, second)) or bool(
        joined & {skeleton("".join(second)), skeleton("".join(sorted(second)))}
    )
    if sound_alike:
        spelled = " ".join(sorted(first)) == " ".join(sorted(second))
        if not spelled:
            return 0.95, "names sound alike"
        return 1.0, "same name" if list(first) == list(second) else "same name, words in another order"

    def closeness(words: Sequence[str], others: Sequence[str]) -> float:
        # Squared, so one word that differs (a sister's given name) costs more than a typo in each.
        return sum(max(JaroWinkler.normalized_similarity(w, o) for o in others) ** 2 for w in words) / len(
            words
        )

    score = (closeness(first, second) + closeness(second, first)) / 2
    return score, f"names {round(score * 100)}% alike (Jaro-Winkler, word by word)"


def _date_similarity(first: date | None, second: date | None) -> tuple[float, str]:
    if first is None or second is None:
        return 0.0, "no birth date to compare"
    if first == second:
        return 1.0, "same birth date"
    if (first.year, first.month, first.day) == (second.year, second.day, second.month):
        return 0.8, "day and month swapped"
    a, b = first.strftime("%Y%m%d"), second.strftime("%Y%m%d")
    if sum(x != y for x, y in zip(a, b, strict=True)) == 1:
        return 0.8, "birth dates one digit apart"
    if abs((first - second).days) <= 31:
        return 0.5, "birth dates within a month"
    return 0.0, "different birth dates"


@dataclass(frozen=True)
class Match:
    """A record that may be the same as another, with its score and why."""

    record_id: str
    score: float
    explanation: tuple[Mapping[str, Any], ...]

    def as_json(self) -> dict[str, Any]:
        return {
            "record_id": self.record_id,
            "score": round(self.score, 4),
            "explanation": list(self.explanation),
        }


def _score(first: _Person, second: _Person) -> Match:
    name, name_reason = max(
        (name_similarity(a, b) for a in first.names for b in second.names),
        default=(0.0, "no name to compare"),
    )
    born, born_reason = _date_similarity(first.born, second.born)
    if first.place[0] and first.place[0] == second.place[0]:
        place, place_reason = 1.0, "same place of birth"
    elif first.place[1] and first.place[1] == second.place[1]:
        place, place_reason = 0.5, "same region of birth"
    else:
        place, place_reason = 0.0, "different or unknown places of birth"
    sex, sex_reason = (
        (1.0, "same sex") if first.sex and first.sex == second.sex else (0.0, "sex differs or unknown")
    )
    parts = {
        "names": (name, name_reason),
        "date_of_birth": (born, born_reason),
        "place_of_birth": (place, place_reason),
        "sex": (sex, sex_reason),
    }
    total = sum(_WEIGHTS[field] * value for field, (value, _) in parts.items())
    explanation = tuple(
        {"field": field, "score": round(value, 4), "weight": _WEIGHTS[field], "reason": reason}
        for field, (value, reason) in parts.items()
    )
    return Match(second.record_id, total, explanation)


@dataclass(frozen=True)
class _Profile:
    """Where a registry's records hold the fields the probabilistic pass compares."""

    given: str
    family: str
    born: str
    locality: str | None
    region: str | None
    sex: str | None

    @classmethod
    def of(cls, definition: RegistryDefinition) -> _Profile | None:
        attributes = definition.attributes
        if not {"given_name", "family_name", "date_of_birth"} <= attributes.keys():
            return None
        region = attributes.get("birth_region")
        return cls(
            given=attributes["given_name"].pointer,
            family=attributes["family_name"].pointer,
            born=attributes["date_of_birth"].pointer,
            locality=region.pointer.rsplit("/", 1)[0] + "/locality" if region else None,
            region=region.pointer if region else None,
            sex=attributes["sex"].pointer if "sex" in attributes else None,
        )

    def person(self, record_id: str, document: Mapping[str, Any]) -> _Person | None:
        givens = [value for _, value in resolve(document, self.given)]
        families = [value for _, value in resolve(document, self.family)]
        names = tuple(
            tuple(latin_form(f"{given} {family}").split())
            for given, family in zip(givens, families, strict=False)
            if isinstance(given, str) and isinstance(family, str)
        )
        if not names:
            return None
        born_values = [value for _, value in resolve(document, self.born)]
        try:
            born = date.fromisoformat(born_values[0]) if born_values else None
        except (TypeError, ValueError):
            born = None

        def text(pointer: str | None) -> str:
            values = [value for _, value in resolve(document, pointer)] if pointer else []
            return latin_form(values[0]) if values and isinstance(values[0], str) else ""

        return _Person(record_id, names, born, (text(self.locality), text(self.region)), text(self.sex))


def _entry(row: DuplicateRow) -> dict[str, Any]:
    body: dict[str, Any] = {
        "duplicate_id": row.duplicate_id,
        "registry": row.registry_code,
        "record_id": row.record_id,
        "candidate_id": row.candidate_id,
        "score": float(row.score),
        "explanation": row.explanation,
        "status": row.status,
        "found_by": row.found_by,
        "found_at": timestamp(row.found_at),
    }
    if row.decided_by is not None and row.decided_at is not None:
        body["decided_by"] = row.decided_by
        body["decided_at"] = timestamp(row.decided_at)
        if row.decision_reason is not None:
            body["decision_reason"] = row.decision_reason
    if row.survivor_id is not None:
        body["survivor_id"] = row.survivor_id
    return body


class Deduplicator:
    """Duplicate checks, the batch job and the review queue of the registries of ``service``."""

    def __init__(
        self, service: RegistryService, *, clock: Callable[[], datetime] = lambda: datetime.now(UTC)
    ) -> None:
        self.service = service
        self._clock = clock

    def _profile(self, code: str) -> tuple[RegistryDefinition, _Profile | None]:
        definition = self.service.definition(code)
        return definition, _Profile.of(definition)

    async def check(
        self, code: str, document: Mapping[str, Any], *, threshold: float = POSSIBLE
    ) -> list[Match]:
        """Records of registry ``code`` that ``document`` may duplicate, best first: those holding one of
        its identifiers (score 1), then active records whose score reaches ``threshold``."""
        definition, profile = self._profile(code)
        pairs = definition.identifiers_of(document)
        matches: dict[str, Match] = {}
        async with self.service.sessions() as session:
            if pairs:
                held = await session.execute(
                    select(IdentifierRow.identifier_type, IdentifierRow.value, IdentifierRow.record_id).where(
                        IdentifierRow.registry_code == code,
                        IdentifierRow.value.in_({value for _, value in pairs}),
                    )
                )
                for row in held:
                    if (row.identifier_type, row.value) in pairs:
                        reason = {
                            "field": "identifier",
                            "score": 1.0,
                            "weight": 1.0,
                            "reason": f"same {row.identifier_type}",
                        }
                        matches[row.record_id] = Match(row.record_id, 1.0, (reason,))
            incoming = profile.person("", document) if profile is not None else None
            if incoming is not None:
                words = {word for name in incoming.names for word in name}
                conditions = [
                    AttributeRow.attribute.in_(("given_name", "family_name"))
                    & func.lower(AttributeRow.value_text).in_(words)
                ]
                if incoming.born is not None:
                    conditions.append(
                        (AttributeRow.attribute == "date_of_birth")
                        & (AttributeRow.value_date == incoming.born)
                    )
                candidates = (
                    await session.scalars(
                        select(AttributeRow.record_id)
                        .where(AttributeRow.registry_code == code, or_(*conditions))
                        .distinct()
                        .limit(_MAX_CANDIDATES * 10)
                    )
                ).all()
                rows = await session.execute(
                    select(RecordRow.record_id, RecordRow.document).where(
                        RecordRow.record_id.in_(set(candidates)), RecordRow.status == ACTIVE
                    )
                )
                for row in rows:
                    other = profile.person(row.record_id, row.document) if profile else None
                    if other is None or row.record_id in matches:
                        continue
                    match = _score(incoming, other)
                    if match.score >= threshold:
                        matches[row.record_id] = match
        return sorted(matches.values(), key=lambda match: (-match.score, match.record_id))[:_MAX_CANDIDATES]

    async def create(
        self,
        code: str,
        document: Any,
        *,
        actor: str,
        reason: str | None = None,
        refuse_at: float | None = LIKELY,
    ) -> dict[str, Any]:
        """Create a record after a duplicate check: refused (``registry.duplicate_suspected``, the
        candidates in the details) when a match reaches ``refuse_at``; otherwise created, and every
        match above :data:`POSSIBLE` is put in the review queue. ``refuse_at=None`` only flags."""
        definition = self.service.definition(code)
        if definition.problems(document):
            return await self.service.create(code, document, actor=actor, reason=reason)
        matches = [
            match
            for match in await self.check(code, document)
            if match.explanation[0]["field"] != "identifier"
        ]
        if refuse_at is not None and matches and matches[0].score >= refuse_at:
            raise DpiError(
                "registry.duplicate_suspected",
                details=[
                    ErrorDetail(
                        "",
                        "registry.duplicate_suspected",
                        f"record {match.record_id} scores {match.score:.2f}",
                    )
                    for match in matches[:10]
                ],
            )
        created = await self.service.create(code, document, actor=actor, reason=reason)
        await self._enqueue(code, [(created["record_id"], match) for match in matches], found_by=actor)
        return created

    async def _enqueue(self, code: str, found: Sequence[tuple[str, Match]], *, found_by: str) -> int:
        """Put new pairs in the review queue (a pair already there, decided or not, stays as it is)."""
        added = 0
        now = self._clock()
        for record_id, match in found:
            first, second = sorted((record_id, match.record_id))
            try:
                async with self.service.sessions.begin() as session:
                    session.add(
                        DuplicateRow(
                            duplicate_id=str(uuid.uuid4()),
                            registry_code=code,
                            record_id=first,
                            candidate_id=second,
                            score=Decimal(f"{match.score:.4f}"),
                            explanation=list(match.explanation),
                            status="pending",
                            found_by=found_by,
                            found_at=now,
                        )
                    )
                added += 1
            except IntegrityError:
                continue
        return added

    async def _people(self, code: str, profile: _Profile) -> Iterator[_Person]:
        people: list[_Person] = []
        async with self.service.sessions() as session:
            stream = await session.stream(
                select(RecordRow.record_id, RecordRow.document)
                .where(RecordRow.registry_code == code, RecordRow.status == ACTIVE)
                .execution_options(yield_per=5000)
            )
            async for row in stream:
                person = profile.person(row.record_id, row.document)
                if person is not None:
                    people.append(person)
        return iter(people)

    async def find(
        self, code: str, *, threshold: float = POSSIBLE, counts: Counter[str] | None = None
    ) -> list[tuple[str, Match]]:
        """Every pair of active records of ``code`` scoring at least ``threshold``, compared within blocks.
        ``counts`` receives ``records`` (persons read) and ``compared`` (pairs scored)."""
        _, profile = self._profile(code)
        if profile is None:
            return []
        blocks: defaultdict[str, list[_Person]] = defaultdict(list)
        records = 0
        for person in await self._people(code, profile):
            records += 1
            for key in person.keys:
                blocks[key].append(person)
        seen: set[tuple[str, str]] = set()
        found: list[tuple[str, Match]] = []
        for members in blocks.values():
            if len(members) < 2 or len(members) > _MAX_BLOCK:
                continue
            for index, first in enumerate(members):
                for second in members[index + 1 :]:
                    pair = (
                        (first.record_id, second.record_id)
                        if first.record_id < second.record_id
                        else (second.record_id, first.record_id)
                    )
                    if pair in seen:
                        continue
                    seen.add(pair)
                    match = _score(first, second)
                    if match.score >= threshold:
                        found.append((first.record_id, match))
        if counts is not None:
            counts["records"] += records
            counts["compared"] += len(seen)
        return found

    async def run(self, code: str, *, actor: str, threshold: float = POSSIBLE) -> dict[str, int]:
        """The batch job: find the pairs of registry ``code`` and queue the new ones for review."""
        found = await self.find(code, threshold=threshold)
        return {"found": len(found), "queued": await self._enqueue(code, found, found_by=actor)}

    async def queue(self, code: str, status: str | None = "pending") -> dict[str, Any]:
        """The review queue of ``code`` (of one status when given), highest score first."""
        self.service.definition(code)
        conditions = [DuplicateRow.registry_code == code]
        if status is not None:
            conditions.append(DuplicateRow.status == status)
        async with self.service.sessions() as session:
            total = await session.scalar(select(func.count()).select_from(DuplicateRow).where(*conditions))
            rows = (
                await session.scalars(
                    select(DuplicateRow)
                    .where(*conditions)
                    .order_by(DuplicateRow.score.desc(), DuplicateRow.found_at, DuplicateRow.duplicate_id)
                    .limit(_MAX_LISTED)
                )
            ).all()
        return {"items": [_entry(row) for row in rows], "total": total or 0}

    async def entry(self, code: str, duplicate_id: str) -> dict[str, Any]:
        self.service.definition(code)
        async with self.service.sessions() as session:
            row = await session.get(DuplicateRow, duplicate_id)
        if row is None or row.registry_code != code:
            raise DpiError("registry.duplicate_not_found")
        return _entry(row)

    async def decide(
        self,
        code: str,
        duplicate_id: str,
        *,
        merge: bool,
        actor: str,
        reason: str,
        survivor_id: str | None = None,
    ) -> dict[str, Any]:
        """Decide a pending entry: merge the pair through the service (``survivor_id``, one of the two,
        keeps; the other redirects to it), or record that they are not duplicates. Who, when and why
        stay with the entry."""
        pending = await self.entry(code, duplicate_id)
        if pending["status"] != "pending":
            raise DpiError("registry.duplicate_decided")
        pair = (pending["record_id"], pending["candidate_id"])
        if merge:
            survivor = survivor_id or pair[0]
            if survivor not in pair:
                raise DpiError("registry.merge_invalid", "the survivor must be one of the two records")
            loser = pair[1] if survivor == pair[0] else pair[0]
            await self.service.merge(code, survivor_id=survivor, loser_id=loser, actor=actor, reason=reason)
        async with self.service.sessions.begin() as session:
            decided = await session.execute(
                update(DuplicateRow)
                .where(DuplicateRow.duplicate_id == duplicate_id, DuplicateRow.status == "pending")
                .values(
                    status="merged" if merge else "not_duplicate",
                    decided_by=actor,
                    decided_at=self._clock(),
                    decision_reason=reason,
                    survivor_id=(survivor_id or pair[0]) if merge else None,
                )
                .execution_options(synchronize_session=False)
            )
            if getattr(decided, "rowcount", 0) != 1:
                raise DpiError("registry.duplicate_decided")
        return await self.entry(code, duplicate_id)
