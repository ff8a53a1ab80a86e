"""The built wheels and sdists install cleanly into a fresh virtualenv and expose the public API."""

from __future__ import annotations

import os
import subprocess
import sys
import venv
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PROJECTS = [ROOT, ROOT / "adapters" / "django", ROOT / "adapters" / "flask"]

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
print("ok", eki_whatsapp.__version__)
"""


def run(*cmd: str | Path, cwd: Path | None = None) -> str:
    result = subprocess.run([str(c) for c in cmd], cwd=cwd, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, f"{cmd} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return result.stdout


def test_build_and_install_into_a_fresh_venv(tmp_path: Path) -> None:
    pytest.importorskip("build")
    dist = tmp_path / "dist"
    for project in PROJECTS:
        run(sys.executable, "-m", "build", "--outdir", dist, project)
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
    env_dir = tmp_path / "fresh"
    venv.EnvBuilder(with_pip=True, clear=True).create(env_dir)
    py = env_dir / ("Scripts" if os.name == "nt" else "bin") / "python"
    run(py, "-m", "pip", "install", "--quiet", *sorted(dist.glob("*.whl")))
    assert "ok 0.1.0" in run(py, "-c", IMPORTS, cwd=tmp_path)
    # the console script is installed and runs
    cli = env_dir / "bin" / "eki-whatsapp"
    assert "eki-whatsapp 0.1.0" in run(cli, "--version", cwd=tmp_path)
