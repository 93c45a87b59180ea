"""Turning a token reply into a stored ``LinkedAccount`` and ``Token``.

Shared by the callback view and the self-client command. The HTTP (code exchange, "who
am I") happens first, outside any transaction; the account and its token are then written
together in one, so a failure never leaves half an account.
"""

from __future__ import annotations

import logging
from typing import Any

from django.db import transaction
from django.db.models import F
from django.utils import timezone
from django.views.decorators.debug import sensitive_variables

from . import client, signals
from .exceptions import ProviderError
from .models import LinkedAccount, Token
from .netloc import is_safe_endpoint
from .providers import CallbackContext, Identity, Provider, TokenReply

logger = logging.getLogger("django_bigoauth")


@sensitive_variables()
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
    """Who the new token belongs to; ``None`` when the provider's answer names nobody.

    A provider that cannot be asked right now (timeout, no connection, 5xx, 429) fails the
    link: guessing would store a re-linked account a second time, or one organisation's token
    in another's account. The code is used up by then, so the user connects again.
    """
    try:
        return client.fetch_identity(provider, reply.access_token, api_domain=reply.api_domain)
    except ProviderError as exc:
        logger.warning("Could not tell whose %s token this is, so nothing was linked: %s", provider.slug, exc)
        raise


def store_account(
    provider: Provider,
    reply: TokenReply,
    *,
    user: Any,
    context: CallbackContext,
    identity: Identity | None,
    label: str = "",
) -> tuple[LinkedAccount, bool]:
    """Create or update the account and its token together; re-linking updates, never duplicates.

    Accounts are told apart by provider, owner and external id. With ``identity=None`` (the
    provider named nobody) the account is stored under an empty external id, but only when
    the owner has no account with that provider whose external id is known: the token could
    be any of theirs, so storing it would either duplicate one or put another organisation's
    token into it. Then, as when the provider's values cannot be stored as they are (too long,
    an API domain that is not HTTPS), ``ProviderError`` is raised and nothing is written.
    """
    user_id = getattr(user, "pk", None)
    external_id = _fitting("external_id", identity.external_id if identity else "")
    fields = {
        "label": _fitting("label", label or (identity.label if identity else "") or provider.display_name, cut=True),
        "status": LinkedAccount.Status.ACTIVE,
        "scopes": reply.scope or provider.scope_string,
    }
    if context.accounts_server:
        fields["accounts_server"] = _fitting("accounts_server", context.accounts_server)
    if context.data_centre:
        fields["data_centre"] = _fitting("data_centre", context.data_centre)
    if reply.api_domain:
        if not is_safe_endpoint(reply.api_domain):
            raise ProviderError(f"{provider.display_name}'s token reply names an API domain that is not HTTPS.")
        fields["api_domain"] = _fitting("api_domain", reply.api_domain)
    now = timezone.now()
    token_values = {
        "access_token": reply.access_token,
        "token_type": _fitting("token_type", reply.token_type, model=Token),
        "expires_at": reply.expires_at,
        "scope": reply.scope,
        "refreshed_at": now,
    }
    # Zoho issues a refresh token on first consent only: keep the one we have.
    if reply.refresh_token:
        token_values["refresh_token"] = reply.refresh_token
    with transaction.atomic():
        if not external_id:
            _refuse_if_identified_accounts_exist(provider, user_id)
        account, created = LinkedAccount.objects.select_for_update().get_or_create(
            provider=provider.slug, user_id=user_id, external_id=external_id, defaults=fields
        )
        if not created:
            if label == "" and account.label:
                fields.pop("label")  # keep a label the owner chose
            for name, value in fields.items():
                setattr(account, name, value)
            account.save()
        # Written without reading the old token first: one that no longer decrypts (a key
        # was removed) must not stop the owner from linking the account again.
        updated = Token.objects.filter(account=account).update(
            generation=F("generation") + 1, updated_at=now, **token_values
        )
        if not updated:
            Token.objects.create(account=account, generation=1, **token_values)
    if not reply.refresh_token and not Token.objects.filter(account=account).exclude(refresh_token="").exists():
        logger.warning(
            "Account %s (%s) was linked without a refresh token; it will need linking again "
            "when the access token expires",
            account.pk,
            provider.slug,
        )
    logger.info("%s account %s (%s)", "Linked" if created else "Re-linked", account.pk, provider.slug)
    signals.account_linked.send(sender=LinkedAccount, account=account, created=created)
    return account, created


def _refuse_if_identified_accounts_exist(provider: Provider, user_id: Any) -> None:
    """An unidentified token must not land beside, or in, accounts whose owner is known."""
    identified = LinkedAccount.objects.filter(provider=provider.slug, user_id=user_id).exclude(external_id="")
    if identified.exists():
        logger.warning(
            "%s did not say whose token this is, and %s has %s accounts whose owner is known; "
            "nothing was linked, since the token could belong to any of them",
            provider.slug,
            f"user {user_id}" if user_id is not None else "the site",
            provider.slug,
        )
        raise ProviderError(
            f"{provider.display_name} did not say whose token this is, and the owner already has "
            f"{provider.display_name} accounts it could belong to."
        )


def _fitting(name: str, value: str, *, model: type = LinkedAccount, cut: bool = False) -> str:
    """``value`` if it fits the column; a label is shortened, anything else refused.

    An over-long value from a provider would otherwise fail inside the transaction
    (PostgreSQL enforces ``max_length``), and an id cut short could name another account.
    """
    limit = model._meta.get_field(name).max_length
    if limit is None or len(value) <= limit:
        return value
    if cut:
        return value[: limit - 1] + "…"
    raise ProviderError(f"The provider's {name.replace('_', ' ')} is longer than {limit} characters.")
