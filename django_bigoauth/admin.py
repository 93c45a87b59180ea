"""The Django admin for linked accounts: health at a glance, refresh and revoke in a click.

No page here ever holds a whole token. The account list reads token expiry through
annotations, so it neither decrypts anything nor breaks on a token no key can read; the token
inline and the token pages work from the raw ciphertext and show ``mask()``-ed values, or
"cannot be decrypted".

Accounts are added by linking (the OAuth flow), never by typing a token in, so there is no
"Add" button; a superuser gets one "Link a site-level ... account" button per provider.
Tokens have pages of their own, to look at only: they change by refreshing, and go away by
revoking or deleting their account.
"""

from __future__ import annotations

import functools
import operator
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.contrib.admin.utils import unquote
from django.contrib.admin.views.main import ChangeList
from django.contrib.auth import get_user_model
from django.core.exceptions import FieldDoesNotExist, ImproperlyConfigured, PermissionDenied
from django.db.models import F, Q, QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import NoReverseMatch, URLPattern, path, reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.safestring import SafeString
from django.utils.text import capfirst, smart_split, unescape_string_literal
from django.utils.timesince import timesince
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _
from django.views.decorators.debug import sensitive_variables

from . import crypto, store
from .conf import bigoauth_settings
from .exceptions import BigOAuthError, TokenDecryptionError
from .humanize import describe_expiry
from .models import LinkedAccount, Token, provider_display_name
from .policy import is_stale
from .providers import get_providers
from .redaction import mask
from .revocation import RevokeOutcome

if TYPE_CHECKING:
    from .operations import AccountWithTokenColumns

__all__ = ["LinkedAccountAdmin", "TokenAdmin", "TokenInline", "describe_expiry_html", "masked_ciphertext"]

#: The provider's display name; the bare slug when it is no longer configured.
provider_name = provider_display_name


def describe_expiry_html(expires_at: datetime | None, obtained_at: datetime | None = None) -> str:
    """When a token expires, "in 42 minutes" or "expired 3 hours ago"; red when it is stale."""
    text = describe_expiry(expires_at)
    if not is_stale(expires_at, bigoauth_settings.REFRESH_LEEWAY, timezone.now(), obtained_at):
        return text
    return format_html(
        '<span class="bigoauth-stale" style="color: var(--error-fg, #ba2121)" title="{}">{}</span>',
        _("Stale: refreshed before its next use"),
        text,
    )


@sensitive_variables()
def masked_ciphertext(ciphertext: str | None, *, owner: object, field: str) -> str:
    """The first characters of the token behind ``ciphertext``, or why they cannot be shown.

    A ciphertext that was not encrypted for this row and column (copied from elsewhere) is
    treated like one no key can read: the app will not use it either.
    """
    if not ciphertext:
        return "—"
    try:
        return mask(crypto.check_binding(crypto.open_sealed(ciphertext), owner=owner, field=field))
    except TokenDecryptionError:
        return gettext("cannot be decrypted")


class ProviderFilter(admin.SimpleListFilter):
    title = _("provider")
    parameter_name = "provider"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list[tuple[str, str]]:
        stored = set(LinkedAccount.objects.order_by().values_list("provider", flat=True).distinct())
        configured = set(bigoauth_settings.PROVIDERS)
        return [(slug, provider_name(slug)) for slug in sorted(stored | configured)]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        return queryset.filter(provider=self.value()) if self.value() else queryset


def with_ciphertext_only(queryset: QuerySet) -> QuerySet:
    """Tokens with their secret fields deferred and their raw ciphertext annotated.

    Loading the fields would decrypt both tokens of every row (for nothing: only a masked
    prefix is shown) and raise on a token no key can read.
    """
    return queryset.defer(*Token.ENCRYPTED_FIELDS).annotate(**store.raw_ciphertext_columns())


