"""The identity block's chapter of the demo story (DESIGN section 8): a register of synthetic people, the
named people of the story (Amina, Youssef), and the OpenID clients of the citizen portal and of the
demo ministries.

People are generated from a seed, so every run of the demo, every test and the documentation see the same
register: French and Arabic given and family names, each written in Latin and in Arabic script (common
transliteration pairs from the lists below, nothing downloaded), dates of birth from children to people
over 65, towns of a fixed demo country (Morocco, ``+212`` phones), preferred languages fr, ar and en.
They are enrolled through :class:`identity.service.PersonRegister` like anyone else (validation,
duplicate detection): loading twice enrols nobody twice, because the register refuses the second
enrolment of a person as a duplicate.

UINs are drawn from a seeded sequence too (a demo register only; a deployment draws them from
:mod:`secrets`), so the named people keep the UINs the documentation gives: Amina ``AMINA_UIN``,
Youssef ``YOUSSEF_UIN``.

Clients are registered through :class:`identity.clients.ClientRegistry`. A client's secret is shown once
at registration, so the demo keeps it (and the private key of the ``private_key_jwt`` client) in
``<DPI_VAR_DIR>/demo/identity/`` to print how to sign in on every later start.
"""

from __future__ import annotations

import base64
import hashlib
import os
import random
import secrets
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, Final
from urllib.parse import urlencode

import phonenumbers
from stdnum import verhoeff

from dpi.blocks import BlockContext
from dpi.errors import DpiError
from dpi.keys import SigningKey
from identity.clients import ClientRegistry
from identity.senders import mask_phone
from identity.service import PersonRegister

__all__ = [
    "AMINA_UIN",
    "CLIENTS",
    "COUNTRY",
    "DEFAULT_PEOPLE",
    "NAMED_PEOPLE",
    "OPERATOR",
    "SEED",
    "YOUSSEF_UIN",
    "DemoClient",
    "NamedPerson",
    "demo_directory",
    "load",
    "seeded_uins",
    "synthetic_people",
]

COUNTRY: Final = "MA"
SEED: Final = 20261123
DEFAULT_PEOPLE: Final = 3000
OPERATOR: Final = "demo-operator-rabat-01"
"""The service-centre operator who enrols people in the demo (assisted channel)."""

# Ages are counted from this date, not from today, so the register is the same whenever it is loaded.
_REFERENCE: Final = date(2026, 1, 1)

