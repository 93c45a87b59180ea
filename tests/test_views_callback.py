"""The callback view against a real token server on 127.0.0.1.

Every bad input ends in a page with the right status, nothing stored and, where the check
comes before the exchange, no request sent to the provider at all.
"""

import base64
import hashlib
import json
import logging
import threading
import time
from datetime import datetime, timedelta
from datetime import timezone as dt_timezone

import pytest
from django.db import connection
from django.db.models import QuerySet
from django.http import HttpResponse
from django.test import Client
from django.urls import include, path, reverse
from django.utils import timezone

from django_bigoauth import crypto, signals
from django_bigoauth.models import LinkedAccount, PendingAuthorisation, Token
from django_bigoauth.state import SESSION_KEY
from tests.lifecycle_support import run_in_threads
from tests.oauthflow import biggerplate_return, bigin_return, callback_url, messages_of, nothing_stored, start

pytestmark = pytest.mark.django_db

ACCOUNTS = "/bigoauth/"


def configure(settings, slug=None, **values):
    """Change the fake provider's BIGOAUTH entry (or top-level keys) and fire setting_changed."""
    config = json.loads(json.dumps(settings.BIGOAUTH))
    if slug:
        config["PROVIDERS"][slug].update(values)
    else:
        config.update(values)
    settings.BIGOAUTH = config


def come_back(client, fake, slug="bigin", authorised=None, **overrides):
    authorised = authorised or start(client, slug)
    build = bigin_return if slug == "bigin" else biggerplate_return
    return client.get(callback_url(slug), build(fake, authorised, **overrides))


def token_requests(fake):
    return fake.calls("/token", grant_type="authorization_code")


# -- the state -----------------------------------------------------------------------------------


def test_no_state_is_refused_before_anything_is_sent(signed_in, fake_provider):
    start(signed_in, "bigin")
    response = signed_in.get(
        callback_url("bigin"), {"code": fake_provider.issue_code(), "accounts-server": fake_provider.url}
    )
    assert response.status_code == 400
    assert "without its state parameter" in response.content.decode()
    assert nothing_stored() and fake_provider.requests == []


def test_forged_state_is_refused(signed_in, fake_provider):
    start(signed_in, "bigin")
    response = come_back(signed_in, fake_provider, authorised={"state": "x" * 43})
    assert response.status_code == 400
    assert nothing_stored() and fake_provider.requests == []


def test_replayed_state_after_a_link_is_refused(signed_in, fake_provider):
    authorised = start(signed_in, "bigin")
    assert come_back(signed_in, fake_provider, authorised=authorised).status_code == 302
    replay = come_back(signed_in, fake_provider, authorised=authorised)
    assert replay.status_code == 400
    assert LinkedAccount.objects.count() == 1 and Token.objects.count() == 1
    assert len(token_requests(fake_provider)) == 1


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("interleaving", ["both-read-before-either-deletes", "free"])
def test_one_callback_submitted_twice_at_once_reaches_the_provider_once(
    alice, fake_provider, settings, monkeypatch, interleaving
):
    """Two tabs (two clients sharing one session cookie) present one state at the same moment."""
    configure(settings, "bigin", PKCE=True)
    fake_provider.delay = 0.2  # the winner is still talking to the provider when the loser arrives
    first_tab = Client()
    first_tab.force_login(alice)
    authorised = start(first_tab, "bigin")
    second_tab = Client()
    second_tab.cookies[settings.SESSION_COOKIE_NAME] = first_tab.cookies[settings.SESSION_COOKIE_NAME].value
    params = bigin_return(fake_provider, authorised)

    if interleaving == "both-read-before-either-deletes":
        # The worst case, forced: each request has read the row before either deletes it.
        both_read = threading.Barrier(2)
        real_first = QuerySet.first

        def first_then_wait(queryset):
            row = real_first(queryset)
            if queryset.model is PendingAuthorisation:
                both_read.wait(10)
            return row

        monkeypatch.setattr(QuerySet, "first", first_then_wait)

    tabs = iter([first_tab, second_tab])
    guard = threading.Lock()

    def submit():
        with guard:
            tab = next(tabs)
        return tab.get(callback_url("bigin"), params)

    responses, errors = run_in_threads(2, submit)
    assert errors == []
    by_status = {response.status_code: response for response in responses}
    assert sorted(by_status) == [302, 400]
    assert by_status[302]["Location"] == ACCOUNTS
    assert "already used" in by_status[400].content.decode()
    assert len(token_requests(fake_provider)) == 1
    assert LinkedAccount.objects.count() == 1 and Token.objects.count() == 1
    assert not PendingAuthorisation.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_a_state_stays_used_when_the_callback_fails_under_atomic_requests(alice, fake_provider, monkeypatch):
    # With ATOMIC_REQUESTS, a crash after the state was consumed would roll its DELETE back and
    # make the state usable again; the callback is non_atomic_requests, so it stays used up.
    from django_bigoauth import linking

    monkeypatch.setitem(connection.settings_dict, "ATOMIC_REQUESTS", True)

    def crash(*args, **kwargs):
        raise RuntimeError("a bug after the state was consumed")

    monkeypatch.setattr(linking, "link_with_code", crash)
    browser = Client(raise_request_exception=False)
    browser.force_login(alice)
    authorised = start(browser, "bigin")
    assert browser.get(callback_url("bigin"), bigin_return(fake_provider, authorised)).status_code == 500
    assert not PendingAuthorisation.objects.exists()
    monkeypatch.undo()
    replay = browser.get(callback_url("bigin"), bigin_return(fake_provider, authorised))
    assert replay.status_code == 400
    assert nothing_stored() and fake_provider.requests == []


