"""The one revoke path, used by ``account.revoke()``, the admin, the disconnect view and the command."""

from __future__ import annotations

import logging

from django.db import transaction
from django.utils import timezone

from . import client, signals
from .exceptions import InvalidGrant, ProviderError, RevokeError, TokenDecryptionError
from .models import LinkedAccount, Token

logger = logging.getLogger("django_bigoauth")


def revoke_account(account: LinkedAccount) -> bool:
    """Revoke the account's token at the provider (when it can) and remove it here.

    Returns True when the provider confirmed (or answered that it no longer knows the token),
    False when the provider has no revoke endpoint or there was no token to revoke. If the
    provider refuses or cannot be reached, ``RevokeError`` is raised and nothing changes here,
    so the operator can try again (or delete the account to drop the tokens anyway).
    """
    provider = account.provider_instance
    confirmed = False
    try:
        token = Token.objects.filter(account_id=account.pk).first()
    except TokenDecryptionError:
        token = None
        logger.warning(
            "Revoking account %s (%s): its token cannot be decrypted; removing it locally only",
            account.pk,
            account.provider,
        )
    if token is not None and provider.supports_revoke:
        # Revoking the refresh token kills every access token made from it (Zoho); without
        # one, the access token is all there is.
        secret = token.refresh_token or token.access_token
        try:
            client.revoke(provider, secret, accounts_server=account.accounts_server)
        except InvalidGrant as exc:
            # Typically an account that needs re-authorisation: its refresh token is dead
            # already, so the grant is gone at the provider and only our copy remains.
            logger.info(
                "Account %s (%s): the provider no longer knows its token (%s)",
                account.pk,
                account.provider,
                exc.error_code,
            )
        except ProviderError as exc:
            logger.warning("Revoking account %s (%s) failed: %s", account.pk, account.provider, exc)
            raise RevokeError(f"{provider.display_name} did not revoke account {account.pk}: {exc}") from exc
        confirmed = True
    with transaction.atomic():
        Token.objects.filter(account_id=account.pk).delete()
        LinkedAccount.objects.filter(pk=account.pk).update(
            status=LinkedAccount.Status.REVOKED, updated_at=timezone.now()
        )
    account.status = LinkedAccount.Status.REVOKED
    if confirmed:
        logger.info("Revoked account %s (%s) at the provider and removed its tokens", account.pk, account.provider)
    else:
        logger.info(
            "Removed the tokens of account %s (%s); %s has no revoke endpoint or there was no token",
            account.pk,
            account.provider,
            provider.display_name,
        )
    signals.account_revoked.send(sender=LinkedAccount, account=account, confirmed=confirmed)
    return confirmed
