"""The OpenID provider's pages: sign-in, one-time code entry and errors, rendered on the server.

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
    },
}

_environment: Final = jinja2.Environment(
    loader=jinja2.FileSystemLoader(Path(__file__).parent / "templates"),
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
