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


# -- the demo's address reaches every command -------------------------------------------------------


def make_env() -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith(("MAKE", "MFLAGS"))}
    env.pop("SANDBOX_BASE_URL", None)
    env.pop("DJANGO_SETTINGS_MODULE", None)  # the suite's; the example site has its own
    return env


def test_make_demo_passes_the_demo_address_to_every_command():
    if shutil.which("make") is None:
        pytest.skip("no make on this machine; the Makefile cannot be run")
    result = subprocess.run(
        ["make", "--no-print-directory", "-n", "-C", str(ROOT), "demo", "DEMO_ADDR=127.0.0.1:8765"],
        capture_output=True,
        text=True,
        timeout=60,
        env=make_env(),
    )
    assert result.returncode == 0, result.stderr
    commands = [line for line in result.stdout.splitlines() if "example_project/manage.py" in line]
    assert [line.split("manage.py ", 1)[1] for line in commands] == [
        "migrate --noinput",
        "demo_setup --url http://127.0.0.1:8765/",
        "runserver 127.0.0.1:8765",
    ]
    assert all(line.startswith("SANDBOX_BASE_URL=${SANDBOX_BASE_URL:-http://127.0.0.1:8765} ") for line in commands)


@pytest.mark.slow
def test_make_manage_runs_a_command_of_the_example_site_with_the_sandbox_at_the_demo_address(tmp_path):
    if shutil.which("make") is None:
        pytest.skip("no make on this machine; the Makefile cannot be run")
    # This interpreter's environment, taken as installed: make must not build or install anything.
    venv = Path(sys.prefix)
    checksum = subprocess.run(["cksum"], input=(ROOT / "setup.py").read_bytes(), capture_output=True).stdout.split()[0]
    stamp = venv / f".installed-{checksum.decode()}"
    show = "from django.conf import settings; print('SANDBOX at', settings.SANDBOX_BASE_URL)"
    env = {**make_env(), "DEMO_ENV_FILE": "", "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}"}
    result = subprocess.run(
        ["make", "--no-print-directory", "-C", str(ROOT), "-o", str(stamp), "manage", f"VENV={venv}"]
        + ["DEMO_ADDR=127.0.0.1:8765", f'CMD=shell -c "{show}"'],
        capture_output=True,
        text=True,
        timeout=180,
        env=env,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SANDBOX at http://127.0.0.1:8765\n" in result.stdout
