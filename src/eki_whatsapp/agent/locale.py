"""Which language to answer in when the model cannot (fallback messages, offline phrasing).

From the words of the message when they are clear, else from the country calling code of the
user's number, else the agent's default.
"""

from __future__ import annotations

import re
import unicodedata

from ..addresses import normalize


def _wordset(text: str) -> frozenset[str]:
    return frozenset(text.split())


__all__ = ["FALLBACK_MESSAGES", "detect_locale", "fallback_text"]

# Calling codes of countries where Spanish / Portuguese / French is the main language.
_PREFIXES: dict[str, str] = {
    **dict.fromkeys(
        [
            "34",
            "52",
            "54",
            "56",
            "57",
            "51",
            "58",
            "593",
            "591",
            "595",
            "598",
            "502",
            "503",
            "504",
            "505",
            "506",
            "507",
            "53",
            "1809",
            "1829",
            "1849",
            "240",
        ],
        "es",
    ),
    **dict.fromkeys(["55", "351", "244", "258", "238"], "pt"),
    **dict.fromkeys(["33", "32", "225", "221", "237"], "fr"),
    **dict.fromkeys(["44", "61", "64", "353", "27", "234", "254"], "en"),
}

_WORDS: dict[str, frozenset[str]] = {
    "es": _wordset(
        "hola buenas gracias quiero quisiera necesito puedo como donde cuando que por favor curso cursos "
        "leccion video examen respuesta inscribir inscribirme matricula ayuda tengo estoy una los las del "
        "para pero muy mas ver dame busco buscar"
    ),
    "pt": _wordset(
        "ola obrigado obrigada quero preciso posso como onde quando voce voces curso cursos aula ajuda "
        "tenho estou uma os as do da para mas muito ver"
    ),
    "en": _wordset(
        "hello hi thanks thank want need can how where when what please course courses lesson video "
        "quiz answer enrol enroll help have the and for but very show find"
    ),
    "fr": _wordset(
        "bonjour merci veux voudrais besoin peux comment ou quand quoi cours lecon aide suis une les des "
        "pour mais tres voir"
    ),
}

_TOKEN = re.compile(r"[a-z]+")


def fold(text: str) -> str:
    """Lower case without accents (``"Lección"`` → ``"leccion"``)."""
    decomposed = unicodedata.normalize("NFKD", text.lower())
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


def detect_locale(user_id: str | None, text: str | None, default: str = "en") -> str:
    """``"es"``, ``"en"``, ``"pt"``, ``"fr"`` or ``default``."""
    if text:
        if "¿" in text or "¡" in text or "ñ" in text.lower():
            return "es"
        tokens = _TOKEN.findall(fold(text))
        scores = {lang: sum(1 for t in tokens if t in words) for lang, words in _WORDS.items()}
        best = max(scores, key=lambda k: scores[k])
        ranked = sorted(scores.values(), reverse=True)
        if ranked[0] >= 1 and ranked[0] > ranked[1]:
            return best
    if user_id:
        digits = normalize(user_id)
        if digits.isdigit():
            for size in (4, 3, 2):
                lang = _PREFIXES.get(digits[:size])
                if lang:
                    return lang
    return default


#: Short messages for when the model cannot answer, by locale and reason.
FALLBACK_MESSAGES: dict[str, dict[str, str]] = {
    "es": {
        "busy": "Ahora mismo tengo muchas consultas. Por favor, inténtalo de nuevo en unos minutos. 🙏",
        "slow": "Lo siento, estoy tardando demasiado. ¿Puedes intentarlo otra vez en un momento?",
        "error": "Lo siento, no he podido responder ahora mismo. Inténtalo de nuevo más tarde.",
    },
    "en": {
        "busy": "I'm getting a lot of questions right now. Please try again in a few minutes. 🙏",
        "slow": "Sorry, this is taking me too long. Could you try again in a moment?",
        "error": "Sorry, I couldn't answer just now. Please try again later.",
    },
    "pt": {
        "busy": "Estou recebendo muitas perguntas agora. Por favor, tente de novo em alguns minutos. 🙏",
        "slow": "Desculpe, estou demorando demais. Pode tentar de novo em um momento?",
        "error": "Desculpe, não consegui responder agora. Tente novamente mais tarde.",
    },
    "fr": {
        "busy": "Je reçois beaucoup de questions en ce moment. Réessayez dans quelques minutes. 🙏",
        "slow": "Désolé, je mets trop de temps à répondre. Pouvez-vous réessayer dans un instant ?",
        "error": "Désolé, je n'ai pas pu répondre pour le moment. Réessayez plus tard.",
    },
}

_REASON_KIND = {"rate_limited": "busy", "timeout": "slow", "deadline": "slow"}


def fallback_text(reason: str, locale: str, messages: dict[str, dict[str, str]] | None = None) -> str:
    """The fallback message for a failure ``reason`` (a :class:`ModelError` kind or ``deadline``)."""
    table = messages or FALLBACK_MESSAGES
    kind = _REASON_KIND.get(reason, "error")
    lang = table.get(locale) or table.get(locale.split("-")[0].split("_")[0]) or table.get("en")
    if lang is None:
        lang = next(iter(table.values()))
    return lang.get(kind) or lang.get("error") or next(iter(lang.values()))
