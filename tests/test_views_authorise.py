"""The authorise view: a confirmation page on GET, the flow started by a CSRF-checked POST."""

import base64
import json
import re
import zlib
from urllib.parse import urlsplit

import pytest
from django.test import Client
from django.urls import reverse

from django_bigoauth import crypto
from django_bigoauth.models import PendingAuthorisation
from django_bigoauth.state import MAX_PENDING, SESSION_KEY
from tests.oauthflow import bigin_return, callback_url, start

pytestmark = pytest.mark.django_db

ACCOUNTS = "/bigoauth/"


def authorise_url(slug="bigin"):
    return reverse("bigoauth:authorise", args=[slug])


def pending():
    """The pending requests, as the fields a test looks at."""
    return list(PendingAuthorisation.objects.order_by("created_at", "pk").values())


def configure(settings, **values):
    settings.BIGOAUTH = {**settings.BIGOAUTH, **values}


def form_of(html):
    """The confirmation page's form: (action, {hidden field: value}, button text)."""
    match = re.search(r'<form method="post" action="([^"]+)" class="bigoauth-authorise-form">(.*?)</form>', html, re.S)
    assert match, html[:2000]
    fields = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)">', match.group(2)))
    button = re.search(r"<button[^>]*>(.*?)</button>", match.group(2), re.S).group(1)
    return match.group(1), fields, button


@pytest.fixture
def guarded(alice):
    """A browser whose POSTs are CSRF-checked, as a real one's are; signed in as alice."""
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(alice)
    return browser


@pytest.fixture
def root(client, django_user_model):
    user = django_user_model.objects.create_superuser("root", password="pw")
    client.force_login(user)
    return user


# -- GET: a confirmation page, never a flow (unless AUTHORISE_ON_GET) --------------------------------------


def test_signed_out_visitors_are_sent_to_the_login_page(client, fake_provider):
    for response in (client.get(authorise_url()), client.post(authorise_url())):
        assert response.status_code == 302
        assert response["Location"].startswith("/login/?next=")
    assert SESSION_KEY not in client.session and pending() == []


def test_a_get_shows_the_confirmation_page_and_starts_nothing(signed_in, fake_provider):
    response = signed_in.get(authorise_url(), {"next": "/dashboard/"})
    assert response.status_code == 200
    assert "django_bigoauth/authorise.html" in [t.name for t in response.templates]
    html = response.content.decode()
    action, fields, button = form_of(html)
    assert action == authorise_url()
    assert fields["next"] == "/dashboard/" and "site" not in fields and fields["csrfmiddlewaretoken"]
    assert button == "Continue to Bigin"
    assert '<a class="bigoauth-cancel" href="/dashboard/">Cancel</a>' in html
    assert pending() == [] and SESSION_KEY not in signed_in.session
    assert fake_provider.requests == []


def test_the_cancel_link_goes_back_to_the_accounts_page_without_next(signed_in, fake_provider):
    html = signed_in.get(authorise_url("biggerplate")).content.decode()
    assert form_of(html)[2] == "Continue to Biggerplate"
    assert f'<a class="bigoauth-cancel" href="{ACCOUNTS}">Cancel</a>' in html


def test_a_cross_site_get_starts_no_flow(guarded, fake_provider):
    # What an <img src>, a link or a top-level navigation from another site can send: a GET
    # with the victim's cookies and no CSRF token.
    response = guarded.get(authorise_url(), {"next": "/after/"}, HTTP_SEC_FETCH_SITE="cross-site")
    assert response.status_code == 200 and "Location" not in response
    assert pending() == [] and fake_provider.requests == []


def test_the_confirmation_page_form_posts_and_starts_the_flow(guarded, fake_provider):
    action, fields, _button = form_of(guarded.get(authorise_url(), {"next": "/after/"}).content.decode())
    response = guarded.post(action, fields)
    assert response.status_code == 302
    assert response["Location"].startswith(f"{fake_provider.url}/oauth/v2/auth?")
    (row,) = pending()
    assert (row["provider"], row["next_url"], row["site_level"], row["started_by_post"]) == (
        "bigin",
        "/after/",
        False,
        True,
    )


def test_a_post_without_the_csrf_token_is_403_and_starts_nothing(guarded, fake_provider):
    guarded.get(authorise_url())  # the CSRF cookie is there; the token in the form is not
    response = guarded.post(authorise_url(), {"next": "/after/"})
    assert response.status_code == 403
    assert pending() == [] and fake_provider.requests == []


