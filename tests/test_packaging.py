"""The sdist and the wheel ship what a site needs, build without a warning, and pass ``twine check``."""

import ast
import dataclasses
import importlib.metadata
import os
import re
import shutil
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "django_bigoauth"
SHIPPED_DIRS = ("templates", "static", "migrations", "locale")
#: files of the package's own folder that are not modules
SHIPPED_FILES = ("py.typed",)


def files_on_disk():
    for folder in SHIPPED_DIRS:
        for path in (PACKAGE / folder).rglob("*"):
            if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc":
                yield path.relative_to(ROOT).as_posix()
    for name in SHIPPED_FILES:
        yield (PACKAGE / name).relative_to(ROOT).as_posix()


def build_env() -> dict[str, str]:
    # PYTHONDONTWRITEBYTECODE (set on some machines) makes setuptools warn that it skips
    # byte-compiling: a warning of the environment, not of the package.
    return {key: value for key, value in os.environ.items() if key != "PYTHONDONTWRITEBYTECODE"}


@dataclasses.dataclass
class Built:
    outdir: Path
    output: str

    def glob(self, pattern: str):
        return self.outdir.glob(pattern)


@pytest.fixture(scope="module")
def dist(tmp_path_factory):
    # "build" is in the dev extra, which the suite needs: a missing build tool fails, never skips.
    import build  # noqa: F401

    outdir = tmp_path_factory.mktemp("dist")
    result = subprocess.run(
        [sys.executable, "-m", "build", "--no-isolation", "--outdir", str(outdir), str(ROOT)],
        capture_output=True,
        text=True,
        timeout=300,
        env=build_env(),
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    return Built(outdir, result.stdout + result.stderr)


def warnings_in(output: str) -> list[str]:
    return [line for line in output.splitlines() if re.search(r"warn|deprecat", line, re.I)]


@pytest.mark.slow
def test_the_build_prints_no_warning(dist):
    assert warnings_in(dist.output) == []


@pytest.mark.slow
def test_twine_check_passes_strictly(dist):
    # "twine" is in the dev extra too.
    result = subprocess.run(
        [sys.executable, "-m", "twine", "check", "--strict", *map(str, sorted(dist.glob("*")))],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("PASSED") == 2 and "WARNING" not in result.stdout


@pytest.mark.slow
def test_an_editable_install_prints_no_warning(tmp_path):
    """What `pip install -e .` (and so `make demo`) runs: setuptools' build_editable, in a copy of the tree."""
    source = tmp_path / "source"
    shutil.copytree(
        ROOT,
        source,
        ignore=shutil.ignore_patterns(
            ".git", ".venv", ".tox", "build", "dist", "artifacts", "*.egg-info", "__pycache__"
        ),
    )
    result = subprocess.run(
        [sys.executable, "-W", "default", "-c", "import sys, setuptools.build_meta as b; b.build_editable(sys.argv[1])"]
        + [str(tmp_path / "wheel")],
        cwd=source,
        capture_output=True,
        text=True,
        timeout=300,
        env=build_env(),
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert warnings_in(result.stdout + result.stderr) == []
    (wheel,) = (tmp_path / "wheel").glob("*.whl")
    assert zipfile.ZipFile(wheel).namelist()  # an editable wheel was made


@pytest.mark.slow
def test_the_licence_is_an_spdx_expression_not_a_classifier(dist):
    (wheel,) = dist.glob("*.whl")
    (metadata,) = [name for name in zipfile.ZipFile(wheel).namelist() if name.endswith(".dist-info/METADATA")]
    lines = zipfile.ZipFile(wheel).read(metadata).decode().splitlines()
    assert "License-Expression: MIT" in lines and "License-File: LICENSE" in lines
    assert not [line for line in lines if line.startswith("Classifier: License ::")]


@pytest.mark.slow
def test_wheel_contains_templates_static_migrations_and_licence(dist):
    (wheel,) = dist.glob("*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    expected = set(files_on_disk())
    assert "django_bigoauth/migrations/0001_initial.py" in expected
    assert "django_bigoauth/templates/django_bigoauth/base.html" in expected
    assert "django_bigoauth/py.typed" in expected  # PEP 561: type checkers read the package's annotations
    assert expected - names == set()
    assert any(name.endswith(".dist-info/licenses/LICENSE") or name.endswith(".dist-info/LICENSE") for name in names)
    assert not [name for name in names if name.startswith(("tests/", "example_project/"))]
    assert not [name for name in names if name.endswith((".pyc", ".pyo")) or "__pycache__" in name]
    (metadata,) = [name for name in names if name.endswith(".dist-info/METADATA")]
    requires = {
        requirement_name(line.split(":", 1)[1])
        for line in zipfile.ZipFile(wheel).read(metadata).decode().splitlines()
        if line.startswith("Requires-Dist:") and "extra ==" not in line
    }
    assert requires == install_requires()


@pytest.mark.slow
def test_sdist_contains_readme_licence_and_package_data(dist):
    (sdist,) = dist.glob("*.tar.gz")
    with tarfile.open(sdist) as archive:
        names = {name.split("/", 1)[1] for name in archive.getnames() if "/" in name}
    assert {"README.md", "LICENSE", "CHANGELOG.md", "setup.py", "pyproject.toml", "MANIFEST.in"} <= names
    assert set(files_on_disk()) - names == set()
    assert not [name for name in names if name.endswith((".pyc", ".pyo")) or "__pycache__" in name]
    assert not [name for name in names if name.startswith(("tests/", "example_project/", ".venv/"))]


def setup_keyword(name: str):
    """The literal value of one keyword argument of ``setup()`` in ``setup.py`` (read, not run)."""
    tree = ast.parse((ROOT / "setup.py").read_text())
    keywords = [node for node in ast.walk(tree) if isinstance(node, ast.keyword)]
    (value,) = [keyword.value for keyword in keywords if keyword.arg == name]
    return ast.literal_eval(value)


def install_requires() -> set[str]:
    """The distribution names ``setup.py`` declares in ``install_requires``."""
    return {requirement_name(requirement) for requirement in setup_keyword("install_requires")}


def extra_requires(extra: str) -> set[str]:
    return {requirement_name(requirement) for requirement in setup_keyword("extras_require")[extra]}


def requirement_name(requirement: str) -> str:
    """``"requests-oauthlib>=1.3"`` -> ``"requests-oauthlib"``, normalised as in PEP 503."""
    return normalise(re.split(r"[<>=!~\[; ]", requirement.strip(), maxsplit=1)[0])


def normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def runtime_nodes(tree: ast.Module):
    """Every node of ``tree`` but those under ``if TYPE_CHECKING:``, which only type checkers import."""
    checking_only = {
        id(node)
        for block in ast.walk(tree)
        if isinstance(block, ast.If) and isinstance(block.test, ast.Name) and block.test.id == "TYPE_CHECKING"
        for statement in block.body
        for node in ast.walk(statement)
    }
    return (node for node in ast.walk(tree) if id(node) not in checking_only)


def imported_top_level_modules(exclude: set[str] = frozenset()) -> set[str]:
    """Every top-level module the package imports when it runs, at any depth of any of its files but ``exclude``."""
    names: set[str] = set()
    for path in PACKAGE.rglob("*.py"):
        if path.relative_to(PACKAGE).as_posix() in exclude:
            continue
        for node in runtime_nodes(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names.add(node.module.split(".")[0])
    return names


#: Modules of an extra, and the only files that may import them: ``asyncsupport.py`` tries the
#: import (ImproperlyConfigured naming the extra), ``asession.py`` is loaded only after that.
EXTRA_MODULES = {"httpx": ("async", {"asyncsupport.py", "asession.py"})}


def test_every_third_party_module_the_package_imports_is_declared_in_install_requires():
    third_party = imported_top_level_modules() - set(sys.stdlib_module_names) - {"django_bigoauth", "__future__"}
    distributions = importlib.metadata.packages_distributions()
    needed = {module: {normalise(name) for name in distributions.get(module, [module])} for module in third_party}
    declared = install_requires()
    undeclared = {module for module, names in needed.items() if not names & declared}
    assert undeclared == set(EXTRA_MODULES)
    assert {"requests", "oauthlib", "requests-oauthlib", "cryptography", "django", "asgiref"} <= declared


def test_the_dev_extra_holds_the_docs_extra():
    """``make docs`` runs in the virtualenv ``make`` builds with the dev extra."""
    assert {"sphinx", "furo", "myst-parser", "httpx"} <= extra_requires("docs") <= extra_requires("dev")


def test_the_async_extra_brings_sniffio_wherever_it_brings_httpx():
    """httpcore imports sniffio on every request; without it each import fails anew (a sys.path search)."""
    for extra in ("async", "example", "dev"):  # not "docs": autodoc imports httpx, sends nothing
        assert {"httpx", "sniffio"} <= extra_requires(extra), extra


def test_modules_of_an_extra_are_declared_there_and_imported_only_where_the_extra_is_checked():
    for module, (extra, files) in EXTRA_MODULES.items():
        assert normalise(module) in extra_requires(extra)
        assert normalise(module) in extra_requires("dev")
        assert module not in imported_top_level_modules(exclude=files)
