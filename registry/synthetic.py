"""Realistic synthetic records for the hosted registries: the same seed always gives the same records.

Used by ``dpi registry seed``, the demo and the tests. Identifiers carry valid check digits (Verhoeff for
UINs, Luhn for household and job-seeker numbers, ISO 7064 MOD 97-10 for licences), names come in Latin
and Arabic script, skills are ISCO-08 unit groups and corridors real country pairs.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator, Mapping
from datetime import date, timedelta
from typing import Any, Final

from stdnum import luhn, verhoeff
from stdnum.iso7064 import mod_97_10

import standards

__all__ = ["GENERATORS", "generate", "licence_number", "luhn_number", "uin"]

# Name pools in the order of how common each name is; a name's share of persons falls with its rank as
# in Zipf's law (weight 1/rank^0.9), so a few names are very common and most are rare, as in a real
# population: namesakes exist, and rarely share a birth date and place as well.
_FEMALE: Final = (
    ("Fatou", "فاتو"), ("Aminata", "أميناتا"), ("Mariama", "مريما"), ("Awa", "عوا"), ("Fatima", "فاطمة"),
    ("Khadija", "خديجة"), ("Aissatou", "عيساتو"), ("Amina", "أمينة"), ("Ndeye", "انداي"), ("Coumba", "كومبا"),
    ("Astou", "أستو"), ("Binta", "بنتا"), ("Aicha", "عائشة"), ("Mariam", "مريم"), ("Rokhaya", "رقية"),
    ("Khady", "خادي"), ("Dieynaba", "دينابا"), ("Oumou", "أمو"), ("Salma", "سلمى"), ("Nadia", "نادية"),
    ("Leila", "ليلى"), ("Zeynab", "زينب"), ("Hawa", "حواء"), ("Sokhna", "سخنا"), ("Houda", "هدى"),
    ("Samira", "سميرة"), ("Rania", "رانيا"), ("Yasmine", "ياسمين"), ("Nour", "نور"), ("Hanane", "حنان"),
    ("Souad", "سعاد"), ("Naima", "نعيمة"), ("Malika", "مليكة"), ("Latifa", "لطيفة"), ("Karima", "كريمة"),
    ("Zahra", "زهراء"), ("Asma", "أسماء"), ("Imane", "إيمان"), ("Sara", "سارة"), ("Hafsa", "حفصة"),
    ("Safiatou", "صفياتو"), ("Kadiatou", "كدياتو"), ("Ramatoulaye", "رماتولاي"), ("Penda", "بيندا"),
    ("Seynabou", "سينابو"), ("Maimouna", "ميمونة"), ("Adja", "أدجا"), ("Nafissatou", "نفيساتو"),
    ("Bineta", "بينيتا"), ("Arame", "أرام"),
    ("Djeneba", "جنيبا"), ("Soukeyna", "سكينة"), ("Khoudia", "خوديا"),
    ("Ghizlane", "غزلان"), ("Wafa", "وفاء"), ("Loubna", "لبنى"), ("Siham", "سهام"), ("Jamila", "جميلة"),
)  # fmt: skip
_MALE: Final = (
    ("Mamadou", "مامادو"), ("Moussa", "موسى"), ("Abdoulaye", "عبد الله"), ("Ousmane", "عثمان"),
    ("Ibrahima", "إبراهيما"), ("Cheikh", "شيخ"), ("Mohamed", "محمد"), ("Modou", "مودو"), ("Amadou", "أمادو"),
    ("Aliou", "عليو"), ("Babacar", "بابكر"), ("Youssef", "يوسف"), ("Ahmed", "أحمد"), ("Omar", "عمر"),
    ("Boubacar", "بوبكر"), ("Lamine", "لمين"), ("Souleymane", "سليمان"), ("Idrissa", "إدريسا"),
    ("Malick", "مالك"), ("Pape", "باب"), ("Ibrahim", "إبراهيم"), ("Karim", "كريم"), ("Hassan", "حسن"),
    ("Samir", "سمير"), ("Mustapha", "مصطفى"), ("Khalid", "خالد"), ("Rachid", "رشيد"), ("Tarik", "طارق"),
    ("Bilal", "بلال"), ("Hamza", "حمزة"), ("Anas", "أنس"), ("Yassine", "ياسين"), ("Mehdi", "مهدي"),
    ("Nabil", "نبيل"), ("Said", "سعيد"), ("Adil", "عادل"), ("Hicham", "هشام"), ("Driss", "إدريس"),
    ("Aziz", "عزيز"), ("Jamal", "جمال"), ("Walid", "وليد"), ("Ismail", "إسماعيل"), ("Zakaria", "زكريا"),
    ("Seydou", "سيدو"), ("Lassana", "لسانا"), ("Fode", "فودي"), ("Saliou", "صاليو"), ("Alassane", "الحسن"),
    ("Djibril", "جبريل"), ("Mansour", "منصور"), ("Elhadji", "الحاج"), ("Thierno", "تيرنو"), ("Demba", "دمبا"),
    ("Samba", "سامبا"), ("Issa", "عيسى"), ("Oumar", "أومار"), ("Habib", "حبيب"), ("Tidiane", "تيجان"),
)  # fmt: skip
_FAMILY: Final = (
    ("Diop", "ديوب"), ("Ndiaye", "انجاي"), ("Fall", "فال"), ("Sow", "سو"), ("Diallo", "ديالو"),
    ("Gueye", "غاي"), ("Ba", "با"), ("Sarr", "سار"), ("Faye", "فاي"), ("Mbaye", "امباي"), ("Cisse", "سيسي"),
    ("Toure", "توري"), ("Sy", "سي"), ("Kane", "كان"), ("Camara", "كامارا"), ("Sylla", "سيلا"),
    ("Niang", "نيانغ"), ("Thiam", "تيام"), ("Seck", "سك"), ("Diouf", "ديوف"), ("Ndour", "اندور"),
    ("Sall", "سال"), ("Wade", "واد"), ("Dia", "ديا"),
    ("Balde", "بالدي"), ("Barry", "باري"), ("Keita", "كيتا"),
    ("Coulibaly", "كوليبالي"), ("Traore", "تراوري"), ("Kone", "كوني"), ("Sanogo", "سانوغو"),
    ("Dembele", "دمبيلي"), ("Konate", "كوناتي"), ("Sidibe", "سيديبي"), ("Doumbia", "دومبيا"),
    ("Bamba", "بامبا"), ("Mbodj", "امبودج"), ("Lo", "لو"), ("Ka", "كا"), ("Tall", "تال"), ("Kebe", "كيبي"),
    ("Drame", "درامي"), ("Tounkara", "تونكارا"), ("Benali", "بن علي"), ("Haddad", "حداد"),
    ("Mansouri", "المنصوري"), ("Saidi", "السعيدي"), ("El Amrani", "العمراني"), ("Cherif", "الشريف"),
    ("Bakri", "البكري"), ("Nasser", "ناصر"), ("Alaoui", "العلوي"), ("Idrissi", "الإدريسي"),
    ("Benjelloun", "بنجلون"), ("Tazi", "التازي"), ("Fassi", "الفاسي"), ("Berrada", "برادة"),
    ("Chraibi", "الشرايبي"), ("Bennani", "بناني"), ("Ouazzani", "الوزاني"), ("Kettani", "الكتاني"),
    ("Belkadi", "بلقاضي"), ("Bouzid", "بوزيد"), ("Hamdi", "حمدي"), ("Jaziri", "الجزيري"),
    ("Trabelsi", "الطرابلسي"), ("Gharbi", "الغربي"), ("Mejri", "الماجري"), ("Ayari", "العياري"),
    ("Khalil", "خليل"), ("Abbas", "عباس"), ("Hussein", "حسين"), ("Salem", "سالم"), ("Hamid", "حميد"),
    ("Qasim", "قاسم"), ("Darwish", "درويش"), ("Zaidi", "الزيدي"), ("Najjar", "النجار"),
    ("Khoury", "الخوري"), ("Sabbagh", "الصباغ"), ("Masri", "المصري"), ("Ndao", "انداو"), ("Samb", "سامب"),
    ("Mbengue", "امبينغ"), ("Diagne", "دياني"), ("Gaye", "غاي"), ("Badji", "باجي"), ("Sagna", "سانيا"),
    ("Diedhiou", "جيجو"), ("Goudiaby", "غوديابي"), ("Manga", "مانغا"), ("Mendy", "مندي"), ("Tine", "تين"),
)  # fmt: skip


def _zipf(size: int) -> tuple[float, ...]:
    weights = [1 / (rank + 1) ** 0.9 for rank in range(size)]
    total = sum(weights)
    running, cumulative = 0.0, []
    for weight in weights:
        running += weight / total
        cumulative.append(running)
    return tuple(cumulative)


_FEMALE_WEIGHTS: Final = _zipf(len(_FEMALE))
_MALE_WEIGHTS: Final = _zipf(len(_MALE))
_FAMILY_WEIGHTS: Final = _zipf(len(_FAMILY))


def _given(rng: random.Random) -> tuple[str, str, str]:
    if rng.random() < 0.5:
        latin, arabic = rng.choices(_FEMALE, cum_weights=_FEMALE_WEIGHTS)[0]
        return latin, arabic, "female"
    latin, arabic = rng.choices(_MALE, cum_weights=_MALE_WEIGHTS)[0]
    return latin, arabic, "male"


def _family(rng: random.Random) -> tuple[str, str]:
    return rng.choices(_FAMILY, cum_weights=_FAMILY_WEIGHTS)[0]


_REGIONS: Final = ("North", "South", "East", "West", "Capital", "Coast", "Highlands", "Valley")
_COUNTRY: Final = "SN"
_DESTINATIONS: Final = ("QA", "SA", "AE", "KW", "OM", "BH", "JO", "LB", "MY", "IT", "ES", "FR")
_ORIGINS: Final = ("SN", "ML", "NP", "BD", "PH", "LK", "ET", "KE", "MA", "TN")
_AGENCY_WORDS: Final = ("Atlas", "Horizon", "Sahel", "Crescent", "Baobab", "Oasis", "Meridian", "Harmattan")


def uin(number: int) -> str:
    """A 10-digit UIN for ``number``, with its Verhoeff check digit."""
    body = f"{number % 10**9:09d}"
    if body[0] == "0":
        body = "1" + body[1:]
    return body + str(verhoeff.calc_check_digit(body))


def luhn_number(number: int, digits: int) -> str:
    """``digits`` digits for ``number``, the last a Luhn check digit."""
    body = f"{number % 10 ** (digits - 1):0{digits - 1}d}"
    return body + str(luhn.calc_check_digit(body))


def licence_number(number: int) -> str:
    """``RA`` and 8 digits, the last two ISO 7064 MOD 97-10 check digits."""
    body = f"RA{number % 10**6:06d}"
    return body + mod_97_10.calc_check_digits(body)


def _day(rng: random.Random, start: date, end: date) -> str:
    return (start + timedelta(days=rng.randrange((end - start).days + 1))).isoformat()


def _names(rng: random.Random, given: tuple[str, str, str], family: tuple[str, str]) -> list[dict[str, str]]:
    names = [{"given": given[0], "family": family[0], "script": "Latn"}]
    if rng.random() < 0.7:
        names.append({"given": given[1], "family": family[1], "script": "Arab"})
    return names


def _place(rng: random.Random) -> dict[str, str]:
    region = rng.choice(_REGIONS)
    return {"locality": f"{region} town {rng.randrange(1, 40)}", "region": region, "country": _COUNTRY}


def _civil(rng: random.Random, index: int) -> dict[str, Any]:
    given = _given(rng)
    family = _family(rng)
    roll = index % 20
    if roll < 16:
        born = _day(rng, date(1940, 1, 1), date(2024, 12, 31))
        person: dict[str, Any] = {
            "record_type": "person",
            "uin": uin(100_000_000 + index),
            "names": _names(rng, given, family),
            "sex": given[2],
            "date_of_birth": born,
            "place_of_birth": _place(rng),
            "marital_status": rng.choice(("single", "married", "married", "divorced", "widowed")),
            "vital_status": "alive",
        }
        if rng.random() < 0.5:
            person["mother_uin"] = uin(100_000_000 + rng.randrange(max(index, 1)))
        return person
    if roll < 18:
        born = _day(rng, date(2015, 1, 1), date(2025, 6, 30))
        return {
            "record_type": "birth",
            "registration_number": f"B-{index:09d}",
            "child": {
                "names": _names(rng, given, family),
                "sex": given[2],
                "date_of_birth": born,
                "place_of_birth": _place(rng),
            },
            "mother_uin": uin(100_000_000 + rng.randrange(max(index, 1))),
            "registered_on": born,
        }
    if roll < 19:
        died = _day(rng, date(2000, 1, 1), date(2025, 6, 30))
        return {
            "record_type": "death",
            "registration_number": f"D-{index:09d}",
            "deceased_uin": uin(100_000_000 + rng.randrange(max(index, 1))),
            "date_of_death": died,
            "place_of_death": _place(rng),
            "registered_on": died,
        }
    married = _day(rng, date(1980, 1, 1), date(2025, 6, 30))
    first = rng.randrange(max(index, 2))
    return {
        "record_type": "marriage",
        "registration_number": f"M-{index:09d}",
        "spouses": [uin(100_000_000 + first), uin(100_000_000 + first + 1)],
        "date_of_marriage": married,
        "place_of_marriage": _place(rng),
        "registered_on": married,
    }


def _social(rng: random.Random, index: int) -> dict[str, Any]:
    family = _family(rng)
    members: list[dict[str, Any]] = []
    for position in range(rng.randrange(1, 7)):
        given = _given(rng)
        adult = position < 2
        member: dict[str, Any] = {
            "uin": uin(500_000_000 + index * 8 + position),
            "names": _names(rng, given, family),
            "sex": given[2],
            "date_of_birth": _day(rng, date(1950, 1, 1), date(2000, 1, 1))
            if adult
            else _day(rng, date(2005, 1, 1), date(2024, 1, 1)),
            "relationship": ("head", "spouse")[position] if adult else "child",
        }
        if rng.random() < 0.05:
            member["disability"] = True
        members.append(member)
    return {
        "record_type": "household",
        "household_id": luhn_number(300_000_000 + index, 10),
        "head_uin": members[0]["uin"],
        "region": rng.choice(_REGIONS),
        "locality": f"Ward {rng.randrange(1, 60)}",
        "members": members,
        "monthly_income": {"amount": f"{rng.randrange(0, 400_000) / 100:.2f}", "currency": "XOF"},
        "pmt_score": round(rng.uniform(5, 95), 2),
        "registered_on": _day(rng, date(2018, 1, 1), date(2025, 6, 30)),
    }


def _jobseeker(rng: random.Random, index: int) -> dict[str, Any]:
    given = _given(rng)
    family = _family(rng)
    codes = sorted(standards.isco08_unit_groups())
    skills = [
        {
            "isco08": code,
            "level": rng.choice(("basic", "intermediate", "advanced")),
            "years": rng.randrange(0, 20),
        }
        for code in rng.sample(codes, rng.randrange(1, 4))
    ]
    availability: dict[str, str] = {
        "status": rng.choice(("immediate", "immediate", "from_date", "not_available"))
    }
    if availability["status"] == "from_date":
        availability["from"] = _day(rng, date(2025, 7, 1), date(2026, 6, 30))
    return {
        "record_type": "jobseeker",
        "jobseeker_number": luhn_number(200_000_000 + index, 9),
        "uin": uin(100_000_000 + index),
        "names": _names(rng, given, family),
        "sex": given[2],
        "date_of_birth": _day(rng, date(1965, 1, 1), date(2007, 12, 31)),
        "region": rng.choice(_REGIONS),
        "phone": f"+2217{rng.randrange(10**7, 10**8)}",
        "education": {"level": rng.randrange(0, 9)},
        "skills": skills,
        "languages": rng.sample(["fr", "ar", "en", "wo"], rng.randrange(1, 3)),
        "availability": availability,
        "status": rng.choice(("registered", "registered", "registered", "placed", "deregistered")),
        "registered_on": _day(rng, date(2020, 1, 1), date(2025, 6, 30)),
    }


def _agency(rng: random.Random, index: int) -> dict[str, Any]:
    start = date(2020, 1, 1) + timedelta(days=rng.randrange(1800))
    corridors = [
        {"origin": rng.choice(_ORIGINS), "destination": destination}
        for destination in rng.sample(_DESTINATIONS, rng.randrange(1, 4))
    ]
    return {
        "record_type": "agency",
        "licence_number": licence_number(index + 1),
        "name": f"{rng.choice(_AGENCY_WORDS)} {rng.choice(_AGENCY_WORDS)} Recruitment {index + 1}",
        "status": rng.choice(("active", "active", "active", "suspended", "revoked", "expired")),
        "valid_from": start.isoformat(),
        "valid_until": (start + timedelta(days=3 * 365)).isoformat(),
        "corridors": corridors,
        "address": {
            "lines": [f"{rng.randrange(1, 200)} Avenue {rng.choice(_AGENCY_WORDS)}"],
            "country": _COUNTRY,
        },
    }


GENERATORS: Final[Mapping[str, Callable[[random.Random, int], dict[str, Any]]]] = {
    "civil": _civil,
    "social": _social,
    "jobseekers": _jobseeker,
    "recruitment-agencies": _agency,
}


def generate(code: str, count: int, *, seed: int = 0, start: int = 0) -> Iterator[dict[str, Any]]:
    """``count`` records for registry ``code``, numbered from ``start``; deterministic for a seed."""
    generator = GENERATORS[code]
    for index in range(start, start + count):
        yield generator(random.Random(f"{code}:{seed}:{index}"), index)
