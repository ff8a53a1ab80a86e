"""The documentation stays true to the code: every setting documented, every CLI command
documented, every page in the navigation, and the site builds with ``mkdocs build --strict``."""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
from pathlib import Path

import pytest

from eki_whatsapp import Settings
from eki_whatsapp import __all__ as public_api
from eki_whatsapp.cli import build_parser

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
CONFIGURATION = DOCS / "configuration.md"


def _load_generator():  # docs/gen_reference.py is not a package module
    spec = importlib.util.spec_from_file_location("gen_reference", DOCS / "gen_reference.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _table_variables(text: str) -> set[str]:
    """Env names in the first column of the Markdown tables: ``| `META_APP_SECRET` | ...``."""
    return set(re.findall(r"^\|\s*`([A-Z][A-Z0-9_]+)`\s*\|", text, flags=re.MULTILINE))


def test_every_setting_is_documented_in_configuration_md() -> None:
    documented = _table_variables(CONFIGURATION.read_text(encoding="utf-8"))
    fields = {name.upper() for name in Settings.model_fields}
    missing = sorted(fields - documented)
    assert not missing, f"add these Settings fields to docs/configuration.md (one table row each): {missing}"


def test_configuration_md_documents_no_setting_that_does_not_exist() -> None:
    documented = _table_variables(CONFIGURATION.read_text(encoding="utf-8"))
    fields = {name.upper() for name in Settings.model_fields}
    stale = sorted(documented - fields)
    assert not stale, f"docs/configuration.md lists variables that Settings does not have: {stale}"


def test_documented_defaults_match_the_settings() -> None:
    """Rows look like ``| `NAME` | `default` | meaning |``; a literal default must be the real one."""
    text = CONFIGURATION.read_text(encoding="utf-8")
    checked = 0
    for name, default in re.findall(r"^\|\s*`([A-Z][A-Z0-9_]+)`\s*\|\s*`([^`]*)`\s*\|", text, re.MULTILINE):
        field = Settings.model_fields[name.lower()]
        if field.default is None or field.default_factory is not None:
            continue
        expected = str(field.default).lower() if isinstance(field.default, bool) else str(field.default)
        assert expected == default, f"{name}: docs say {default!r}, Settings has {field.default!r}"
        checked += 1
    assert checked >= 10


def test_every_cli_command_is_documented() -> None:
    parser = build_parser()
    commands = next(a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction").choices
    text = (DOCS / "cli.md").read_text(encoding="utf-8")
    headings = set(re.findall(r"^##+ `?eki-whatsapp ([a-z-]+)", text, flags=re.MULTILINE))
    missing = sorted(set(commands) - headings)
    assert not missing, f"document these commands in docs/cli.md ('## eki-whatsapp NAME'): {missing}"


def test_every_cli_option_is_documented_with_its_command() -> None:
    import argparse

    parser = build_parser()
    commands = next(a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction").choices
    text = (DOCS / "cli.md").read_text(encoding="utf-8")
    missing = []
    for name, sub in commands.items():
        section = text.split(f"## `eki-whatsapp {name}`", 1)[1].split("\n## ", 1)[0]
        for action in sub._actions:
            if action.help == argparse.SUPPRESS:
                continue
            for option in action.option_strings:
                if option.startswith("--") and option != "--help" and f"`{option}" not in section:
                    missing.append(f"{name} {option}")
    assert not missing, f"document these options in their command's section of docs/cli.md: {missing}"


def test_every_page_is_in_the_navigation() -> None:
    nav = (ROOT / "mkdocs.yml").read_text(encoding="utf-8")
    listed = set(re.findall(r":\s*([\w./-]+\.md)\s*$", nav, flags=re.MULTILINE))
    pages = {p.relative_to(DOCS).as_posix() for p in DOCS.rglob("*.md")}
    assert pages - listed == set(), f"add these pages to the nav in mkdocs.yml: {sorted(pages - listed)}"
    assert listed - pages == set(), f"mkdocs.yml names pages that do not exist: {sorted(listed - pages)}"


def test_reference_signatures_hide_private_parameters() -> None:
    from eki_whatsapp import Settings as S

    text = _load_generator().render_object("Settings", S)
    assert "whatsapp_provider: Literal['dual', 'meta', 'twilio'] = 'dual'" in text
    assert "_env_file" not in text


def test_reference_covers_the_public_api() -> None:
    text = _load_generator().render()
    for name in public_api:
        if name.startswith("__"):
            continue
        assert f"### `{name}`" in text, f"{name} is missing from the API reference"
    # reST is turned into Markdown: no Sphinx roles or "Example::" left.
    assert ":class:`" not in text
    assert "```python" in text


def test_docstring_conversion() -> None:
    gen = _load_generator()
    doc = """Send a thing.

    Uses :class:`Bot` and ``x``; quotes `` `code` `` and ```` ```block``` ````.

    Args:
        to: the user.
        message: what to send,
            over two lines.

    Example::

        bot.send("34600111222", "hola")
    """
    md = gen.docstring_to_markdown(doc)
    assert "Uses `Bot` and `x`; quotes `` `code` `` and ```` ```block``` ````." in md
    assert "- `to`: the user." in md
    assert "- `message`: what to send, over two lines." in md
    assert 'Example:\n\n```python\nbot.send("34600111222", "hola")\n```' in md


@pytest.mark.skipif(
    importlib.util.find_spec("mkdocs") is None, reason="mkdocs is not installed (pip install -e '.[docs]')"
)
def test_site_builds_strict(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path / "site")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    reference = (tmp_path / "site" / "reference" / "index.html").read_text(encoding="utf-8")
    assert "<!-- api-reference -->" not in reference  # the hook replaced the marker
    assert "handle_async" in reference
    assert (tmp_path / "site" / "es" / "primeros-pasos" / "index.html").exists()
