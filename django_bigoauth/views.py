"""The authorisation-code flow: the accounts page, authorise, callback and disconnect.

Views decide what to show; they never talk HTTP themselves. ``linking`` (exchange and store)
and ``revocation`` do the work through ``client``. Every failure is a page from one
template, ``django_bigoauth/error.html``, with the status it deserves:

* 400 the callback cannot be acted on (state missing, unknown, expired, used, someone
  else's; an accounts server outside the allow-list; an RFC 9207 ``iss`` that is not the
  provider's issuer, or none where the provider promises one; no code),
* 403 a site-level link asked for by someone who is not a superuser,
* 404 an unknown provider,
* 502 the provider answered, but not with a usable token (an ID token that fails validation
  included), or its discovery document could not be used,
* 503 the database failed while storing the account (nothing was stored),
* 504 the provider (or its discovery document) did not answer within ``HTTP_TIMEOUT``.

Nothing secret reaches a log record: the code and the state are only ever in the query string
(which Django's request log leaves out); the database holds the state's hash and the PKCE
verifier encrypted (``state.py``). Every response says ``X-Frame-Options: DENY`` and
``Cache-Control: no-store``: these pages show account data and carry buttons that act.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import re

from django.contrib import messages
from django.contrib.auth.base_user import AbstractBaseUser
from django.contrib.auth.decorators import login_required
from django.contrib.auth.models import AnonymousUser
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import redirect, render
from django.urls import NoReverseMatch, reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.cache import never_cache
from django.views.decorators.clickjacking import xframe_options_deny
from django.views.decorators.csrf import csrf_protect
from django.views.decorators.debug import sensitive_variables
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from . import linking, state
from .conf import bigoauth_settings
from .exceptions import AccountNotStored, CallbackError, InvalidGrant, ProviderError, ProviderTimeout, RevokeError
from .models import LinkedAccount
from .operations import AccountRow, account_rows
from .providers import Provider, UnknownProvider, get_provider, get_providers
from .revocation import RevokeOutcome

logger = logging.getLogger("django_bigoauth")

# AccountRow lives in operations.py (one row type for every list of accounts); re-exported here.
__all__ = ["AccountRow", "accounts", "authorise", "callback", "disconnect", "may_link_site_accounts"]

ERROR_TEMPLATE = "django_bigoauth/error.html"
ACCOUNTS_TEMPLATE = "django_bigoauth/accounts.html"
AUTHORISE_TEMPLATE = "django_bigoauth/authorise.html"
SITE_ACCOUNTS_ADMIN_URL = "admin:django_bigoauth_linkedaccount_changelist"
# An ``error`` value from the provider is shown only when it looks like an OAuth error code.
_ERROR_CODE = re.compile(r"[A-Za-z0-9_.\- ]{1,64}")


# -- the accounts page -------------------------------------------------------------------------


@xframe_options_deny
@never_cache
@login_required
@require_GET
@csrf_protect
def accounts(request: HttpRequest) -> HttpResponse:
    """The signed-in user's linked accounts, with connect, reconnect and disconnect buttons.

    Each row (an ``operations.AccountRow``) says whether the token is stale (refreshed on its
    next use) and whether it can be decrypted at all: one decryption per account, for the
    few accounts of one user.
    """
    user = request.user
    if not user.is_authenticated:  # login_required has sent anonymous users to the login page
        raise PermissionDenied
    own = account_rows(LinkedAccount.objects.filter(user=user), check_tokens=True)
    rows = [
        dataclasses.replace(row, reconnect_url=reverse("bigoauth:authorise", args=[row.account.provider]))
        if row.configured
        else row
        for row in sorted(own, key=lambda row: (row.account.provider, row.account.label, row.id))
    ]
    providers = [
        {"slug": p.slug, "name": p.display_name, "url": reverse("bigoauth:authorise", args=[p.slug])}
        for p in get_providers()
    ]
    return render(request, ACCOUNTS_TEMPLATE, {"rows": rows, "providers": providers})


# -- authorise ---------------------------------------------------------------------------------


@xframe_options_deny
@never_cache
@login_required
@require_http_methods(["GET", "POST"])
@csrf_protect
@sensitive_variables("state_value", "challenge", "nonce", "url")
def authorise(request: HttpRequest, provider: str) -> HttpResponse:
    """Start an authorisation request: a POST sends the browser to the provider's consent page.

    A GET shows a confirmation page whose button POSTs (CSRF-checked) back here, so another
    site cannot start a request in the user's browser. ``AUTHORISE_ON_GET = True`` lets a GET
    start it at once (one-click links), except for a site-level link (``site=1``), which is
    always confirmed by a POST, and except when this browser has ``MAX_PENDING`` requests
    pending and the oldest was started by a POST: a GET never cancels one of those, and the
    confirmation page is shown instead.

    ``next`` is where to go afterwards (same host only); ``site=1`` links an account that
    belongs to the site rather than to the user, and is for superusers only. Both come from
    the query string on GET and from the form on POST.
    """
    try:
        provider_obj = get_provider(provider)
    except UnknownProvider:
        return _unknown_provider(request, provider)
    started_by_post = request.method == "POST"
    params = request.POST if started_by_post else request.GET
    site_level = params.get("site") == "1"
    if site_level and not may_link_site_accounts(request.user):
        return _error_page(request, 403, _site_level_refused(), provider=provider_obj)
    next_url = params.get("next", "")
    if not _is_safe_next(request, next_url):
        next_url = ""
    if not started_by_post and (site_level or bigoauth_settings.AUTHORISE_ON_GET is not True):
        return _confirmation_page(request, provider_obj, next_url=next_url, site_level=site_level)
    redirect_uri = provider_obj.setting("REDIRECT_URI") or request.build_absolute_uri(
        reverse("bigoauth:callback", args=[provider_obj.slug])
    )
    try:
        # A provider with ISSUER learns its endpoints now (discovery): a failure is a page, before
        # anything is stored.
        provider_obj.get_authorize_url()
    except ProviderError as exc:
        return _discovery_failed(request, provider_obj, exc, site_level=site_level)
    nonce = state.new_nonce() if provider_obj.uses_nonce else ""
    try:
        state_value, challenge = state.begin(
            request,
            provider_obj.slug,
            redirect_uri=redirect_uri,
            use_pkce=provider_obj.uses_pkce,
            next_url=next_url,
            site_level=site_level,
            started_by_post=started_by_post,
            nonce=nonce,
        )
    except state.TooManyPending:
        logger.info(
            "Not starting a %s authorisation request by GET for user %s: it would cancel one started by POST",
            provider_obj.slug,
            request.user.pk,
        )
        return _confirmation_page(request, provider_obj, next_url=next_url, site_level=site_level, too_many=True)
    try:
        url = provider_obj.authorization_url(
            redirect_uri=redirect_uri, state=state_value, code_challenge=challenge, nonce=nonce
        )
    except ProviderError as exc:
        return _discovery_failed(request, provider_obj, exc, site_level=site_level)
    logger.info(
        "Starting a %s authorisation request for user %s%s",
        provider_obj.slug,
        request.user.pk,
        " (site-level account)" if site_level else "",
    )
    return HttpResponseRedirect(url)


def _discovery_failed(
    request: HttpRequest, provider: Provider, exc: ProviderError, *, site_level: bool
) -> HttpResponse:
    """The provider's metadata could not be had (or used): 504 when it did not answer in time, else 502."""
    names = {"provider": provider.display_name}
    if isinstance(exc, ProviderTimeout):
        status = 504
        message = _("%(provider)s did not answer in time, so the sign-in could not start. Please try again shortly.")
    else:
        status = 502
        message = _(
            "This site could not read %(provider)s's sign-in settings, so the sign-in could not start. "
            "Please try again later; if it keeps happening, tell the site's administrators."
        )
    logger.error("Could not start a %s authorisation request: %s", provider.slug, exc)
    return _error_page(request, status, message % names, provider=provider, site_level=site_level)


