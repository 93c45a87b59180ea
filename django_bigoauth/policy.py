"""The token rules, as plain functions: no database, no HTTP, no clock of their own.

``tokens.py`` (the sync path), the API session and the async API call these, so each rule is
written once: when a token is stale, how long a refresh claim lasts, what a refresh reply
changes in the stored token, and what a 401 from the API allows.
"""

from __future__ import annotations

import dataclasses
import enum
from datetime import datetime, timedelta
from typing import Any

from django.views.decorators.debug import sensitive_variables

__all__ = [
    "CLAIM_MARGIN",
    "After401",
    "TokenState",
    "after_401",
    "claim_ttl",
    "effective_leeway",
    "is_stale",
    "refresh_values",
]

#: Seconds a refresh claim outlives ``HTTP_TIMEOUT``: time for the claimant to store what it got.
CLAIM_MARGIN = 5.0


def effective_leeway(leeway: float, expires_at: datetime | None, obtained_at: datetime | None) -> float:
    """``min(leeway, lifetime / 2)``, where lifetime is what the provider granted when the token was stored.

    With a fixed leeway of 60 s, a token that lives 20 s would be stale on arrival and every
    call would refresh it; half its lifetime keeps such tokens usable for half their life.
    """
    if expires_at is None or obtained_at is None:
        return leeway
    lifetime = (expires_at - obtained_at).total_seconds()
    if lifetime <= 0:
        return leeway
    return min(leeway, lifetime / 2)


def is_stale(expires_at: datetime | None, leeway: float, now: datetime, obtained_at: datetime | None = None) -> bool:
    """True when a token expiring at ``expires_at`` should be refreshed before it is used.

    A token with no known expiry is used until the API answers 401.
    """
    if expires_at is None:
        return False
    return (expires_at - now).total_seconds() <= effective_leeway(leeway, expires_at, obtained_at)


def claim_ttl(http_timeout: float) -> timedelta:
    """How long a refresh claim holds: the provider's whole answer (``HTTP_TIMEOUT``) plus a margin.

    The transport ends every exchange within ``HTTP_TIMEOUT``, so a live claimant always
    stores (or releases) within this bound; a claim older than that belongs to a process that
    died, and the next caller may take it over.
    """
    return timedelta(seconds=float(http_timeout) + CLAIM_MARGIN)


class TokenState(enum.Enum):
    """What a caller waiting for someone else's refresh sees when it looks at the row again."""

    #: the generation moved: a refresh (or a re-link) was stored, use it
    REFRESHED = "refreshed"
    #: someone holds a live claim: keep waiting
    IN_PROGRESS = "in_progress"
    #: a claim this caller saw was released without a new generation: that refresh failed
    FAILED_ELSEWHERE = "failed_elsewhere"
    #: no live claim: this caller may claim
    CLAIMABLE = "claimable"


def waiting_state(
    *,
    seen_generation: int,
    generation: int,
    claim: str,
    claimed_until: datetime | None,
    now: datetime,
    claims_seen: set[str],
) -> TokenState:
    """Classify the row for a caller that wants the refresh of ``seen_generation`` done."""
    if generation != seen_generation:
        return TokenState.REFRESHED
    if claim and claimed_until is not None and claimed_until > now:
        return TokenState.IN_PROGRESS
    if claims_seen and not claim:
        return TokenState.FAILED_ELSEWHERE
    return TokenState.CLAIMABLE


@dataclasses.dataclass(frozen=True)
class RefreshValues:
    """The token fields a refresh reply sets; what the reply leaves out keeps its stored value."""

    access_token: str
    refresh_token: str | None
    token_type: str | None
    expires_at: datetime | None
    scope: str | None

    def __repr__(self) -> str:
        return f"<RefreshValues expires_at={self.expires_at!r}>"


@sensitive_variables()
def refresh_values(reply: Any) -> RefreshValues:
    """How a token reply merges into the stored token.

    A reply without a refresh token keeps the stored one (Zoho never sends one on refresh;
    a provider that rotates sends the new one), likewise without a scope or token type.
    """
    return RefreshValues(
        access_token=reply.access_token,
        refresh_token=reply.refresh_token or None,
        token_type=reply.token_type or None,
        expires_at=reply.expires_at,
        scope=reply.scope or None,
    )


class After401(enum.Enum):
    """What the API session does after a 401."""

    #: hand the 401 to the caller: a refresh would not help, or was just made
    RETURN = "return"
    #: another worker stored a newer token meanwhile: retry once with it, no refresh
    RETRY_WITH_STORED = "retry_with_stored"
    #: force one refresh of the token that was refused, then retry once
    REFRESH = "refresh"


def after_401(
    *,
    same_origin: bool,
    scope_error: bool,
    used_generation: int,
    stored_generation: int | None,
    used_obtained_at: datetime | None,
    now: datetime,
    interval: float,
) -> After401:
    """Whether a 401 may cost a refresh (Zoho allows 10 per refresh token per 10 minutes).

    * a 401 from another origin (a redirect's target) says nothing about our token;
    * a 401 that names a missing scope (Zoho's ``OAUTH_SCOPE_MISMATCH``) is not cured by a
      new token of the same grant;
    * if the stored token is no longer the one that was refused, use it instead;
    * a token obtained less than ``interval`` seconds ago is not refreshed again: five calls
      that get 401 cost at most one refresh.
    """
    if not same_origin or scope_error or stored_generation is None:
        return After401.RETURN
    if stored_generation != used_generation:
        return After401.RETRY_WITH_STORED
    if used_obtained_at is not None and (now - used_obtained_at).total_seconds() < interval:
        return After401.RETURN
    return After401.REFRESH
