"""Code in the docs runs as written: the snippets a newcomer copies first (issue 16, item 8)."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
PAGES = sorted(DOCS.rglob("*.md"))


def python_blocks(page: Path) -> list[str]:
    return re.findall(r"```python\n(.*?)```", page.read_text(encoding="utf-8"), flags=re.DOTALL)


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.relative_to(DOCS).as_posix())
def test_snippets_import_os_when_they_use_it(page: Path) -> None:
    for block in python_blocks(page):
        if re.search(r"\bos\.", block):
            assert re.search(r"^import (?:[\w.]+, *)*os\b", block, flags=re.MULTILINE), (
                f"{page.name}: a snippet uses os.* without `import os` (a new settings.py has none):\n{block}"
            )


def test_the_flask_page_defines_the_factory_its_commands_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("flask")
    page = DOCS / "flask.md"
    text = page.read_text(encoding="utf-8")
    app_source = next(block for block in python_blocks(page) if "def create_app" in block)
    (tmp_path / "docs_flask_app.py").write_text(app_source)
    named = set(re.findall(r'"app:(\w+)\(\)"', text)) | set(re.findall(r"--app app:(\w+)", text))
    assert named == {"create_app"}, f"{page.name} runs {named}; the snippet defines create_app"
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    for name, value in {
        "WHATSAPP_PROVIDER": "meta",
        "META_WHATSAPP_TOKEN": "docs-token",
        "META_PHONE_NUMBER_ID": "1065",
        "WHATSAPP_STORE_URL": "memory://",
    }.items():
        monkeypatch.setenv(name, value)
    try:
        import docs_flask_app

        app = docs_flask_app.create_app()
        rules = {rule.rule for rule in app.url_map.iter_rules()}
        assert "/webhook/whatsapp/" in rules
        app.extensions["eki_whatsapp"].close()
    finally:
        sys.modules.pop("docs_flask_app", None)