def _confirmation_page(
    request: HttpRequest, provider: Provider, *, next_url: str, site_level: bool, too_many: bool = False
) -> HttpResponse:
    """The "Continue to Bigin" page: its button POSTs ``next`` and ``site`` back to the authorise view."""
    context = {
        "provider_name": provider.display_name,
        "provider_slug": provider.slug,
        "action_url": reverse("bigoauth:authorise", args=[provider.slug]),
        "next_url": next_url,
        "site_level": site_level,
        "back_url": next_url or _home_url(site_level),
        "too_many_pending": too_many,
    }
    return render(request, AUTHORISE_TEMPLATE, context)


def _site_level_refused() -> str:
    return _("Only a superuser can link an account for the whole site.")


def may_link_site_accounts(user: AbstractBaseUser | AnonymousUser) -> bool:
    """Site-level accounts act for the whole site: only an active staff superuser may link one.

    A custom user model without ``is_staff`` or ``is_superuser`` has no such user.
    """
    return bool(user.is_active and getattr(user, "is_staff", False) and getattr(user, "is_superuser", False))


# -- callback ----------------------------------------------------------------------------------


@transaction.non_atomic_requests
@xframe_options_deny
@never_cache
@require_GET
def callback(request: HttpRequest, provider: str) -> HttpResponse:
    """Where the provider sends the browser back; checks come first, the exchange last.

    Not ``login_required``: a signed-out browser has no pending state, so it gets the 400
    page; redirecting it to the login form would copy the code into another URL.

    Never inside ``ATOMIC_REQUESTS``: the state must be used up (its row deleted and committed)
    before the code goes to the provider, whatever happens afterwards, and no transaction may
    stay open across the exchange (``linking`` writes the account in one of its own).
    """
    try:
        provider_obj = get_provider(provider)
    except UnknownProvider:
        logger.warning("A callback arrived for unknown provider %r", provider[:50])
        return _not_for_django_request_log(_no_referrer(_unknown_provider(request, provider)))
    return _not_for_django_request_log(_no_referrer(_callback(request, provider_obj)))


