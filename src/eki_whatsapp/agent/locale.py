"""Which language to answer in when the model cannot (fallback messages, offline phrasing).

From the words of the message when they are clear, else from the country calling code of the
user's number, else the agent's default.
"""

from __future__ import annotations

import re
import unicodedata
from contextvars import ContextVar

from ..addresses import normalize


def _wordset(text: str) -> frozenset[str]:
    return frozenset(text.split())


__all__ = ["FALLBACK_MESSAGES", "TURN_LOCALE", "detect_locale", "fallback_text", "guess_language"]

#: The language of the agent turn being run (set by the Agent): what a model without its own
#: language sense (the offline one) answers in.
TURN_LOCALE: ContextVar[str | None] = ContextVar("eki_whatsapp_turn_locale", default=None)

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

# Frequent words of short chat messages. A word several languages share counts for each of
# them in part, so only words that tell the languages apart decide; accented spellings are
# looked up before the accent-free ones ("sí" is Spanish, "si" Spanish or French).
_WORDS: dict[str, frozenset[str]] = {
    "es": _wordset(
        "hola buenas buenos días tardes noches gracias muchas muchos quiero quisiera necesito puedo "
        "puedes puede cómo dónde cuándo cuánto cuánta cuál qué quién por favor el la los las un una "
        "unos unas del al de en y o pero muy más para con sin me te se le lo mi mis tu tus su sus yo "
        "usted ustedes es son está estoy están esta estan hay tengo tiene tienes sí si no vale claro "
        "perfecto bien bueno entiendo ayuda ayudar precio cuesta horario hora hasta mañana pregunta "
        "llamo acuerdo siento empieza abren ver dame busco buscar curso cursos lección video examen "
        "respuesta inscribir inscribirme matrícula también ahora aquí eso esto ese este esa nada todo "
        "algo gusto saludos disculpa perdón adiós chao ya pues entonces cual porque mucho poco tal "
        "oye listo genial dale como que a mas"
    ),
    "pt": _wordset(
        "olá ola oi bom boa dia tarde noite obrigado obrigada muito muita quero queria preciso posso "
        "pode como onde quando quanto quanta qual quem que por favor o a os as um uma do da dos das no "
        "na nos nas em e ou mas mais para pra com sem me te se eu você vocês voce voces vc é são "
        "está estou estão tem tenho sim não nao valeu beleza claro certo tudo bem ajuda ajudar preço "
        "custa horário hora até amanhã pergunta dúvida duvida chamo acordo desculpa desculpe começa "
        "abre ver fica entendi aula aulas vídeo curso cursos também agora aqui isso isto esse este "
        "essa nada algo tchau então qual porque obg tal legal combinado de dia"
    ),
    "en": _wordset(
        "hello hi hey thanks thank you want need can could how where when what please the a an and "
        "or but very is are am i my me it this that to of in on for with yes no sure great good "
        "morning afternoon evening night help price cost much many time open course courses lesson "
        "video quiz answer enrol enroll have has do does not show find tomorrow see bye sorry "
        "question understand start"
    ),
    "fr": _wordset(
        "bonjour bonsoir salut merci oui non je tu vous il elle est sont suis les des une un le la "
        "du au aux et ou mais très pour avec sans pas ne que qui quoi comment où quand combien veux "
        "voudrais besoin peux pouvez cours leçon aide voir demain désolé accord ça si"
    ),
}
_FOLDED: dict[str, frozenset[str]] = {}  # filled below, once fold() exists

_TOKEN = re.compile(r"[^\W\d_]+")
_STRONG: tuple[tuple[str, str], ...] = (("¿", "es"), ("¡", "es"), ("ñ", "es"), ("ã", "pt"), ("õ", "pt"))


def fold(text: str) -> str:
    """Lower case without accents (``"Lección"`` → ``"leccion"``)."""
    decomposed = unicodedata.normalize("NFKD", text.lower())
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


_FOLDED.update({lang: frozenset(fold(w) for w in words) for lang, words in _WORDS.items()})


def _languages_of(table: dict[str, frozenset[str]]) -> dict[str, tuple[str, ...]]:
    """Word -> the languages that use it: one lookup per word of a message."""
    index: dict[str, tuple[str, ...]] = {}
    for lang, words in table.items():
        for word in words:
            index[word] = (*index.get(word, ()), lang)
    return index


_LANGUAGES_OF = _languages_of(_WORDS)
_FOLDED_LANGUAGES_OF = _languages_of(_FOLDED)


