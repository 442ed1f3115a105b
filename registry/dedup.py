"""Deduplication of records about persons: a check before a record is created, a batch job over a
whole registry, and a review queue whose decisions (merge, or not a duplicate) are audited.

Two passes, each match with its score (0 to 1) and an explanation per field:

- **Deterministic**: a record holding the same identifier (type and value) is the same record.
- **Probabilistic**, record linkage after Fellegi and Sunter (1969, "A Theory for Record Linkage",
  https://doi.org/10.1080/01621459.1969.10501049). Each field agrees, nearly agrees, disagrees or is
  missing; each outcome has a weight ``log2(m / u)``, where ``m`` is how often it happens between two
  records of the same person and ``u`` how often between two different persons. So agreeing on a rare
  name counts more than agreeing on a common one (``u`` is the name's frequency in the registry), a
  different birth date weighs heavily against, and a missing field counts for nothing. The weights
  add up, and the sum (with the prior odds of a match among compared pairs) gives the probability
  that is the score. The explanation lists every field with its outcome and weight.

Names (Latin and Arabic script, given and family in either order) agree when their phonetic keys are
equal (:mod:`registry.phonetic`) and nearly agree when their spellings are close (Jaro-Winkler); the
birth date nearly agrees when one typing slip away (one digit, or day and month swapped). Two records
whose given or family names differ outright (twins, siblings) are at most a possible match, for a
person to review, never a likely one. Which fields hold names, birth date, place and sex is read from
the registry definition's searchable attributes (``given_name``, ``family_name``, ``date_of_birth``,
``birth_region``, ``sex``); a registry without names and a birth date has no probabilistic pass.

The batch job compares only records that share a blocking key (a phonetic name key with the birth
year, or with the day and month of birth, or the two name keys together), so its cost grows with the
block sizes, not with the square of the registry.
"""

from __future__ import annotations

import math
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any, Final

from rapidfuzz.distance import JaroWinkler
from sqlalchemy import func, or_, select, update
from sqlalchemy.exc import IntegrityError

from dpi.errors import DpiError, ErrorDetail
from registry.definition import PHONETIC_SUFFIX, RegistryDefinition, resolve
from registry.models import AttributeRow, DuplicateRow, IdentifierRow, RecordRow
from registry.phonetic import arabic_normalized, latin_form, name_similarity, skeleton
from registry.service import ACTIVE, RegistryService, timestamp

__all__ = [
    "LIKELY",
    "POSSIBLE",
    "Deduplicator",
    "Match",
    "NameFrequencies",
    "arabic_normalized",
    "latin_form",
    "name_similarity",
    "score",
    "skeleton",
]

LIKELY: Final = 0.85
POSSIBLE: Final = 0.70
_MAX_BLOCK: Final = 400
_MAX_CANDIDATES: Final = 200
_MAX_LISTED: Final = 1000

# Prior odds of a match between two records that share a blocking key: about one pair in 2^11.
_PRIOR: Final = -11.0
# Given or family names that differ outright: at most a possible match (twins share everything else).
_NAMES_DIFFER_CAP: Final = 0.84
_CLOSE_SPELLING: Final = 0.85
# (m, u) per outcome; u of an agreeing name comes from its frequency instead.
_NAME_AGREE_M: Final = 0.90
_NAME_CLOSE: Final = (0.07, 0.01)
_NAME_DIFFER: Final = (0.003, 0.95)
_NAMES_SWAPPED: Final = -1.0
_DATE: Final = {
    "same birth date": (0.90, 1 / 30_000),
    "day and month swapped": (0.03, 1 / 30_000),
    "birth dates one digit apart": (0.05, 8 / 30_000),
    "birth dates within a month": (0.01, 60 / 30_000),
    "different birth dates": (0.0005, 1.0),
}
_PLACE: Final = {
    "same place of birth": (0.85, 1 / 300),
    "same region of birth, another locality": (0.07, 1 / 8),
    "different places of birth": (0.08, 7 / 8),
}
_SEX: Final = {"same sex": (0.97, 0.5), "different sex": (0.03, 0.5)}


def _weight(m: float, u: float) -> float:
    return math.log2(m / u)


class NameFrequencies:
    """How common each phonetic name key is among the persons of a registry: the ``u`` of an agreeing
    name. A key never seen counts as seen once."""

    def __init__(self, counts: Mapping[str, int], persons: int) -> None:
        self._counts = counts
        # Below a thousand persons frequencies say little: a small registry is read as a thousand.
        self._persons = max(persons, 1000)

    @classmethod
    def of(cls, people: Iterable[_Person]) -> NameFrequencies:
        counts: Counter[str] = Counter()
        persons = 0
        for person in people:
            persons += 1
            counts.update({key for name in person.names for key in name.keys})
        return cls(counts, persons)

    def share(self, key: str) -> float:
        return max(self._counts.get(key, 0), 1) / self._persons


