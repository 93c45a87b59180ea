"""Linked accounts and their tokens.

Behaviour a caller needs lives here as methods (``get_access_token()``, ``session()``,
``revoke()``); the work is done in ``tokens.py``, ``session.py`` and ``revocation.py``.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django.views.decorators.debug import sensitive_variables

from . import policy
from .conf import bigoauth_settings
from .crypto import EncryptedTextField, check_binding
from .exceptions import BigOAuthError
from .redaction import mask

__all__ = ["LinkedAccount", "PendingAuthorisation", "Token", "owner_key", "provider_display_name"]

if TYPE_CHECKING:
    from .asession import AsyncAccountSession
    from .providers import Provider
    from .revocation import RevokeResult
    from .session import AccountSession


def provider_display_name(slug: str) -> str:
    """The provider's display name ("Bigin"); the bare slug when it is not configured (any more)."""
    from .providers import get_provider

    try:
        return get_provider(slug).display_name
    except (BigOAuthError, ImproperlyConfigured):
        return slug


def owner_key(user_id: Any) -> str:
    """The owner of an account as a value no database treats as NULL: ``"user:<pk>"`` or ``"site"``."""
    return "site" if user_id is None else f"user:{user_id}"


class OwnerKeyField(models.CharField):
    """``owner_key(user_id)``, written whenever the row is (``save()`` and ``bulk_create()`` alike).

    It lets one plain unique constraint (provider, external id, owner) hold on every database:
    NULLs are distinct in a unique index, and MariaDB and MySQL have no partial indexes, on
    which conditional constraints for site-level accounts (no user) would depend.
    """

    def pre_save(self, model_instance: models.Model, add: bool) -> str:
        # The user's primary key as stored (``user_id``), without loading the user.
        value = owner_key(model_instance.serializable_value("user"))
        setattr(model_instance, self.attname, value)
        return value


