"""The demo's own pages: a home page listing the user's linked accounts, "Test connection", and
"Test all connections", an async view that checks every account at once through ``asession()``."""

from __future__ import annotations

import asyncio
import time

from asgiref.sync import sync_to_async
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.contrib.auth.views import redirect_to_login
from django.http import HttpRequest, HttpResponse, HttpResponsePermanentRedirect, HttpResponseRedirect
from django.shortcuts import get_object_or_404, render
from django.templatetags.static import static
from django.urls import reverse
from django.utils import timezone
from django.utils.formats import time_format
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from django_bigoauth.conf import bigoauth_settings
from django_bigoauth.humanize import describe_expiry
from django_bigoauth.models import LinkedAccount
from django_bigoauth.operations import account_rows
from django_bigoauth.providers import UnknownProvider, get_providers

from .connection import ConnectionResult, atest_connection
from .connection import test_connection as run_test


def favicon(request: HttpRequest) -> HttpResponse:
    """``/favicon.ico``, which browsers ask for on pages that name no icon (the admin's): the app's icon."""
    return HttpResponsePermanentRedirect(static("django_bigoauth/favicon.svg"))


def home(request: HttpRequest) -> HttpResponse:
    context = {"providers": get_providers()}
    if request.user.is_authenticated:
        # The app's own rows: expiry, stale ("refreshed on next use") and unreadable tokens,
        # one decryption per account to tell the last.
        rows = account_rows(LinkedAccount.objects.filter(user=request.user), check_tokens=True)
        context["rows"] = sorted(rows, key=lambda row: (row.account.provider, row.account.label, row.id))
        context["leeway"] = bigoauth_settings.REFRESH_LEEWAY
    return render(request, "demo_site/home.html", context)


@login_required
@require_POST
def test_connection(request: HttpRequest, pk: int) -> HttpResponse:
    """Call the provider's API as this account, then go back with the result in messages.

    A redirect, not a page: reloading the page it lands on shows the result again without
    calling the API again. ``next`` (a page of this site) is where to go back to.
    """
    account = get_object_or_404(LinkedAccount, pk=pk, user=request.user)
    name = account.label or account.external_id or str(account.pk)
    try:
        result = run_test(account)
    except UnknownProvider:
        # The provider was removed from settings after the account was linked.
        messages.error(
            request,
            _("Test connection: %(name)s: its provider is no longer configured, so it cannot be tested.")
            % {"name": name},
            extra_tags="connection-result",
        )
    else:
        _report(request, name, result)
    next_url = request.POST.get("next", "")
    if not url_has_allowed_host_and_scheme(next_url, {request.get_host()}, require_https=request.is_secure()):
        next_url = reverse("home")
    return HttpResponseRedirect(next_url)


def _report(request: HttpRequest, name: str, result: ConnectionResult) -> None:
    """The result as messages: what the API answered, then what happened to the token.

    An error is the whole report: after it, nothing is said about the token's freshness.
    """
    if result.error:
        messages.error(
            request,
            _("Test connection: %(name)s: %(error)s") % {"name": name, "error": result.error},
            extra_tags="connection-result",
        )
        return
    level = messages.SUCCESS if result.ok else messages.WARNING
    messages.add_message(
        request,
        level,
        _("Test connection: %(name)s: GET %(path)s answered HTTP %(status)s.")
        % {"name": name, "path": result.path, "status": result.status},
        extra_tags="connection-result",
    )
    if result.body:
        messages.info(request, result.body, extra_tags="connection-answer")
    if result.expires_after is None:
        return
    # describe_expiry, not timeuntil: "in 9 seconds", never "in 0 minutes".
    after = {"after": _clock(result.expires_after), "until": describe_expiry(result.expires_after)}
    if result.refreshed:
        before = _clock(result.expires_before) if result.expires_before else "?"
        text = _(
            "The token was stale (due to expire at %(before)s), so it was refreshed first: the new one expires at "
            "%(after)s (%(until)s)."
        ) % {"before": before, **after}
        messages.success(request, text, extra_tags="connection-refreshed")
    else:
        text = _("The token was still fresh, so no refresh was needed: it expires at %(after)s (%(until)s).")
        messages.info(request, text % after, extra_tags="connection-fresh")


def _clock(when) -> str:
    return time_format(timezone.localtime(when), "H:i:s")


async def test_all_connections(request: HttpRequest) -> HttpResponse:
    """Check every linked account of the user at once: one ``asession()`` call each, side by side.

    A GET, so the home page can link to it: like "Test connection" it only asks each API who the
    token belongs to, refreshing a stale token first (exactly once, as everywhere).
    """
    user = await _signed_in_user(request)
    if not user.is_authenticated:
        return redirect_to_login(request.get_full_path())
    configured = set(bigoauth_settings.PROVIDERS)
    accounts = [
        account
        async for account in LinkedAccount.objects.filter(user=user)
        .exclude(status=LinkedAccount.Status.REVOKED)
        .order_by("provider", "label", "pk")
    ]
    testable = [account for account in accounts if account.provider in configured]
    started = time.monotonic()
    results = await asyncio.gather(*(atest_connection(account) for account in testable))
    elapsed = time.monotonic() - started
    context = {
        "results": results,
        "untested": [account for account in accounts if account.provider not in configured],
        "elapsed_ms": round(elapsed * 1000),
    }
    # Rendered off the loop: the template's context processors load request.user, a sync query.
    return await sync_to_async(render)(request, "demo_site/test_all.html", context)


async def _signed_in_user(request: HttpRequest):
    """The user, loaded off the loop (``request.user`` loads lazily, with a sync query)."""
    if hasattr(request, "auser"):  # Django 5.0+
        return await request.auser()

    def load():
        user = request.user
        user.is_authenticated  # noqa: B018 - evaluates the lazy object here, in a sync thread
        return user

    return await sync_to_async(load)()