def expiry_and_refresh_html(expires_at: datetime | None, refreshed_at: datetime | None) -> str:
    """One cell for two facts: when the token expires (red when stale) and, below, when it was last refreshed.

    One column instead of two keeps the lists within a 1280-pixel screen; the exact time of
    the refresh is the line's tooltip.
    """
    expiry = describe_expiry_html(expires_at, refreshed_at)
    if refreshed_at is None:
        return expiry
    return format_html(
        '{}<br><span class="bigoauth-refreshed" style="color: var(--body-quiet-color, #666); font-size: .85em" '
        'title="{}">{}</span>',
        expiry,
        # ISO 8601 rather than date_format(): a list draws this a hundred times per page.
        timezone.localtime(refreshed_at).strftime("%Y-%m-%d %H:%M:%S %Z"),
        _("refreshed %(time)s ago") % {"time": timesince(refreshed_at, depth=1)},
    )


class MaskedTokenColumns:
    """Token columns for an admin whose queryset comes from :func:`with_ciphertext_only`."""

    @admin.display(description=_("access token"))
    def masked_access_token(self, token: Token) -> str:
        return masked_ciphertext(getattr(token, "raw_access_token", None), owner=token.account_id, field="access_token")

    @admin.display(description=_("refresh token"))
    def masked_refresh_token(self, token: Token) -> str:
        return masked_ciphertext(
            getattr(token, "raw_refresh_token", None), owner=token.account_id, field="refresh_token"
        )

    @admin.display(description=_("expires"), ordering="expires_at")
    def expires_in(self, token: Token) -> str:
        return describe_expiry_html(token.expires_at, token.refreshed_at)

    @admin.display(description=_("expires"), ordering="expires_at")
    def expiry(self, token: Token) -> str:
        return expiry_and_refresh_html(token.expires_at, token.refreshed_at)


# What the inline and the token admin show of a token; masked values only.
TOKEN_FIELDS = (
    "masked_access_token",
    "masked_refresh_token",
    "token_type",
    "expires_at",
    "expires_in",
    "refreshed_at",
    "scope",
    "generation",
)


class TokenInline(MaskedTokenColumns, admin.StackedInline):
    """The account's token, read-only and masked; built from raw ciphertext so it never crashes."""

    model = Token
    can_delete = False
    extra = 0
    fields = readonly_fields = TOKEN_FIELDS

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        return with_ciphertext_only(super().get_queryset(request))

    # The token is part of the account: whoever may see the account sees its masked token,
    # and nobody edits, adds or deletes it here.
    def has_view_permission(self, request: HttpRequest, obj: LinkedAccount | None = None) -> bool:
        opts = LinkedAccount._meta
        return any(
            request.user.has_perm(f"{opts.app_label}.{action}_{opts.model_name}") for action in ("view", "change")
        )

    def has_add_permission(self, request: HttpRequest, obj: LinkedAccount | None = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: LinkedAccount | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: LinkedAccount | None = None) -> bool:
        return False


