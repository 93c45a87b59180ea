"""How the ``bigoauth_*`` commands report: an error as a one-line failure (non-zero exit), each outcome once."""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager

from django.core.exceptions import ImproperlyConfigured
from django.core.management.base import CommandError

from django_bigoauth.exceptions import BigOAuthError

APP_LOGGER = "django_bigoauth"


@contextmanager
def reported_as_command_error() -> Iterator[None]:
    """Re-raise a BigOAuthError or a configuration error as ``CommandError``, on one line."""
    try:
        yield
    except (BigOAuthError, ImproperlyConfigured) as exc:
        raise CommandError(one_line(str(exc))) from exc


def one_line(text: str) -> str:
    return " ".join(text.split())


class _NotTheAppsRecords(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.name == APP_LOGGER or record.name.startswith(APP_LOGGER + "."))


@contextmanager
def app_log_off_the_terminal(verbosity: int) -> Iterator[None]:
    """While a command runs, keep the app's log records off the terminal it prints to.

    The command prints each outcome itself, on one line; a site whose logging also writes
    ``django_bigoauth`` records to the console (as the example project does) would print each
    failure twice more. Only handlers that write to this process's stdout or stderr are
    muted, and only for the app's records: files, mail and error trackers get every record.
    ``--verbosity 3`` keeps them all.
    """
    if verbosity >= 3:
        yield
        return
    terminals = {id(stream) for stream in (sys.stdout, sys.stderr, sys.__stdout__, sys.__stderr__) if stream}
    handlers: list[logging.Handler] = []
    logger: logging.Logger | None = logging.getLogger(APP_LOGGER)
    while logger is not None:
        handlers.extend(
            handler
            for handler in logger.handlers
            if isinstance(handler, logging.StreamHandler) and id(getattr(handler, "stream", None)) in terminals
        )
        logger = logger.parent if logger.propagate else None
    muted = _NotTheAppsRecords()
    for handler in handlers:
        handler.addFilter(muted)
    try:
        yield
    finally:
        for handler in handlers:
            handler.removeFilter(muted)
