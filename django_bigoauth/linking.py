"""Turning a token reply into a stored ``LinkedAccount`` and ``Token``.

Shared by the callback view and the self-client command. The HTTP (code exchange, "who
am I") happens first, outside any transaction; the account and its token are then written
together in one, so a failure never leaves half an account.
"""

from __future__ import annotations

import logging
from typing import Any

from django.db import transaction
from django.utils import timezone

from . import client, signals
from .exceptions import ProviderError
from .models import LinkedAccount, Token
from .providers import CallbackContext, Identity, Provider, TokenReply

logger = logging.getLogger("django_bigoauth")


def link_with_code(
    provider: Provider,
    code: str,
    *,
    user: Any,
    redirect_uri: str | None,
    code_verifier: str | None = None,
    context: CallbackContext | None = None,
    label: str = "",
) -> tuple[LinkedAccount, bool]:
    """Exchange ``code`` and store the account; returns ``(account, created)``."""
    context = context or CallbackContext()
    try:
        reply = client.exchange_code(
            provider,
            code,
            redirect_uri=redirect_uri,
            code_verifier=code_verifier,
            accounts_server=context.accounts_server,
        )
    except ProviderError as exc:
        logger.warning("Linking a %s account failed: %s", provider.slug, exc)
        raise
    identity = identify(provider, reply)
    return store_account(provider, reply, user=user, context=context, identity=identity, label=label)


def identify(provider: Provider, reply: TokenReply) -> Identity | None:
    """Who the new token belongs to; best effort, since a missing scope must not block linking."""
    try:
        return client.fetch_identity(provider, reply.access_token, api_domain=reply.api_domain)
    except ProviderError as exc:
        logger.warning("Could not tell whose %s token this is: %s", provider.slug, exc)
        return None


def store_account(
    provider: Provider,
    reply: TokenReply,
    *,
    user: Any,
    context: CallbackContext,
    identity: Identity | None,
    label: str = "",
) -> tuple[LinkedAccount, bool]:
    user_id = getattr(user, "pk", None)
    external_id = identity.external_id if identity else ""
    fields = {
        "label": label or (identity.label if identity else "") or provider.display_name,
        "status": LinkedAccount.Status.ACTIVE,
        "scopes": reply.scope or provider.scope_string,
    }
    if context.accounts_server:
        fields["accounts_server"] = context.accounts_server
    if context.data_centre:
        fields["data_centre"] = context.data_centre
    if reply.api_domain:
        fields["api_domain"] = reply.api_domain
    now = timezone.now()
    with transaction.atomic():
        account, created = LinkedAccount.objects.select_for_update().get_or_create(
            provider=provider.slug, user_id=user_id, external_id=external_id, defaults=fields
        )
        if not created:
            if label == "" and account.label:
                fields.pop("label")  # keep a label the owner chose
            for name, value in fields.items():
                setattr(account, name, value)
            account.save()
        token = Token.objects.select_for_update().filter(account=account).first() or Token(account=account)
        token.access_token = reply.access_token
        # Zoho issues a refresh token on first consent only: keep the one we have.
        if reply.refresh_token:
            token.refresh_token = reply.refresh_token
        token.token_type = reply.token_type
        token.expires_at = reply.expires_at
        token.scope = reply.scope
        token.refreshed_at = now
        token.generation += 1
        token.save()
    if not token.refresh_token:
        logger.warning(
            "Account %s (%s) was linked without a refresh token; it will need linking again "
            "when the access token expires",
            account.pk,
            provider.slug,
        )
    logger.info("%s account %s (%s)", "Linked" if created else "Re-linked", account.pk, provider.slug)
    signals.account_linked.send(sender=LinkedAccount, account=account, created=created)
    return account, created