def test_a_post_with_the_cookies_token_is_accepted(guarded, fake_provider):
    token = "k" * 32
    guarded.cookies["csrftoken"] = token
    response = guarded.post(authorise_url(), {"csrfmiddlewaretoken": token})
    assert response.status_code == 302
    assert response["Location"].startswith(f"{fake_provider.url}/oauth/v2/auth?")


def test_authorise_on_get_restores_one_click_links(signed_in, fake_provider, settings):
    configure(settings, AUTHORISE_ON_GET=True)
    response = signed_in.get(authorise_url(), {"next": "/after/"})
    assert response.status_code == 302
    assert response["Location"].startswith(f"{fake_provider.url}/oauth/v2/auth?")
    (row,) = pending()
    assert (row["next_url"], row["started_by_post"]) == ("/after/", False)


@pytest.mark.parametrize("value", ["true", 1, "yes"])
def test_only_true_turns_authorise_on_get_on(signed_in, fake_provider, settings, value):
    configure(settings, AUTHORISE_ON_GET=value)
    assert signed_in.get(authorise_url()).status_code == 200
    assert pending() == []


@pytest.mark.parametrize("on_get", [False, True])
def test_a_site_level_get_never_redirects(client, root, fake_provider, settings, on_get):
    configure(settings, AUTHORISE_ON_GET=on_get)
    response = client.get(authorise_url(), {"site": "1", "next": "/admin/"})
    assert response.status_code == 200 and "Location" not in response
    html = response.content.decode()
    _action, fields, button = form_of(html)
    assert fields["site"] == "1" and fields["next"] == "/admin/"
    assert button == "Continue to Bigin"
    assert "Link a site-level Bigin account" in html and "belong to the whole site" in html
    assert pending() == [] and fake_provider.requests == []
    # Its button starts the site-level flow.
    response = client.post(authorise_url(), fields)
    assert response.status_code == 302
    (row,) = pending()
    assert (row["site_level"], row["user_pk"], row["started_by_post"]) == (True, str(root.pk), True)


def test_the_site_level_form_is_csrf_checked(root, fake_provider):
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(root)
    _action, fields, _button = form_of(browser.get(authorise_url(), {"site": "1"}).content.decode())
    assert browser.post(authorise_url(), {"site": "1"}).status_code == 403
    assert pending() == []
    assert browser.post(authorise_url(), fields).status_code == 302
    assert pending()[0]["site_level"] is True


# -- the request the provider gets -------------------------------------------------------------------------


def test_unknown_provider_is_a_friendly_404(signed_in, fake_provider):
    for response in (signed_in.get(authorise_url("myspace")), signed_in.post(authorise_url("myspace"))):
        assert response.status_code == 404
        assert "django_bigoauth/error.html" in [t.name for t in response.templates]
        assert "There is no provider called “myspace” on this site." in response.content.decode()
    assert pending() == []


def test_bigin_request_carries_every_parameter_zoho_needs(signed_in, fake_provider):
    response = signed_in.post(authorise_url())
    assert response.status_code == 302
    location = urlsplit(response["Location"])
    assert f"{location.scheme}://{location.netloc}{location.path}" == f"{fake_provider.url}/oauth/v2/auth"
    params = start(signed_in, "bigin")
    assert params["response_type"] == "code"
    assert params["client_id"] == "1000.BIGIN"
    assert params["redirect_uri"] == "http://testserver/bigoauth/bigin/callback/"
    assert params["scope"] == "ZohoBigin.modules.ALL,ZohoBigin.org.READ"
    assert (params["access_type"], params["prompt"]) == ("offline", "consent")
    assert PendingAuthorisation.objects.filter(state_hash=_sha256(params["state"])).exists()
    assert "code_challenge" not in params


def _sha256(value):
    import hashlib

    return hashlib.sha256(value.encode()).hexdigest()


def test_every_request_gets_its_own_pending_state(signed_in, fake_provider):
    first = start(signed_in, "bigin")["state"]
    second = start(signed_in, "biggerplate")["state"]
    assert first != second
    assert {row["state_hash"] for row in pending()} == {_sha256(first), _sha256(second)}


