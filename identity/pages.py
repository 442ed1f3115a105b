"""The OpenID provider's pages: sign-in, one-time code entry, consent and errors, rendered on the server.

They work without JavaScript, load nothing from elsewhere (one small inline style sheet), exist in
French, English and Arabic (right to left), tie every label to its input and carry a CSRF token in
every form. Languages come from ``ui_locales`` (OpenID Connect Core 1.0 section 3.1.2.1), then from
``Accept-Language``, then English.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final

import jinja2

from dpi.errors import preferred_language

__all__ = ["LANGUAGES", "choose_language", "render", "strings"]

LANGUAGES: Final = ("fr", "en", "ar")

_TEXT: Final[Mapping[str, Mapping[str, str]]] = {
    "en": {
        "title_signin": "Sign in",
        "intro": "{client} asks you to sign in.",
        "identifier": "Your UIN or virtual ID",
        "identifier_hint": "10 or 16 digits, on your identity card or in your last message.",
        "send": "Send me a code",
        "title_otp": "Enter your code",
        "otp_sent": "We sent a code by SMS to the phone ending in {destination}.",
        "otp": "Code received by SMS",
        "verify": "Sign in",
        "restart": "Start again",
        "title_error": "This sign-in cannot continue",
        "error_redirect": "The application sent you here with an address it has not registered.",
        "error_client": "The application that sent you here is not known.",
        "error_session": "This page has expired. Go back to the application and start again.",
        "error_request": "The sign-in request is not valid.",
        "otp_refused": "That code was not accepted. Check it and try again.",
        "otp_expired": "That code has expired. Ask for a new one.",
        "otp_locked": "Too many attempts. Try again later.",
        "send_refused": "A code cannot be sent now. Try again later.",
        "identifier_invalid": "Enter the 10 digits of your UIN or the 16 digits of your virtual ID.",
        "title_consent": "Share your information",
        "consent_intro": "{client} asks for the following information about you.",
        "consent_purpose": "Purpose: identity verification.",
        "consent_claims": "Tick what you agree to share",
        "essential": "needed by the service",
        "consent_sub": "The service always receives an identifier made for it alone, never your UIN.",
        "consent_validity": "Your choice is kept for {days} days. You can withdraw it at any time.",
        "allow": "Allow",
        "deny": "Deny",
        "claim_name": "Your full name",
        "claim_given_name": "Your given name",
        "claim_family_name": "Your family name",
        "claim_birthdate": "Your date of birth",
        "claim_phone_number": "Your phone number",
        "claim_age_over_18": "Whether you are 18 or older (yes or no, not your date of birth)",
        "claim_age_over_65": "Whether you are 65 or older (yes or no, not your date of birth)",
        "consent_notice": (
            "{client} receives, for identity verification: {claims}. "
            "This consent lasts {days} days and can be withdrawn."
        ),
        "list_separator": ", ",
        "claims_none": "only an identifier made for it",
        "consent_failed": "Your choice could not be recorded. Nothing was shared. Try again later.",
    },
    "fr": {
        "title_signin": "Connexion",
        "intro": "{client} vous demande de vous connecter.",
        "identifier": "Votre NIU ou identifiant virtuel",
        "identifier_hint": "10 ou 16 chiffres, sur votre carte d'identité ou dans votre dernier message.",
        "send": "M'envoyer un code",
        "title_otp": "Saisissez votre code",
        "otp_sent": "Nous avons envoyé un code par SMS au téléphone finissant par {destination}.",
        "otp": "Code reçu par SMS",
        "verify": "Se connecter",
        "restart": "Recommencer",
        "title_error": "Cette connexion ne peut pas continuer",
        "error_redirect": "L'application vous a envoyé ici avec une adresse qu'elle n'a pas enregistrée.",
        "error_client": "L'application qui vous a envoyé ici n'est pas connue.",
        "error_session": "Cette page a expiré. Revenez à l'application et recommencez.",
        "error_request": "La demande de connexion n'est pas valide.",
        "otp_refused": "Ce code n'a pas été accepté. Vérifiez-le et réessayez.",
        "otp_expired": "Ce code a expiré. Demandez-en un nouveau.",
        "otp_locked": "Trop de tentatives. Réessayez plus tard.",
        "send_refused": "Aucun code ne peut être envoyé pour l'instant. Réessayez plus tard.",
        "identifier_invalid": (
            "Saisissez les 10 chiffres de votre NIU ou les 16 de votre identifiant virtuel."
        ),
        "title_consent": "Partager vos informations",
        "consent_intro": "{client} demande les informations suivantes vous concernant.",
        "consent_purpose": "Finalité : vérification de l'identité.",
        "consent_claims": "Cochez ce que vous acceptez de partager",
        "essential": "nécessaire au service",
        "consent_sub": ("Le service reçoit toujours un identifiant créé pour lui seul, jamais votre NIU."),
        "consent_validity": ("Votre choix est conservé {days} jours. Vous pouvez le retirer à tout moment."),
        "allow": "Autoriser",
        "deny": "Refuser",
        "claim_name": "Votre nom complet",
        "claim_given_name": "Votre prénom",
        "claim_family_name": "Votre nom de famille",
        "claim_birthdate": "Votre date de naissance",
        "claim_phone_number": "Votre numéro de téléphone",
        "claim_age_over_18": ("Si vous avez 18 ans ou plus (oui ou non, pas votre date de naissance)"),
        "claim_age_over_65": ("Si vous avez 65 ans ou plus (oui ou non, pas votre date de naissance)"),
        "consent_notice": (
            "{client} reçoit, pour vérifier l'identité : {claims}. "
            "Ce consentement dure {days} jours et peut être retiré."
        ),
        "list_separator": ", ",
        "claims_none": "seulement un identifiant créé pour lui",
        "consent_failed": (
            "Votre choix n'a pas pu être enregistré. Rien n'a été partagé. Réessayez plus tard."
        ),
    },
    "ar": {
        "title_signin": "تسجيل الدخول",
        "intro": "يطلب منك {client} تسجيل الدخول.",
        "identifier": "رقم التعريف الموحد أو المعرّف الافتراضي",
        "identifier_hint": "10 أو 16 رقمًا، على بطاقة هويتك أو في آخر رسالة وصلتك.",
        "send": "أرسلوا لي رمزًا",
        "title_otp": "أدخل الرمز",
        "otp_sent": "أرسلنا رمزًا عبر رسالة قصيرة إلى الهاتف المنتهي بـ {destination}.",
        "otp": "الرمز المستلم عبر الرسائل القصيرة",
        "verify": "تسجيل الدخول",
        "restart": "البدء من جديد",
        "title_error": "لا يمكن متابعة تسجيل الدخول هذا",
        "error_redirect": "أرسلك التطبيق إلى هنا بعنوان لم يسجّله.",
        "error_client": "التطبيق الذي أرسلك إلى هنا غير معروف.",
        "error_session": "انتهت صلاحية هذه الصفحة. عد إلى التطبيق وابدأ من جديد.",
        "error_request": "طلب تسجيل الدخول غير صالح.",
        "otp_refused": "لم يُقبل هذا الرمز. تحقق منه وحاول مجددًا.",
        "otp_expired": "انتهت صلاحية هذا الرمز. اطلب رمزًا جديدًا.",
        "otp_locked": "محاولات كثيرة. حاول لاحقًا.",
        "send_refused": "لا يمكن إرسال رمز الآن. حاول لاحقًا.",
        "identifier_invalid": (
            "أدخل الأرقام العشرة لرقم التعريف الموحد أو الأرقام الستة عشر للمعرّف الافتراضي."
        ),
        "title_consent": "مشاركة معلوماتك",
        "consent_intro": "يطلب {client} المعلومات التالية عنك.",
        "consent_purpose": "الغرض: التحقق من الهوية.",
        "consent_claims": "ضع علامة على ما توافق على مشاركته",
        "essential": "ضروري للخدمة",
        "consent_sub": "تتلقى الخدمة دائمًا معرّفًا خاصًا بها وحدها، وليس رقم التعريف الموحد أبدًا.",
        "consent_validity": "يُحفظ اختيارك لمدة {days} يومًا. يمكنك سحبه في أي وقت.",
        "allow": "السماح",
        "deny": "الرفض",
        "claim_name": "اسمك الكامل",
        "claim_given_name": "اسمك الشخصي",
        "claim_family_name": "اسم عائلتك",
        "claim_birthdate": "تاريخ ميلادك",
        "claim_phone_number": "رقم هاتفك",
        "claim_age_over_18": "هل عمرك 18 سنة أو أكثر (نعم أو لا، دون تاريخ ميلادك)",
        "claim_age_over_65": "هل عمرك 65 سنة أو أكثر (نعم أو لا، دون تاريخ ميلادك)",
        "consent_notice": (
            "يتلقى {client}، للتحقق من الهوية: {claims}. تدوم هذه الموافقة {days} يومًا ويمكن سحبها."
        ),
        "list_separator": "، ",
        "claims_none": "معرّفًا خاصًا به فقط",
        "consent_failed": "تعذّر تسجيل اختيارك. لم تتم مشاركة أي شيء. حاول لاحقًا.",
    },
}

# Templates are compiled on first use and kept: no file check per page (they change with a release only).
_environment: Final = jinja2.Environment(
    loader=jinja2.FileSystemLoader(Path(__file__).parent / "templates"),
    auto_reload=False,
    autoescape=True,
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)


def choose_language(ui_locales: str | None, accept_language: str | None) -> str:
    """The first of ``ui_locales`` (space-separated BCP 47 tags) we speak, else by ``Accept-Language``."""
    for tag in (ui_locales or "").split():
        primary = tag.split("-")[0].lower()
        if primary in LANGUAGES:
            return primary
    return preferred_language(accept_language)


def strings(language: str) -> Mapping[str, str]:
    """The pages' strings in ``language`` (English for a language we do not speak)."""
    return _TEXT[language if language in _TEXT else "en"]


def render(template: str, language: str, **context: Any) -> str:
    """The page ``template`` in ``language``; ``text`` in the template holds the language's strings."""
    text = strings(language)
    return _environment.get_template(template).render(
        language=language, direction="rtl" if language == "ar" else "ltr", text=text, **context
    )