def test_replayed_state_after_a_refusal_is_refused(signed_in, fake_provider):
    authorised = start(signed_in, "bigin")
    denied = signed_in.get(callback_url("bigin"), {"state": authorised["state"], "error": "access_denied"})
    assert denied.status_code == 302
    replay = come_back(signed_in, fake_provider, authorised=authorised)
    assert replay.status_code == 400
    assert nothing_stored() and fake_provider.requests == []


def test_expired_state_is_refused(signed_in, fake_provider):
    authorised = start(signed_in, "bigin")
    row = PendingAuthorisation.objects.get()
    row.created_at -= timedelta(seconds=601)  # STATE_TTL defaults to 600 seconds
    row.save()
    response = come_back(signed_in, fake_provider, authorised=authorised)
    assert response.status_code == 400
    assert nothing_stored() and fake_provider.requests == []
    assert not PendingAuthorisation.objects.exists()


def test_state_ttl_setting_is_honoured(signed_in, fake_provider, settings):
    configure(settings, STATE_TTL=0)
    response = come_back(signed_in, fake_provider)
    assert response.status_code == 400
    assert nothing_stored() and fake_provider.requests == []


def test_state_from_another_session_is_refused(signed_in, alice, fake_provider):
    authorised = start(signed_in, "bigin")
    other_browser = Client()
    other_browser.force_login(alice)
    start(other_browser, "bigin")  # a browser with pending requests of its own: still not this one
    response = come_back(other_browser, fake_provider, authorised=authorised)
    assert response.status_code == 400
    assert nothing_stored() and fake_provider.requests == []
    # Left to the browser that started it, which can still use it.
    assert come_back(signed_in, fake_provider, authorised=authorised).status_code == 302


def test_state_of_another_user_is_refused(signed_in, django_user_model, fake_provider):
    authorised = start(signed_in, "bigin")
    bob = Client()
    bob.force_login(django_user_model.objects.create_user("bob"))
    session = bob.session
    session[SESSION_KEY] = signed_in.session[SESSION_KEY]  # alice's browser binding, in bob's session
    session.save()
    response = come_back(bob, fake_provider, authorised=authorised)
    assert response.status_code == 400
    assert "started by another user" in response.content.decode()
    assert nothing_stored() and fake_provider.requests == []


def test_state_for_another_provider_is_refused(signed_in, fake_provider):
    authorised = start(signed_in, "biggerplate")
    response = come_back(signed_in, fake_provider, "bigin", authorised=authorised)
    assert response.status_code == 400
    assert "another provider" in response.content.decode()
    assert nothing_stored() and fake_provider.requests == []


def test_signed_out_browser_gets_the_400_page_not_a_login_redirect(client, fake_provider):
    response = client.get(callback_url("bigin"), {"state": "s" * 43, "code": fake_provider.issue_code()})
    assert response.status_code == 400
    assert nothing_stored() and fake_provider.requests == []


# -- the provider says no ---------------------------------------------------------------------------