def test_pkce_challenge_is_sent_when_the_provider_setting_is_on(signed_in, fake_provider, settings):
    settings.BIGOAUTH["PROVIDERS"]["biggerplate"]["PKCE"] = True
    settings.BIGOAUTH = dict(settings.BIGOAUTH)  # fire setting_changed
    params = start(signed_in, "biggerplate")
    assert params["code_challenge_method"] == "S256"
    assert len(params["code_challenge"]) == 43
    assert crypto.decrypt(pending()[0]["encrypted_code_verifier"])


def test_configured_redirect_uri_wins_over_the_request_host(signed_in, fake_provider, settings):
    settings.BIGOAUTH["PROVIDERS"]["bigin"]["REDIRECT_URI"] = "https://public.example/bigoauth/bigin/callback/"
    settings.BIGOAUTH = dict(settings.BIGOAUTH)
    params = start(signed_in, "bigin")
    assert params["redirect_uri"] == "https://public.example/bigoauth/bigin/callback/"
    assert pending()[0]["redirect_uri"] == params["redirect_uri"]


@pytest.mark.parametrize(
    ("next_url", "kept"),
    [
        ("/dashboard/?tab=crm", "/dashboard/?tab=crm"),
        ("https://evil.example/phish", ""),
        ("//evil.example/phish", ""),
        ("javascript:alert(1)", ""),
    ],
)
def test_next_is_kept_only_when_it_stays_on_this_site(signed_in, fake_provider, next_url, kept):
    start(signed_in, "bigin", next=next_url)
    assert pending()[0]["next_url"] == kept
    # The confirmation page carries (and its cancel link follows) only a safe one as well.
    html = signed_in.get(authorise_url(), {"next": next_url}).content.decode()
    assert form_of(html)[1]["next"] == kept.replace("&", "&amp;")
    assert "evil.example" not in html and "javascript:" not in html


def test_a_next_no_database_can_store_is_dropped_not_a_500(signed_in, fake_provider):
    """PostgreSQL refuses NUL in text (found by the callback fuzz test on PostgreSQL)."""
    start(signed_in, "bigin", next="/dash\x00board/")
    assert pending()[0]["next_url"] == ""


def test_site_level_request_is_refused_to_a_non_superuser(signed_in, alice, fake_provider):
    alice.is_staff = True
    alice.save()
    for response in (
        signed_in.get(authorise_url(), {"site": "1"}),
        signed_in.post(authorise_url(), {"site": "1"}),
    ):
        assert response.status_code == 403
        assert "Only a superuser can link an account for the whole site." in response.content.decode()
    assert pending() == []


def test_site_level_request_by_a_superuser_is_marked_as_such(client, root, fake_provider):
    start(client, "bigin", site="1")
    (row,) = pending()
    assert row["site_level"] is True
    assert row["user_pk"] == str(root.pk)


@pytest.mark.parametrize("method", ["put", "delete", "head"])
def test_other_methods_are_refused(signed_in, fake_provider, method):
    assert getattr(signed_in, method)(authorise_url()).status_code == 405
    assert pending() == []


# -- at most MAX_PENDING per browser; a GET never evicts what a POST started ----------------------------------


def test_the_oldest_request_goes_when_a_post_starts_one_at_the_cap(signed_in, fake_provider):
    states = [start(signed_in, "bigin")["state"] for _ in range(MAX_PENDING + 1)]
    assert PendingAuthorisation.objects.count() == MAX_PENDING
    assert {row["state_hash"] for row in pending()} == {_sha256(value) for value in states[1:]}


def test_gets_never_evict_the_users_own_post_started_request(signed_in, fake_provider, settings):
    # The attack: ten cross-site GETs used to push the user's own pending flow out.
    configure(settings, AUTHORISE_ON_GET=True)
    mine = start(signed_in, "bigin")
    responses = [signed_in.get(authorise_url("biggerplate")) for _ in range(MAX_PENDING)]
    assert [r.status_code for r in responses] == [302] * (MAX_PENDING - 1) + [200]
    refused = responses[-1]
    assert "Several sign-ins are already waiting in this browser" in refused.content.decode()
    assert PendingAuthorisation.objects.count() == MAX_PENDING
    # The user's own request still completes.
    linked = signed_in.get(callback_url("bigin"), bigin_return(fake_provider, mine))
    assert linked.status_code == 302 and linked["Location"] == ACCOUNTS
    # And its confirmation page's POST, at the cap again, evicts the oldest GET-started one.
    assert start(signed_in, "bigin")  # 9 GET-started + this one
    assert start(signed_in, "bigin")  # at the cap: the oldest (GET-started) goes
    assert PendingAuthorisation.objects.count() == MAX_PENDING
    assert PendingAuthorisation.objects.filter(started_by_post=False).count() == MAX_PENDING - 2


