"""``make test`` on a machine whose Python cannot make a virtualenv says how to fix it.

Debian and Ubuntu ship ``venv`` without ``ensurepip`` unless ``python3-venv`` is installed:
``python3 -m venv .venv`` then fails, after leaving a half-made ``.venv`` with a ``bin/python``
but no pip. A stand-in Python here fails the same way, so no real virtualenv is built.
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

FAKE_PYTHON = """#!/bin/sh
echo "python $*" >> "{log}"
if [ "$1" = "-m" ] && [ "$2" = "venv" ]; then
    mkdir -p "$3/bin"
    printf '#!/bin/sh\\necho "venv-python $*" >> "{log}"\\necho "No module named pip" >&2\\nexit 1\\n' > "$3/bin/python"
    chmod +x "$3/bin/python"
    echo "Error: Command '-Im ensurepip' returned non-zero exit status 1 (simulated)." >&2
    exit 1
fi
exec "{real}" "$@"
"""


@pytest.fixture
def debian_python_without_venv(tmp_path):
    if shutil.which("make") is None:
        pytest.skip("no make on this machine; the Makefile cannot be run")
    log = tmp_path / "calls.log"
    fake = tmp_path / "python3"
    fake.write_text(FAKE_PYTHON.format(log=log, real=sys.executable))
    fake.chmod(fake.stat().st_mode | stat.S_IXUSR)
    return fake, log


def make_test(python: Path, venv: Path) -> subprocess.CompletedProcess:
    env = {key: value for key, value in os.environ.items() if not key.startswith(("MAKE", "MFLAGS"))}
    return subprocess.run(
        ["make", "--no-print-directory", "-C", str(ROOT), "test", f"PYTHON={python}", f"VENV={venv}"],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )


@pytest.mark.slow
def test_a_failing_venv_stops_make_with_a_one_line_hint(debian_python_without_venv, tmp_path):
    python, log = debian_python_without_venv
    venv = tmp_path / "venv"

    for attempt in ("first", "again, over the half-made virtualenv"):
        result = make_test(python, venv)
        output = result.stdout + result.stderr
        assert result.returncode != 0, f"{attempt}: {output}"
        hints = [line for line in output.splitlines() if "apt-get install python3-venv" in line]
        assert len(hints) == 1 and "PYTHON=" in hints[0], f"{attempt}: {output}"
        assert "No module named pip" not in output, f"{attempt}: went on with a venv that has no pip"

    calls = log.read_text()
    assert calls.count("-m venv") == 2
    assert "-m pip install" not in calls and "-m pytest" not in calls