@admin.register(LinkedAccount)
class LinkedAccountAdmin(admin.ModelAdmin):
    change_list_template = "admin/django_bigoauth/linkedaccount/change_list.html"
    revoke_confirmation_template = "admin/django_bigoauth/linkedaccount/revoke_confirmation.html"

    # Five columns that fit a 1280-pixel screen beside the admin's menu and the filters: the
    # data centre goes with the provider, the last refresh under the expiry.
    list_display = ("display_provider", "owner", "label", "status", "token_health")
    list_display_links = ("label",)  # one link per row: each costs a reverse()
    list_filter = (ProviderFilter, "status")
    # The user only; token columns come from annotations (see get_queryset).
    list_select_related = ("user",)
    inlines = (TokenInline,)
    actions = ("refresh_now", "revoke")
    fieldsets = (
        (None, {"fields": ("display_provider", "label", "owner", "external_id", "status")}),
        (_("Where the account lives"), {"fields": ("data_centre", "accounts_server", "api_domain", "scopes")}),
        (_("History"), {"fields": ("created_at", "updated_at")}),
    )
    # Only the label is ours to choose. Provider, external id and owner identify the account
    # (and a new owner would hand one person's token to another); the accounts server and
    # API domain decide where its refresh token and the client secret are sent; scopes and
    # status record what the provider granted and said, and change through linking,
    # refreshing and revoking only.
    readonly_fields = (
        "display_provider",
        "owner",
        "external_id",
        "status",
        "data_centre",
        "accounts_server",
        "api_domain",
        "scopes",
        "created_at",
        "updated_at",
    )

    def action_checkbox(self, obj: LinkedAccount) -> SafeString:
        """Django's row checkbox, the same HTML written with ``format_html``.

        Django renders a form widget (a template) for it on every row, which costs more than
        all the row's other cells together: a hundred rows of ten thousand accounts should
        cost little more than ten rows of ten.
        """
        return format_html(
            '<input type="checkbox" name="{}" value="{}" class="action-select" aria-label="{}">',
            helpers.ACTION_CHECKBOX_NAME,
            obj.pk,
            format_html(gettext("Select this object for an action - {}"), str(obj)),
        )

    # Django 4.2 takes the column's header from here (later versions write it themselves).
    action_checkbox.short_description = getattr(admin.ModelAdmin.action_checkbox, "short_description", "")  # type: ignore[attr-defined]

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        # Annotations instead of select_related("token"): selecting the token would decrypt
        # two tokens per row for nothing, and one unreadable token would break the list.
        return (
            super()
            .get_queryset(request)
            .annotate(
                token_pk=F("token__pk"),
                token_expires_at=F("token__expires_at"),
                token_refreshed_at=F("token__refreshed_at"),
            )
        )

    def get_search_fields(self, request: HttpRequest) -> list[str]:
        """What the search box looks in (all "contains"): label, external id, the owner's username and email."""
        return ["label", "external_id", *(f"user__{name}" for name in self._owner_search_fields())]

    def get_search_results(self, request: HttpRequest, queryset: QuerySet, search_term: str) -> tuple[QuerySet, bool]:
        """The fields of :meth:`get_search_fields`, the owner's matched in a subquery on the user table.

        Django's own search joins the users and compares four columns of every account; with
        the owner in a subquery (on the much smaller user table) each term costs one pass
        over the accounts with two comparisons, about half the time on ten thousand accounts.
        Terms are split as Django splits them (quotes keep a phrase together); every term must match.
        """
        user_model = get_user_model()
        for term in smart_split(search_term):
            if term[:1] in ('"', "'") and term[-1:] == term[:1] and len(term) > 1:
                term = unescape_string_literal(term)
            owners = user_model._default_manager.filter(
                functools.reduce(
                    operator.or_, (Q(**{f"{name}__icontains": term}) for name in self._owner_search_fields())
                )
            )
            queryset = queryset.filter(
                Q(label__icontains=term) | Q(external_id__icontains=term) | Q(user__in=owners.values("pk"))
            )
        return queryset, False

    @staticmethod
    def _owner_search_fields() -> list[str]:
        user_model = get_user_model()
        fields = [user_model.USERNAME_FIELD]
        email = user_model.get_email_field_name()
        try:
            user_model._meta.get_field(email)
        except FieldDoesNotExist:
            return fields
        if email != user_model.USERNAME_FIELD:
            fields.append(email)
        return fields

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def get_deleted_objects(
        self, objs: Sequence[LinkedAccount] | QuerySet[LinkedAccount], request: HttpRequest
    ) -> tuple[list[Any], dict[str, int], set[str], list[Any]]:
        """Django's "these will be deleted" summary, or a plain one when a token cannot be decrypted.

        Django loads every related token in full (so decrypts it) just to print its name; an
        account whose key is gone must still be deletable, since that is how an operator
        drops it.
        """
        try:
            deleted, counts, perms_needed, protected = super().get_deleted_objects(objs, request)
        except TokenDecryptionError:
            pass
        else:
            # The token admin deletes nothing itself, but a token is part of its account: whoever
            # may delete the account deletes its token with it.
            perms_needed.discard(str(Token._meta.verbose_name))
            return deleted, counts, perms_needed, protected
        accounts = list(objs)
        with_token = set(Token.objects.filter(account__in=accounts).values_list("account_id", flat=True))
        summary: list[Any] = []  # Django's shape: an item, then the list of what goes with it
        for account in accounts:
            summary.append(f"{capfirst(LinkedAccount._meta.verbose_name)}: {account}")
            if account.pk in with_token:
                summary.append([f"{capfirst(Token._meta.verbose_name)}: {gettext('cannot be decrypted')}"])
        counts = {
            str(LinkedAccount._meta.verbose_name_plural): len(accounts),
            str(Token._meta.verbose_name_plural): len(with_token),
        }
        perms_needed = {
            str(LinkedAccount._meta.verbose_name)
            for account in accounts
            if not self.has_delete_permission(request, account)
        }
        return summary, counts, perms_needed, []

    # -- columns ----------------------------------------------------------------------------

    @admin.display(description=_("provider"), ordering="provider")
    def display_provider(self, account: LinkedAccount) -> str:
        if not account.data_centre:
            return provider_name(account.provider)
        return format_html(
            '{} <span class="bigoauth-data-centre" title="{}">{}</span>',
            provider_name(account.provider),
            _("data centre"),
            account.data_centre.upper(),
        )

    @admin.display(description=_("owner"), ordering="user")
    def owner(self, account: LinkedAccount) -> str:
        return str(account.user) if account.user_id else gettext("site")

    @admin.display(description=_("expires"), ordering="token_expires_at")
    def expires_in(self, account: AccountWithTokenColumns) -> str:
        if account.token_pk is None:
            return gettext("no token")
        return describe_expiry_html(account.token_expires_at, account.token_refreshed_at)

    # Not sortable: ordering ten thousand accounts by a column of the joined token table sorts
    # them all on every page. The token list sorts by expiry through an index.
    @admin.display(description=_("token"))
    def token_health(self, account: AccountWithTokenColumns) -> str:
        if account.token_pk is None:
            return gettext("no token")
        return expiry_and_refresh_html(account.token_expires_at, account.token_refreshed_at)

    # -- actions ------------------------------------------------------------------------------

    @admin.action(description=_("Refresh now"), permissions=["change"])
    def refresh_now(self, request: HttpRequest, queryset: QuerySet) -> None:
        for account in queryset:
            try:
                account.refresh()
            except (BigOAuthError, ImproperlyConfigured) as exc:
                # Every message of the app's exceptions is free of secrets by design.
                self.message_user(
                    request,
                    _("Could not refresh %(account)s: %(error)s") % {"account": account, "error": exc},
                    messages.ERROR,
                )
            else:
                self.message_user(request, _("Refreshed %(account)s.") % {"account": account}, messages.SUCCESS)

    @admin.action(description=_("Revoke"), permissions=["delete"])
    def revoke(self, request: HttpRequest, queryset: QuerySet) -> HttpResponse | None:
        if request.POST.get("post") != "yes":
            return self._revoke_confirmation(request, queryset)
        for account in queryset:
            level, text = self._revoke_one(account)
            self.message_user(request, text, level)
        return None

    def _revoke_one(self, account: LinkedAccount) -> tuple[int, str]:
        names = {"account": account, "provider": provider_name(account.provider)}
        if account.status == LinkedAccount.Status.REVOKED:
            return messages.INFO, _("%(account)s was already revoked.") % names
        try:
            result = account.revoke()
        except (BigOAuthError, ImproperlyConfigured) as exc:
            return messages.ERROR, _("Could not revoke %(account)s: %(error)s") % {**names, "error": exc}
        outcome = result.outcome
        if outcome is RevokeOutcome.REVOKED:
            return messages.SUCCESS, _("%(account)s: revoked at %(provider)s and removed here.") % names
        if outcome is RevokeOutcome.ALREADY_REVOKED:
            return messages.INFO, _("%(account)s was already revoked.") % names
        if outcome is RevokeOutcome.SUPERSEDED:
            return messages.WARNING, _(
                "%(account)s: its old token was revoked, but the account was linked again meanwhile; the new link "
                "stays active."
            ) % names
        if outcome is RevokeOutcome.REMOVED_LOCALLY:
            return messages.WARNING, _(
                "%(account)s: removed here only; %(provider)s has no revoke endpoint, so the token stays valid "
                "there until it expires or the user revokes it."
            ) % names
        return messages.WARNING, _(
            "%(account)s: removed here only; there was no readable token to revoke at %(provider)s."
        ) % names

    def _revoke_confirmation(
        self, request: HttpRequest, accounts: QuerySet | list[LinkedAccount], *, original: LinkedAccount | None = None
    ) -> TemplateResponse:
        """The one confirmation page: for the list action (``original`` None) and the account page's button."""
        if original is None:
            cancel_url = reverse(f"{self.admin_site.name}:django_bigoauth_linkedaccount_changelist")
        else:
            cancel_url = reverse(f"{self.admin_site.name}:django_bigoauth_linkedaccount_change", args=[original.pk])
        context = {
            **self.admin_site.each_context(request),
            "title": _("Revoke linked accounts") if original is None else _("Revoke a linked account"),
            "opts": self.model._meta,
            "accounts": list(accounts),
            "original": original,
            "cancel_url": cancel_url,
            "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
            "media": self.media,
        }
        return TemplateResponse(request, self.revoke_confirmation_template, context)

    # -- the account page's Revoke button -------------------------------------------------------

    def get_urls(self) -> list[URLPattern]:
        info = self.opts.app_label, self.opts.model_name
        revoke = path(
            "<path:object_id>/revoke/",
            self.admin_site.admin_view(self.revoke_view),
            name="{}_{}_revoke".format(*info),
        )
        return [revoke, *super().get_urls()]

    def revoke_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        """GET: the list action's confirmation page for this account; POST (``post=yes``): revoke it.

        Needs the *delete* permission, like the action. The outcome is an admin message on the
        account's page, in the action's words.
        """
        account = self.get_object(request, unquote(object_id))
        if account is None:
            return self._no_such_account(request, object_id)
        if not self.has_delete_permission(request, account):
            raise PermissionDenied
        if request.method == "POST" and request.POST.get("post") == "yes":
            level, text = self._revoke_one(account)
            self.message_user(request, text, level)
            return HttpResponseRedirect(
                reverse(f"{self.admin_site.name}:django_bigoauth_linkedaccount_change", args=[account.pk])
            )
        return self._revoke_confirmation(request, [account], original=account)

    def _no_such_account(self, request: HttpRequest, object_id: str) -> HttpResponse:
        """What the admin's own pages do for an id that names nothing: a warning, and back to the admin's index."""
        message = gettext("%(name)s with ID “%(key)s” doesn’t exist. Perhaps it was deleted?") % {
            "name": self.opts.verbose_name,
            "key": unquote(object_id),
        }
        self.message_user(request, message, messages.WARNING)
        return HttpResponseRedirect(reverse("admin:index", current_app=self.admin_site.name))

    # -- the site-level link buttons ------------------------------------------------------------

    def changelist_view(self, request: HttpRequest, extra_context: dict | None = None) -> HttpResponse:
        extra_context = {**(extra_context or {}), "bigoauth_link_buttons": self.site_link_buttons(request)}
        return super().changelist_view(request, extra_context)

    def site_link_buttons(self, request: HttpRequest) -> list[dict[str, str]]:
        """One authorise form per configured provider, for superusers, when the app's URLs are installed.

        Each is a POST with the CSRF token (``url`` is the form's action, ``next`` a hidden
        field, ``site=1`` another): a site-level link is never started by a GET.
        """
        if not request.user.is_superuser:
            return []
        back = reverse(f"{self.admin_site.name}:django_bigoauth_linkedaccount_changelist")
        buttons = []
        try:
            providers = get_providers()
        except (BigOAuthError, ImproperlyConfigured):
            return []  # a broken configuration is reported by manage.py check
        for provider in providers:
            try:
                url = reverse("bigoauth:authorise", kwargs={"provider": provider.slug})
            except NoReverseMatch:
                return []
            buttons.append({"url": url, "next": back, "name": provider.display_name})
        return buttons