def test_access_denied_is_a_friendly_message_and_nothing_stored(signed_in, fake_provider):
    authorised = start(signed_in, "bigin")
    response = signed_in.get(callback_url("bigin"), {"state": authorised["state"], "error": "access_denied"})
    assert response.status_code == 302 and response["Location"] == ACCOUNTS
    assert messages_of(response) == ["You did not allow access at Bigin, so nothing was linked."]
    assert nothing_stored() and fake_provider.requests == []


@pytest.mark.parametrize(("error", "shown"), [("server_error", "server_error"), ("<script>x</script>", "unknown")])
def test_other_errors_are_reported_and_nothing_stored(signed_in, fake_provider, error, shown):
    authorised = start(signed_in, "biggerplate")
    response = signed_in.get(
        callback_url("biggerplate"), {"state": authorised["state"], "error": error, "code": fake_provider.issue_code()}
    )
    assert response.status_code == 302 and response["Location"] == ACCOUNTS
    assert messages_of(response) == [
        f"Biggerplate could not complete the sign-in ({shown}), so nothing was linked. Please try again."
    ]
    assert nothing_stored() and fake_provider.requests == []


def test_unknown_provider_slug_is_404(signed_in, fake_provider):
    authorised = start(signed_in, "bigin")
    response = signed_in.get(
        reverse("bigoauth:callback", args=["myspace"]),
        {"state": authorised["state"], "code": fake_provider.issue_code()},
    )
    assert response.status_code == 404
    assert nothing_stored() and fake_provider.requests == []


# -- Zoho's accounts server ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "server",
    [
        "https://evil.example",
        "https://accounts.zoho.com.evil.example",
        "http://127.0.0.1:1",  # loopback, but not the configured server
        "http://[::1",
        "",
        None,
    ],
)
def test_untrusted_accounts_server_gets_400_and_the_secret_never_leaves(signed_in, fake_provider, server, outbound):
    response = come_back(signed_in, fake_provider, **{"accounts-server": server})
    assert response.status_code == 400
    assert nothing_stored()
    assert fake_provider.requests == []
    assert outbound == []  # not to evil.example, not anywhere: nothing left this process


def test_the_outbound_spy_sees_an_exchange(signed_in, fake_provider, outbound):
    # The spy above would see an exchange: a trusted accounts server is tried (and blocked).
    response = come_back(signed_in, fake_provider)
    assert response.status_code == 502
    assert outbound == [("http", f"{fake_provider.url}/oauth/v2/token")]
    assert nothing_stored()


def test_missing_code_is_400(signed_in, fake_provider):
    response = come_back(signed_in, fake_provider, code=None)
    assert response.status_code == 400
    assert "without an authorisation code" in response.content.decode()
    assert nothing_stored() and fake_provider.requests == []


# -- a token endpoint that misbehaves ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "body", "content_type"),
    [
        (200, {"error": "invalid_code"}, "application/json"),
        (400, {"error": "invalid_request"}, "application/json"),
        (400, "", "text/plain"),
        (500, "Internal Server Error", "text/plain"),
        (200, "<html><body>Maintenance</body></html>", "text/html"),
        (200, '{"access_token": "1000.access.half', "application/json"),
        (200, {"token_type": "Bearer", "expires_in": 3600}, "application/json"),
        (200, {"access_token": "1000.access.x", "expires_in": "soon"}, "application/json"),
        (200, {"access_token": "1000.access.x", "api_domain": "http://api.evil.example"}, "application/json"),
    ],
    ids=[
        "200-error-field",
        "400-json",
        "400-empty",
        "500",
        "html",
        "malformed-json",
        "no-access-token",
        "bad-expiry",
        "plain-http-api-domain",
    ],
)
def test_token_endpoint_misbehaving_is_502_and_nothing_stored(signed_in, fake_provider, status, body, content_type):
    fake_provider.queue_reply(status, body, content_type)
    response = come_back(signed_in, fake_provider)
    assert response.status_code == 502
    assert "nothing was linked" in response.content.decode()
    assert nothing_stored()
    assert len(token_requests(fake_provider)) == 1


def test_token_endpoint_timing_out_is_504_and_nothing_stored(signed_in, fake_provider, settings):
    configure(settings, HTTP_TIMEOUT=0.2)
    fake_provider.queue_reply(200, {"access_token": "1000.access.late", "expires_in": 3600}, delay=0.6)
    response = come_back(signed_in, fake_provider)
    assert response.status_code == 504
    assert "did not answer in time" in response.content.decode()
    assert nothing_stored()


