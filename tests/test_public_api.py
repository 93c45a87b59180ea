"""The package's shape: exceptions in exceptions.py, ``__all__`` on public modules, docstrings autodoc can read."""

from __future__ import annotations

import ast
import importlib
import pkgutil
import re

import pytest

import django_bigoauth
from django_bigoauth import exceptions

# Modules that are the app's plumbing rather than its API: Django finds them by name.
NOT_PUBLIC = {
    "django_bigoauth.apps",
    "django_bigoauth.urls",
    "django_bigoauth.migrations",
    "django_bigoauth.management",
    "django_bigoauth.management.commands",
}


def package_modules() -> list[str]:
    names = ["django_bigoauth"]
    for info in pkgutil.walk_packages(django_bigoauth.__path__, "django_bigoauth."):
        if ".migrations." in info.name or info.name.rsplit(".", 1)[-1].startswith("_"):
            continue
        if info.name.startswith("django_bigoauth.management.commands."):
            continue  # commands: Django runs them by name
        names.append(info.name)
    return names


def syntax_tree(name: str) -> ast.Module:
    with open(importlib.import_module(name).__file__, encoding="utf-8") as source:
        return ast.parse(source.read())


PUBLIC = [name for name in package_modules() if name not in NOT_PUBLIC]


@pytest.mark.parametrize("name", PUBLIC)
def test_every_public_module_says_what_it_exports(name):
    module = importlib.import_module(name)
    assert isinstance(getattr(module, "__all__", None), list), f"{name} has no __all__"
    missing = [item for item in module.__all__ if not hasattr(module, item)]
    assert missing == [], f"{name}.__all__ names what it does not have"
    assert len(set(module.__all__)) == len(module.__all__)


def test_every_exception_is_defined_in_exceptions_py():
    elsewhere = []
    for name in package_modules():
        tree = syntax_tree(name)
        for node in ast.walk(tree):
            if isinstance(node, ast.ClassDef) and name != "django_bigoauth.exceptions":
                cls = getattr(importlib.import_module(name), node.name, None)
                if isinstance(cls, type) and issubclass(cls, BaseException):
                    elsewhere.append(f"{name}.{node.name}")
    assert elsewhere == []


@pytest.mark.parametrize(
    ("old_home", "name"),
    [
        ("django_bigoauth.state", "StateError"),
        ("django_bigoauth.state", "TooManyPending"),
        ("django_bigoauth.providers", "UnknownProvider"),
        ("django_bigoauth.operations", "OperationError"),
    ],
)
def test_moved_exceptions_are_still_importable_from_where_they_were(old_home, name):
    moved = getattr(importlib.import_module(old_home), name)
    assert moved is getattr(exceptions, name)
    assert name in importlib.import_module(old_home).__all__
    assert issubclass(moved, exceptions.BigOAuthError)


def test_every_exception_is_in_the_exceptions_modules_all():
    defined = {
        name for name, value in vars(exceptions).items() if isinstance(value, type) and issubclass(value, Exception)
    }
    assert defined == set(exceptions.__all__)


# A Markdown table row ("| a | b |") or its rule ("|---|---|"): autodoc would print it as a paragraph of pipes.
MARKDOWN_TABLE = re.compile(r"^\s*\|.*\|\s*$", re.M)


def test_no_docstring_holds_a_markdown_table():
    offenders = []
    for name in package_modules():
        tree = syntax_tree(name)
        for node in ast.walk(tree):
            if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
                docstring = ast.get_docstring(node) or ""
                if MARKDOWN_TABLE.search(docstring):
                    offenders.append(f"{name}:{getattr(node, 'name', '<module>')}")
    assert offenders == []


def test_there_is_one_describe_expiry_and_one_account_row():
    from django_bigoauth import humanize, operations, views

    definitions = {"describe_expiry": [], "AccountRow": []}
    for name in package_modules():
        tree = syntax_tree(name)
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.ClassDef)) and node.name in definitions:
                definitions[node.name].append(name)
    assert definitions == {
        "describe_expiry": ["django_bigoauth.humanize"],
        "AccountRow": ["django_bigoauth.operations"],
    }
    assert views.AccountRow is operations.AccountRow  # still importable where it was
    assert humanize.describe_expiry is operations.describe_expiry