class KeysFirstChangeList(ChangeList):
    """A page's ids first, then only those rows: the database sorts narrow rows, not ciphertext.

    The token list's rows carry both encrypted columns (for the masked prefixes); sorting ten
    thousand of those, wide text columns and all, took MariaDB a temporary table on every page.
    The ids query sorts without them; the second reads the page's rows by id. Two queries,
    however many tokens there are and whether or not the list fits one page. The order is one
    an index serves (``get_ordering``), so that the ids query reads a page, not every token.
    """

    def get_ordering_field(self, field_name: Callable[..., Any] | str) -> Any:
        """None for a column the admin's ``sortable_by`` leaves out: Django hides its arrows but sorts it when asked."""
        if self.sortable_by is not None and field_name not in self.sortable_by:
            return None
        return super().get_ordering_field(field_name)

    def get_ordering(self, request: HttpRequest, queryset: QuerySet) -> list:
        """The column sorted on, or the default order, with a tie-breaker running the first key's way.

        Django sorts a column and then by the admin's whole default order (which it finds on the
        queryset), and ends an order it cannot prove total with ``-pk``: ``expires_at, -id`` is
        a sort of every token, where ``expires_at, id`` (or both descending) is the expiry
        index's own order, read a page at a time.
        """
        ordering = list(super().get_ordering(request, queryset.order_by()))
        if ordering[-1:] == ["-pk"]:
            # Django's tie-breaker goes; with nothing before it (the address asked for a column
            # that does not sort), the default order comes back.
            ordering = ordering[:-1] or list(self.model_admin.get_ordering(request))
            descending = bool(ordering) and str(ordering[0]).startswith("-")
            ordering.append("-pk" if descending else "pk")
        return ordering

    def get_results(self, request: HttpRequest) -> None:
        super().get_results(request)
        page = self.result_list  # a queryset, still unevaluated: one page of it, or all of it
        ids = list(page.values_list("pk", flat=True))
        rows = {row.pk: row for row in self.queryset.order_by().filter(pk__in=ids)}
        self.result_list = [rows[pk] for pk in ids if pk in rows]


