"""Sphinx configuration of the django_bigoauth documentation (``make docs``).

Prose pages are Markdown (MyST), so that they read the same on GitHub and on the site; the
reference pages (checks, signals, exceptions, the public API) are reStructuredText made by
autodoc from the code's docstrings, so that they cannot drift from it.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import django
from django.conf import settings

DOCS = Path(__file__).resolve().parent
ROOT = DOCS.parent
sys.path.insert(0, str(ROOT))

# autodoc imports the package, whose models need a configured Django. The smallest settings
# that load the app; nothing here opens a database.
if not settings.configured:
    settings.configure(
        SECRET_KEY="sphinx-autodoc-only",  # noqa: S106 (imports the models, serves nothing)
        INSTALLED_APPS=["django.contrib.contenttypes", "django.contrib.auth", "django_bigoauth"],
        DATABASES={"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}},
        USE_TZ=True,
    )
django.setup()

project = "django_bigoauth"
author = "the django_bigoauth maintainers"
copyright = "django_bigoauth maintainers, MIT licence"
# Read, not imported from the package, as setup.py does.
_version = re.search(r'^__version__ = "([^"]+)"', (ROOT / "django_bigoauth" / "__init__.py").read_text(), re.M)
assert _version, "django_bigoauth/__init__.py names no __version__"
release = version = _version[1]

extensions = [
    "myst_parser",
    "sphinx.ext.autodoc",
    "sphinx.ext.viewcode",
]

source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
root_doc = "index"
exclude_patterns = ["_build"]

# Markdown: heading anchors as GitHub makes them, so that a link such as
# ``tokens.md#refreshing-exactly-once`` works on GitHub and here alike.
myst_heading_anchors = 4
myst_enable_extensions = ["deflist"]

# autodoc: members in the order of the source, type hints in the signature.
autodoc_member_order = "bysource"
autodoc_typehints = "signature"
autodoc_typehints_format = "short"
autodoc_preserve_defaults = True

# -n (nitpicky) is on in `make docs`: every reference to the project's own objects must resolve.
# There is no intersphinx (CI has no network to fetch other projects' inventories), so names of
# the standard library, Django, requests and httpx are written out but not linked.
nitpick_ignore_regex = [
    (r"py:.*", r"(django|requests|httpx|urllib3|asgiref|collections|datetime|enum|typing)\..*"),
    (r"py:.*", r"(Exception|ValueError|LookupError|str|bytes|int|float|bool|dict|list|tuple|Any|None)"),
]

html_theme = "furo"
html_title = f"django_bigoauth {release}"
html_static_path: list[str] = []