def guess_language(text: str) -> str | None:
    """The language of a short message from its words (``"es"``, ``"pt"``, ``"en"``, ``"fr"``),
    or ``None`` when the words do not tell."""
    lower = text.lower()
    for mark, lang in _STRONG:
        if mark in lower:
            return lang
    scores = dict.fromkeys(_WORDS, 0.0)
    for token in _TOKEN.findall(lower):
        langs = _LANGUAGES_OF.get(token)
        if langs is None:  # an ASCII word has no accent to fold away
            langs = _FOLDED_LANGUAGES_OF.get(token if token.isascii() else fold(token), ())
        for lang in langs:
            scores[lang] += 1 / len(langs)
    ranked = sorted(scores.items(), key=lambda kv: kv[1], reverse=True)
    if ranked[0][1] > 0 and ranked[0][1] > ranked[1][1]:
        return ranked[0][0]
    return None


def detect_locale(user_id: str | None, text: str | None, default: str = "en") -> str:
    """``"es"``, ``"en"``, ``"pt"``, ``"fr"`` or ``default``: from the words of ``text`` when they
    tell, else from the country calling code of ``user_id``, else ``default`` (the bot's language).
    """
    if text:
        lang = guess_language(text)
        if lang:
            return lang
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
        "refused": "Lo siento, con eso no puedo ayudarte. ¿Hay algo más en lo que pueda ayudarte?",
        "cut": "(respuesta incompleta: pídeme que continúe)",
    },
    "en": {
        "busy": "I'm getting a lot of questions right now. Please try again in a few minutes. 🙏",
        "slow": "Sorry, this is taking me too long. Could you try again in a moment?",
        "error": "Sorry, I couldn't answer just now. Please try again later.",
        "refused": "Sorry, I can't help with that. Is there anything else I can do for you?",
        "cut": "(answer cut short: ask me to continue)",
    },
    "pt": {
        "busy": "Estou recebendo muitas perguntas agora. Por favor, tente de novo em alguns minutos. 🙏",
        "slow": "Desculpe, estou demorando demais. Pode tentar de novo em um momento?",
        "error": "Desculpe, não consegui responder agora. Tente novamente mais tarde.",
        "refused": "Desculpe, não posso ajudar com isso. Posso ajudar com outra coisa?",
        "cut": "(resposta incompleta: peça para eu continuar)",
    },
    "fr": {
        "busy": "Je reçois beaucoup de questions en ce moment. Réessayez dans quelques minutes. 🙏",
        "slow": "Désolé, je mets trop de temps à répondre. Pouvez-vous réessayer dans un instant ?",
        "error": "Désolé, je n'ai pas pu répondre pour le moment. Réessayez plus tard.",
        "refused": "Désolé, je ne peux pas vous aider avec cela. Puis-je vous aider autrement ?",
        "cut": "(réponse incomplète : demandez-moi de continuer)",
    },
}

#: Which message each fallback reason gets (every other reason: ``error``).
_REASON_KIND = {
    "rate_limited": "busy",
    "timeout": "slow",
    "deadline": "slow",
    "refused": "refused",
    "content_filter": "refused",
}


def fallback_text(reason: str, locale: str, messages: dict[str, dict[str, str]] | None = None) -> str:
    """The message for a fallback ``reason`` (a :class:`ModelError` kind, ``deadline``,
    ``refused``...) or for ``cut`` (the note after a truncated answer), in ``locale``.

    Your ``messages`` win; a kind they lack comes from :data:`FALLBACK_MESSAGES` in the same
    language (so a refusal never reads "try again later"), then from their ``error``.
    """
    kind = reason if reason == "cut" else _REASON_KIND.get(reason, "error")
    for table in (messages, FALLBACK_MESSAGES):
        lang = _in_locale(table, locale) if table else None
        if lang and lang.get(kind):
            return lang[kind]
    for table in (messages, FALLBACK_MESSAGES):
        lang = _in_locale(table, locale) if table else None
        if lang:
            return lang.get("error") or next(iter(lang.values()))
    return FALLBACK_MESSAGES["en"][kind]


def _in_locale(table: dict[str, dict[str, str]], locale: str) -> dict[str, str] | None:
    exact = table.get(locale) or table.get(locale.split("-")[0].split("_")[0])
    return exact if exact is not None else None


def base_language(code: str | None) -> str | None:
    """``"es_MX"``/``"es-419"`` → ``"es"``; ``None`` for empty."""
    if not code or not code.strip():
        return None
    return code.strip().replace("-", "_").split("_")[0].lower()