# (Latin, Arabic, sex). Common given names in Morocco, of Arabic and of French origin.
_ARABIC_GIVEN: Final = (
    ("Amina", "أمينة", "female"),
    ("Fatima", "فاطمة", "female"),
    ("Khadija", "خديجة", "female"),
    ("Salma", "سلمى", "female"),
    ("Nadia", "نادية", "female"),
    ("Leila", "ليلى", "female"),
    ("Meriem", "مريم", "female"),
    ("Samira", "سميرة", "female"),
    ("Zineb", "زينب", "female"),
    ("Imane", "إيمان", "female"),
    ("Hanane", "حنان", "female"),
    ("Sara", "سارة", "female"),
    ("Houda", "هدى", "female"),
    ("Nour", "نور", "female"),
    ("Yasmine", "ياسمين", "female"),
    ("Malika", "مليكة", "female"),
    ("Mohamed", "محمد", "male"),
    ("Youssef", "يوسف", "male"),
    ("Ahmed", "أحمد", "male"),
    ("Omar", "عمر", "male"),
    ("Karim", "كريم", "male"),
    ("Hassan", "حسن", "male"),
    ("Rachid", "رشيد", "male"),
    ("Mehdi", "مهدي", "male"),
    ("Hamza", "حمزة", "male"),
    ("Said", "سعيد", "male"),
    ("Anas", "أنس", "male"),
    ("Ayoub", "أيوب", "male"),
    ("Ilyas", "إلياس", "male"),
    ("Adam", "آدم", "male"),
    ("Bilal", "بلال", "male"),
    ("Driss", "إدريس", "male"),
)
_FRENCH_GIVEN: Final = (
    ("Marie", "ماري", "female"),
    ("Sophie", "صوفي", "female"),
    ("Camille", "كاميل", "female"),
    ("Claire", "كلير", "female"),
    ("Isabelle", "إيزابيل", "female"),
    ("Chloé", "كلوي", "female"),
    ("Lucie", "لوسي", "female"),
    ("Léa", "ليا", "female"),
    ("Manon", "مانون", "female"),
    ("Emma", "إيما", "female"),
    ("Jean", "جان", "male"),
    ("Pierre", "بيير", "male"),
    ("Louis", "لويس", "male"),
    ("Julien", "جوليان", "male"),
    ("Nicolas", "نيكولا", "male"),
    ("Thomas", "توما", "male"),
    ("Antoine", "أنطوان", "male"),
    ("Hugo", "هوغو", "male"),
    ("Paul", "بول", "male"),
    ("Gabriel", "غابرييل", "male"),
)
_ARABIC_FAMILY: Final = (
    ("El Idrissi", "الإدريسي"),
    ("Benali", "بنعلي"),
    ("Alaoui", "العلوي"),
    ("Bennani", "بناني"),
    ("Tazi", "التازي"),
    ("Berrada", "برادة"),
    ("El Amrani", "العمراني"),
    ("Chraibi", "الشرايبي"),
    ("El Fassi", "الفاسي"),
    ("Naciri", "الناصري"),
    ("Bouzid", "بوزيد"),
    ("Ouazzani", "الوزاني"),
    ("Haddad", "الحداد"),
    ("Mansouri", "المنصوري"),
    ("Saidi", "السعيدي"),
    ("Ziani", "الزياني"),
    ("Kettani", "الكتاني"),
    ("Lahlou", "لحلو"),
    ("Belkadi", "بلقاضي"),
    ("Hamdaoui", "الحمداوي"),
    ("Cherkaoui", "الشرقاوي"),
    ("Filali", "الفيلالي"),
    ("Tahiri", "الطاهري"),
    ("Benjelloun", "بنجلون"),
    ("Sqalli", "السقلي"),
    ("Lamrani", "اللمراني"),
    ("Skalli", "السكالي"),
    ("Rifai", "الرفاعي"),
)
_FRENCH_FAMILY: Final = (
    ("Martin", "مارتان"),
    ("Bernard", "برنار"),
    ("Dubois", "دوبوا"),
    ("Durand", "دوران"),
    ("Lefebvre", "لوفيفر"),
    ("Moreau", "مورو"),
    ("Laurent", "لوران"),
    ("Simon", "سيمون"),
    ("Michel", "ميشيل"),
    ("Garcia", "غارسيا"),
    ("Fontaine", "فونتين"),
    ("Mercier", "ميرسييه"),
    ("Girard", "جيرار"),
    ("Bonnet", "بونيه"),
)


@dataclass(frozen=True)
class _Town:
    locality: str
    region: str
    postal_code: str


_TOWNS: Final = (
    _Town("Rabat", "Rabat-Salé-Kénitra", "10000"),
    _Town("Salé", "Rabat-Salé-Kénitra", "11000"),
    _Town("Kénitra", "Rabat-Salé-Kénitra", "14000"),
    _Town("Casablanca", "Casablanca-Settat", "20000"),
    _Town("Settat", "Casablanca-Settat", "26000"),
    _Town("Fès", "Fès-Meknès", "30000"),
    _Town("Meknès", "Fès-Meknès", "50000"),
    _Town("Marrakech", "Marrakech-Safi", "40000"),
    _Town("Tanger", "Tanger-Tétouan-Al Hoceïma", "90000"),
    _Town("Tétouan", "Tanger-Tétouan-Al Hoceïma", "93000"),
    _Town("Agadir", "Souss-Massa", "80000"),
    _Town("Oujda", "Oriental", "60000"),
)
_STREETS: Final = (
    "rue des Orangers",
    "avenue Mohammed V",
    "avenue Hassan II",
    "boulevard Zerktouni",
    "rue Ibn Battouta",
    "rue de la Liberté",
    "avenue des FAR",
    "rue Oued Sebou",
    "derb Sidi Bouloukat",
    "avenue Allal El Fassi",
)


@dataclass(frozen=True)
class NamedPerson:
    """A person of the demo story, with the UIN the documentation gives."""

    key: str
    story: str
    demographics: Mapping[str, Any]
    channel: str

    @property
    def uin(self) -> str:
        return next(seeded_uins(f"named:{self.key}"))

    @property
    def display_name(self) -> str:
        latin = self.demographics["names"]["latin"]
        return f"{latin['given_name']} {latin['family_name']}"