class LinkedAccount(models.Model):
    """An account at a provider, linked by a user or for the site (``user`` empty).

    Its token is the one-to-one :class:`Token` (``account.token``). Callers use the methods
    below; find an account with :func:`django_bigoauth.get_account`.
    """

    class Status(models.TextChoices):
        ACTIVE = "active", _("Active")
        NEEDS_REAUTH = "needs_reauth", _("Needs re-authorisation")
        REVOKED = "revoked", _("Revoked")

    provider = models.CharField(_("provider"), max_length=50, db_index=True)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("user"),
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="bigoauth_accounts",
        help_text=_("Empty for a site-level account, such as a Bigin self client."),
    )
    external_id = models.CharField(
        _("external id"),
        max_length=255,
        blank=True,
        help_text=_("The account's id at the provider (for Bigin, the organisation)."),
    )
    label = models.CharField(_("label"), max_length=255, blank=True)
    data_centre = models.CharField(_("data centre"), max_length=16, blank=True)
    accounts_server = models.URLField(_("accounts server"), blank=True)
    api_domain = models.URLField(_("API domain"), blank=True)
    scopes = models.TextField(_("granted scopes"), blank=True)
    status = models.CharField(_("status"), max_length=16, choices=Status.choices, default=Status.ACTIVE)
    owner_key = OwnerKeyField(_("owner key"), max_length=300, editable=False)
    created_at = models.DateTimeField(_("linked at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        verbose_name = _("linked account")
        verbose_name_plural = _("linked accounts")
        ordering = ["provider", "label", "pk"]
        indexes = [
            # The admin's list (and anything else in the default order) reads one page of
            # thousands of accounts through this index instead of sorting them all.
            models.Index(fields=["provider", "label", "id"], name="bigoauth_account_list_order"),
        ]
        constraints = [
            # One account per provider, external id and owner (a user, or the site).
            models.UniqueConstraint(fields=["provider", "external_id", "owner_key"], name="bigoauth_unique_account"),
        ]

    def __str__(self) -> str:
        """``Bigin account “Acme CRM” (site)``, ``… (user ann)``: how pages, messages and commands name it."""
        user = self.user if self.user_id else None
        names = {
            "provider": provider_display_name(self.provider),
            "name": self.label or self.external_id,
            "id": self.pk,
            "owner": _("user %(username)s") % {"username": user.get_username()} if user is not None else _("site"),
        }
        if names["name"]:
            return _("%(provider)s account “%(name)s” (%(owner)s)") % names
        return _("%(provider)s account %(id)s (%(owner)s)") % names

    def __repr__(self) -> str:
        return f"<LinkedAccount {self.pk} {self.provider!r} {self.status}>"

    @property
    def provider_instance(self) -> Provider:
        from .providers import get_provider

        return get_provider(self.provider)

    @property
    def api_base_url(self) -> str:
        return self.provider_instance.get_api_base_url(self.api_domain)

    def get_access_token(self) -> str:
        """A valid access token, refreshed first (exactly once across workers) when stale."""
        from .tokens import get_access_token

        return get_access_token(self)

    def refresh(self) -> str:
        """Refresh now, whatever the expiry; returns the new access token."""
        from .tokens import refresh_access_token

        return refresh_access_token(self, force=True)

    def session(self, **kwargs: Any) -> AccountSession:
        """A ``requests`` session that authenticates as this account and refreshes as needed."""
        from .session import AccountSession

        return AccountSession(self, **kwargs)

    def revoke(self) -> RevokeResult:
        """Revoke at the provider where it can, and remove the tokens; truthy if the provider confirmed."""
        from .revocation import revoke_account

        return revoke_account(self)

    # -- the async API: the same with an "a" prefix (needs the "async" extra, httpx) ----------------

    async def aget_access_token(self) -> str:
        """``get_access_token()`` for async code; a refresh runs off the event loop, exactly once."""
        from .tokens import aget_access_token

        return await aget_access_token(self)

    async def arefresh(self) -> str:
        """``refresh()`` for async code; the refresh runs off the event loop."""
        from .tokens import arefresh_access_token

        return await arefresh_access_token(self, force=True)

    def asession(self, **kwargs: Any) -> AsyncAccountSession:
        """An ``httpx.AsyncClient`` that authenticates as this account: ``async with account.asession() as api:``."""
        from .asyncsupport import require_async_extra

        require_async_extra()
        from .asession import AsyncAccountSession

        return AsyncAccountSession(self, **kwargs)

    async def arevoke(self) -> RevokeResult:
        """``revoke()`` for async code; the revoke runs off the event loop."""
        from .revocation import arevoke_account

        return await arevoke_account(self)


class Token(models.Model):
    """The one current token of an account; tokens are encrypted at rest, bound to this row.

    Every write goes through ``django_bigoauth.store``, which owns the generation rule and the
    refresh claim.
    """

    #: the columns whose ciphertext is bound to ``account_id`` (see ``crypto.py``)
    ENCRYPTED_FIELDS = ("access_token", "refresh_token")

    account = models.OneToOneField(
        LinkedAccount, verbose_name=_("account"), on_delete=models.CASCADE, related_name="token"
    )
    access_token = EncryptedTextField(_("access token"), bind_to="account_id")
    refresh_token = EncryptedTextField(_("refresh token"), blank=True, default="", bind_to="account_id")
    token_type = models.CharField(_("token type"), max_length=40, blank=True, default="Bearer")
    expires_at = models.DateTimeField(_("expires at"), null=True, blank=True)
    scope = models.TextField(_("scope"), blank=True)
    # Bumped on every refresh and re-link, so a worker can tell "someone refreshed since I looked".
    generation = models.PositiveIntegerField(_("generation"), default=0, editable=False)
    refreshed_at = models.DateTimeField(_("last refreshed"), null=True, blank=True)
    # A refresh in progress: who claimed it and until when (see tokens.py). Empty when none.
    refresh_claim = models.CharField(_("refresh claim"), max_length=32, blank=True, default="", editable=False)
    refresh_claimed_until = models.DateTimeField(_("refresh claimed until"), null=True, blank=True, editable=False)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        verbose_name = _("token")
        verbose_name_plural = _("tokens")
        indexes = [
            # Tokens by expiry, a page at a time: the admin's token list sorted by it, and
            # bigoauth_refresh --expiring-within, read through this instead of every row.
            models.Index(fields=["expires_at"], name="bigoauth_token_expires_at"),
        ]

    def __str__(self) -> str:
        """``Bearer token of account 3``: the title of its admin page."""
        return _("%(type)s token of account %(id)s") % {"type": self.token_type, "id": self.account_id}

    def __repr__(self) -> str:
        access = mask(self.__dict__["access_token"]) if "access_token" in self.__dict__ else "(deferred)"
        return f"<Token account={self.account_id} access={access!r} expires_at={self.expires_at}>"

    @classmethod
    @sensitive_variables()
    def from_db(cls, db: str | None, field_names: Collection[str], values: Collection[Any]) -> Token:
        """Refuse a token whose ciphertext was made for another row or column (``TokenDecryptionError``)."""
        instance = super().from_db(db, field_names, values)
        loaded = instance.__dict__
        for name in cls.ENCRYPTED_FIELDS:
            if name in loaded:
                loaded[name] = check_binding(loaded[name], owner=loaded.get("account_id"), field=name)
        return instance

    def is_stale(self, now: datetime | None = None) -> bool:
        """Whether the next use refreshes it first (``REFRESH_LEEWAY``, at most half its lifetime)."""
        return policy.is_stale(
            self.expires_at, bigoauth_settings.REFRESH_LEEWAY, now or timezone.now(), self.refreshed_at
        )


class PendingAuthorisation(models.Model):
    """An authorisation request on its way to the provider and back (``state.py`` writes and consumes it).

    One row per flow, from the authorise view to its callback. Nothing in it is usable by
    whoever reads the table: the state is kept only as its SHA-256 (the callback hashes what
    it is given and looks that up), the browser binding likewise, and the PKCE verifier is
    Fernet ciphertext. Rows live ``STATE_TTL`` seconds at most; expired ones are deleted by
    the next ``state.begin()``.
    """

    state_hash = models.CharField(_("state hash"), max_length=64, unique=True, editable=False)
    #: SHA-256 of the random value ``state.py`` keeps in the session: the flow stays in this browser
    browser_hash = models.CharField(_("browser hash"), max_length=64, db_index=True, editable=False)
    provider = models.CharField(_("provider"), max_length=50)
    #: the user's pk as text (any pk type fits); null for a signed-out browser, which no pk can be
    user_pk = models.CharField(_("user"), max_length=255, null=True, blank=True)  # noqa: DJ001
    site_level = models.BooleanField(_("site-level account"), default=False)
    redirect_uri = models.TextField(_("redirect URI"))
    next_url = models.TextField(_("next URL"), blank=True)
    #: ``crypto.encrypt()`` of the PKCE verifier; "" when the provider does not use PKCE
    encrypted_code_verifier = models.TextField(_("encrypted PKCE verifier"), blank=True, editable=False)
    #: SHA-256 of the OpenID Connect nonce the request sent ("" when none): the ID token must carry it
    nonce = models.CharField(_("nonce"), max_length=255, blank=True)
    #: False when a GET started the flow (``AUTHORISE_ON_GET``): such a flow never evicts a POST-started one
    started_by_post = models.BooleanField(_("started by POST"), default=True)
    created_at = models.DateTimeField(_("created at"), default=timezone.now, db_index=True, editable=False)

    class Meta:
        verbose_name = _("pending authorisation")
        verbose_name_plural = _("pending authorisations")

    def __str__(self) -> str:
        return f"{self.provider} authorisation {self.pk} (user {self.user_pk})"

    def __repr__(self) -> str:
        return f"<PendingAuthorisation {self.pk} {self.provider!r} user={self.user_pk!r}>"
