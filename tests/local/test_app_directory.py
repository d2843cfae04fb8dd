"""Where the local drill finds swr's CDK app: an editable install's checkout, else the current directory
(a checkout that swr was `pip install`ed from); neither: one clear error, before any emulator starts."""

from __future__ import annotations

from pathlib import Path

import pytest

from swr_local import assembly


@pytest.fixture
def installed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """swr installed as a package (no app.py beside it), run from an empty directory."""
    monkeypatch.setattr(assembly, "PROJECT_ROOT", tmp_path / "site-packages")
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    return work


def test_an_installed_package_run_in_a_checkout_finds_the_app_there(installed: Path) -> None:
    for name in ("app.py", "cdk.json"):
        (installed / name).write_text("")
    assert assembly.app_directory() == installed


def test_an_installed_package_run_elsewhere_says_it_needs_a_checkout(installed: Path) -> None:
    with pytest.raises(assembly.SynthError, match=r"run it in a checkout .*not found in .*work"):
        assembly.app_directory()


def test_an_editable_install_uses_its_own_checkout_wherever_it_runs(tmp_path: Path) -> None:
    root = Path(__file__).resolve().parents[2]
    assert root == assembly.PROJECT_ROOT
    assert assembly.app_directory() == root