def seeded_uins(label: str, seed: int = SEED) -> Iterator[str]:
    """An endless, reproducible sequence of well-formed UINs (9 digits, the first never 0, then the
    Verhoeff check digit), for demo registers only."""
    draw = random.Random(f"{seed}:{label}")
    while True:
        body = str(draw.randint(1, 9)) + f"{draw.randrange(10**8):08d}"
        yield body + str(verhoeff.calc_check_digit(body))


NAMED_PEOPLE: Final = (
    NamedPerson(
        "amina",
        "24, has a smartphone: signs in to the portal, approves the Ministry of Labour's request",
        {
            "names": {
                "latin": {"given_name": "Amina", "family_name": "El Idrissi"},
                "arabic": {"given_name": "أمينة", "family_name": "الإدريسي"},
            },
            "date_of_birth": "2002-05-14",
            "sex": "female",
            "place_of_birth": {"locality": "Fès", "region": "Fès-Meknès", "country": COUNTRY},
            "address": {
                "line": "12 rue des Orangers",
                "locality": "Rabat",
                "postal_code": "10000",
                "country": COUNTRY,
            },
            "phone": "+212612345678",
            "preferred_language": "ar",
        },
        "web",
    ),
    NamedPerson(
        "youssef",
        "58, a basic phone: enrolled at a service centre, receives his codes by SMS",
        {
            "names": {
                "latin": {"given_name": "Youssef", "family_name": "Benali"},
                "arabic": {"given_name": "يوسف", "family_name": "بنعلي"},
            },
            "date_of_birth": "1968-02-03",
            "sex": "male",
            "place_of_birth": {"locality": "Casablanca", "region": "Casablanca-Settat", "country": COUNTRY},
            "address": {
                "line": "7 derb Sidi Bouloukat",
                "locality": "Casablanca",
                "postal_code": "20000",
                "country": COUNTRY,
            },
            "phone": "+212661234567",
            "preferred_language": "fr",
        },
        "assisted",
    ),
)
AMINA_UIN: Final = NAMED_PEOPLE[0].uin
YOUSSEF_UIN: Final = NAMED_PEOPLE[1].uin


def _birth_date(draw: random.Random) -> date:
    band = draw.random()
    if band < 0.12:
        years = draw.randint(1, 17)  # children and teenagers
    elif band < 0.85:
        years = draw.randint(18, 64)
    else:
        years = draw.randint(65, 98)
    return _REFERENCE - timedelta(days=years * 365 + draw.randrange(365))


def _phone(draw: random.Random) -> str:
    while True:
        candidate = f"+212{draw.choice('67')}{draw.randrange(10**8):08d}"
        if phonenumbers.is_valid_number(phonenumbers.parse(candidate)):
            return candidate


def _person(draw: random.Random) -> dict[str, Any]:
    french = draw.random() < 0.25
    given = draw.choice(_FRENCH_GIVEN if french else _ARABIC_GIVEN)
    # Some people of French-origin given names carry a Moroccan family name, and the other way round.
    family = draw.choice(_FRENCH_FAMILY if french != (draw.random() < 0.15) else _ARABIC_FAMILY)
    born = _birth_date(draw)
    birthplace, home = draw.choice(_TOWNS), draw.choice(_TOWNS)
    document: dict[str, Any] = {
        "names": {
            "latin": {"given_name": given[0], "family_name": family[0]},
            "arabic": {"given_name": given[1], "family_name": family[1]},
        },
        "date_of_birth": born.isoformat(),
        "sex": given[2],
        "place_of_birth": {"locality": birthplace.locality, "region": birthplace.region, "country": COUNTRY},
        "address": {
            "line": f"{draw.randint(1, 180)} {draw.choice(_STREETS)}",
            "locality": home.locality,
            "postal_code": home.postal_code,
            "country": COUNTRY,
        },
        "preferred_language": draw.choices(("fr", "ar", "en"), weights=(45, 45, 10))[0],
    }
    # Most people have a phone for their codes; some young children and some others have none.
    if (_REFERENCE - born).days >= 12 * 365 and draw.random() < 0.95:
        document["phone"] = _phone(draw)
    return document


def _identity_of(document: Mapping[str, Any]) -> tuple[str, ...]:
    latin = document["names"]["latin"]
    place = document["place_of_birth"]
    return (latin["given_name"], latin["family_name"], document["date_of_birth"], place["locality"])


