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
from typing import Any

from django.utils.translation import gettext as _
from oauthlib.oauth2.rfc6749.clients.base import Client as _OAuthlibClient

from .conf import bigoauth_settings
from .exceptions import CallbackError

SESSION_KEY = "django_bigoauth.pending"
# A user who opens many tabs keeps at most this many requests pending; the oldest go first.
MAX_PENDING = 10


@dataclasses.dataclass(frozen=True, repr=False)
class PendingAuthorisation:
    provider: str
    user_id: Any
    created: float
    redirect_uri: str
    next_url: str = ""
    code_verifier: str = ""
    site_level: bool = False

    def __repr__(self) -> str:
        return f"<PendingAuthorisation provider={self.provider!r} user={self.user_id!r}>"


class StateError(CallbackError):
    """The state is missing, unknown, expired, already used, or someone else's."""


def begin(
    request, provider_slug: str, *, redirect_uri: str, use_pkce: bool, next_url: str = "", site_level: bool = False
) -> tuple[str, str]:
    """Remember a new authorisation request; returns ``(state, code_challenge or "")``."""
    state = secrets.token_urlsafe(32)
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
    store = _live_entries(request)
    store[state] = dataclasses.asdict(pending)
    while len(store) > MAX_PENDING:
        store.pop(min(store, key=lambda key: store[key]["created"]))
    request.session[SESSION_KEY] = store
    challenge = code_challenge(verifier) if verifier else ""
    return state, challenge


def consume(request, provider_slug: str, state: str | None) -> PendingAuthorisation:
    """Take the pending request named by ``state`` out of the session, or raise ``StateError``."""
    if not state:
        raise StateError(_("The sign-in came back without its state parameter."))
    store = _live_entries(request)
    entry = store.pop(state, None)
    request.session[SESSION_KEY] = store
    if entry is None:
        raise StateError(_("This sign-in link is unknown, has expired or was already used. Please start again."))
    pending = PendingAuthorisation(**entry)
    if pending.provider != provider_slug:
        raise StateError(_("This sign-in was started for another provider. Please start again."))
    if pending.user_id != _user_key(request):
        raise StateError(_("This sign-in was started by another user. Please start again."))
    return pending


def code_challenge(verifier: str) -> str:
    return _OAuthlibClient("").create_code_challenge(verifier, "S256")


def _new_code_verifier() -> str:
    return _OAuthlibClient("").create_code_verifier(64)


def _live_entries(request) -> dict[str, dict]:
    """The pending requests of this session, expired ones dropped."""
    oldest = time.time() - bigoauth_settings.STATE_TTL
    store = request.session.get(SESSION_KEY) or {}
    return {key: entry for key, entry in store.items() if isinstance(entry, dict) and entry.get("created", 0) > oldest}


def _user_key(request) -> Any:
    user = getattr(request, "user", None)
    return user.pk if user is not None and user.is_authenticated else None