@dataclass(frozen=True)
class _Name:
    """One written form of a person's name in :func:`latin_form`, with the phonetic keys of its parts."""

    given: str
    family: str

    @property
    def given_key(self) -> str:
        return skeleton(self.given.replace(" ", ""))

    @property
    def family_key(self) -> str:
        return skeleton(self.family.replace(" ", ""))

    @property
    def keys(self) -> tuple[str, str]:
        return self.given_key, self.family_key


@dataclass(frozen=True)
class _Person:
    """What the probabilistic pass compares of a record."""

    record_id: str
    names: tuple[_Name, ...]
    born: date | None
    place: tuple[str, str]
    sex: str

    @property
    def keys(self) -> set[str]:
        keys: set[str] = set()
        year = str(self.born.year) if self.born else "-"
        day = self.born.strftime("%m%d") if self.born else "-"
        for name in self.names:
            for key in name.keys:
                if len(key) >= 2:
                    keys.update((f"{key}|{year}", f"{key}|{day}"))
            keys.add("|".join(sorted(name.keys)))
        return keys


def _name_part(
    first: str, first_key: str, second: str, second_key: str, frequencies: NameFrequencies
) -> tuple[str, float]:
    if first_key == second_key and first_key:
        u = frequencies.share(first_key)
        common = f"{u:.2%} of persons"
        outcome = "same" if first == second else "sounds alike"
        return f"{outcome} ({common})", _weight(_NAME_AGREE_M, u)
    alike = JaroWinkler.normalized_similarity(first.replace(" ", ""), second.replace(" ", ""))
    if alike >= _CLOSE_SPELLING:
        u = max(frequencies.share(first_key), frequencies.share(second_key))
        return f"spelled {round(alike * 100)}% alike", min(_weight(*_NAME_CLOSE), _weight(_NAME_AGREE_M, u))
    return "different", _weight(*_NAME_DIFFER)


def _names(first: _Person, second: _Person, frequencies: NameFrequencies) -> tuple[float, str, bool]:
    """The best reading of two persons' names: weight, reason, and whether a part differs outright."""
    best: tuple[float, str, bool] = (-math.inf, "no name to compare", True)
    for a in first.names:
        for b in second.names:
            for swapped in (False, True):
                given, family = (b.family, b.given) if swapped else (b.given, b.family)
                given_key, family_key = (b.family_key, b.given_key) if swapped else b.keys
                given_reason, given_weight = _name_part(a.given, a.given_key, given, given_key, frequencies)
                family_reason, family_weight = _name_part(
                    a.family, a.family_key, family, family_key, frequencies
                )
                weight = given_weight + family_weight + (_NAMES_SWAPPED if swapped else 0.0)
                reason = f"given name {given_reason}; family name {family_reason}"
                if swapped:
                    reason += "; given and family names swapped"
                differ = "different" in (given_reason, family_reason)
                if weight > best[0]:
                    best = (weight, reason, differ)
    return best


def _date_outcome(first: date | None, second: date | None) -> str | None:
    if first is None or second is None:
        return None
    if first == second:
        return "same birth date"
    if (first.year, first.month, first.day) == (second.year, second.day, second.month):
        return "day and month swapped"
    a, b = first.strftime("%Y%m%d"), second.strftime("%Y%m%d")
    if sum(x != y for x, y in zip(a, b, strict=True)) == 1:
        return "birth dates one digit apart"
    if abs((first - second).days) <= 31:
        return "birth dates within a month"
    return "different birth dates"


def _place_outcome(first: tuple[str, str], second: tuple[str, str]) -> str | None:
    if not (first[0] or first[1]) or not (second[0] or second[1]):
        return None
    if first[0] and first[0] == second[0]:
        return "same place of birth"
    if first[1] and first[1] == second[1]:
        return "same region of birth, another locality"
    return "different places of birth"


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


def _part(field: str, weight: float, reason: str) -> dict[str, Any]:
    return {"field": field, "log2": weight, "reason": f"{reason} (weight {weight:+.2f})"}


def _explained(parts: Sequence[dict[str, Any]]) -> tuple[dict[str, Any], ...]:
    """Each field's outcome as the explanation schema carries it: ``score``, how far the field alone
    speaks for a match (0 to 1), and ``weight``, its share of all the evidence."""
    evidence = sum(abs(part["log2"]) for part in parts) or 1.0
    return tuple(
        {
            "field": part["field"],
            "score": round(1 / (1 + 2 ** -part["log2"]), 4),
            "weight": round(abs(part["log2"]) / evidence, 4),
            "reason": part["reason"],
        }
        for part in parts
    )


