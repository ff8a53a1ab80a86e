"""The command line and the doctor speak Spanish when the locale says so, and every message they
show is translated (issue 16, item 9). The catalogue is a plain ``.po`` file inside the package,
read without compiling, so it works from a wheel."""

from __future__ import annotations

import ast
import io
import re
from pathlib import Path

import pytest

from eki_whatsapp import i18n
from eki_whatsapp.cli import main

PACKAGE = Path(i18n.__file__).parent
#: Modules whose every user-facing string must go through the catalogue.
CHECKED = [
    PACKAGE / "cli.py",
    PACKAGE / "doctor.py",
    PACKAGE / "providers" / "meta" / "doctor.py",
    PACKAGE / "providers" / "twilio" / "doctor.py",
]


def run(*argv: str) -> tuple[int, str]:
    out = io.StringIO()
    code = main(list(argv), stdout=out)
    return code, out.getvalue()


def placeholders(text: str) -> set[str]:
    return set(re.findall(r"\{[^{}]*\}", text))


def test_every_marked_message_has_a_spanish_translation_with_the_same_placeholders() -> None:
    catalogue = i18n.catalogue("es")
    missing, broken = [], []
    for message, places in i18n.marked_messages().items():
        translated = catalogue.get(message)
        if not translated:
            missing.append(f"{places[0]}: {message!r}")
        elif placeholders(translated) != placeholders(message):
            broken.append(f"{message!r} → {translated!r}")
    assert not missing, "translate these in locale/es/LC_MESSAGES/eki_whatsapp.po " + (
        "(run python -m eki_whatsapp.i18n to add them):\n" + "\n".join(missing)
    )
    assert not broken, "placeholders differ:\n" + "\n".join(broken)


def test_the_catalogue_has_no_message_the_code_no_longer_uses() -> None:
    stale = sorted(set(i18n.catalogue("es")) - set(i18n.marked_messages()))
    assert not stale, f"remove from the .po (python -m eki_whatsapp.i18n does): {stale}"


def _unmarked_text(node: ast.AST) -> list[str]:
    """Literal words in the text ``node`` shows that do not pass through the catalogue (values
    computed at run time, such as ``str(report)`` or a header name looked up, are not text)."""
    if isinstance(node, ast.Call):
        name = getattr(node.func, "id", getattr(node.func, "attr", ""))
        if name in i18n._MARKERS:
            return []
        if name == "format" and isinstance(node.func, ast.Attribute):
            return _unmarked_text(node.func.value)
        return []
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return [node.value] if re.search(r"[a-z]{2,}", node.value) else []  # not NAMES_OF_VARIABLES
    if isinstance(node, ast.JoinedStr):
        return [t for part in node.values if isinstance(part, ast.Constant) for t in _unmarked_text(part)]
    if isinstance(node, ast.BinOp):
        return _unmarked_text(node.left) + _unmarked_text(node.right)
    if isinstance(node, ast.IfExp):
        return _unmarked_text(node.body) + _unmarked_text(node.orelse)
    return []


@pytest.mark.parametrize("module", CHECKED, ids=lambda p: p.name)
def test_every_message_shown_goes_through_the_catalogue(module: Path) -> None:
    tree = ast.parse(module.read_text("utf-8"))
    unmarked = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and any(
            getattr(t, "id", "") in ("title", "fix", "detail") for t in node.targets
        ):
            unmarked += [f"{module.name}:{node.lineno}: {text!r}" for text in _unmarked_text(node.value)]
        if not isinstance(node, ast.Call):
            continue
        name = getattr(node.func, "id", getattr(node.func, "attr", ""))
        shown: list[ast.AST] = []
        if name == "out" and node.args:
            shown.append(node.args[0])
        if name == "Check":
            shown += [arg for index, arg in enumerate(node.args) if index != 1]
        shown += [kw.value for kw in node.keywords if kw.arg in ("help", "description", "epilog")]
        if name in ("add", "ConfigError") and len(node.args) >= 3:
            shown.append(node.args[2])
        for expression in shown:
            unmarked += [f"{module.name}:{node.lineno}: {text!r}" for text in _unmarked_text(expression)]
    assert not unmarked, "wrap these in _(...):\n" + "\n".join(unmarked)


# --- behaviour ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("locale", "expected"),
    [
        (
            "es_MX.UTF-8",
            "WHATSAPP_PROVIDER vale 'dul': no es un valor permitido (permitidos: dual, meta, twilio).",
        ),
        ("en_US.UTF-8", "WHATSAPP_PROVIDER is 'dul': not an allowed value (allowed: dual, meta, twilio)."),
        ("C.UTF-8", "WHATSAPP_PROVIDER is 'dul': not an allowed value (allowed: dual, meta, twilio)."),
    ],
)
def test_a_bad_value_is_explained_in_the_locale_s_language(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, locale: str, expected: str
) -> None:
    for name in ("EKI_WHATSAPP_LANGUAGE", "LANGUAGE", "LC_ALL", "LC_MESSAGES"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("LANG", locale)
    env = tmp_path / ".env"
    env.write_text("WHATSAPP_PROVIDER=dul\n")
    code, text = run("doctor", "--env-file", str(env))
    assert code == 2
    assert expected in text
    if locale.startswith("es"):
        assert text.startswith("error de configuración:") and "¿Quisiste decir 'dual'?" in text
        assert "Corrígelo en el entorno o en .env" in text


def test_help_is_in_spanish(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("EKI_WHATSAPP_LANGUAGE", "es")
    run("sandbox", "--help")
    assert "APIs falsas de Meta y Twilio para tu propia app" in capsys.readouterr().out


def test_languages_follow_gettext_s_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("EKI_WHATSAPP_LANGUAGE", "LANGUAGE", "LC_ALL", "LC_MESSAGES", "LANG"):
        monkeypatch.delenv(name, raising=False)
    assert i18n.languages() == []
    monkeypatch.setenv("LANG", "es_AR.UTF-8")
    assert i18n.languages() == ["es_AR", "es"]
    monkeypatch.setenv("LANGUAGE", "pt_BR:es")
    assert i18n.languages() == ["pt_BR", "pt", "es"]
    assert i18n.gettext("Cost report") == "Informe de costes"
    monkeypatch.setenv("EKI_WHATSAPP_LANGUAGE", "en")
    assert i18n.gettext("Cost report") == "Cost report"


def test_po_reader_handles_multiline_entries_escapes_and_fuzzy_ones() -> None:
    text = """msgid ""
msgstr "Language: es\\n"

#, fuzzy
msgid "old"
msgstr "viejo"

msgid ""
"two "
"lines"
msgstr "dos "
"líneas \\"y\\" más"
"""
    assert i18n.parse_po(text) == [
        ("", "Language: es\n", False),
        ("old", "viejo", True),
        ("two lines", 'dos líneas "y" más', False),
    ]
