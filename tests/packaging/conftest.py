"""The three wheels and sdists, built once per test session for the packaging tests."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from pkghelpers import PROJECTS, run


@pytest.fixture(scope="session")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``dist/`` as ``make build`` leaves it: a wheel and an sdist of every project."""
    pytest.importorskip("build")
    out = tmp_path_factory.mktemp("dist")
    for project in PROJECTS:
        run(sys.executable, "-m", "build", "--outdir", out, project)
    return out
