"""Turning a token reply into a stored ``LinkedAccount`` and ``Token``.

Shared by the callback view and the self-client command. The HTTP (code exchange, "who
am I") happens first, outside any transaction; the account and its token are then written
together in one, so a failure never leaves half an account.
"""

from __future__ import annotations

import logging
import re
from typing import Any

from django.db import DatabaseError, IntegrityError, transaction
from django.db.models import F
from django.utils import timezone
from django.views.decorators.debug import sensitive_variables

from . import client, signals
from .exceptions import AccountNotStored, ProviderError
from .models import LinkedAccount, Token
from .netloc import is_safe_endpoint
from .providers import CallbackContext, Identity, Provider, TokenReply

logger = logging.getLogger("django_bigoauth")

#: What a token may hold (RFC 6749 appendix A: VSCHAR, printable ASCII); anything else could
#: not be sent in an Authorization header or a form body later.
_TOKEN = re.compile(r"[\x20-\x7e]+")


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
    try:
        _reply_values(provider, reply)  # refused before the token is sent to the identity endpoint
    except ProviderError as exc:
        logger.warning("Linking a %s account failed: %s", provider.slug, exc)
        raise
    identity = identify(provider, reply)
    try:
        return store_account(provider, reply, user=user, context=context, identity=identity, label=label)
    except ProviderError as exc:
        logger.warning("Linking a %s account failed: %s", provider.slug, exc)
        raise


@sensitive_variables()
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
    user_id = getattr(user, "pk", None)
    external_id = _exact("external_id", identity.external_id if identity else "")
    reply_fields, token_values = _reply_values(provider, reply)
    fields = {
        "label": _free_text(label or (identity.label if identity else "") or provider.display_name, field="label"),
        "status": LinkedAccount.Status.ACTIVE,
        **reply_fields,
    }
    if context.accounts_server:
        fields["accounts_server"] = _exact("accounts_server", context.accounts_server)
    if context.data_centre:
        fields["data_centre"] = _exact("data_centre", context.data_centre)
    token_values["refreshed_at"] = timezone.now()
    lookup = {"provider": provider.slug, "user_id": user_id, "external_id": external_id}
    try:
        account, created = _write(provider, lookup, fields, token_values, keep_label=not label)
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


@sensitive_variables()
def _write(
    provider: Provider,
    lookup: dict[str, Any],
    fields: dict[str, Any],
    token_values: dict[str, Any],
    *,
    keep_label: bool,
) -> tuple[LinkedAccount, bool]:
    """The account and its token, in one transaction: both are written or neither is."""
    with transaction.atomic():
        if not lookup["external_id"]:
            _refuse_if_identified_accounts_exist(provider, lookup["user_id"])
        account, created = _lock_or_create(lookup, fields)
        if not created:
            if keep_label and account.label:
                fields = {name: value for name, value in fields.items() if name != "label"}  # the owner's choice
            for name, value in fields.items():
                setattr(account, name, value)
            account.save()
        # Written without reading the old token first: one that no longer decrypts (a key
        # was removed) must not stop the owner from linking the account again.
        updated = Token.objects.filter(account=account).update(
            generation=F("generation") + 1, updated_at=token_values["refreshed_at"], **token_values
        )
        if not updated:
            Token.objects.create(account=account, generation=1, **token_values)
    return account, created


def _lock_or_create(lookup: dict[str, Any], fields: dict[str, Any]) -> tuple[LinkedAccount, bool]:
    """The account of ``lookup``, row-locked, or a new one; ``(account, created)``.

    Locks are taken in the order of every other writer: the token row first, then the
    account row. A refresh locks the token and may then mark the account as needing
    re-authorisation; a revoke deletes the token, then updates the account. Locking the
    account first would deadlock with either on PostgreSQL.
    """
    account = _lock_existing(lookup)
    if account is not None:
        return account, False
    try:
        with transaction.atomic():  # a savepoint: a lost race must not spoil the transaction
            return LinkedAccount.objects.create(**lookup, **fields), True
    except IntegrityError:
        # Linked by another request at this very moment (it waited for that one to commit).
        account = _lock_existing(lookup)
        if account is None:
            raise
        return account, False


