"""How the ``bigoauth_*`` commands turn the app's errors into a one-line failure (non-zero exit)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from django.core.exceptions import ImproperlyConfigured
from django.core.management.base import CommandError

from django_bigoauth.exceptions import BigOAuthError


@contextmanager
def reported_as_command_error() -> Iterator[None]:
    """Re-raise a BigOAuthError or a configuration error as ``CommandError``, on one line."""
    try:
        yield
    except (BigOAuthError, ImproperlyConfigured) as exc:
        raise CommandError(one_line(str(exc))) from exc


def one_line(text: str) -> str:
    return " ".join(text.split())