def test_token_endpoint_unreachable_is_502(signed_in, fake_provider):
    authorised = start(signed_in, "bigin")
    params = bigin_return(fake_provider, authorised)
    fake_provider.stop()
    response = signed_in.get(callback_url("bigin"), params)
    assert response.status_code == 502
    assert nothing_stored()


def test_callback_only_answers_get(signed_in, fake_provider):
    authorised = start(signed_in, "bigin")
    response = signed_in.post(callback_url("bigin"), bigin_return(fake_provider, authorised))
    assert response.status_code == 405
    assert nothing_stored() and fake_provider.requests == []


@pytest.mark.parametrize("status_wanted", [400, 502])
def test_error_pages_keep_the_code_out_of_referer_headers(signed_in, fake_provider, status_wanted):
    if status_wanted == 502:
        fake_provider.queue_reply(500, "nope", "text/plain")
        response = come_back(signed_in, fake_provider)
    else:
        response = come_back(signed_in, fake_provider, state="forged")
    assert response.status_code == status_wanted
    assert response["Referrer-Policy"] == "no-referrer"
    assert "no-store" in response["Cache-Control"]
    assert "django_bigoauth/error.html" in [t.name for t in response.templates]


def test_every_callback_response_is_neither_framed_nor_cached(signed_in, fake_provider):
    responses = [
        come_back(signed_in, fake_provider),  # linked
        come_back(signed_in, fake_provider, state="forged"),  # 400
        signed_in.get(reverse("bigoauth:callback", args=["myspace"])),  # 404
        signed_in.post(callback_url("bigin")),  # 405
    ]
    fake_provider.queue_reply(500, "nope", "text/plain")
    responses.append(come_back(signed_in, fake_provider))  # 502
    authorised = start(signed_in, "bigin")
    responses.append(signed_in.get(callback_url("bigin"), {"state": authorised["state"], "error": "access_denied"}))
    assert [r.status_code for r in responses] == [302, 400, 404, 405, 502, 302]
    for response in responses:
        assert response["X-Frame-Options"] == "DENY"
        assert "no-store" in response["Cache-Control"]


# -- happy paths ----------------------------------------------------------------------------------------


def test_bigin_link_stores_where_the_account_lives_and_whose_it_is(signed_in, alice, fake_provider):
    seen = []

    def on_linked(sender, account, created, **kwargs):
        seen.append((account.pk, created))

    signals.account_linked.connect(on_linked)
    try:
        authorised = start(signed_in, "bigin")
        response = come_back(signed_in, fake_provider, authorised=authorised)
    finally:
        signals.account_linked.disconnect(on_linked)

    assert response.status_code == 302 and response["Location"] == ACCOUNTS
    assert messages_of(response) == ["Your Bigin account “Acme Ltd” is now linked."]
    account = LinkedAccount.objects.get()
    assert seen == [(account.pk, True)]
    assert (account.user, account.provider, account.external_id, account.label) == (alice, "bigin", "org-1", "Acme Ltd")
    assert (account.data_centre, account.accounts_server, account.api_domain) == (
        "us",
        fake_provider.url,
        fake_provider.api_url,
    )
    assert account.status == LinkedAccount.Status.ACTIVE

    exchange = token_requests(fake_provider)[0]
    assert exchange.path == "/oauth/v2/token"
    assert exchange.form["redirect_uri"] == authorised["redirect_uri"] == "http://testserver/bigoauth/bigin/callback/"
    assert exchange.form["client_id"] == "1000.BIGIN"
    assert "code_verifier" not in exchange.form
    who = fake_provider.calls("/bigin/v2/org")[0]
    assert who.headers["Authorization"].startswith("Zoho-oauthtoken 1000.access.")

    token = Token.objects.get()
    assert token.refresh_token in fake_provider.live_refresh_tokens
    assert token.access_token in fake_provider.live_access_tokens
    assert timedelta(minutes=59) < token.expires_at - timezone.now() <= timedelta(hours=1)
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT access_token, refresh_token FROM {Token._meta.db_table}")
        stored_access, stored_refresh = cursor.fetchone()
    assert token.refresh_token not in stored_refresh and "1000." not in stored_refresh
    assert token.access_token not in stored_access


