"""The demo's own pages: a home page listing the user's linked accounts, "Test connection", and
"Test all connections", an async view that checks every account at once through ``asession()``."""

from __future__ import annotations

import asyncio
import time

from asgiref.sync import sync_to_async
from django.contrib.auth.decorators import login_required
from django.contrib.auth.views import redirect_to_login
from django.db.models import F
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render
from django.views.decorators.http import require_POST

from django_bigoauth.conf import bigoauth_settings
from django_bigoauth.models import LinkedAccount
from django_bigoauth.providers import UnknownProvider, get_providers

from .connection import ConnectionResult, atest_connection
from .connection import test_connection as run_test


def home(request: HttpRequest) -> HttpResponse:
    return render(request, "demo_site/home.html", _context(request))


@login_required
@require_POST
def test_connection(request: HttpRequest, pk: int) -> HttpResponse:
    """Call the provider's API as this account and show the answer on the home page."""
    account = get_object_or_404(LinkedAccount, pk=pk, user=request.user)
    try:
        result = run_test(account)
    except UnknownProvider:
        # The provider was removed from settings after the account was linked.
        result = None
    return render(request, "demo_site/home.html", _context(request, result=result, tested=account.pk))


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


def _context(request: HttpRequest, *, result: ConnectionResult | None = None, tested: int | None = None) -> dict:
    if not request.user.is_authenticated:
        return {"providers": get_providers()}
    configured = set(bigoauth_settings.PROVIDERS)
    # The expiry only: loading the token itself would decrypt it, for nothing.
    accounts = list(
        LinkedAccount.objects.filter(user=request.user)
        .annotate(expires_at=F("token__expires_at"))
        .order_by("provider", "label", "pk")
    )
    for account in accounts:
        account.configured = account.provider in configured
        account.display_provider = account.provider_instance.display_name if account.configured else account.provider
    return {
        "providers": get_providers(),
        "accounts": accounts,
        "result": result,
        "tested": tested,
        "leeway": bigoauth_settings.REFRESH_LEEWAY,
    }
