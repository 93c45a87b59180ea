"""The demo's own pages: a home page listing the user's linked accounts, and "Test connection"."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.db.models import F
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render
from django.views.decorators.http import require_POST

from django_bigoauth.conf import bigoauth_settings
from django_bigoauth.models import LinkedAccount
from django_bigoauth.providers import UnknownProvider, get_providers

from .connection import ConnectionResult
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
