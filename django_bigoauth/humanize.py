"""How long a token has left, as a person reads it: the one wording for pages, the admin and commands."""

from __future__ import annotations

from datetime import datetime

from django.utils import timezone
from django.utils.timesince import timesince, timeuntil
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

__all__ = ["describe_expiry"]


def describe_expiry(expires_at: datetime | None, now: datetime | None = None) -> str:
    """ "in 59 minutes", "expired 3 minutes ago", "in 42 seconds" or "no expiry".

    Django separates the number and the unit with a no-break space (``59\\xa0minutes``), as
    on its own pages; a command that prints a table replaces it with a plain space.
    """
    if expires_at is None:
        return _("no expiry")
    now = now or timezone.now()
    seconds = (expires_at - now).total_seconds()
    if seconds > 0:
        return _("in %(time)s") % {"time": _duration(seconds, timeuntil(expires_at, now, depth=1))}
    return _("expired %(time)s ago") % {"time": _duration(-seconds, timesince(expires_at, now, depth=1))}


def _duration(seconds: float, django_text: str) -> str:
    # Django's timesince says "0 minutes" below a minute; seconds matter around the refresh leeway.
    if seconds < 60:
        count = int(seconds)
        return ngettext("%(count)d second", "%(count)d seconds", count) % {"count": count}
    return django_text