def test_pkce_verifier_sent_at_exchange_matches_the_challenge(signed_in, fake_provider, settings):
    configure(settings, "bigin", PKCE=True)
    authorised = start(signed_in, "bigin")
    assert come_back(signed_in, fake_provider, authorised=authorised).status_code == 302
    verifier = token_requests(fake_provider)[0].form["code_verifier"]
    digest = hashlib.sha256(verifier.encode()).digest()
    assert base64.urlsafe_b64encode(digest).rstrip(b"=").decode() == authorised["code_challenge"]


def test_configured_redirect_uri_is_sent_identically_at_exchange(signed_in, fake_provider, settings):
    configure(settings, "biggerplate", REDIRECT_URI="https://public.example/cb/")
    authorised = start(signed_in, "biggerplate")
    assert come_back(signed_in, fake_provider, "biggerplate", authorised=authorised).status_code == 302
    assert (
        token_requests(fake_provider)[0].form["redirect_uri"]
        == authorised["redirect_uri"]
        == "https://public.example/cb/"
    )


def _biggerplate_reply(fake, **fields):
    access = "bp.access.canned"
    fake.adopt(access_token=access)
    fake.queue_reply(
        200, {"access_token": access, "token_type": "Bearer", "refresh_token": "bp.refresh.canned", **fields}
    )


def test_biggerplate_exchange_and_expires_in(signed_in, fake_provider):
    _biggerplate_reply(fake_provider, expires_in=3600, expires=int(time.time()) + 120)
    response = come_back(signed_in, fake_provider, "biggerplate")
    assert response.status_code == 302
    exchange = token_requests(fake_provider)[0]
    assert exchange.path == "/oauth/token"
    assert exchange.form["response_type"] == "token"
    account = LinkedAccount.objects.get()
    assert (account.provider, account.external_id, account.label) == ("biggerplate", "org-1", "Acme Ltd")
    assert fake_provider.calls("/users/me")[0].headers["Authorization"] == "Bearer bp.access.canned"
    token = account.token
    # expires_in (relative) wins over expires (absolute): immune to clock skew.
    assert timedelta(minutes=59) < token.expires_at - timezone.now() <= timedelta(hours=1)
    assert token.refresh_token == "bp.refresh.canned"


def test_biggerplate_expires_alone_is_read_as_unix_time(signed_in, fake_provider):
    expires = int(time.time()) + 1800
    _biggerplate_reply(fake_provider, expires=expires)
    assert come_back(signed_in, fake_provider, "biggerplate").status_code == 302
    assert Token.objects.get().expires_at == datetime.fromtimestamp(expires, tz=dt_timezone.utc)


@pytest.mark.parametrize("expires", [1e18, 10**30, -1e300])
def test_biggerplate_expires_beyond_any_date_is_502(signed_in, fake_provider, expires):
    # Found by the fuzz test: datetime.fromtimestamp raises OSError or OverflowError here.
    _biggerplate_reply(fake_provider, expires=expires)
    response = come_back(signed_in, fake_provider, "biggerplate")
    assert response.status_code == 502
    assert nothing_stored()


def test_next_on_this_site_is_honoured(signed_in, fake_provider):
    authorised = start(signed_in, "bigin", next="/dashboard/?tab=crm")
    response = come_back(signed_in, fake_provider, authorised=authorised)
    assert response.status_code == 302 and response["Location"] == "/dashboard/?tab=crm"


@pytest.mark.parametrize("next_url", ["https://evil.example/", "//evil.example/x", "/\\evil.example"])
def test_next_to_another_host_is_not_followed(signed_in, fake_provider, next_url):
    authorised = start(signed_in, "bigin")
    # Even if an unsafe next reached the database, the callback checks it again.
    PendingAuthorisation.objects.update(next_url=next_url)
    response = come_back(signed_in, fake_provider, authorised=authorised)
    assert response.status_code == 302 and response["Location"] == ACCOUNTS
    assert LinkedAccount.objects.count() == 1


def test_relinking_the_same_organisation_updates_it(signed_in, fake_provider):
    assert come_back(signed_in, fake_provider).status_code == 302
    first = Token.objects.get()
    response = come_back(signed_in, fake_provider)
    assert response.status_code == 302
    # (the first message is still queued: nothing rendered it in between)
    assert messages_of(response)[-1] == "Your Bigin account “Acme Ltd” was linked again and is up to date."
    assert LinkedAccount.objects.count() == 1 and Token.objects.count() == 1
    second = Token.objects.get()
    assert second.access_token != first.access_token and second.generation == first.generation + 1