def _not_for_django_request_log(response: HttpResponse) -> HttpResponse:
    """Keep failed callbacks out of Django's ``django.request`` logger; ours has logged them.

    Its records carry the request, whose query string holds the code and state, and its
    ``AdminEmailHandler`` mails the full URL to ``ADMINS`` on every 5xx. Django skips a
    response it is told was logged already (``django.utils.log.log_response``).
    """
    if response.status_code >= 400:
        response._has_been_logged = True  # type: ignore[attr-defined]
    return response


@sensitive_variables()
def _callback(request: HttpRequest, provider: Provider) -> HttpResponse:
    # 1. The state: ours, this session's, this user's, this provider's, fresh and unused.
    try:
        pending = state.consume(request, provider.slug, request.GET.get("state"))
    except state.StateError as exc:
        return _callback_failed(request, provider, exc, 400, str(exc))
    if pending.site_level and not may_link_site_accounts(request.user):
        logger.warning("A site-level %s callback came back for a user who is no longer a superuser", provider.slug)
        return _error_page(request, 403, _site_level_refused(), provider=provider)
    home = _home_url(pending.site_level)
    fail = functools.partial(_callback_failed, request, provider, site_level=pending.site_level)

    # 2. The provider says no (the user declined, or something went wrong there).
    if "error" in request.GET:
        return _provider_declined(request, provider, request.GET.get("error", ""), home)

    # 3. Who sent the browser back (RFC 9207's iss) and where the code may be exchanged (Zoho's
    #    accounts server), before any secret is sent.
    try:
        context = provider.read_callback(request.GET)
        code = request.GET.get("code", "")
        if not code:
            raise CallbackError(_("The sign-in came back without an authorisation code."))
    except CallbackError as exc:
        return fail(exc, 400, str(exc))
    except ProviderTimeout as exc:  # the issuer's metadata, needed to check the callback
        logger.warning("Checking a %s callback needs the issuer's metadata, which failed: %s", provider.slug, exc)
        message = _("%(provider)s did not answer in time, so nothing was linked. Please try again in a moment.")
        return fail(exc, 504, message % {"provider": provider.display_name})
    except ProviderError as exc:
        logger.warning("Checking a %s callback needs the issuer's metadata, which failed: %s", provider.slug, exc)
        message = _(
            "This site could not read %(provider)s's sign-in settings, so nothing was linked. "
            "Please try again later; if it keeps happening, tell the site's administrators."
        )
        return fail(exc, 502, message % {"provider": provider.display_name})

    # 4. The exchange, then the account and its token in one transaction.
    try:
        account, created = linking.link_with_code(
            provider,
            code,
            user=None if pending.site_level else request.user,
            redirect_uri=pending.redirect_uri,
            code_verifier=pending.code_verifier or None,
            context=context,
            nonce_digest=pending.nonce_digest,
        )
    except CallbackError as exc:
        return fail(exc, 400, str(exc))
    except ProviderTimeout as exc:
        message = _("%(provider)s did not answer in time, so nothing was linked. Please try again in a moment.")
        return fail(exc, 504, message % {"provider": provider.display_name})
    except InvalidGrant as exc:
        message = _(
            "%(provider)s did not accept the sign-in (it may have expired or been used already), "
            "so nothing was linked. Please connect again."
        )
        return fail(exc, 502, message % {"provider": provider.display_name})
    except ProviderError as exc:
        message = _(
            "%(provider)s answered in a way this site could not use, so nothing was linked. "
            "Please try again; if it keeps happening, tell the site's administrators."
        )
        return fail(exc, 502, message % {"provider": provider.display_name})
    except AccountNotStored as exc:
        message = _(
            "This site could not save your %(provider)s account just now, so nothing was linked. "
            "Please connect again in a moment."
        )
        return fail(exc, 503, message % {"provider": provider.display_name})

    names = {"provider": provider.display_name, "label": account.label}
    if pending.site_level:  # the site's account, not the superuser's who linked it
        if created:
            text = _("The site's %(provider)s account “%(label)s” is now linked.") % names
        else:
            text = _("The site's %(provider)s account “%(label)s” was linked again and is up to date.") % names
    elif created:
        text = _("Your %(provider)s account “%(label)s” is now linked.") % names
    else:
        text = _("Your %(provider)s account “%(label)s” was linked again and is up to date.") % names
    messages.success(request, text, fail_silently=True)
    next_url = pending.next_url if _is_safe_next(request, pending.next_url) else ""
    return HttpResponseRedirect(next_url or home)


