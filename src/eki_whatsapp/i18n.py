"""The command line and the doctor in the user's language (English, or Spanish when the locale
says so).

Translations are a GNU gettext catalogue, ``locale/<lang>/LC_MESSAGES/eki_whatsapp.po`` inside this
package. It is read as text by a small parser here, so nothing has to be compiled at build time and
the wheel works as it is; the file stays a normal ``.po`` that gettext tools and editors handle.
The Django adapter keeps its own, separate catalogue (Django's ``locale/`` directory).

The language is taken from ``EKI_WHATSAPP_LANGUAGE`` and then, as gettext does, from ``LANGUAGE``,
``LC_ALL``, ``LC_MESSAGES`` and ``LANG`` (``es_MX.UTF-8`` → ``es_MX``, then ``es``).

Mark a message with :func:`gettext` (alias ``_``) where it is shown, or with :func:`N_` where it is
defined and translated later; ``tests/cli/test_i18n.py`` checks that every marked message has a
translation. After adding messages run ``python -m eki_whatsapp.i18n`` to add them to the
catalogue, then translate the empty ``msgstr`` entries.
"""

from __future__ import annotations

import ast
import functools
import os
import re
from pathlib import Path

DOMAIN = "eki_whatsapp"
LOCALE_DIR = Path(__file__).parent / "locale"
LANGUAGES = ("en", "es")
_ENV = ("EKI_WHATSAPP_LANGUAGE", "LANGUAGE", "LC_ALL", "LC_MESSAGES", "LANG")


def N_(message: str) -> str:
    """Mark ``message`` for translation without translating it now (it is translated when shown)."""
    return message


def languages() -> list[str]:
    """The languages the environment asks for, most preferred first (``["es_MX", "es"]``)."""
    for name in _ENV:
        value = os.environ.get(name, "").strip()
        if not value:
            continue
        wanted: list[str] = []
        for item in value.split(":"):
            code = item.split(".")[0].split("@")[0].strip()
            if not code or code in ("C", "POSIX"):
                continue
            for candidate in (code, code.split("_")[0].split("-")[0]):
                if candidate not in wanted:
                    wanted.append(candidate)
        return wanted
    return []


def gettext(message: str) -> str:
    """``message`` in the environment's language, or unchanged when there is no translation."""
    for language in languages():
        if language == "en":
            return message
        translated = catalogue(language).get(message)
        if translated:
            return translated
    return message


_ = gettext


@functools.cache
def catalogue(language: str) -> dict[str, str]:
    """The translations of ``language`` (``{}`` when there is no catalogue for it)."""
    path = LOCALE_DIR / language / "LC_MESSAGES" / f"{DOMAIN}.po"
    if not path.is_file():
        return {}
    return {
        msgid: msgstr for msgid, msgstr, fuzzy in parse_po(path.read_text("utf-8")) if msgid and not fuzzy
    }


_STRING = re.compile(r'^(msgid|msgstr)?\s*"(.*)"\s*$')


def parse_po(text: str) -> list[tuple[str, str, bool]]:
    """``(msgid, msgstr, fuzzy)`` for every entry of a ``.po`` file (no plural forms or contexts:
    this catalogue does not use them)."""
    entries: list[tuple[str, str, bool]] = []
    parts: dict[str, list[str]] = {}
    current = ""
    fuzzy = False

    def flush() -> None:
        nonlocal parts, fuzzy
        if "msgid" in parts:
            entries.append(("".join(parts["msgid"]), "".join(parts.get("msgstr", [])), fuzzy))
        parts, fuzzy = {}, False

    for raw in text.splitlines():
        line = raw.strip()
        if not line:
            continue
        if line.startswith("#"):
            if line.startswith("#,") and "fuzzy" in line:
                if "msgstr" in parts:
                    flush()
                fuzzy = True
            continue
        match = _STRING.match(line)
        if match is None:
            raise ValueError(f"cannot read this .po line: {raw!r}")
        keyword, body = match.groups()
        if keyword == "msgid" and "msgstr" in parts:
            flush()
        if keyword:
            current = keyword
            parts[current] = []
        parts.setdefault(current, []).append(ast.literal_eval(f'"{body}"'))
    flush()
    return entries


# --- maintenance: collect the marked messages --------------------------------------------------------
_MARKERS = ("_", "N_", "gettext")


def marked_messages(root: Path = Path(__file__).parent) -> dict[str, list[str]]:
    """Every string literal passed to ``_``, ``N_`` or ``gettext`` under ``root``, with where it is."""
    found: dict[str, list[str]] = {}
    for path in sorted(root.rglob("*.py")):
        tree = ast.parse(path.read_text("utf-8"))
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call) or not node.args:
                continue
            func = node.func
            name = (
                func.id
                if isinstance(func, ast.Name)
                else func.attr
                if isinstance(func, ast.Attribute)
                else ""
            )
            arg = node.args[0]
            if name in _MARKERS and isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                where = f"{path.relative_to(root.parent).as_posix()}:{node.lineno}"
                found.setdefault(arg.value, []).append(where)
    return found


def _quote(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\t", "\\t")
    return f'"{escaped}"'


def update_catalogue(language: str = "es") -> Path:
    """Rewrite ``language``'s ``.po`` with every marked message, keeping the translations it has
    (new messages get an empty ``msgstr``; messages no longer used are dropped)."""
    path = LOCALE_DIR / language / "LC_MESSAGES" / f"{DOMAIN}.po"
    old: dict[str, tuple[str, bool]] = {}
    header = ""
    if path.is_file():
        text = path.read_text("utf-8")
        old = {msgid: (msgstr, fuzzy) for msgid, msgstr, fuzzy in parse_po(text)}
        header = old.get("", ("", False))[0]
    header = header or (
        "Project-Id-Version: eki-whatsapp\nLanguage: "
        + language
        + "\nMIME-Version: 1.0\nContent-Type: text/plain; charset=UTF-8\nContent-Transfer-Encoding: 8bit\n"
    )
    out = [
        f"# {language} messages of the eki-whatsapp command line and doctor.",
        'msgid ""',
        "msgstr " + _quote(header),
        "",
    ]
    for msgid, places in sorted(marked_messages().items(), key=lambda item: item[1][0]):
        msgstr, fuzzy = old.get(msgid, ("", False))
        out.append("#: " + " ".join(places))
        if fuzzy:
            out.append("#, fuzzy")
        out += ["msgid " + _quote(msgid), "msgstr " + _quote(msgstr), ""]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(out), "utf-8")
    catalogue.cache_clear()
    return path


if __name__ == "__main__":  # pragma: no cover - maintenance command
    for lang in LANGUAGES[1:]:
        print(update_catalogue(lang))