def synthetic_people(count: int = DEFAULT_PEOPLE, seed: int = SEED) -> list[dict[str, Any]]:
    """``count`` demographics documents, always the same for one seed, no two of them (nor one of the
    named people) the same person by the register's duplicate rule."""
    draw = random.Random(seed)
    taken = {_identity_of(person.demographics) for person in NAMED_PEOPLE}
    people: list[dict[str, Any]] = []
    while len(people) < count:
        document = _person(draw)
        identity = _identity_of(document)
        if identity not in taken:
            taken.add(identity)
            people.append(document)
    return people


@dataclass(frozen=True)
class DemoClient:
    """An OpenID client of the demo: who it is, its sector (the pseudonyms it sees) and how it
    authenticates at the token endpoint."""

    client_id: str
    client_name: str
    sector: str
    callback: str
    auth_method: str
    claims_locale: str
    scope: tuple[str, ...] = ("openid", "profile", "phone")

    def metadata(self, base_url: str, jwks: Mapping[str, Any] | None = None) -> dict[str, Any]:
        document: dict[str, Any] = {
            "client_id": self.client_id,
            "client_name": self.client_name,
            "redirect_uris": [base_url + self.callback],
            "sector": self.sector,
            "scope": list(self.scope),
            "token_endpoint_auth_method": self.auth_method,
            "claims_locale": self.claims_locale,
        }
        if jwks is not None:
            document["jwks"] = dict(jwks)
        return document


CLIENTS: Final = (
    DemoClient(
        "citizen-portal",
        "Portail citoyen / Citizen portal",
        "DPI/GOV/DIGITAL/citizen-portal",
        "/portal/callback",
        "client_secret_basic",
        "fr",
    ),
    DemoClient(
        "mol-jobseekers",
        "Ministry of Labour, job-seeker service",
        "DPI/GOV/MOL/jobseekers",
        "/demo/mol-jobseekers/callback",
        "private_key_jwt",
        "fr",
        ("openid", "profile"),
    ),
    DemoClient(
        "moi-civil-registry",
        "Ministry of Interior, civil registry",
        "DPI/GOV/MOI/civil-registry",
        "/demo/moi-civil-registry/callback",
        "client_secret_basic",
        "ar",
        ("openid", "profile"),
    ),
)
_BATCH: Final = 500


def demo_directory(var_dir: Path) -> Path:
    """Where the demo keeps its clients' secrets and private keys (mode 0600 files)."""
    return var_dir / "demo" / "identity"


def _write_private(path: Path, content: bytes) -> None:
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "wb") as stream:
        stream.write(content)


def _client_key(directory: Path, client: DemoClient) -> SigningKey:
    """The client's assertion key, created on first use and kept beside its secret."""
    path = directory / f"{client.client_id}.key.pem"
    if path.exists():
        return SigningKey.from_pem(path.read_bytes(), None, "EdDSA")
    key = SigningKey.generate("EdDSA")
    _write_private(path, key.private_pem())
    return key


async def _register_clients(context: BlockContext) -> list[str]:
    base = context.settings.public_url
    directory = demo_directory(context.settings.var_dir)
    registry = ClientRegistry(context.sessions)
    lines = []
    for client in CLIENTS:
        jwks = None
        if client.auth_method == "private_key_jwt":
            key = _client_key(directory, client)
            jwks = {"keys": [key.public_jwk()]}
        secret_path = directory / f"{client.client_id}.secret"
        try:
            _stored, secret = await registry.add(client.metadata(base, jwks))
            verb = "registered"
        except DpiError as error:
            if error.reason_code != "identity.client_exists":
                raise
            secret, verb = None, "already registered"
        if secret is not None:
            _write_private(secret_path, secret.encode("ascii"))
        if client.auth_method == "private_key_jwt":
            credential = f"private key {directory / (client.client_id + '.key.pem')} (EdDSA)"
        elif secret_path.exists():
            credential = f"secret {secret_path.read_text(encoding='ascii').strip()}"
        else:
            credential = "secret shown when it was registered (not kept by this demo)"
        lines.append(
            f"identity: client {client.client_id} {verb} ({client.client_name}; sector {client.sector}; "
            f"{client.auth_method}, {credential}; redirect {base}{client.callback})"
        )
    return lines