def test_two_organisations_of_one_user_are_two_accounts(signed_in, fake_provider):
    assert come_back(signed_in, fake_provider).status_code == 302
    fake_provider.org_id, fake_provider.org_name = "org-2", "Other Co"
    assert come_back(signed_in, fake_provider).status_code == 302
    assert sorted(LinkedAccount.objects.values_list("external_id", "label")) == [
        ("org-1", "Acme Ltd"),
        ("org-2", "Other Co"),
    ]
    assert Token.objects.count() == 2


# -- whose token it is ---------------------------------------------------------------------------------


def test_identity_endpoint_timing_out_is_504_and_nothing_stored(signed_in, fake_provider, settings):
    configure(settings, HTTP_TIMEOUT=0.2)
    fake_provider.queue_reply(200, {"org": [{"id": "org-1"}]}, delay=0.6, path_suffix="/org")
    response = come_back(signed_in, fake_provider)
    assert response.status_code == 504
    assert "nothing was linked" in response.content.decode()
    assert "Connect Bigin again" in response.content.decode()
    assert nothing_stored()


@pytest.mark.parametrize("status", [429, 500, 503])
def test_identity_endpoint_down_is_502_and_a_relink_keeps_the_one_account(signed_in, fake_provider, status):
    assert come_back(signed_in, fake_provider).status_code == 302
    before = Token.objects.values_list("generation", "expires_at").get()
    fake_provider.queue_reply(status, "unavailable", "text/plain", path_suffix="/org")
    response = come_back(signed_in, fake_provider)
    assert response.status_code == 502
    assert "nothing was linked" in response.content.decode()
    assert list(LinkedAccount.objects.values_list("external_id", flat=True)) == ["org-1"]
    assert Token.objects.values_list("generation", "expires_at").get() == before


def test_identity_without_the_org_scope_links_without_an_organisation(signed_in, alice, fake_provider):
    fake_provider.queue_reply(401, {"code": "OAUTH_SCOPE_MISMATCH"}, path_suffix="/org")
    response = come_back(signed_in, fake_provider)
    assert response.status_code == 302 and response["Location"] == ACCOUNTS
    account = LinkedAccount.objects.get()
    assert (account.user, account.external_id, account.label) == (alice, "", "Bigin")


def test_a_second_organisation_without_the_org_scope_does_not_take_over_the_first(signed_in, fake_provider):
    assert come_back(signed_in, fake_provider).status_code == 302
    fake_provider.queue_reply(401, {"code": "OAUTH_SCOPE_MISMATCH"}, path_suffix="/org")
    response = come_back(signed_in, fake_provider)
    assert response.status_code == 502
    assert list(LinkedAccount.objects.values_list("external_id", flat=True)) == ["org-1"]
    assert Token.objects.get().generation == 1


def test_a_custom_provider_whose_parse_identity_raises_still_links(signed_in, fake_provider, settings):
    config = json.loads(json.dumps(settings.BIGOAUTH))
    config["PROVIDERS"]["acme"] = {
        "CLASS": "tests.test_linking.AcmeProvider",
        "CLIENT_ID": "acme-client",
        "CLIENT_SECRET": "acme-secret-value",
        "AUTHORIZE_URL": f"{fake_provider.url}/oauth/auth",
        "TOKEN_URL": f"{fake_provider.url}/oauth/token",
        "API_BASE_URL": fake_provider.url,
    }
    settings.BIGOAUTH = config
    response = come_back(signed_in, fake_provider, "acme")
    assert response.status_code == 302
    assert LinkedAccount.objects.values_list("provider", "external_id").get() == ("acme", "")


def test_a_database_failure_while_storing_is_a_503_page_and_nothing_stored(signed_in, fake_provider, monkeypatch):
    from tests.test_linking import make_token_writes_fail

    make_token_writes_fail(monkeypatch)
    response = come_back(signed_in, fake_provider)
    assert response.status_code == 503
    assert "nothing was linked" in response.content.decode()
    assert "Connect Bigin again" in response.content.decode()
    assert nothing_stored()


# -- values a database cannot store -------------------------------------------------------------------
# PostgreSQL refuses NUL in text columns: an id or an API domain with one is refused (502),
# free text (scope, label) loses it. Run on PostgreSQL too (DATABASE_URL).


