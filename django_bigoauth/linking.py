"""Turning a token reply into a stored ``LinkedAccount`` and ``Token``.

Shared by the callback view and the self-client command. The HTTP (code exchange, "who
am I") happens first, outside any transaction; the account and its token are then written
together in one (``store.store_link``), so a failure never leaves half an account.

A link that fails after the provider has issued tokens (the identity lookup fails, the reply
cannot be stored, the database refuses the write) revokes what it was given, once and on a
best-effort basis: Zoho keeps at most 20 refresh tokens per user and client and deletes the
oldest beyond that, so failed links must not pile up grants that end the life of a working
account's refresh token.
"""

from __future__ import annotations

import logging
from typing import Any

from django.db import DatabaseError, models
from django.utils import timezone
from django.views.decorators.debug import sensitive_variables

from . import client, signals, store
from .exceptions import AccountNotStored, BigOAuthError, ProviderError
from .models import LinkedAccount, Token
from .providers import CallbackContext, Identity, Provider, TokenReply
from .redaction import clean_text, printable

__all__ = ["identify", "link_with_code", "store_account"]

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
    nonce_digest: str = "",
) -> tuple[LinkedAccount, bool]:
    """Exchange ``code`` and store the account; returns ``(account, created)``.

    ``nonce_digest``: the digest of the OpenID Connect nonce the authorisation request sent
    (``state.Authorisation.nonce_digest``); the ID token must carry that nonce.
    Every failure is logged once here, with the provider, and raised for the caller to show.
    """
    context = context or CallbackContext()
    try:
        reply = client.exchange_code(
            provider,
            code,
            redirect_uri=redirect_uri,
            code_verifier=code_verifier,
            accounts_server=context.accounts_server,
            nonce_digest=nonce_digest,
        )
    except ProviderError as exc:
        logger.warning("Linking a %s account failed: %s", provider.slug, exc)
        raise
    try:
        identity = identify(provider, reply)  # logs its own failure
        return _store_or_explain(provider, reply, user=user, context=context, identity=identity, label=label)
    except BigOAuthError:
        client.revoke_unused_grant(provider, reply, accounts_server=context.accounts_server)
        raise


@sensitive_variables()
def _store_or_explain(provider: Provider, reply: TokenReply, **kwargs: Any) -> tuple[LinkedAccount, bool]:
    try:
        return store_account(provider, reply, **kwargs)
    except ProviderError as exc:  # AccountNotStored is logged where it happens, with more detail
        logger.warning("Linking a %s account failed: %s", provider.slug, exc)
        raise


@sensitive_variables()
def identify(provider: Provider, reply: TokenReply) -> Identity | None:
    """Who the new token belongs to; ``None`` when the provider's answer names nobody.

    A validated ID token says it without another request (its ``sub``); otherwise the
    provider's identity endpoint is asked (OpenID Connect's userinfo, Bigin's organisation).
    A provider that cannot be asked right now (timeout, no connection, 5xx, 429) fails the
    link: guessing would store a re-linked account a second time, or one organisation's token
    in another's account. The code is used up by then, so the user connects again.
    """
    if reply.id_claims is not None:
        identity = provider.identity_from_id_token(reply.id_claims)
        if identity is not None:
            return identity
    try:
        return client.fetch_identity(provider, reply.access_token, api_domain=reply.api_domain)
    except ProviderError as exc:
        logger.warning("Could not tell whose %s token this is, so nothing was linked: %s", provider.slug, exc)
        raise


@sensitive_variables()
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
    token into it. Then, as when the provider's values cannot be stored as they are (an id
    too long or holding NUL, which PostgreSQL refuses; an API domain that is not HTTPS; a
    token that is not printable ASCII), ``ProviderError`` is raised and nothing is written.
    Free text (label, scope) loses what cannot be stored instead. A database error rolls the
    whole write back and is raised as ``AccountNotStored``.
    """
    # Checked on receipt by the client already; again here because this function stores any
    # TokenReply it is handed (a site's own flow may call it).
    reply = client.check_token_reply(provider, reply)
    user_id = getattr(user, "pk", None)
    external_id = _exact("external_id", identity.external_id if identity else "")
    reply_fields, token_values = _reply_values(provider, reply)
    fields = {
        # Shown in pages, the admin and command output: one printable line.
        "label": clean_text(
            printable(label or (identity.label if identity else "") or provider.display_name, limit=_LABEL_MAX)
        ),
        "status": LinkedAccount.Status.ACTIVE,
        **reply_fields,
    }
    if context.accounts_server:
        fields["accounts_server"] = _exact("accounts_server", context.accounts_server)
    if context.data_centre:
        fields["data_centre"] = _exact("data_centre", context.data_centre)
    token_values["refreshed_at"] = timezone.now()
    lookup = {"provider": provider.slug, "user_id": user_id, "external_id": external_id}

    def refuse_unidentified() -> None:
        if not external_id:
            _refuse_if_identified_accounts_exist(provider, user_id)

    try:
        account, created = store.store_link(
            lookup, fields, token_values, keep_label=not label, refuse_unidentified=refuse_unidentified
        )
    except DatabaseError as exc:
        # Rolled back as a whole, so nothing is half-written. The exception text may quote
        # stored values: only its type is logged.
        logger.error("Storing a linked %s account failed (%s); nothing was stored", provider.slug, type(exc).__name__)
        raise AccountNotStored(
            f"The {provider.display_name} account could not be saved ({type(exc).__name__}); nothing was stored."
        ) from exc
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
        owner = "the site" if user_id is None else f"user {user_id}"
        raise ProviderError(
            f"{provider.display_name} did not say whose token this is, and {owner} already has "
            f"{provider.display_name} accounts with a known owner that it could belong to."
        )


def _max_length(name: str) -> int:
    """The ``max_length`` of one of ``LinkedAccount``'s text columns."""
    field = LinkedAccount._meta.get_field(name)
    if not isinstance(field, models.CharField) or field.max_length is None:
        raise TypeError(f"LinkedAccount.{name} is not a text column with a max_length.")
    return field.max_length


_LABEL_MAX = _max_length("label")


@sensitive_variables()
def _reply_values(provider: Provider, reply: TokenReply) -> tuple[dict[str, Any], dict[str, Any]]:
    """The token reply (checked by ``client.check_token_reply``) as account fields and token fields."""
    account_fields: dict[str, Any] = {"scopes": reply.scope or provider.scope_string}
    if reply.api_domain:
        account_fields["api_domain"] = reply.api_domain
    token_values: dict[str, Any] = {
        "access_token": reply.access_token,
        "token_type": reply.token_type,
        "expires_at": reply.expires_at,
        "scope": reply.scope,
    }
    # Zoho issues a refresh token on first consent only: keep the one we have.
    if reply.refresh_token:
        token_values["refresh_token"] = reply.refresh_token
    return account_fields, token_values


def _exact(name: str, value: str) -> str:
    """``value`` if the column can hold it as it is; otherwise ``ProviderError``.

    For ids and URLs, where a changed value would name something else. Checked before the
    transaction: PostgreSQL refuses NUL in text (``DataError``), no database driver takes a
    lone surrogate, and an over-long value fails on PostgreSQL (``max_length``) or, cut
    short, could name another account.
    """
    label = name.replace("_", " ")
    if "\x00" in value or clean_text(value) != value:
        raise ProviderError(f"The provider's {label} holds characters that cannot be stored.")
    limit = _max_length(name)
    if len(value) > limit:
        raise ProviderError(f"The provider's {label} is longer than {limit} characters.")
    return value
