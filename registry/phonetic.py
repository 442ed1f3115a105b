"""Names in Latin and Arabic script reduced to comparable forms: the normalisation and transliteration
deduplication and the ``fuzzy`` search operator share.

Arabic names are normalised (diacritics and tatweel removed; alef, ya, ta marbuta and hamza carriers
unified; the article al- dropped) and transliterated to Latin letters, so أمينة, امينه and Amina meet.
A phonetic key (:func:`phonetic_key`) merges near-equivalent spellings, and Jaro-Winkler similarity
(https://rapidfuzz.github.io/RapidFuzz/) measures how alike two spellings are.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Sequence
from typing import Final

from rapidfuzz.distance import JaroWinkler

__all__ = [
    "arabic_normalized",
    "latin_form",
    "name_similarity",
    "phonetic_key",
    "similarity",
    "skeleton",
]

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


# Given and family names repeat a lot in a population (a few thousand spellings for a million
# persons): a bulk import computes each key once instead of once per record.
@functools.lru_cache(maxsize=65_536)
def phonetic_key(text: str) -> str:
    """The phonetic key of a whole name (its words joined): Ben Ali, Benali and بن علي all give ``bnl``."""
    return skeleton("".join(latin_form(text).split()))


def similarity(first: str, second: str) -> float:
    """Jaro-Winkler similarity (0 to 1) of two names in :func:`latin_form`, their words joined."""
    return float(
        JaroWinkler.normalized_similarity(
            "".join(latin_form(first).split()), "".join(latin_form(second).split())
        )
    )