def _bigin_token_reply(fake, **fields):
    access = "1000.access.canned"
    fake.adopt(access_token=access)
    reply = {
        "access_token": access,
        "refresh_token": "1000.refresh.canned",
        "expires_in": 3600,
        "api_domain": fake.api_url,
    }
    fake.queue_reply(200, {**reply, **fields})


@pytest.mark.parametrize(
    ("token_fields", "org"),
    [
        ({"token_type": "Bea\x00rer"}, None),
        ({"api_domain": "NUL"}, None),
        ({}, {"id": "org\x00-1", "company_name": "Acme Ltd"}),
        ({}, {"id": "org-\ud800", "company_name": "Acme Ltd"}),
    ],
    ids=["token-type", "api-domain", "org-id", "org-id-lone-surrogate"],
)
def test_an_id_the_database_cannot_store_is_502_and_nothing_stored(signed_in, fake_provider, token_fields, org):
    if token_fields.get("api_domain") == "NUL":
        token_fields["api_domain"] = fake_provider.url + "\x00"
    _bigin_token_reply(fake_provider, **token_fields)
    if org:
        fake_provider.queue_reply(200, {"org": [org]}, path_suffix="/org")
    response = come_back(signed_in, fake_provider)
    assert response.status_code == 502
    assert "nothing was linked" in response.content.decode()
    assert nothing_stored()
    if not org:
        assert fake_provider.calls("/org") == []  # the token went nowhere the reply could not be stored for


def test_nul_in_free_text_from_the_provider_is_dropped(signed_in, fake_provider):
    _bigin_token_reply(fake_provider, scope="ZohoBigin.modules.ALL\x00", token_type="Bearer")
    fake_provider.queue_reply(200, {"org": [{"id": "org-1", "company_name": "Acme\x00 Ltd"}]}, path_suffix="/org")
    assert come_back(signed_in, fake_provider).status_code == 302
    account = LinkedAccount.objects.get()
    assert (account.external_id, account.label, account.scopes) == ("org-1", "Acme Ltd", "ZohoBigin.modules.ALL")
    assert account.token.scope == "ZohoBigin.modules.ALL"


def test_nul_in_a_biggerplate_user_name_is_dropped(signed_in, fake_provider):
    _biggerplate_reply(fake_provider, expires_in=3600)
    fake_provider.queue_reply(200, {"Id": 42, "UserName": "ada\x00"}, path_suffix="/users/me")
    assert come_back(signed_in, fake_provider, "biggerplate").status_code == 302
    assert LinkedAccount.objects.values_list("external_id", "label").get() == ("42", "ada")


# -- site-level accounts ---------------------------------------------------------------------------------


@pytest.fixture
def root(client, django_user_model):
    user = django_user_model.objects.create_superuser("root", password="pw")
    client.force_login(user)
    return user


def _changelist_stub(request):
    return HttpResponse("changelist")


class WithAdminList:
    """A URLconf that has the admin's LinkedAccount list (the admin module may not register one)."""

    urlpatterns = [
        path("bigoauth/", include("django_bigoauth.urls")),
        path(
            "admin/accounts/",
            include(([path("", _changelist_stub, name="django_bigoauth_linkedaccount_changelist")], "admin")),
        ),
    ]


class WithoutAdmin:
    urlpatterns = [path("bigoauth/", include("django_bigoauth.urls"))]


def test_site_level_link_has_no_user_and_lands_in_the_admin_list(client, root, fake_provider, settings):
    settings.ROOT_URLCONF = WithAdminList
    authorised = start(client, "bigin", site="1")
    response = come_back(client, fake_provider, authorised=authorised)
    assert response.status_code == 302 and response["Location"] == "/admin/accounts/"
    account = LinkedAccount.objects.get()
    assert account.user is None and account.external_id == "org-1"


def test_site_level_link_without_the_admin_lands_on_the_accounts_page(client, root, fake_provider, settings):
    settings.ROOT_URLCONF = WithoutAdmin
    authorised = start(client, "bigin", site="1")
    response = come_back(client, fake_provider, authorised=authorised)
    assert response.status_code == 302 and response["Location"] == ACCOUNTS
    assert LinkedAccount.objects.get().user is None