def _pkce_pair() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return verifier, base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def _how_to_sign_in(base: str, directory: Path) -> list[str]:
    portal = CLIENTS[0]
    verifier, challenge = _pkce_pair()
    query = urlencode(
        {
            "response_type": "code",
            "client_id": portal.client_id,
            "redirect_uri": base + portal.callback,
            "scope": "openid profile phone",
            "state": "demo",
            "code_challenge": challenge,
            "code_challenge_method": "S256",
        }
    )
    secret_file = directory / f"{portal.client_id}.secret"
    return [
        "identity: try a sign-in in a browser:",
        f"  1. open {base}/identity/authorize?{query}",
        f"  2. sign in as Amina with UIN {AMINA_UIN}; her one-time code is printed on this console",
        f"  3. the browser is sent to {base}{portal.callback}?code=...&state=demo (a page this demo does "
        "not serve): copy the code, then within a minute:",
        f"     curl -u {portal.client_id}:$(cat {secret_file}) -d grant_type=authorization_code "
        f"-d redirect_uri={base}{portal.callback} -d code_verifier={verifier} -d code=CODE "
        f"{base}/identity/token",
        f"  4. curl -H 'Authorization: Bearer ACCESS_TOKEN' {base}/identity/userinfo",
    ]


async def _enrol_named(
    context: BlockContext, keys: tuple[bytes, bytes], clock: Callable[[], datetime]
) -> list[str]:
    lines = []
    for person in NAMED_PEOPLE:
        register = PersonRegister(
            context.sessions,
            pseudonym_key=keys[0],
            vid_key=keys[1],
            clock=clock,
            uin_source=seeded_uins(f"named:{person.key}").__next__,
        )
        operator = OPERATOR if person.channel == "assisted" else None
        try:
            record = await register.enrol(person.demographics, operator_id=operator, channel=person.channel)
            uin, verb = record["uin"], "enrolled"
        except DpiError as error:
            if error.reason_code != "identity.duplicate":
                raise
            uin, verb = person.uin, "already enrolled"
        pseudonyms = [
            f"{client.sector} {await register.sector_pseudonym_for(uin, client.sector)}"
            for client in CLIENTS
            if client.sector.startswith("DPI/")
        ]
        lines.append(
            f"identity: {person.display_name} {verb}, UIN {uin} ({person.story}); "
            f"pseudonyms: {'; '.join(pseudonyms)}"
        )
    return lines


async def _enrol_synthetic(
    context: BlockContext, keys: tuple[bytes, bytes], clock: Callable[[], datetime], count: int
) -> str:
    register = PersonRegister(
        context.sessions,
        pseudonym_key=keys[0],
        vid_key=keys[1],
        clock=clock,
        uin_source=seeded_uins("synthetic").__next__,
    )
    people = synthetic_people(count)
    enrolled = 0
    for start in range(0, len(people), _BATCH):
        outcomes = await register.enrol_many(
            people[start : start + _BATCH], operator_id=OPERATOR, channel="assisted"
        )
        enrolled += sum(isinstance(outcome, dict) for outcome in outcomes)
    return (
        f"identity: {count} synthetic people (seed {SEED}), {enrolled} enrolled now, "
        f"{count - enrolled} already in the register"
    )


async def load(
    context: BlockContext, *, pseudonym_key: bytes, vid_key: bytes, people: int = DEFAULT_PEOPLE
) -> list[str]:
    """Enrol the named and the synthetic people and register the demo clients, each only once; the
    lines to print (identifiers, where the clients' credentials are, how to try a sign-in).

    ``pseudonym_key`` and ``vid_key`` are the block's own (:func:`identity.block.key_paths`), so the
    pseudonyms printed are the ones its OpenID provider hands out.
    """

    def clock() -> datetime:
        return datetime.now(UTC)

    keys = (pseudonym_key, vid_key)
    lines = await _enrol_named(context, keys, clock)
    lines.append(await _enrol_synthetic(context, keys, clock, people))
    lines += await _register_clients(context)
    lines += _how_to_sign_in(context.settings.public_url, demo_directory(context.settings.var_dir))
    amina_phone = mask_phone(NAMED_PEOPLE[0].demographics["phone"])
    lines.append(
        "identity: one-time codes are printed on this console (DPI_OTP_SENDER=console), "
        f"e.g. 'OTP for {amina_phone}: ...' for Amina"
    )
    return lines
