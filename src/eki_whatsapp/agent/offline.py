"""An offline :class:`~eki_whatsapp.agent.model.ChatModel`: no network, no weights, no LLM.

It is a keyword matcher with templates, meant for demos, tests and development without an
``OPENAI_API_KEY``:

* **Picks a tool** whose name or description shares words with the user's message (accents and
  case ignored, words compared by their first five letters; a value of one of the tool's enum
  parameters mentioned in the message counts too). One tool per message.
* **Fills the arguments** from the text: enum values mentioned, the first number for numeric
  parameters, yes/no for booleans, and the words left over (minus the tool's own keywords and
  common words) for the first free-text parameter. When a required one is missing it asks for
  it, and combines the answer with the previous message on the next turn.
* **Phrases the result** with a template per tool (``templates={"list_courses": "...{result}"}``)
  or a generic rendering of the returned JSON (lists as bullets, objects as ``key: value``).

What it cannot do: understand paraphrases or synonyms it has no words for, call several tools
or chain them, reason about results, hold a conversation beyond the previous message, or write
free text. Every response carries ``metadata={"offline": True, ...}`` and the agent logs that
the offline model is in use.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from typing import Any

from .locale import TURN_LOCALE, detect_locale, fold
from .model import Message, ModelResponse, ModelUsage, ToolCall, ToolChoice
from .tools import ToolSpec


def _wordset(text: str) -> frozenset[str]:
    return frozenset(text.split())


__all__ = ["OfflineChatModel"]

_STOP = _wordset(
    # es
    "el la los las un una unos unas de del al a en y o u que por para con sin mi mis tu tus su sus "
    "me te se le les lo es son hay quiero quisiera puedes puedo podrias dame ver sobre como cual "
    "cuales algun alguna algo este esta estos estas ese esa eso favor porfa hola gracias necesito "
    "tengo tienes muy mas menos ya si no pero tambien soy estoy "
    # en
    "the an of to in on and or for with without my your his her its is are be can could would i "
    "me you we it this that these those some any please want need show give about what which "
    "hi hello thanks thank do does have has get tell let"
    # pt / fr, a few
    " os as um uma do da dos das no na nos nas com sem meu minha le les des du et ou pour avec "
    "je tu il est sont"
)
_WORD = re.compile(r"[a-z0-9]+")
_CONTRACTION = re.compile("(?<=\\w)['\u2019]\\w+")
_NUMBER = re.compile(r"-?\d+(?:[.,]\d+)?")
_YES = frozenset({"si", "yes", "sim", "oui", "claro", "ok", "vale", "true"})
_NO = frozenset({"no", "nao", "non", "false"})

_PHRASES: dict[str, dict[str, str]] = {
    "es": {
        "help": "¡Hola{name}! Soy un asistente automático. Puedo ayudarte con:\n{items}\n\n"
        "Escríbeme, por ejemplo: «{example}».",
        "missing": "Para eso necesito que me digas: {fields}.",
        "options": " (opciones: {options})",
        "error": "No he podido completarlo: {error}",
        "done": "Hecho.",
    },
    "en": {
        "help": "Hi{name}! I'm an automated assistant. I can help you with:\n{items}\n\n"
        "Try, for example: “{example}”.",
        "missing": "For that I need you to tell me: {fields}.",
        "options": " (options: {options})",
        "error": "I couldn't do that: {error}",
        "done": "Done.",
    },
}


def _stem(word: str) -> str:
    return word[:5]


def _words(text: str) -> list[str]:
    return _WORD.findall(fold(text))


class OfflineChatModel:
    """A rule-based stand-in for an LLM (see the module documentation for what it can do).

    Args:
        templates: answer templates by tool name; ``{result}`` is the rendered result and, when
            the tool returns a JSON object, its keys are available too (``{title}``).
        locale: language of its own phrases (``"es"``/``"en"``); detected per message if omitted.
        help_text: what it says when no tool matches (``{name}``, ``{items}``, ``{example}``).
        examples: an example request per tool name, shown in the help text.
        followups: ``{"start_quiz": "check_answer"}``: after a call of the first tool, a message
            that matches no tool goes to the second (its text fills the free-text parameter).
    """

    offline = True

    def __init__(
        self,
        *,
        templates: Mapping[str, str] | None = None,
        locale: str | None = None,
        help_text: str | None = None,
        examples: Mapping[str, str] | None = None,
        followups: Mapping[str, str] | None = None,
        name: str = "offline",
    ) -> None:
        self.name = name
        self.templates = dict(templates or {})
        self.locale = locale
        self.help_text = help_text
        self.examples = dict(examples or {})
        self.followups = dict(followups or {})

    async def complete(
        self,
        messages: Sequence[Message],
        tools: Sequence[ToolSpec],
        *,
        tool_choice: ToolChoice = "auto",
        parallel_tool_calls: bool = True,
    ) -> ModelResponse:
        """Answer from rules: a tool call, a phrased tool result, a question or the help text."""
        user_texts = [str(m.get("content") or "") for m in messages if m.get("role") == "user"]
        last_user = user_texts[-1] if user_texts else ""
        lang = self._lang(last_user)
        meta: dict[str, Any] = {"offline": True}
        if messages and messages[-1].get("role") == "tool":
            return self._respond(self._phrase_results(messages, lang), meta)
        if tool_choice != "none" and tools and last_user:
            attempt = self._attempt(last_user, tools)
            if (attempt is None or attempt[2]) and len(user_texts) >= 2:
                # The previous message named a tool but lacked arguments (we asked for them):
                # read this one as the answer.
                previous = self._attempt(user_texts[-2], tools)
                if previous is not None and previous[2]:
                    combined = self._attempt(user_texts[-2] + " " + last_user, tools)
                    if combined is not None and combined[0] is previous[0]:
                        attempt = combined
            if attempt is None:
                attempt = self._followup(messages, last_user, tools)
            if attempt is not None:
                spec, args, missing, score = attempt[0], attempt[1], attempt[2], attempt[3]
                meta.update(matched_tool=spec.name, score=score)
                if missing:
                    return self._respond(self._ask(spec, missing, lang), meta)
                arguments = json.dumps(args, ensure_ascii=False)
                call = ToolCall(f"call_offline_{len(messages)}", spec.name, arguments)
                return ModelResponse(None, (call,), ModelUsage(), self.name, meta)
        return self._respond(self._help(messages, tools, lang), meta)

    async def aclose(self) -> None:
        """Nothing to close."""

    def _followup(
        self, messages: Sequence[Message], text: str, tools: Sequence[ToolSpec]
    ) -> tuple[ToolSpec, dict[str, Any], list[str], float] | None:
        previous = None
        for msg in reversed(messages[:-1]):
            if msg.get("role") == "assistant" and msg.get("tool_calls"):
                previous = msg["tool_calls"][0]["function"]["name"]
                break
            if msg.get("role") == "user":
                break  # only the turn just before this message counts
        target = self.followups.get(previous or "")
        spec = next((t for t in tools if t.name == target), None)
        if spec is None:
            return None
        args, missing = _fill(text, spec, free_text=text)
        return spec, args, missing, 0.0

    @staticmethod
    def _attempt(
        text: str, tools: Sequence[ToolSpec]
    ) -> tuple[ToolSpec, dict[str, Any], list[str], float] | None:
        picked = _pick(text, tools)
        if picked is None:
            return None
        args, missing = _fill(text, picked[0])
        return picked[0], args, missing, picked[1]

    # --- phrasing ------------------------------------------------------------------------------
    def _respond(self, text: str, meta: dict[str, Any]) -> ModelResponse:
        return ModelResponse(text, (), ModelUsage(), self.name, meta)

    def _lang(self, text: str) -> str:
        lang = self.locale or TURN_LOCALE.get() or detect_locale(None, text, "en")
        return lang if lang in _PHRASES else "en"

    def _phrase_results(self, messages: Sequence[Message], lang: str) -> str:
        names: dict[str, str] = {}
        results: list[tuple[str, str]] = []
        for msg in messages:
            for call in msg.get("tool_calls") or []:
                names[call["id"]] = call["function"]["name"]
        for msg in reversed(messages):
            if msg.get("role") != "tool":
                break
            results.append((names.get(msg.get("tool_call_id", ""), ""), str(msg.get("content") or "")))
        parts = [self._phrase(name, content, lang) for name, content in reversed(results)]
        return "\n\n".join(p for p in parts if p) or _PHRASES[lang]["done"]

    def _phrase(self, tool_name: str, content: str, lang: str) -> str:
        if content.startswith("Error"):
            detail = content.split(":", 1)[1].strip() if ":" in content else content
            return _PHRASES[lang]["error"].format(error=detail)
        try:
            data: Any = json.loads(content)
        except ValueError:
            data = content
        rendered = _render(data)
        template = self.templates.get(tool_name)
        if template is None:
            return rendered
        values: dict[str, Any] = {"result": rendered}
        if isinstance(data, dict):
            values.update({k: _render(v) for k, v in data.items()})
        return template.format_map(_Default(values))

    def _ask(self, spec: ToolSpec, missing: list[str], lang: str) -> str:
        props = _properties(spec.parameters)
        fields = []
        for name in missing:
            prop = props.get(name, {})
            label = str(prop.get("description") or name).split("(null")[0].strip().rstrip(".")
            options = _enum(prop)
            if options:
                label += _PHRASES[lang]["options"].format(options=", ".join(str(o) for o in options))
            fields.append(label)
        return _PHRASES[lang]["missing"].format(fields="; ".join(fields))

    def _help(self, messages: Sequence[Message], tools: Sequence[ToolSpec], lang: str) -> str:
        system = next((str(m.get("content")) for m in messages if m.get("role") == "system"), "")
        match = re.search(r"WhatsApp name is '([^']+)'", system)
        name = f" {match.group(1)}" if match else ""
        items = "\n".join(f"• {_first_sentence(t.description)}" for t in tools) or "•"
        example = next(iter(self.examples.values()), tools[0].name.replace("_", " ") if tools else "")
        text = self.help_text or _PHRASES[lang]["help"]
        return text.format_map(_Default({"name": name, "items": items, "example": example}))

    def __repr__(self) -> str:
        return f"OfflineChatModel(locale={self.locale!r})"


class _Default(dict[str, Any]):
    def __missing__(self, key: str) -> str:
        return "{" + key + "}"


# --- matching --------------------------------------------------------------------------------
def _keywords(spec: ToolSpec) -> dict[str, float]:
    out: dict[str, float] = {}
    for word in _words(re.sub(r"[_-]", " ", spec.name)):
        if word not in _STOP and len(word) >= 3:
            out[_stem(word)] = 2.0
    for word in _words(spec.description):
        if word not in _STOP and len(word) >= 3:
            out.setdefault(_stem(word), 1.0)
    return out


def _pick(text: str, tools: Sequence[ToolSpec]) -> tuple[ToolSpec, float] | None:
    stems = {_stem(w) for w in _words(text) if w not in _STOP and len(w) >= 3}
    best: tuple[ToolSpec, float] | None = None
    for spec in tools:
        keys = _keywords(spec)
        score = sum(keys.get(s, 0.0) for s in stems)
        if score and any(_enum_hit(text, _enum(p)) for p in _properties(spec.parameters).values()):
            score += 0.5
        if score >= 1.0 and (best is None or score > best[1]):
            best = (spec, score)
    return best


def _properties(schema: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    props = schema.get("properties") or {}
    defs = schema.get("$defs") or {}
    out = {}
    for name, prop in props.items():
        out[name] = _resolve(prop, defs)
    return out


def _resolve(prop: Mapping[str, Any], defs: Mapping[str, Any]) -> dict[str, Any]:
    """Flatten ``anyOf [X, null]`` and ``$ref`` into one schema (keeping the description)."""
    result = dict(prop)
    if "$ref" in result:
        target = defs.get(str(result.pop("$ref")).split("/")[-1], {})
        result = {**target, **result}
    if "anyOf" in result:
        options = [o for o in result.pop("anyOf") if o.get("type") != "null"]
        if len(options) == 1:
            result = {**_resolve(options[0], defs), **result}
    kind = result.get("type")
    if isinstance(kind, list):
        kinds = [k for k in kind if k != "null"]
        result["type"] = kinds[0] if len(kinds) == 1 else kinds
    return result


def _enum(prop: Mapping[str, Any]) -> list[Any]:
    return [v for v in prop.get("enum", []) if v is not None]


def _enum_hit(text: str, options: Sequence[Any]) -> Any:
    folded = " " + " ".join(_words(text)) + " "
    stems = {_stem(w) for w in _words(text) if len(w) >= 3 and w not in _STOP}
    best, best_score = None, 0.0
    for option in options:
        words = _words(str(option))
        if not words:
            continue
        if f" {' '.join(words)} " in folded:
            score = 10.0 + len(words)
        else:
            hits = sum(1 for w in words if len(w) >= 3 and _stem(w) in stems)
            score = hits / len(words) if hits else 0.0
        if score > best_score:
            best, best_score = option, score
    return best


def _fill(text: str, spec: ToolSpec, *, free_text: str | None = None) -> tuple[dict[str, Any], list[str]]:
    schema = spec.parameters
    props = _properties(schema)
    required = set(schema.get("required") or [])
    # Words that name the tool or its parameters are not values.
    ignore = set(_keywords(spec))
    for name, prop in props.items():
        described = _words(name.replace("_", " ") + " " + _without_examples(str(prop.get("description", ""))))
        ignore.update(_stem(w) for w in described if len(w) >= 3)
    args: dict[str, Any] = {}
    numbers = _NUMBER.findall(text)
    words = _words(text)
    # First the parameters whose values can be recognised (enums, numbers, yes/no)...
    for name, prop in props.items():
        value: Any = None
        options = _enum(prop)
        kind = prop.get("type")
        if options:
            value = _enum_hit(text, options)
            if value is not None:
                ignore.update(_stem(w) for w in _words(str(value)))
        elif kind in ("integer", "number") and numbers:
            raw = numbers.pop(0)
            ignore.add(_stem(fold(raw)))
            raw = raw.replace(",", ".")
            value = int(float(raw)) if kind == "integer" else float(raw)
        elif kind == "boolean":
            if any(w in _YES for w in words):
                value = True
            elif any(w in _NO for w in words):
                value = False
        if value is not None:
            args[name] = value
    # ...then the first mandatory free-text one takes the words left over.
    for name, prop in props.items():
        if name in args or prop.get("type") != "string" or _enum(prop):
            continue
        if name in required and not _nullable(schema, name):
            value = (free_text.strip() if free_text else _leftover(text, ignore)) or None
            if value is not None:
                args[name] = value
            break
    missing = [n for n in props if n in required and n not in args and not _nullable(schema, n)]
    for name in props:
        if name in required and name not in args and name not in missing:
            args[name] = None
    return {n: args[n] for n in props if n in args}, missing


_EXAMPLE = re.compile(
    r"(\be\.\s?g\.|\bp\.\s?ej\.|\bpor ejemplo\b|\bp\.\s?ex\.|\bpor exemplo\b|\bfor example\b|"
    r"\bsuch as\b|\bex\.|\bcomo\b|\blike\b|\(null\b).*",
    re.IGNORECASE | re.DOTALL,
)
_QUOTED = re.compile(r"\"[^\"]*\"|'[^']*'|«[^»]*»|“[^”]*”")


def _without_examples(description: str) -> str:
    """A parameter's description without its examples: ``el curso, p. ej. "python"`` names the
    parameter with "curso", but "python" is a value the user may well write."""
    return _EXAMPLE.sub("", _QUOTED.sub("", description))


def _nullable(schema: Mapping[str, Any], name: str) -> bool:
    prop = (schema.get("properties") or {}).get(name, {})
    kind = prop.get("type")
    if isinstance(kind, list) and "null" in kind:
        return True
    return any(isinstance(o, dict) and o.get("type") == "null" for o in prop.get("anyOf", []))


def _leftover(text: str, ignore: set[str]) -> str:
    kept = []
    text = _CONTRACTION.sub("", text)  # what's, it's, don't
    for raw in re.findall(r"[\w@.+-]+", text):
        folded = fold(raw)
        if folded in _STOP:
            continue
        if _stem(folded.strip(".,;:!?")) in ignore:
            continue
        kept.append(raw.strip(".,;:!?¿¡"))
    return " ".join(k for k in kept if k)


def _first_sentence(text: str) -> str:
    line = text.strip().split("\n\n")[0].replace("\n", " ")
    match = re.match(r"(.+?[.!?])(\s|$)", line)
    return (match.group(1) if match else line).strip()


def _render(data: Any) -> str:
    if isinstance(data, str):
        return data
    if isinstance(data, list):
        return "\n".join(f"• {_render_item(item)}" for item in data) if data else "—"
    if isinstance(data, dict):
        for key in ("message", "text", "answer"):
            if isinstance(data.get(key), str) and len(data) <= 2:
                return str(data[key])
        return "\n".join(f"*{k}*: {_render_item(v)}" for k, v in data.items())
    if data is None:
        return "—"
    return str(data)


def _render_item(item: Any) -> str:
    if isinstance(item, dict):
        title = next((item[k] for k in ("title", "name", "nombre", "titulo") if k in item), None)
        rest = [f"{v}" for k, v in item.items() if k not in ("title", "name", "nombre", "titulo", "id")]
        head = f"*{title}*" if title is not None else ""
        tail = " — ".join(str(r) for r in rest if r not in (None, ""))
        ident = f" ({item['id']})" if "id" in item else ""
        text = (head + ident + (": " + tail if tail else "")).strip(": ")
        return text or json.dumps(item, ensure_ascii=False)
    if isinstance(item, list):
        return ", ".join(_render_item(i) for i in item)
    return str(item)