def test_site_level_link_says_the_account_is_the_sites_not_yours(client, root, fake_provider, settings):
    settings.ROOT_URLCONF = WithoutAdmin
    response = come_back(client, fake_provider, authorised=start(client, "bigin", site="1"))
    assert messages_of(response) == ["The site's Bigin account “Acme Ltd” is now linked."]
    response = come_back(client, fake_provider, authorised=start(client, "bigin", site="1"))
    assert messages_of(response)[-1] == "The site's Bigin account “Acme Ltd” was linked again and is up to date."
    assert LinkedAccount.objects.get().user is None


def test_site_level_callback_for_a_demoted_superuser_is_refused(client, root, fake_provider):
    authorised = start(client, "bigin", site="1")
    root.is_superuser = False
    root.save()
    response = come_back(client, fake_provider, authorised=authorised)
    assert response.status_code == 403
    assert nothing_stored() and fake_provider.requests == []


# -- nothing secret in the logs ----------------------------------------------------------------------------


def test_no_code_state_or_verifier_in_any_log_record(signed_in, fake_provider, settings, caplog):
    for name in (None, "django", "django.request", "django_bigoauth", "urllib3"):
        caplog.set_level(logging.DEBUG, logger=name)
    configure(settings, "bigin", PKCE=True)
    secrets = set()
    statuses = []

    def remember(authorised, params):
        secrets.update({params["code"], authorised["state"]})
        secrets.update(
            crypto.decrypt(v) for v in PendingAuthorisation.objects.values_list("encrypted_code_verifier", flat=True)
        )

    def flow(**overrides):
        authorised = start(signed_in, "bigin")
        params = bigin_return(fake_provider, authorised, **overrides)
        remember(authorised, params)
        statuses.append(signed_in.get(callback_url("bigin"), params).status_code)

    flow()  # linked
    flow(state="forged-" + "s" * 40)  # 400
    flow(**{"accounts-server": "https://evil.example"})  # 400
    fake_provider.queue_reply(200, {"error": "invalid_code"})
    flow()  # 502
    fake_provider.queue_reply(500, "boom", "text/plain")
    flow()  # 502
    configure(settings, HTTP_TIMEOUT=0.2)
    fake_provider.queue_reply(200, {"access_token": "x"}, delay=0.6)
    flow()  # 504
    authorised = start(signed_in, "bigin")
    leaked = {"state": authorised["state"], "code": fake_provider.issue_code()}
    remember(authorised, leaked)
    statuses.append(signed_in.get(reverse("bigoauth:callback", args=["nope"]), leaked).status_code)  # 404

    assert statuses == [302, 400, 400, 502, 502, 504, 404]
    with fake_provider.lock:
        secrets |= fake_provider.live_access_tokens | fake_provider.live_refresh_tokens
    secrets |= {"bigin-secret-value", "bp-secret-value"}
    assert all(len(secret) >= 8 for secret in secrets)  # long enough not to match by chance

    formatter = logging.Formatter("%(name)s %(levelname)s %(message)s")
    rendered = [formatter.format(record) for record in caplog.records]
    # Every failure is logged by us, with its status and without the query string ...
    assert any(line.startswith("django_bigoauth WARNING The bigin callback failed with HTTP 400") for line in rendered)
    assert any(line.startswith("django_bigoauth ERROR The bigin callback failed with HTTP 502") for line in rendered)
    assert any(line.startswith("django_bigoauth ERROR The bigin callback failed with HTTP 504") for line in rendered)
    assert any(line.startswith("django_bigoauth WARNING A callback arrived for unknown provider") for line in rendered)
    assert any(line.startswith("django_bigoauth INFO Linked account") for line in rendered)
    # ... and not by django.request, whose records carry the request (and whose AdminEmailHandler
    # would mail its full URL, code included, to ADMINS on a 5xx).
    assert not [record for record in caplog.records if record.name == "django.request"]
    for line in rendered:
        for secret in secrets:
            assert secret not in line, f"secret in log record: {line!r}"


def test_a_failed_callback_mails_nothing_to_admins(signed_in, fake_provider, settings, mailoutbox):
    # Django's AdminEmailHandler mails every 5xx with the full URL, which here holds the code.
    settings.ADMINS = [("Ops", "ops@example.com")]
    configure(settings, "bigin")
    authorised = start(signed_in, "bigin")
    fake_provider.queue_reply(500, "boom", "text/plain")
    response = signed_in.get(callback_url("bigin"), bigin_return(fake_provider, authorised))
    assert response.status_code == 502
    assert mailoutbox == []
    assert nothing_stored()