def score(first: _Person, second: _Person, frequencies: NameFrequencies) -> Match:
    """How likely ``second`` is the same person as ``first`` (0 to 1), explained field by field."""
    name_weight, name_reason, differ = _names(first, second, frequencies)
    parts = [_part("names", name_weight, name_reason)]
    for field, outcome, table in (
        ("date_of_birth", _date_outcome(first.born, second.born), _DATE),
        ("place_of_birth", _place_outcome(first.place, second.place), _PLACE),
        (
            "sex",
            None
            if not (first.sex and second.sex)
            else "same sex"
            if first.sex == second.sex
            else "different sex",
            _SEX,
        ),
    ):
        if outcome is None:
            parts.append(_part(field, 0.0, f"{field.replace('_', ' ')} missing: no weight"))
        else:
            parts.append(_part(field, _weight(*table[outcome]), outcome))
    total = sum(part["log2"] for part in parts)
    probability = 1 / (1 + 2 ** -(total + _PRIOR))
    if differ and probability > _NAMES_DIFFER_CAP:
        probability = _NAMES_DIFFER_CAP
        parts.append(_part("names", 0.0, "a name differs outright: at most a possible match, for review"))
    return Match(second.record_id, probability, _explained(parts))


@dataclass(frozen=True)
class _Profile:
    """Where a registry's records hold the fields the probabilistic pass compares."""

    given: str
    family: str
    born: str
    locality: str | None
    region: str | None
    sex: str | None
    phonetic: bool

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
            phonetic=all(attributes[name].fuzzy is not None for name in ("given_name", "family_name")),
        )

    def person(self, record_id: str, document: Mapping[str, Any]) -> _Person | None:
        givens = [value for _, value in resolve(document, self.given)]
        families = [value for _, value in resolve(document, self.family)]
        names = tuple(
            _Name(latin_form(given), latin_form(family))
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
            if profile is not None and incoming is not None:
                frequencies, candidates = await self._candidates(session, code, profile, incoming)
                rows = await session.execute(
                    select(RecordRow.record_id, RecordRow.document).where(
                        RecordRow.record_id.in_(candidates), RecordRow.status == ACTIVE
                    )
                )
                for row in rows:
                    other = profile.person(row.record_id, row.document)
                    if other is None or row.record_id in matches:
                        continue
                    match = score(incoming, other, frequencies)
                    if match.score >= threshold:
                        matches[row.record_id] = match
        return sorted(matches.values(), key=lambda match: (-match.score, match.record_id))[:_MAX_CANDIDATES]

    async def _candidates(
        self, session: Any, code: str, profile: _Profile, incoming: _Person
    ) -> tuple[NameFrequencies, set[str]]:
        """The frequencies of the incoming person's name keys and the records worth scoring: those sharing
        a name key (or, without stored keys, a name word) or the birth date."""
        keys = {key for name in incoming.names for key in name.keys if key}
        conditions = []
        if profile.phonetic:
            phonetic = tuple(f"{name}{PHONETIC_SUFFIX}" for name in ("given_name", "family_name"))
            counted = await session.execute(
                select(AttributeRow.value_text, func.count(AttributeRow.record_id.distinct()))
                .where(
                    AttributeRow.registry_code == code,
                    AttributeRow.attribute.in_(phonetic),
                    AttributeRow.value_text.in_(keys),
                )
                .group_by(AttributeRow.value_text)
            )
            persons = await session.scalar(
                select(func.count(AttributeRow.record_id.distinct())).where(
                    AttributeRow.registry_code == code, AttributeRow.attribute == phonetic[0]
                )
            )
            frequencies = NameFrequencies({row[0]: row[1] for row in counted}, persons or 0)
            conditions.append(AttributeRow.attribute.in_(phonetic) & AttributeRow.value_text.in_(keys))
        else:
            # Without stored keys every name counts as shared by one person in a hundred.
            frequencies = NameFrequencies({}, 100)
            words = {word for name in incoming.names for word in (*name.given.split(), *name.family.split())}
            conditions.append(
                AttributeRow.attribute.in_(("given_name", "family_name"))
                & func.lower(AttributeRow.value_text).in_(words)
            )
        if incoming.born is not None:
            conditions.append(
                (AttributeRow.attribute == "date_of_birth") & (AttributeRow.value_date == incoming.born)
            )
        candidates = (
            await session.scalars(
                select(AttributeRow.record_id)
                .where(AttributeRow.registry_code == code, or_(*conditions))
                .distinct()
                .limit(_MAX_CANDIDATES * 10)
            )
        ).all()
        return frequencies, set(candidates)

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
        people = list(await self._people(code, profile))
        frequencies = NameFrequencies.of(people)
        for person in people:
            for key in person.keys:
                blocks[key].append(person)
        records = len(people)
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
                    match = score(first, second, frequencies)
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
