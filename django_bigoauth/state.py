"""OAuth ``state`` and PKCE verifiers, kept in the user's session.

Each authorisation request gets a random state (256 bits) that is bound to the session, the
user and the provider, expires after ``STATE_TTL`` seconds and is removed the first time the
callback presents it, whatever happens next. The PKCE verifier and the exact redirect_uri
travel with it, so the code exchange sends the same redirect_uri as the authorise request.
"""

from __future__ import annotations

import dataclasses
import secrets
import time

from django.utils.translation import gettext as _
from django.views.decorators.debug import sensitive_variables
from oauthlib.oauth2.rfc6749.clients.base import Client as _OAuthlibClient

from .conf import bigoauth_settings
from .exceptions import CallbackError

SESSION_KEY = "django_bigoauth.pending"
# A user who opens many tabs keeps at most this many requests pending; the oldest go first.
MAX_PENDING = 10
# A longer ``next`` is dropped rather than stored: it is a URL of this site, never that long.
MAX_NEXT_URL_LENGTH = 2000


@dataclasses.dataclass(frozen=True, repr=False)
class PendingAuthorisation:
    provider: str
    user_id: str | None
    created: float
    redirect_uri: str
    next_url: str = ""
    code_verifier: str = ""
    site_level: bool = False

    def __repr__(self) -> str:
        return f"<PendingAuthorisation provider={self.provider!r} user={self.user_id!r}>"


_FIELDS = tuple(field.name for field in dataclasses.fields(PendingAuthorisation))


class StateError(CallbackError):
    """The state is missing, unknown, expired, already used, or someone else's."""


@sensitive_variables()
def begin(
    request, provider_slug: str, *, redirect_uri: str, use_pkce: bool, next_url: str = "", site_level: bool = False
) -> tuple[str, str]:
    """Remember a new authorisation request; returns ``(state, code_challenge or "")``.

    The caller checks ``next_url`` against the allowed hosts; it is checked again when used.
    """
    state = secrets.token_urlsafe(32)
    if len(next_url) > MAX_NEXT_URL_LENGTH:
        next_url = ""
    verifier = _new_code_verifier() if use_pkce else ""
    pending = PendingAuthorisation(
        provider=provider_slug,
        user_id=_user_key(request),
        created=time.time(),
        redirect_uri=redirect_uri,
        next_url=next_url,
        code_verifier=verifier,
        site_level=site_level,
    )
    store, _pruned = _live_entries(request)
    store[state] = dataclasses.asdict(pending)
    while len(store) > MAX_PENDING:
        store.pop(min(store, key=lambda key: store[key]["created"]))
    request.session[SESSION_KEY] = store
    challenge = code_challenge(verifier) if verifier else ""
    return state, challenge


@sensitive_variables()
def consume(request, provider_slug: str, state: str | None) -> PendingAuthorisation:
    """Take the pending request named by ``state`` out of the session, or raise ``StateError``.

    The entry is removed before it is checked, so a state is used at most once whatever
    happens next (a failed exchange needs a new authorisation request, like a used code).
    """
    if not state:
        raise StateError(_("The sign-in came back without its state parameter."))
    store, pruned = _live_entries(request)
    entry = store.pop(state, None)
    if entry is not None or pruned:
        # Only write when something changed: a stray callback must not create a session.
        request.session[SESSION_KEY] = store
    if entry is None:
        raise StateError(_unknown_state_message())
    try:
        pending = PendingAuthorisation(**{name: entry[name] for name in _FIELDS if name in entry})
    except TypeError:  # an entry written by another version of this app
        raise StateError(_unknown_state_message()) from None
    if pending.provider != provider_slug:
        raise StateError(_("This sign-in was started for another provider. Please start again."))
    if pending.user_id != _user_key(request):
        raise StateError(_("This sign-in was started by another user. Please start again."))
    return pending


def _unknown_state_message() -> str:
    return _("This sign-in link is unknown, has expired or was already used. Please start again.")


def code_challenge(verifier: str) -> str:
    """The S256 challenge of ``verifier`` (RFC 7636 section 4.2)."""
    return _OAuthlibClient("").create_code_challenge(verifier, "S256")


def _new_code_verifier() -> str:
    return _OAuthlibClient("").create_code_verifier(64)


def _live_entries(request) -> tuple[dict[str, dict], bool]:
    """The pending requests of this session with expired ones dropped, and whether any were."""
    oldest = time.time() - bigoauth_settings.STATE_TTL
    store = request.session.get(SESSION_KEY)
    if not isinstance(store, dict):
        return {}, bool(store)
    live = {key: entry for key, entry in store.items() if isinstance(entry, dict) and entry.get("created", 0) > oldest}
    return live, len(live) != len(store)


def _user_key(request) -> str | None:
    """The user's pk as text: sessions are JSON, and a UUID pk must survive the round trip."""
    user = getattr(request, "user", None)
    return str(user.pk) if user is not None and user.is_authenticated else None