def test_a_get_at_the_cap_evicts_the_oldest_get_started_request(signed_in, fake_provider, settings):
    configure(settings, AUTHORISE_ON_GET=True)
    first = signed_in.get(authorise_url())
    for _ in range(MAX_PENDING):
        assert signed_in.get(authorise_url()).status_code == 302
    assert PendingAuthorisation.objects.count() == MAX_PENDING
    oldest_state = re.search(r"state=([^&]+)", first["Location"]).group(1)
    assert not PendingAuthorisation.objects.filter(state_hash=_sha256(oldest_state)).exists()


# -- the session holds nothing secret ---------------------------------------------------------------------------


def test_the_session_holds_only_a_random_binding(signed_in, fake_provider, settings):
    settings.BIGOAUTH["PROVIDERS"]["biggerplate"]["PKCE"] = True
    settings.BIGOAUTH = dict(settings.BIGOAUTH)
    params = start(signed_in, "biggerplate")
    verifier = crypto.decrypt(pending()[0]["encrypted_code_verifier"])
    session = dict(signed_in.session.items())
    assert set(session) == {"_auth_user_id", "_auth_user_backend", "_auth_user_hash", SESSION_KEY}
    text = json.dumps(session)
    assert params["state"] not in text and verifier not in text
    assert params["code_challenge"] not in text


def browser_readable_session(cookie_value):
    """What a browser sees in a signed_cookies session: the payload, decoded with no key."""
    payload = cookie_value.split(":", 1)[0]
    compressed = payload.startswith(".")
    data = base64.urlsafe_b64decode(payload.lstrip(".") + "=" * (-len(payload.lstrip(".")) % 4))
    return (zlib.decompress(data) if compressed else data).decode()


def test_a_signed_cookie_session_shows_the_browser_no_state_and_no_verifier(alice, fake_provider, settings):
    settings.SESSION_ENGINE = "django.contrib.sessions.backends.signed_cookies"
    settings.BIGOAUTH["PROVIDERS"]["bigin"]["PKCE"] = True
    settings.BIGOAUTH = dict(settings.BIGOAUTH)
    browser = Client()
    browser.force_login(alice)
    params = start(browser, "bigin")
    verifier = crypto.decrypt(pending()[0]["encrypted_code_verifier"])
    readable = browser_readable_session(browser.cookies[settings.SESSION_COOKIE_NAME].value)
    assert json.loads(readable)[SESSION_KEY]  # the decoding works: the binding is there
    assert verifier not in readable and params["state"] not in readable
    # And the flow completes with such a session.
    response = browser.get(callback_url("bigin"), bigin_return(fake_provider, params))
    assert response.status_code == 302 and response["Location"] == ACCOUNTS
    exchange = fake_provider.calls("/token", grant_type="authorization_code")[0]
    assert exchange.form["code_verifier"] == verifier


# -- headers -----------------------------------------------------------------------------------------------------


def assert_not_framed_nor_cached(response):
    assert response["X-Frame-Options"] == "DENY"
    assert "no-store" in response["Cache-Control"]


def test_every_response_is_neither_framed_nor_cached(client, alice, fake_provider, settings):
    responses = [client.get(authorise_url()), client.post(authorise_url())]  # signed out: to the login page
    client.force_login(alice)
    responses += [
        client.get(authorise_url()),  # the confirmation page
        client.post(authorise_url()),  # to the provider
        client.get(authorise_url("myspace")),  # 404
        client.post(authorise_url(), {"site": "1"}),  # 403
        client.put(authorise_url()),  # 405
    ]
    configure(settings, AUTHORISE_ON_GET=True)
    responses.append(client.get(authorise_url()))  # to the provider, by GET
    assert [r.status_code for r in responses] == [302, 302, 200, 302, 404, 403, 405, 302]
    for response in responses:
        assert_not_framed_nor_cached(response)
