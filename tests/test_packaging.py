"""The sdist and the wheel ship what a site needs: templates, static files, migrations, licence."""

import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "django_bigoauth"
SHIPPED_DIRS = ("templates", "static", "migrations", "locale")


def files_on_disk():
    for folder in SHIPPED_DIRS:
        for path in (PACKAGE / folder).rglob("*"):
            if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc":
                yield path.relative_to(ROOT).as_posix()


@pytest.fixture(scope="module")
def dist(tmp_path_factory):
    pytest.importorskip("build", reason="the 'build' package is in the dev extra")
    outdir = tmp_path_factory.mktemp("dist")
    result = subprocess.run(
        [sys.executable, "-m", "build", "--no-isolation", "--outdir", str(outdir), str(ROOT)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    return outdir


@pytest.mark.slow
def test_wheel_contains_templates_static_migrations_and_licence(dist):
    (wheel,) = dist.glob("*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    expected = set(files_on_disk())
    assert "django_bigoauth/migrations/0001_initial.py" in expected
    assert "django_bigoauth/templates/django_bigoauth/base.html" in expected
    assert expected - names == set()
    assert any(name.endswith(".dist-info/licenses/LICENSE") or name.endswith(".dist-info/LICENSE") for name in names)
    assert not [name for name in names if name.startswith(("tests/", "example_project/"))]


@pytest.mark.slow
def test_sdist_contains_readme_licence_and_package_data(dist):
    (sdist,) = dist.glob("*.tar.gz")
    with tarfile.open(sdist) as archive:
        names = {name.split("/", 1)[1] for name in archive.getnames() if "/" in name}
    assert {"README.md", "LICENSE", "setup.py", "MANIFEST.in"} <= names
    assert set(files_on_disk()) - names == set()
