"""OAuth ``state`` and PKCE verifiers: one database row per authorisation request.

Each request gets a random state (256 bits). Its row (``models.PendingAuthorisation``) is
keyed by the state's SHA-256, so the state itself is stored nowhere; it is bound to the
browser, the user and the provider, expires after ``STATE_TTL`` seconds, and is deleted the
first time the callback presents it, whatever happens next. The PKCE verifier (Fernet
ciphertext in the row) and the exact redirect_uri travel with it, so the code exchange sends
the same redirect_uri as the authorise request. An OpenID Connect nonce is kept as its SHA-256
only: the ID token must carry the nonce whose digest this is.

The session holds one random value per browser, the *binding*, and nothing else: rows carry
its hash, and a state presented by a browser whose session holds another binding is unknown
there. Nothing in the session is secret, so sessions the browser can read (the
``signed_cookies`` backend) give away neither a state nor a verifier.

Consuming is one conditional ``DELETE``: two requests presenting the same state at once
(the callback submitted twice, two tabs) both find the row, but only the one whose
``DELETE`` removed it goes on to the provider; the other gets ``StateError``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import secrets
from datetime import datetime, timedelta
from typing import Literal, overload

from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.debug import sensitive_variables
from oauthlib.oauth2.rfc6749.clients.base import Client as _OAuthlibClient

from . import crypto
from .conf import bigoauth_settings
from .exceptions import StateError, TokenDecryptionError, TooManyPending
from .models import PendingAuthorisation
from .redaction import clean_text

# StateError and TooManyPending live in exceptions.py; importing them from here still works.
__all__ = ["SESSION_KEY", "Authorisation", "StateError", "TooManyPending", "begin", "code_challenge", "consume"]

#: where the session keeps this browser's binding value (random, not secret)
SESSION_KEY = "django_bigoauth.browser"
#: where an earlier version kept every pending request, verifier included; dropped on sight
LEGACY_SESSION_KEY = "django_bigoauth.pending"
# A browser that opens many tabs keeps at most this many requests pending; the oldest goes first.
MAX_PENDING = 10
# A longer ``next`` is dropped rather than stored: it is a URL of this site, never that long.
MAX_NEXT_URL_LENGTH = 2000
_BINDING_BYTES = 32


@dataclasses.dataclass(frozen=True, repr=False)
class Authorisation:
    """What the callback needs of a consumed request; the verifier is plaintext again here."""

    provider: str
    user_pk: str | None
    redirect_uri: str
    next_url: str = ""
    code_verifier: str = ""
    site_level: bool = False
    started_by_post: bool = True
    #: SHA-256 of the OpenID Connect nonce sent with the request; "" when none was
    nonce_digest: str = ""

    def __repr__(self) -> str:
        return f"<Authorisation provider={self.provider!r} user={self.user_pk!r} site_level={self.site_level}>"


@sensitive_variables()
def begin(
    request: HttpRequest,
    provider_slug: str,
    *,
    redirect_uri: str,
    use_pkce: bool,
    next_url: str = "",
    site_level: bool = False,
    started_by_post: bool = True,
    nonce: str = "",
) -> tuple[str, str]:
    """Remember a new authorisation request; returns ``(state, code_challenge or "")``.

    ``nonce``: the OpenID Connect nonce the request sends, kept as its digest for the callback.

    At most ``MAX_PENDING`` requests stay pending per browser: at the cap, the oldest one is
    deleted, unless this request was started by a GET and the oldest by a POST, in which
    case nothing is stored and ``TooManyPending`` is raised. Expired rows (of any browser)
    are deleted here too, in one statement.

    The caller checks ``next_url`` against the allowed hosts; it is checked again when used.
    """
    now = timezone.now()
    _expired(now).delete()
    browser_hash = _digest(_binding(request, create=True))
    pending = list(
        PendingAuthorisation.objects.filter(browser_hash=browser_hash)
        .order_by("created_at", "pk")
        .values_list("pk", "started_by_post")
    )
    evict = pending[: max(0, len(pending) - MAX_PENDING + 1)]
    if evict:
        if not started_by_post and any(by_post for _pk, by_post in evict):
            raise TooManyPending()
        PendingAuthorisation.objects.filter(pk__in=[pk for pk, _by_post in evict]).delete()

    state = secrets.token_urlsafe(32)
    verifier = _new_code_verifier() if use_pkce else ""
    PendingAuthorisation.objects.create(
        state_hash=_digest(state),
        browser_hash=browser_hash,
        provider=provider_slug,
        user_pk=_user_key(request),
        site_level=site_level,
        redirect_uri=redirect_uri,
        # Dropped rather than stored when it is too long or holds what no column takes (NUL):
        # it is a URL of this site, and never legitimately like that.
        next_url=next_url if len(next_url) <= MAX_NEXT_URL_LENGTH and clean_text(next_url) == next_url else "",
        encrypted_code_verifier=crypto.encrypt(verifier) if verifier else "",
        nonce=_digest(nonce) if nonce else "",
        started_by_post=started_by_post,
        created_at=now,
    )
    challenge = code_challenge(verifier) if verifier else ""
    return state, challenge


@sensitive_variables()
def consume(request: HttpRequest, provider_slug: str, state: str | None) -> Authorisation:
    """Take the pending request named by ``state`` out of the database, or raise ``StateError``.

    The row is deleted before it is checked, so a state is used at most once whatever happens
    next (a failed exchange needs a new authorisation request, like a used code). Only the
    request whose ``DELETE`` removed the row gets it; a concurrent one with the same state
    is refused as "already used". A state of another browser is unknown here, and left alone.
    """
    if not state:
        raise StateError(_("The sign-in came back without its state parameter."))
    binding = _binding(request, create=False)
    if binding is None:
        raise StateError(_unknown_state_message())
    row = PendingAuthorisation.objects.filter(state_hash=_digest(state), browser_hash=_digest(binding)).first()
    if row is None:
        raise StateError(_unknown_state_message())
    deleted, _per_model = PendingAuthorisation.objects.filter(pk=row.pk).delete()
    if not deleted:  # another request with this state got there first
        raise StateError(_unknown_state_message())
    if row.created_at <= timezone.now() - _ttl():
        raise StateError(_unknown_state_message())
    if row.provider != provider_slug:
        raise StateError(_("This sign-in was started for another provider. Please start again."))
    if row.user_pk != _user_key(request):
        raise StateError(_("This sign-in was started by another user. Please start again."))
    try:
        verifier = crypto.decrypt(row.encrypted_code_verifier) if row.encrypted_code_verifier else ""
    except TokenDecryptionError:  # the key it was written with is gone
        raise StateError(_unknown_state_message()) from None
    return Authorisation(
        provider=row.provider,
        user_pk=row.user_pk,
        redirect_uri=row.redirect_uri,
        next_url=row.next_url,
        code_verifier=verifier,
        site_level=row.site_level,
        started_by_post=row.started_by_post,
        nonce_digest=row.nonce,
    )


def _unknown_state_message() -> str:
    return _("This sign-in link is unknown, has expired or was already used. Please start again.")


def new_nonce() -> str:
    """A fresh OpenID Connect nonce (256 bits)."""
    return secrets.token_urlsafe(32)


@sensitive_variables()
def code_challenge(verifier: str) -> str:
    """The S256 challenge of ``verifier`` (RFC 7636 section 4.2)."""
    return _OAuthlibClient("").create_code_challenge(verifier, "S256")


def _new_code_verifier() -> str:
    return _OAuthlibClient("").create_code_verifier(64)


def _ttl() -> timedelta:
    return timedelta(seconds=bigoauth_settings.STATE_TTL)


def _expired(now: datetime) -> QuerySet[PendingAuthorisation]:
    return PendingAuthorisation.objects.filter(created_at__lte=now - _ttl())


@sensitive_variables()
def _digest(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


@overload
def _binding(request: HttpRequest, *, create: Literal[True]) -> str: ...
@overload
def _binding(request: HttpRequest, *, create: Literal[False]) -> str | None: ...
def _binding(request: HttpRequest, *, create: bool) -> str | None:
    """This browser's binding value from the session; a new one when asked to and there is none.

    Only ``begin()`` creates one: a stray callback must not create a session.
    """
    session = request.session
    binding = session.get(SESSION_KEY)
    if isinstance(binding, str) and len(binding) >= 43:
        return binding
    if not create:
        return None
    binding = secrets.token_urlsafe(_BINDING_BYTES)
    session[SESSION_KEY] = binding
    session.pop(LEGACY_SESSION_KEY, None)
    return binding


def _user_key(request: HttpRequest) -> str | None:
    """The user's pk as text, so any pk type (a UUID, say) compares the same way."""
    user = getattr(request, "user", None)
    return str(user.pk) if user is not None and user.is_authenticated else None
