"""The one revoke path, used by ``account.revoke()``, the admin, the disconnect view and the command.

A revoke takes the same claim as a refresh (``store.try_claim``), so the two never overlap:
a revoke that arrives during a refresh waits for it and revokes the refresh token that
refresh stored; a refresh that arrives during a revoke waits and then finds the account
revoked. The revoke removes exactly the token it revoked: a re-link that lands while the
revoke is in flight writes a new generation, which the revoke's conditional delete leaves
alone, so the new link survives, active and untouched.
"""

from __future__ import annotations

import dataclasses
import enum
import logging
import time

from django.utils import timezone
from django.views.decorators.debug import sensitive_variables

from . import client, policy, signals, store
from .asyncsupport import off_loop, require_async_extra
from .conf import bigoauth_settings
from .exceptions import InvalidGrant, ProviderError, RevokeError, TokenDecryptionError, UnsafeURL
from .models import LinkedAccount, Token
from .providers import Provider

__all__ = ["RevokeOutcome", "RevokeResult", "arevoke_account", "revoke_account"]

logger = logging.getLogger("django_bigoauth")

_POLL = 0.05


class RevokeOutcome(enum.Enum):
    #: the provider confirmed (or said it no longer knows the token); the token is deleted here
    REVOKED = "revoked"
    #: the provider has no revoke endpoint: the token is deleted here only
    REMOVED_LOCALLY = "removed_locally"
    #: there was no token the provider could be sent (none, or one no key decrypts): deleted here only
    NO_TOKEN_TO_REVOKE = "no_token_to_revoke"
    #: the account was revoked before; nothing was done
    ALREADY_REVOKED = "already_revoked"
    #: the old token was revoked, but the account was linked again meanwhile: the new link stays
    SUPERSEDED = "superseded"


@dataclasses.dataclass(frozen=True)
class RevokeResult:
    """What ``revoke_account`` did; the view, the admin and the command each word it their way.

    Truthy when the provider confirmed, as ``account.revoke()``'s boolean result used to be.
    """

    account: LinkedAccount
    outcome: RevokeOutcome
    #: the provider has a revoke endpoint at all
    supported: bool
    #: the provider confirmed the revocation of the token that was sent
    confirmed: bool = False

    @property
    def already_revoked(self) -> bool:
        return self.outcome is RevokeOutcome.ALREADY_REVOKED

    def __bool__(self) -> bool:
        return self.confirmed


@sensitive_variables()
def revoke_account(account: LinkedAccount) -> RevokeResult:
    """Revoke the account's current token at the provider (when it can) and remove it here.

    If the provider refuses or cannot be reached, ``RevokeError`` is raised and nothing
    changes here, so the operator can try again (or delete the account to drop the tokens
    anyway). RFC 7009's ``token_type_hint`` says which token is sent: the refresh token, whose
    revocation kills its access tokens too (Zoho), or the access token when there is no other.
    """
    provider = account.provider_instance
    supported = provider.supports_revoke
    route = store.route(account.pk)
    db = route.db
    claimed = _claim(account, db)
    if claimed is None:  # no token row at all
        already = LinkedAccount.objects.using(db).filter(pk=account.pk, status=LinkedAccount.Status.REVOKED).exists()
        store.remove_revoked(db, account.pk, None)
        account.status = LinkedAccount.Status.REVOKED
        outcome = RevokeOutcome.ALREADY_REVOKED if already else RevokeOutcome.NO_TOKEN_TO_REVOKE
        if not already:
            signals.account_revoked.send(sender=LinkedAccount, account=account, confirmed=False)
        return RevokeResult(account, outcome, supported)
    claim = claimed[0]
    try:
        outcome = _revoke_at_provider(account, provider, db) if supported else RevokeOutcome.REMOVED_LOCALLY
    except BaseException:
        store.release_claim(db, account.pk, claim)
        raise
    if not store.remove_revoked(db, account.pk, claimed):
        logger.info(
            "Account %s (%s) was linked again while its old token was being revoked; the new link stays",
            account.pk,
            account.provider,
        )
        return RevokeResult(account, RevokeOutcome.SUPERSEDED, supported, confirmed=outcome is RevokeOutcome.REVOKED)
    account.status = LinkedAccount.Status.REVOKED
    if outcome is RevokeOutcome.REVOKED:
        logger.info("Revoked account %s (%s) at the provider and removed its tokens", account.pk, account.provider)
    else:
        logger.info(
            "Removed the tokens of account %s (%s) here only (%s)",
            account.pk,
            account.provider,
            "no revoke endpoint" if outcome is RevokeOutcome.REMOVED_LOCALLY else "no token to send",
        )
    confirmed = outcome is RevokeOutcome.REVOKED
    signals.account_revoked.send(sender=LinkedAccount, account=account, confirmed=confirmed)
    return RevokeResult(account, outcome, supported, confirmed=confirmed)


async def arevoke_account(account: LinkedAccount) -> RevokeResult:
    """``revoke_account()`` for async code: the whole revoke (claim, provider request, removal) runs
    in a worker thread, off the event loop. Same result, exceptions and signal."""
    require_async_extra()
    return await off_loop(revoke_account)(account)


def _claim(account: LinkedAccount, db: str) -> tuple[str, int] | None:
    """Claim the current token (waiting for a refresh in progress); ``None`` when there is no token."""
    ttl = policy.claim_ttl(bigoauth_settings.HTTP_TIMEOUT)
    deadline = time.monotonic() + ttl.total_seconds()
    while True:
        state = store.read_claim_state(db, account.pk)
        if state is None:
            return None
        claim = store.try_claim(db, account.pk, state.generation, timezone.now(), ttl, for_refresh=False)
        if claim is not None:
            return claim, state.generation
        if time.monotonic() >= deadline:
            raise RevokeError(
                f"Account {account.pk} ({account.provider}) is being refreshed or revoked elsewhere; "
                "nothing was revoked. Try again shortly."
            )
        time.sleep(_POLL)


@sensitive_variables()
def _revoke_at_provider(account: LinkedAccount, provider: Provider, db: str) -> RevokeOutcome:
    try:
        token: Token | None = store.read_token(db, account.pk)
    except TokenDecryptionError:
        logger.warning(
            "Revoking account %s (%s): its token cannot be decrypted; removing it locally only",
            account.pk,
            account.provider,
        )
        return RevokeOutcome.NO_TOKEN_TO_REVOKE
    if token is None:
        return RevokeOutcome.NO_TOKEN_TO_REVOKE
    if token.refresh_token:
        secret, hint = token.refresh_token, "refresh_token"
    else:
        secret, hint = token.access_token, "access_token"
    try:
        client.revoke(provider, secret, token_type_hint=hint, accounts_server=token.account.accounts_server)
    except InvalidGrant as exc:
        # Typically an account that needs re-authorisation: its refresh token is dead
        # already, so the grant is gone at the provider and only our copy remains.
        logger.info(
            "Account %s (%s): the provider no longer knows its token (%s)", account.pk, account.provider, exc.error_code
        )
    except (ProviderError, UnsafeURL) as exc:
        logger.warning("Revoking account %s (%s) failed: %s", account.pk, account.provider, exc)
        raise RevokeError(f"{provider.display_name} did not revoke account {account.pk}: {exc}") from exc
    return RevokeOutcome.REVOKED
