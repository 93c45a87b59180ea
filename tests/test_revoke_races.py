"""Revoke, refresh and re-link at the same time: each waits for the claim, none undoes another.

The judge is the provider: after a revoke, it must hold no live token of the revoked link
(against a provider that rotates refresh tokens, a revoke of the token read before a refresh
would leave the rotated one alive); a link made after the revoke took its claim must be
active and untouched.
"""

from __future__ import annotations

import threading
import time

import pytest
from django.urls import reverse

from django_bigoauth import store
from django_bigoauth.linking import store_account
from django_bigoauth.models import LinkedAccount, Token
from django_bigoauth.providers import CallbackContext, Identity, TokenReply, get_provider
from django_bigoauth.revocation import RevokeOutcome

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def rotating(fake_provider):
    fake_provider.rotate_refresh_tokens = True
    return fake_provider


def in_thread(target) -> tuple[threading.Thread, dict]:
    outcome: dict = {}

    def run() -> None:
        try:
            outcome["value"] = target()
        except BaseException as exc:  # noqa: BLE001 - reported to the test
            outcome["error"] = exc
        finally:
            from django.db import connections

            connections.close_all()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, outcome


def wait_for(condition, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def claimed(account) -> bool:
    return Token.objects.filter(account=account).exclude(refresh_claim="").exists()


def test_a_revoke_during_a_refresh_revokes_the_token_that_refresh_stored(rotating, make_account):
    first_refresh_token = rotating.issue_refresh_token()
    account = make_account("bigin", accounts_server=rotating.url, refresh_token=first_refresh_token)
    grant = rotating.grant_of(first_refresh_token)
    rotating.delay = 0.5

    refresh, refreshed = in_thread(lambda: LinkedAccount.objects.get(pk=account.pk).refresh())
    wait_for(lambda: claimed(account))
    result = LinkedAccount.objects.get(pk=account.pk).revoke()
    refresh.join(10)

    assert refreshed["value"] in grant.access_tokens
    assert result.outcome is RevokeOutcome.REVOKED
    (revoke_call,) = rotating.calls("/revoke")
    # The refresh token that refresh stored, not the one read before it (which is used up).
    assert revoke_call.form["token"] == grant.refresh_token != first_refresh_token
    assert not grant.alive and not (set(grant.access_tokens) & rotating.live_access_tokens)
    assert not Token.objects.filter(account=account).exists()
    assert LinkedAccount.objects.get(pk=account.pk).status == LinkedAccount.Status.REVOKED


def test_a_disconnect_during_a_refresh_leaves_no_live_token(rotating, make_account, django_user_model):
    owner = django_user_model.objects.create_user("owner", password="pw")
    account = make_account(
        "biggerplate", user=owner, expires_in=-5, refresh_token=rotating.issue_refresh_token(), external_id="bp-1"
    )
    # Biggerplate has no revoke endpoint of its own; give this one the fake's, as a site could.
    from django.conf import settings

    config = settings.BIGOAUTH
    config["PROVIDERS"]["biggerplate"]["REVOKE_URL"] = f"{rotating.url}/oauth/revoke"
    settings.BIGOAUTH = dict(config)
    rotating.delay = 0.5
    grant = rotating.grant_of(Token.objects.get(account=account).refresh_token)

    refresh, refreshed = in_thread(lambda: LinkedAccount.objects.get(pk=account.pk).get_access_token())
    wait_for(lambda: claimed(account))
    from django.test import Client

    browser = Client()
    browser.force_login(owner)
    response = browser.post(reverse("bigoauth:disconnect", args=[account.pk]))
    refresh.join(10)

    assert response.status_code == 302
    assert "value" in refreshed  # the refresh finished first, then the disconnect revoked its result
    (revoke_call,) = rotating.calls("/revoke")
    assert revoke_call.form["token"] == grant.refresh_token
    assert revoke_call.form["token_type_hint"] == "refresh_token"
    assert not grant.alive and not (set(grant.access_tokens) & rotating.live_access_tokens)
    assert LinkedAccount.objects.get(pk=account.pk).status == LinkedAccount.Status.REVOKED


def test_a_relink_during_a_revoke_survives_untouched(fake_provider, make_account):
    account = make_account(
        "bigin", accounts_server=fake_provider.url, refresh_token=fake_provider.issue_refresh_token()
    )
    old_refresh = Token.objects.get(account=account).refresh_token
    fake_provider.queue_reply(200, {"status": "success"}, delay=0.5, path_suffix="/revoke")
    new_grant = fake_provider.adopt(access_token="1000.access.relinked", refresh_token="1000.refresh.relinked")

    revoke, revoked = in_thread(lambda: LinkedAccount.objects.get(pk=account.pk).revoke())
    wait_for(lambda: len(fake_provider.calls("/revoke")) == 1)  # the revoke is in flight
    relinked, created = store_account(
        get_provider("bigin"),
        TokenReply("1000.access.relinked", "1000.refresh.relinked", "Bearer", None, api_domain=fake_provider.api_url),
        user=None,
        context=CallbackContext(accounts_server=fake_provider.url, data_centre="us"),
        identity=Identity("org-1"),
    )
    revoke.join(10)

    assert not created and relinked.pk == account.pk
    assert revoked["value"].outcome is RevokeOutcome.SUPERSEDED
    assert fake_provider.calls("/revoke")[0].form["token"] == old_refresh  # what was current when it claimed
    stored = Token.objects.get(account=account)
    assert (stored.access_token, stored.refresh_token) == ("1000.access.relinked", "1000.refresh.relinked")
    assert LinkedAccount.objects.get(pk=account.pk).status == LinkedAccount.Status.ACTIVE
    assert new_grant.alive
    assert LinkedAccount.objects.get(pk=account.pk).session().get("/bigin/v2/org").status_code == 200


def test_a_refused_refresh_during_a_relink_does_not_mark_the_new_link(fake_provider, make_account):
    """The refresh of the old grant is refused while a re-link stores a new one: the mark must
    check the generation, or the working new link is marked as needing re-authorisation."""
    account = make_account("bigin", expires_in=-5, refresh_token="1000.refresh.dead-at-the-provider")
    fake_provider.queue_reply(200, {"error": "invalid_code"}, delay=0.5)  # Zoho's refusal, HTTP 200
    fake_provider.adopt(access_token="1000.access.relinked", refresh_token="1000.refresh.relinked")

    refresh, refreshed = in_thread(lambda: LinkedAccount.objects.get(pk=account.pk).get_access_token())
    wait_for(lambda: fake_provider.refresh_calls() == 1)
    store_account(
        get_provider("bigin"),
        TokenReply("1000.access.relinked", "1000.refresh.relinked", "Bearer", None, api_domain=fake_provider.api_url),
        user=None,
        context=CallbackContext(),
        identity=Identity("org-1"),
    )
    refresh.join(10)

    assert refreshed.get("value") == "1000.access.relinked"
    assert LinkedAccount.objects.get(pk=account.pk).status == LinkedAccount.Status.ACTIVE
    assert Token.objects.get(account=account).refresh_claim == ""


def test_a_revoke_waits_for_a_refresh_claim_and_gives_up_with_a_clear_error(fake_provider, make_account, settings):
    from datetime import timedelta

    from django.utils import timezone

    from django_bigoauth.exceptions import RevokeError
    from tests.fakeprovider import bigoauth_settings_for

    settings.BIGOAUTH = bigoauth_settings_for(fake_provider, HTTP_TIMEOUT=0.2)
    account = make_account("bigin", accounts_server=fake_provider.url)
    Token.objects.filter(account=account).update(
        refresh_claim="e" * 32, refresh_claimed_until=timezone.now() + timedelta(minutes=5)
    )
    with pytest.raises(RevokeError, match="being refreshed or revoked elsewhere"):
        account.revoke()
    assert fake_provider.requests == []
    assert Token.objects.filter(account=account).exists()
    assert store.read_claim_state("default", account.pk).status == LinkedAccount.Status.ACTIVE
