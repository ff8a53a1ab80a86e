"""Helpers of the packaging tests: run a command, make a fresh virtual environment."""

from __future__ import annotations

import os
import subprocess
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PROJECTS = [ROOT, ROOT / "adapters" / "django", ROOT / "adapters" / "flask"]


def run(*cmd: str | Path, cwd: Path | None = None, timeout: float = 600) -> str:
    """Run a command; fail the test with its output when it fails."""
    result = subprocess.run([str(c) for c in cmd], cwd=cwd, capture_output=True, text=True, timeout=timeout)
    assert result.returncode == 0, f"{cmd} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return result.stdout


def fresh_venv(path: Path) -> Path:
    """A new virtual environment with pip; returns its ``bin`` folder."""
    venv.EnvBuilder(with_pip=True, clear=True).create(path)
    return path / ("Scripts" if os.name == "nt" else "bin")
