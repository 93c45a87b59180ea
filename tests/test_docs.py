"""The documentation in ``docs/`` says what the code does, and builds with warnings as errors.

The reference pages (checks, signals, exceptions, the public API) are made from docstrings by
autodoc. The guides are prose: here their tables are compared with the code they describe, their
settings examples are checked, and the README's links are followed.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from django_bigoauth import signals
from django_bigoauth.checks import check_settings
from django_bigoauth.conf import DEFAULTS
from django_bigoauth.providers.base import Provider
from django_bigoauth.providers.biggerplate import BiggerplateProvider
from django_bigoauth.providers.bigin import DATA_CENTRES, BiginProvider
from django_bigoauth.providers.generic import OAuth2Provider, OpenIDConnectProvider

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
PACKAGE = ROOT / "django_bigoauth"


def page(name: str) -> str:
    return (DOCS / name).read_text()


def section(text: str, heading: str) -> str:
    """The text under ``heading`` (a whole Markdown heading line), up to the next heading of its level or above."""
    level = len(heading) - len(heading.lstrip("#"))
    after = text.split(f"\n{heading}\n", 1)[1]
    return re.split(rf"\n#{{1,{level}}} ", after, maxsplit=1)[0]


def first_column(table_text: str) -> set[str]:
    """The backquoted names in the first column of the Markdown table rows in ``table_text``."""
    names: set[str] = set()
    for line in table_text.splitlines():
        if line.startswith("| `"):
            names.update(re.findall(r"`([A-Z0-9_]+)`", line.split("|")[1]))
    return names


def python_blocks(text: str) -> list[str]:
    return re.findall(r"```python\n(.*?)```", text, re.S)


# -- the settings reference ------------------------------------------------------------------------


def test_the_settings_page_lists_every_bigoauth_key_and_no_other():
    assert first_column(section(page("settings.md"), "## `BIGOAUTH`")) == set(DEFAULTS)


def test_the_settings_page_lists_every_key_a_provider_declares_and_no_other():
    classes = (Provider, BiginProvider, BiggerplateProvider, OAuth2Provider, OpenIDConnectProvider)
    declared = set().union(*(cls.settings_keys for cls in classes))
    assert first_column(section(page("settings.md"), '## Per provider: `BIGOAUTH["PROVIDERS"][slug]`')) == declared


# -- providers -------------------------------------------------------------------------------------


def test_the_data_centre_table_is_bigins_own():
    rows = {}
    for line in section(page("providers.md"), "### Bigin's data centres").splitlines():
        cells = [cell.strip() for cell in line.strip("|").split("|")]
        if len(cells) == 3 and re.fullmatch(r"`[a-z]{2}`", cells[0]):
            rows[cells[0].strip("`")] = (cells[1], cells[2].split()[0])
    assert rows == DATA_CENTRES


# -- views and templates ---------------------------------------------------------------------------


def test_the_template_blocks_table_names_every_block_a_site_can_fill():
    in_templates = set()
    for template in (PACKAGE / "templates" / "django_bigoauth").glob("*.html"):
        in_templates |= set(re.findall(r"{% block (bigoauth_\w+) %}", template.read_text()))
    documented = set(re.findall(r"`(bigoauth_\w+)`", section(page("views.md"), "## Templates")))
    assert documented == in_templates


# -- management commands ---------------------------------------------------------------------------


def test_every_management_command_has_a_section():
    commands = {path.stem for path in (PACKAGE / "management" / "commands").glob("bigoauth_*.py")}
    documented = set(re.findall(r"^## `(bigoauth_\w+)`", page("commands.md"), re.M))
    assert documented == commands


# -- the reference pages are autodoc ---------------------------------------------------------------


def test_the_signals_page_documents_every_signal():
    text = page("signals-and-exceptions.rst")
    assert set(re.findall(r"^\.\. autodata:: django_bigoauth\.signals\.(\w+)$", text, re.M)) == set(signals.__all__)
    assert re.search(r"^\.\. automodule:: django_bigoauth\.exceptions\n   :members:", text, re.M)


# -- settings examples pass the system checks ------------------------------------------------------


def fernet_env(name: str) -> str:
    """What ``env(...)`` gives the examples: a real key where one is wanted, a stand-in secret elsewhere."""
    return Fernet.generate_key().decode() if "KEY" in name else "a-secret-from-the-environment"


fernet_env.list = lambda name: [Fernet.generate_key().decode()]  # type: ignore[attr-defined]


@pytest.mark.parametrize("source", ["README.md", "docs/quickstart.md", "docs/tutorial.md"])
def test_the_quick_start_settings_are_clean(settings, source):
    (block,) = [block for block in python_blocks((ROOT / source).read_text()) if "BIGOAUTH = {" in block]
    settings_part = block.split("# urls.py", 1)[0]
    namespace = {"env": fernet_env}
    exec(compile(settings_part, source, "exec"), namespace)
    assert "django_bigoauth" in namespace["INSTALLED_APPS"]
    settings.BIGOAUTH = namespace["BIGOAUTH"]
    assert check_settings() == []


# -- the README sends readers to the docs ----------------------------------------------------------


def test_the_readme_keeps_the_two_commands_and_links_only_to_files_that_exist():
    readme = (ROOT / "README.md").read_text()
    assert "make demo" in readme and "make test" in readme and "make docs" in readme
    targets = [target for target in re.findall(r"\]\(([^)#]+)(?:#[^)]*)?\)", readme) if "://" not in target]
    assert targets and all((ROOT / target).is_file() for target in targets), targets
    pages = {path.relative_to(ROOT).as_posix() for path in [*DOCS.glob("*.md"), *DOCS.glob("*.rst")]}
    assert pages - set(targets) <= {"docs/index.md", "docs/changelog.md"}, "a page the README does not link to"


def test_every_local_link_between_pages_names_an_existing_file():
    for path in DOCS.glob("*.md"):
        for target in re.findall(r"\]\(([^)#]+)(?:#[^)]*)?\)", path.read_text()):
            if "://" not in target and not target.startswith("mailto:"):
                assert (path.parent / target).exists(), f"{path.name}: {target}"


# -- the site builds -------------------------------------------------------------------------------


@pytest.mark.slow
def test_the_documentation_builds_with_warnings_as_errors(tmp_path):
    if shutil.which("sphinx-build", path=str(Path(sys.executable).parent)) is None:
        pytest.skip("Sphinx is not installed (the dev and docs extras install it)")
    result = subprocess.run(
        [sys.executable, "-m", "sphinx", "-n", "-W", "--keep-going", "-q", "-b", "html", str(DOCS), str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert (tmp_path / "index.html").is_file()
    api = (tmp_path / "api.html").read_text()
    assert "get_access_token" in api and "create_session" in api  # autodoc found the code
    assert "django_bigoauth.W004" in (tmp_path / "checks.html").read_text()