def _provider_declined(request: HttpRequest, provider: Provider, error: str, home: str) -> HttpResponse:
    code = error if _ERROR_CODE.fullmatch(error) else "unknown"
    logger.info("The %s authorisation request came back with error %r", provider.slug, code)
    names = {"provider": provider.display_name, "error": code}
    if code == "access_denied":
        messages.warning(
            request, _("You did not allow access at %(provider)s, so nothing was linked.") % names, fail_silently=True
        )
    else:
        messages.error(
            request,
            _("%(provider)s could not complete the sign-in (%(error)s), so nothing was linked. Please try again.")
            % names,
            fail_silently=True,
        )
    return HttpResponseRedirect(home)


def _callback_failed(
    request: HttpRequest, provider: Provider, exc: Exception, status: int, message: str, *, site_level: bool = False
) -> HttpResponse:
    # Exception messages of this app never hold a code, state or verifier; see exceptions.py.
    # A provider's refusal was logged with its reason where it happened (linking.link_with_code).
    level = logging.ERROR if status >= 500 else logging.WARNING
    reason = "" if isinstance(exc, ProviderError) else f": {exc}"
    logger.log(level, "The %s callback failed with HTTP %s (%s)%s", provider.slug, status, type(exc).__name__, reason)
    return _error_page(request, status, message, provider=provider, site_level=site_level)


def _home_url(site_level: bool) -> str:
    """Where a finished flow lands: the admin list for a site-level account, else the accounts page."""
    if site_level:
        try:
            return reverse(SITE_ACCOUNTS_ADMIN_URL)
        except NoReverseMatch:
            pass
    return reverse("bigoauth:accounts")


