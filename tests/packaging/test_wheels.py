"""The built wheels and sdists install cleanly into a fresh virtualenv and expose the public API."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest
from pkghelpers import fresh_venv, run

pytestmark = pytest.mark.slow

IMPORTS = """
import eki_whatsapp, eki_whatsapp.providers, eki_whatsapp.messages, eki_whatsapp.agent
import eki_whatsapp.testing, eki_whatsapp.costs, eki_whatsapp.formatting, eki_whatsapp.routing
from eki_whatsapp import Bot, Settings, WebhookRequest, WebhookResponse, InboundMessage, StatusUpdate
from eki_whatsapp.providers import MetaCloud, Twilio, ProviderError
from eki_whatsapp.agent import Agent, tool
from eki_whatsapp.costs import PriceBook
import eki_whatsapp_flask
from eki_whatsapp_flask import whatsapp_blueprint, console_blueprint
from eki_whatsapp import OptedOut, Handoff
import importlib.resources, pathlib
assert (pathlib.Path(eki_whatsapp.__file__).parent / "py.typed").exists()
PriceBook.default()
from eki_whatsapp import i18n  # the Spanish catalogue ships in the wheel and is read from there
assert i18n.catalogue("es")["Cost report"] == "Informe de costes"
print("ok", eki_whatsapp.__version__)
"""


def test_build_and_install_into_a_fresh_venv(dist: Path, tmp_path: Path) -> None:
    wheels = sorted(p.name for p in dist.glob("*.whl"))
    sdists = sorted(p.name for p in dist.glob("*.tar.gz"))
    assert [w.split("-")[0] for w in wheels] == ["eki_whatsapp", "eki_whatsapp_django", "eki_whatsapp_flask"]
    assert len(sdists) == 3
    # The consoles' templates, static files and compiled translations travel in the wheels.
    django_files = zipfile.ZipFile(next(dist.glob("eki_whatsapp_django-*.whl"))).namelist()
    for name in (
        "eki_whatsapp_django/locale/es/LC_MESSAGES/django.mo",
        "eki_whatsapp_django/locale/pt/LC_MESSAGES/django.mo",
        "eki_whatsapp_django/templates/admin/eki_whatsapp_django/conversation/chat.html",
        "eki_whatsapp_django/static/eki_whatsapp_django/console.css",
        "eki_whatsapp_django/migrations/0002_conversation.py",
    ):
        assert name in django_files, name
    flask_files = zipfile.ZipFile(next(dist.glob("eki_whatsapp_flask-*.whl"))).namelist()
    assert "eki_whatsapp_flask/templates/eki_console/chat.html" in flask_files
    bin_dir = fresh_venv(tmp_path / "fresh")
    run(bin_dir / "python", "-m", "pip", "install", "--quiet", *sorted(dist.glob("*.whl")))
    assert "ok 0.1.0" in run(bin_dir / "python", "-c", IMPORTS, cwd=tmp_path)
    # the console script is installed and runs
    assert "eki-whatsapp 0.1.0" in run(bin_dir / "eki-whatsapp", "--version", cwd=tmp_path)
