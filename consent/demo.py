"""The consent block's chapter of the demo story (DESIGN section 8): the agreements under which the
Ministry of Labour reads a person's name and date of birth from the civil registry to register them as a
job seeker, the social protection agency reads job-seeker status to pay the youth employment stipend, and pays
it into the account each person chose.

Loading is idempotent: an agreement already published with the same content is left as it is; a changed
one is published as its next version.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Final

from consent.service import ConsentService
from dpi.blocks import BlockContext
from dpi.errors import DpiError

__all__ = ["AGREEMENTS", "load"]

CIVIL_REGISTRY: Final = "DPI/GOV/MOI/civil-registry"
JOBSEEKERS: Final = "DPI/GOV/MOL/jobseekers"
BENEFITS: Final = "DPI/GOV/SPA/benefits"
WALLET1: Final = "DPI/COM/WALLET1/payments"

AGREEMENTS: Final[tuple[Mapping[str, Any], ...]] = (
    {
        "agreement_id": "mol-jobseeker-registration",
        "consumer": JOBSEEKERS,
        "providers": [{"provider": CIVIL_REGISTRY, "service": "person"}],
        "purpose": "jobseeker-registration",
        "legal_basis": "consent",
        "data_items": [{"schema": "person@1.0.0", "fields": ["/names", "/date_of_birth"]}],
        "retention_days": 1825,
        "max_validity_days": 365,
        "frequency": {"max_accesses": 10, "period_days": 30},
        "revocable": True,
        "controller": {
            "name": "Ministry of Labour, Job-seeker service",
            "contact": "privacy@labour.gov.example",
        },
        "notices": {
            "en": {
                "text": "The Ministry of Labour asks to read your name and date of birth from the civil "
                "registry to register you as a job seeker. It keeps them for as long as you are registered "
                "and at most five years, and reads them at most ten times a month. Your consent lasts one "
                "year; you can pause or withdraw it at any time, and the ministry will be told at once."
            },
            "fr": {
                "text": "Le ministère du Travail demande à lire vos nom et date de naissance dans l'état "
                "civil pour vous inscrire comme demandeur d'emploi. Il les conserve tant que vous êtes "
                "inscrit, cinq ans au plus, et les lit au plus dix fois par mois. Votre consentement vaut "
                "un an ; vous pouvez le suspendre ou le retirer à tout moment, et le ministère en est "
                "aussitôt informé."
            },
            "ar": {
                "text": "تطلب وزارة العمل الاطلاع على اسمك وتاريخ ميلادك في السجل المدني لتسجيلك كباحث "
                "عن عمل. تحتفظ بهما ما دمت مسجلاً ولمدة أقصاها خمس سنوات، ولا تطلع عليهما أكثر من عشر "
                "مرات في الشهر. تسري موافقتك سنة واحدة، ويمكنك تعليقها أو سحبها في أي وقت، وتُبلَّغ "
                "الوزارة بذلك فوراً."
            },
        },
    },
    {
        "agreement_id": "spa-youth-employment-stipend",
        "consumer": BENEFITS,
        "providers": [{"provider": JOBSEEKERS, "service": "jobseeker-status"}],
        "purpose": "social-benefit-eligibility",
        "legal_basis": "consent",
        "data_items": [{"schema": "jobseeker-status@1.0.0", "fields": ["/status", "/registered_on"]}],
        "retention_days": 2555,
        "max_validity_days": 365,
        "frequency": {"max_accesses": 4, "period_days": 30},
        "revocable": True,
        "controller": {
            "name": "Social Protection Agency, Youth employment stipend",
            "contact": "privacy@benefits.gov.example",
        },
        "notices": {
            "en": {
                "text": "The Social Protection Agency asks the Ministry of Labour whether you are "
                "registered as a job seeker, and since when, to decide on and pay your youth employment "
                "stipend. It keeps the answer for seven years, as payment records require, and asks at "
                "most four times a month. Your consent lasts one year; you can pause or withdraw it at "
                "any time, but the stipend cannot be paid without it."
            },
            "fr": {
                "text": "L'Agence de protection sociale demande au ministère du Travail si vous êtes "
                "inscrit comme demandeur d'emploi, et depuis quand, pour décider de votre allocation "
                "d'emploi des jeunes et la verser. Elle conserve la réponse sept ans, comme l'exigent les "
                "pièces de paiement, et interroge au plus quatre fois par mois. Votre consentement vaut "
                "un an ; vous pouvez le suspendre ou le retirer à tout moment, mais l'allocation ne peut "
                "pas être versée sans lui."
            },
            "ar": {
                "text": "تسأل وكالة الحماية الاجتماعية وزارة العمل عمّا إذا كنت مسجلاً كباحث عن عمل ومنذ "
                "متى، لتبتّ في منحة تشغيل الشباب وتصرفها لك. تحتفظ بالجواب سبع سنوات كما تقتضي سجلات "
                "الصرف، ولا تسأل أكثر من أربع مرات في الشهر. تسري موافقتك سنة واحدة، ويمكنك تعليقها أو "
                "سحبها في أي وقت، لكن المنحة لا تُصرف من دونها."
            },
        },
    },
    {
        "agreement_id": "spa-stipend-payment-account",
        "consumer": BENEFITS,
        "providers": [{"provider": WALLET1, "service": "payments"}],
        "purpose": "benefit-payment",
        "legal_basis": "consent",
        "data_items": [{"schema": "payments-item@1.0.0", "fields": ["/financial_address", "/amount"]}],
        "retention_days": 2555,
        "max_validity_days": 365,
        "frequency": {"max_accesses": 12, "period_days": 30},
        "revocable": True,
        "controller": {
            "name": "Social Protection Agency, Youth employment stipend",
            "contact": "privacy@benefits.gov.example",
        },
        "notices": {
            "en": {
                "text": "The Social Protection Agency pays your youth employment stipend into the mobile "
                "wallet or bank account you choose, and keeps that choice and each payment for seven "
                "years, as payment records require. You can change the account before each payment "
                "cycle's cut-off, or withdraw this consent, at any time; without an account the stipend "
                "cannot be paid."
            },
            "fr": {
                "text": "L'Agence de protection sociale verse votre allocation d'emploi des jeunes sur le "
                "portefeuille mobile ou le compte bancaire que vous choisissez, et conserve ce choix et "
                "chaque paiement sept ans, comme l'exigent les pièces de paiement. Vous pouvez changer de "
                "compte avant la date limite de chaque cycle de paiement, ou retirer ce consentement, à "
                "tout moment ; sans compte, l'allocation ne peut pas être versée."
            },
            "ar": {
                "text": "تصرف وكالة الحماية الاجتماعية منحة تشغيل الشباب في المحفظة المتنقلة أو الحساب "
                "المصرفي الذي تختاره، وتحتفظ بهذا الاختيار وبكل دفعة سبع سنوات كما تقتضي سجلات الصرف. "
                "يمكنك تغيير الحساب قبل الموعد النهائي لكل دورة صرف، أو سحب هذه الموافقة، في أي وقت؛ "
                "ومن دون حساب لا يمكن صرف المنحة."
            },
        },
    },
)

_ASSIGNED: Final = ("version", "created_at")


def _as_published(draft: Mapping[str, Any]) -> dict[str, Any]:
    return {**draft, "notices": {language: {"text": n["text"]} for language, n in draft["notices"].items()}}


def _content(document: Mapping[str, Any]) -> dict[str, Any]:
    """An agreement without what the server assigns, to compare a published version with a draft."""
    content = {key: value for key, value in document.items() if key not in _ASSIGNED}
    return _as_published(content)


async def load(context: BlockContext) -> list[str]:
    """Publish the demo agreements that are not yet published as they stand; a line for each."""
    settings = context.settings
    service = ConsentService(
        sessions=context.sessions,
        keys=context.keys,
        issuer=settings.member_id if settings.member_id is not None else settings.public_url,
        clock=lambda: datetime.now(UTC),
    )
    lines = []
    for draft in AGREEMENTS:
        try:
            current: dict[str, Any] | None = await service.agreement(draft["agreement_id"])
        except DpiError:
            current = None
        if current is None or _content(current) != _as_published(draft):
            current = await service.publish_agreement(draft)
            verb = "published"
        else:
            verb = "already published"
        providers = ", ".join(f"{p['provider']} {p['service']}" for p in current["providers"])
        fields = ", ".join(field for item in current["data_items"] for field in item["fields"])
        lines.append(
            f"consent: agreement {current['agreement_id']} v{current['version']} {verb}: "
            f"{current['consumer']} reads {fields} from {providers} for {current['purpose']}"
        )
    return lines