def _is_safe_next(request: HttpRequest, url: str) -> bool:
    return bool(url) and url_has_allowed_host_and_scheme(
        url, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    )


def _no_referrer(response: HttpResponse) -> HttpResponse:
    # The callback URL carries the code and state: keep them out of Referer headers sent by
    # anything a site's own base template loads on the error page.
    response["Referrer-Policy"] = "no-referrer"
    return response


# -- disconnect --------------------------------------------------------------------------------


@xframe_options_deny
@never_cache
@require_POST
@login_required
@csrf_protect
def disconnect(request: HttpRequest, pk: int) -> HttpResponse:
    """Revoke one of the user's accounts at the provider (where it can) and drop its tokens.

    When the provider cannot be reached or refuses, the tokens stay: keeping them is what lets
    the revocation be tried again. The message says so and names the alternative (revoking
    access at the provider's own site).
    """
    user = request.user
    if not user.is_authenticated:  # login_required has sent anonymous users to the login page
        raise PermissionDenied
    account = LinkedAccount.objects.filter(pk=pk, user=user).first()
    if account is None:  # someone else's, a site-level one, or none: the app's 404 page (with its headers)
        return _error_page(request, 404, _("There is no such linked account."), title=_("Account not found"))
    names = {"label": account.label or account.external_id or account.pk}
    try:
        provider = get_provider(account.provider)
    except UnknownProvider:
        messages.error(
            request,
            _("“%(label)s” cannot be disconnected: its provider is no longer configured on this site.") % names,
            fail_silently=True,
        )
        return redirect("bigoauth:accounts")
    names["provider"] = provider.display_name
    try:
        result = account.revoke()
    except RevokeError:
        messages.error(
            request,
            _(
                "%(provider)s did not confirm that access for “%(label)s” was withdrawn, so the account "
                "stays linked. Please try again later, or remove this site's access in your "
                "%(provider)s account settings."
            )
            % names,
            fail_silently=True,
        )
        return redirect("bigoauth:accounts")
    outcome = result.outcome
    if outcome is RevokeOutcome.REVOKED:
        text = _("“%(label)s” is disconnected: %(provider)s withdrew this site's access and its tokens are deleted.")
    elif outcome is RevokeOutcome.REMOVED_LOCALLY:
        text = _(
            "“%(label)s” is disconnected and its tokens are deleted here. %(provider)s offers no way to "
            "withdraw access remotely: you can remove this site in your %(provider)s account settings."
        )
    elif outcome is RevokeOutcome.SUPERSEDED:
        text = _("“%(label)s” was linked again while it was being disconnected; the new link stays.")
    else:
        text = _("“%(label)s” is disconnected.")
    messages.success(request, text % names, fail_silently=True)
    return redirect("bigoauth:accounts")


# -- error pages -------------------------------------------------------------------------------


_TITLES = {
    400: gettext_lazy("This sign-in cannot be used"),
    403: gettext_lazy("Not allowed"),
    404: gettext_lazy("Unknown provider"),
    502: gettext_lazy("The provider answered with an error"),
    503: gettext_lazy("The account could not be saved"),
    504: gettext_lazy("The provider did not answer in time"),
}


def _unknown_provider(request: HttpRequest, slug: str) -> HttpResponse:
    return _error_page(request, 404, _("There is no provider called “%(slug)s” on this site.") % {"slug": slug[:50]})


def _error_page(
    request: HttpRequest,
    status: int,
    message: str,
    *,
    provider: Provider | None = None,
    site_level: bool = False,
    title: str = "",
) -> HttpResponse:
    """The one error page; ``retry_url`` (a link: the confirmation page) when there is a provider to retry."""
    retry_url = ""
    if provider is not None and status != 403:
        retry_url = reverse("bigoauth:authorise", args=[provider.slug]) + ("?site=1" if site_level else "")
    context = {
        "status": status,
        "title": title or _TITLES.get(status) or _("Something went wrong"),
        "message": message,
        "provider_name": provider.display_name if provider else "",
        "retry_url": retry_url,
        "back_url": _home_url(site_level),
    }
    return render(request, ERROR_TEMPLATE, context, status=status)