def _lock_existing(lookup: dict[str, Any]) -> LinkedAccount | None:
    account_pk = LinkedAccount.objects.filter(**lookup).values_list("pk", flat=True).first()
    if account_pk is None:
        return None
    # values_list: the lock is all that is wanted, not the (encrypted) token.
    list(Token.objects.select_for_update().filter(account_id=account_pk).values_list("pk", flat=True))
    # None if the account was deleted meanwhile: then it is created anew.
    return LinkedAccount.objects.select_for_update().filter(pk=account_pk).first()


def _refuse_if_identified_accounts_exist(provider: Provider, user_id: Any) -> None:
    """An unidentified token must not land beside, or in, accounts whose owner is known."""
    identified = LinkedAccount.objects.filter(provider=provider.slug, user_id=user_id).exclude(external_id="")
    if identified.exists():
        owner = "the site" if user_id is None else f"user {user_id}"
        raise ProviderError(
            f"{provider.display_name} did not say whose token this is, and {owner} already has "
            f"{provider.display_name} accounts with a known owner that it could belong to."
        )


@sensitive_variables()
def _reply_values(provider: Provider, reply: TokenReply) -> tuple[dict[str, Any], dict[str, Any]]:
    """The token reply as account fields and token fields; ``ProviderError`` if it cannot be stored."""
    name = provider.display_name
    for what, token in (("access token", reply.access_token), ("refresh token", reply.refresh_token)):
        if token is not None and not _TOKEN.fullmatch(token):
            raise ProviderError(f"{name}'s {what} holds characters a token cannot have.")
    scope = _free_text(reply.scope)
    account_fields: dict[str, Any] = {"scopes": scope or provider.scope_string}
    if reply.api_domain:
        api_domain = _exact("api_domain", reply.api_domain)
        if not _is_https(api_domain):
            raise ProviderError(f"{name}'s token reply names an API domain that is not HTTPS.")
        account_fields["api_domain"] = api_domain
    token_values: dict[str, Any] = {
        "access_token": reply.access_token,
        "token_type": _exact("token_type", reply.token_type, model=Token),
        "expires_at": reply.expires_at,
        "scope": scope,
    }
    # Zoho issues a refresh token on first consent only: keep the one we have.
    if reply.refresh_token:
        token_values["refresh_token"] = reply.refresh_token
    return account_fields, token_values


def _is_https(url: str) -> bool:
    try:
        return is_safe_endpoint(url)
    except ValueError:  # not a URL at all ("https://[::1")
        return False


def _exact(name: str, value: str, *, model: type = LinkedAccount) -> str:
    """``value`` if the column can hold it as it is; otherwise ``ProviderError``.

    For ids and URLs, where a changed value would name something else. Checked before the
    transaction: PostgreSQL refuses NUL in text (``DataError``), no database driver takes a
    lone surrogate, and an over-long value fails on PostgreSQL (``max_length``) or, cut
    short, could name another account.
    """
    label = name.replace("_", " ")
    if "\x00" in value or not _encodable(value):
        raise ProviderError(f"The provider's {label} holds characters that cannot be stored.")
    limit = model._meta.get_field(name).max_length
    if limit is not None and len(value) > limit:
        raise ProviderError(f"The provider's {label} is longer than {limit} characters.")
    return value


def _free_text(value: str, *, field: str = "") -> str:
    """``value`` without what cannot be stored (NUL; a lone surrogate becomes "?"), shortened to fit ``field``."""
    value = value.replace("\x00", "")
    if not _encodable(value):
        value = value.encode("utf-8", "replace").decode("utf-8")
    limit = LinkedAccount._meta.get_field(field).max_length if field else None
    if limit is not None and len(value) > limit:
        value = value[: limit - 1] + "…"
    return value


def _encodable(value: str) -> bool:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True
