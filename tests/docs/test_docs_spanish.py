"""The Spanish pages a new user needs on day one exist, link to and from their English originals,
and stay in step with them: same sections, same code blocks, same commands and variables
(issue 16, item 9)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

DOCS = Path(__file__).resolve().parents[2] / "docs"

#: English page → its Spanish translation.
PAIRS = {
    "getting-started.md": "es/primeros-pasos.md",
    "install.md": "es/instalacion.md",
    "meta-setup.md": "es/configuracion-meta.md",
    "twilio-setup.md": "es/configuracion-twilio.md",
    "django.md": "es/django.md",
    "troubleshooting.md": "es/solucion-de-problemas.md",
}
IDS = list(PAIRS)


def read(page: str) -> str:
    return (DOCS / page).read_text(encoding="utf-8")


def commands(text: str) -> list[str]:
    """``eki-whatsapp ...`` and ``python manage.py ...`` lines of the code blocks, comments cut."""
    lines = []
    for block in re.findall(r"```(?:bash|text)?\n(.*?)```", text, flags=re.DOTALL):
        for line in block.splitlines():
            line = line.split(" #", 1)[0].strip()
            if line.startswith(("eki-whatsapp ", "python manage.py ")):
                lines.append(line)
    return lines


@pytest.mark.parametrize(("english", "spanish"), PAIRS.items(), ids=IDS)
def test_each_translation_links_to_its_original_and_back(english: str, spanish: str) -> None:
    assert f"({spanish})" in read(english), f"{english} must link to its Spanish version {spanish}"
    assert f"(../{english})" in read(spanish), f"{spanish} must link to its English original {english}"


@pytest.mark.parametrize(("english", "spanish"), PAIRS.items(), ids=IDS)
def test_each_translation_has_the_same_sections_and_code_blocks(english: str, spanish: str) -> None:
    en, es = read(english), read(spanish)
    assert len(re.findall(r"^#+ ", en, re.M)) == len(re.findall(r"^#+ ", es, re.M)), "headings differ"
    assert en.count("```") == es.count("```"), "code blocks differ"
    assert commands(en) == commands(es), "the commands shown differ"


@pytest.mark.parametrize(("english", "spanish"), PAIRS.items(), ids=IDS)
def test_each_translation_names_every_variable_of_the_original(english: str, spanish: str) -> None:
    variables = set(re.findall(r"`([A-Z][A-Z0-9_]{3,})", read(english)))
    missing = sorted(variables - set(re.findall(r"`([A-Z][A-Z0-9_]{3,})", read(spanish))))
    assert not missing, f"{spanish} does not mention {missing}"


def test_spanish_pages_link_to_spanish_pages_where_one_exists() -> None:
    for spanish in PAIRS.values():
        for english in PAIRS:
            assert f"(../{english}#" not in read(spanish), (
                f"{spanish} links to ../{english}#…: link {PAIRS[english]}"
            )
        for english, translated in PAIRS.items():
            if translated != spanish:
                assert f"(../{english})" not in read(spanish), (
                    f"{spanish}: link {translated}, not ../{english}"
                )