@admin.register(Token)
class TokenAdmin(MaskedTokenColumns, admin.ModelAdmin):
    """Every token at a glance, masked, to look at only.

    Nothing is added or edited here: a token comes from linking and changes by refreshing.
    Nor deleted: a token removed on its own stays valid at the provider and leaves an
    "active" account that cannot call the API (``get_access_token()`` then asks for a new
    link). "Revoke" on the account does it properly; deleting the account takes the token along.
    """

    # Fits a 1280-pixel screen: the last refresh under the expiry, and no filter sidebar (the
    # token type, all there was to filter on, is one value in practice).
    list_display = (
        "display_provider",
        "account_link",
        "token_type",
        "expiry",
        "masked_access_token",
        "masked_refresh_token",
    )
    list_display_links = ("display_provider",)
    list_select_related = ("account", "account__user")

    class Media:
        css = {"all": ["django_bigoauth/admin.css"]}  # long account names wrap (the account list loads it itself)

    # By expiry, the longest expired first (accounts nobody has used for a while), then by id
    # (KeysFirstChangeList.get_ordering): a page is read through the expiry index on every
    # database. The account list's order (provider, label) cannot be: Django ends it on the
    # token's own account_id, not the account's id, so MariaDB sorted every token for each page.
    ordering = ("expires_at",)
    # Only the expiry sorts, both ways, through its index. Sorting by the account's provider
    # or label sorts every token on each page (the account list has that order, and an index
    # for it); the token type is one value in practice.
    sortable_by = ("expiry",)
    fields = readonly_fields = ("account_link", "display_provider", *TOKEN_FIELDS, "created_at", "updated_at")

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        return with_ciphertext_only(super().get_queryset(request))

    def get_changelist(self, request: HttpRequest, **kwargs: Any) -> type[ChangeList]:
        return KeysFirstChangeList

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Token | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Token | None = None) -> bool:
        return False

    @admin.display(description=_("account"))
    def account_link(self, token: Token) -> str:
        url = reverse(f"{self.admin_site.name}:django_bigoauth_linkedaccount_change", args=[token.account_id])
        return format_html('<a href="{}">{}</a>', url, token.account)

    @admin.display(description=_("provider"))
    def display_provider(self, token: Token) -> str:
        return provider_name(token.account.provider)
