"""The install routes of docs/install.md work in fresh virtual environments (issue 16, item 2):
an adapter's wheel with ``--find-links dist``, and both packages from a git URL with
``#subdirectory=``. Slow (pip resolves the dependencies from the package index): two venvs only."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from pkghelpers import ROOT, fresh_venv, run

pytestmark = pytest.mark.slow

CHECK = "import eki_whatsapp, {adapter}; print('ok', eki_whatsapp.__version__, {adapter}.__version__)"


def test_the_django_wheel_installs_with_the_core_found_in_dist(dist: Path, tmp_path: Path) -> None:
    bin_dir = fresh_venv(tmp_path / "venv")
    pip = (bin_dir / "python", "-m", "pip", "install", "--quiet")
    run(*pip, "--find-links", dist, "eki-whatsapp-django")
    assert "ok 0.1.0 0.1.0" in run(bin_dir / "python", "-c", CHECK.format(adapter="eki_whatsapp_django"))
    assert "eki-whatsapp 0.1.0" in run(bin_dir / "eki-whatsapp", "--version")


@pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")
def test_core_and_adapter_install_from_a_git_url_with_subdirectory(tmp_path: Path) -> None:
    if not (ROOT / ".git").exists():
        pytest.skip("not a git checkout")
    # A clone stands in for the hosted repository: the same URL syntax, no network.
    repo = tmp_path / "eki-whatsapp"
    run("git", "clone", "--quiet", "--no-local", ROOT, repo)
    url = f"git+file://{repo}"
    bin_dir = fresh_venv(tmp_path / "venv")
    # The pip bundled with older Pythons refuses host-less URLs such as git+file:///...
    run(bin_dir / "python", "-m", "pip", "install", "--quiet", "--upgrade", "pip")
    run(
        bin_dir / "python", "-m", "pip", "install", "--quiet",
        f"eki-whatsapp @ {url}",
        f"eki-whatsapp-flask @ {url}#subdirectory=adapters/flask",
    )  # fmt: skip
    assert "ok 0.1.0 0.1.0" in run(bin_dir / "python", "-c", CHECK.format(adapter="eki_whatsapp_flask"))
