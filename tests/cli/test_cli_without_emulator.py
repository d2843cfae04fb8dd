"""The operator CLI installs and runs without the emulator: `pip install swr` has no moto (it is the `local`
extra). Each case runs in a fresh interpreter where moto cannot be imported, as on such an install."""

from __future__ import annotations

import subprocess
import sys
from importlib import metadata

import pytest

from swr_cli.exitcodes import ExitCode

#: Runs the CLI with moto unimportable (a None entry in sys.modules makes `import moto` fail as if it
#: were not installed); prints the modules the run imported that belong to the emulator.
_RUN_WITHOUT_MOTO = """
import sys
sys.modules["moto"] = None
from swr_cli.main import main
try:
    code = main(sys.argv[1:]) if len(sys.argv) > 1 else 0
except SystemExit as stop:
    code = stop.code
loaded = [name for name, module in sys.modules.items() if module is not None]
print("EMULATOR-MODULES:", sorted(m for m in loaded if "moto" in m or m.startswith("swr_local")))
sys.exit(code)
"""


def _swr(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", _RUN_WITHOUT_MOTO, *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _emulator_modules(out: str) -> str:
    return out.rsplit("EMULATOR-MODULES:", 1)[1].strip()


def test_importing_the_cli_imports_nothing_of_the_emulator() -> None:
    proc = _swr()
    assert proc.returncode == 0, proc.stderr
    assert _emulator_modules(proc.stdout) == "[]"


@pytest.mark.parametrize("args", [("--help",), ("status", "--help"), ("drill", "--help")])
def test_help_works_without_the_emulator(args: tuple[str, ...]) -> None:
    proc = _swr(*args)
    assert proc.returncode == 0, proc.stderr
    assert "usage: swr" in proc.stdout
    assert _emulator_modules(proc.stdout) == "[]"


def test_version_is_the_package_version() -> None:
    proc = _swr("--version")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines()[0] == f"swr {metadata.version('swr')}"


@pytest.mark.parametrize(
    ("args", "what"),
    [
        (("demo",), "`swr demo`"),
        (
            ("drill", "1", "--fault", "app", "--endpoint-url", "http://127.0.0.1:9", "--region", "us-east-1"),
            "`swr drill` on a local endpoint",
        ),
    ],
)
def test_a_local_command_without_the_extra_says_what_to_install(args: tuple[str, ...], what: str) -> None:
    proc = _swr(*args)
    lines = [line for line in proc.stdout.splitlines() if not line.startswith("EMULATOR-MODULES:")]
    assert proc.returncode == ExitCode.NEEDS_LOCAL_EXTRA, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr, proc.stderr
    assert len(lines) == 1, lines
    assert what in lines[0] and "pip install 'swr[local]'" in lines[0] and "moto" in lines[0]
