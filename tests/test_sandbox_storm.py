"""The example project's sandbox, a real django-oauth-toolkit server with refresh-token reuse
protection, under a storm of 4 processes x 8 threads on one expired token.

django-oauth-toolkit (``ROTATE_REFRESH_TOKEN`` + ``REFRESH_TOKEN_REUSE_PROTECTION``) revokes the
whole token family when a used refresh token comes back. One extra refresh request anywhere in
the storm, and the account would be dead afterwards; so the account still working, and still
refreshing, is the proof that exactly one refresh was sent.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from django_bigoauth import client
from django_bigoauth.linking import store_account
from django_bigoauth.models import LinkedAccount, Token
from django_bigoauth.providers import CallbackContext, get_provider
from tests.lifecycle_support import run_in_processes
from tests.test_example_project import consent, load_settings, signed_in, site  # noqa: F401 - site is a fixture

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def sandbox_settings(example_site, monkeypatch) -> dict:
    """The demo's own BIGOAUTH: the sandbox configured from settings alone (its ``ISSUER``)."""
    return load_settings(monkeypatch, SANDBOX_BASE_URL=example_site.url)["BIGOAUTH"]


def test_the_sandbox_account_survives_a_storm_of_processes(site, monkeypatch, settings, tmp_path):  # noqa: F811
    bigoauth = sandbox_settings(site, monkeypatch)
    settings.BIGOAUTH = bigoauth
    provider = get_provider("sandbox")
    callback, redirect_uri, verifier = consent(site, signed_in(site), provider, allow=True)
    reply = client.exchange_code(provider, callback["code"], redirect_uri=redirect_uri, code_verifier=verifier)
    account, _ = store_account(
        provider,
        reply,
        user=None,
        context=CallbackContext(),
        identity=client.fetch_identity(provider, reply.access_token),
    )
    Token.objects.filter(account=account).update(expires_at=timezone.now() - timedelta(minutes=1))

    results, errors = run_in_processes(4, account.pk, bigoauth, tmp_path, threads=8)

    assert errors == []
    stored = Token.objects.get(account=account)
    assert results == [stored.access_token] * 32
    assert stored.generation == 2  # the link, then one refresh
    account = LinkedAccount.objects.get(pk=account.pk)
    userinfo = "userinfo/"  # the API base of a provider from ISSUER is the issuer, /sandbox/o/
    assert account.session().get(userinfo).json()["sub"]
    # The refresh token stored by the storm's one refresh is the family's live one: it refreshes again.
    assert account.refresh() != stored.access_token
    assert account.session().get(userinfo).status_code == 200
