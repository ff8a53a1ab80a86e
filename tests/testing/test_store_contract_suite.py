"""The store contract in ``eki_whatsapp.testing`` is usable by any store: one import, a fixture,
no Django, and it fails a store that breaks a rule."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path


def run_pytest(tmp_path: Path, source: str) -> subprocess.CompletedProcess[str]:
    (tmp_path / "test_third_party_store.py").write_text(textwrap.dedent(source))
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:django", str(tmp_path)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_the_contract_imports_without_django() -> None:
    code = (
        "import sys, eki_whatsapp.testing.store_contract; "
        "assert not [m for m in sys.modules if m.split('.')[0] == 'django'], 'django imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


def test_importing_the_contract_collects_nothing_by_itself(tmp_path: Path) -> None:
    result = run_pytest(
        tmp_path,
        """
        from eki_whatsapp.testing.store_contract import StatusContract, StoreContract
        """,
    )
    assert result.returncode == 5, result.stdout  # 5: no tests collected
    assert "no tests ran" in result.stdout


def test_a_third_party_store_runs_the_whole_contract(tmp_path: Path) -> None:
    result = run_pytest(
        tmp_path,
        """
        import pytest
        from eki_whatsapp import MemoryStore
        from eki_whatsapp.testing.store_contract import StoreContract

        class MyStore(MemoryStore):
            pass

        class TestMyStoreContract(StoreContract):
            @pytest.fixture
            def store(self):
                store = MyStore()
                yield store
                store.close()
        """,
    )
    assert result.returncode == 0, result.stdout
    assert " passed" in result.stdout and "failed" not in result.stdout


def test_a_store_that_breaks_a_rule_fails_the_contract(tmp_path: Path) -> None:
    result = run_pytest(
        tmp_path,
        """
        import dataclasses
        import pytest
        from eki_whatsapp import MemoryStore
        from eki_whatsapp.testing.store_contract import StatusContract

        class ForgetfulStore(MemoryStore):
            def record_status(self, status):  # drops the pricing: the row never gets a category
                return super().record_status(dataclasses.replace(status, pricing=None))

        class TestForgetfulStore(StatusContract):
            @pytest.fixture
            def store(self):
                yield ForgetfulStore()
        """,
    )
    assert result.returncode == 1, result.stdout
    assert "FAILED" in result.stdout
    assert "test_an_early_status_with_pricing_sets_the_category" in result.stdout
