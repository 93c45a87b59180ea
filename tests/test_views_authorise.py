"""The authorise view: where the "Connect" button goes."""

import hashlib
from urllib.parse import urlsplit

import pytest
from django.test import Client
from django.urls import reverse

from django_bigoauth import crypto
from django_bigoauth.models import PendingAuthorisation
from django_bigoauth.state import SESSION_KEY
from tests.oauthflow import start

pytestmark = pytest.mark.django_db


def pending(client):
    """The pending requests of the client's browser, by the SHA-256 of their state."""
    return {row["state_hash"]: row for row in PendingAuthorisation.objects.values()}


def sha256(value):
    return hashlib.sha256(value.encode()).hexdigest()


def test_signed_out_visitors_are_sent_to_the_login_page(client, fake_provider):
    response = client.get(reverse("bigoauth:authorise", args=["bigin"]))
    assert response.status_code == 302
    assert response["Location"].startswith("/login/?next=")
    assert SESSION_KEY not in client.session


def test_unknown_provider_is_a_friendly_404(signed_in, fake_provider):
    response = signed_in.get(reverse("bigoauth:authorise", args=["myspace"]))
    assert response.status_code == 404
    assert "django_bigoauth/error.html" in [t.name for t in response.templates]
    assert "There is no provider called “myspace” on this site." in response.content.decode()
    assert pending(signed_in) == {}


def test_bigin_request_carries_every_parameter_zoho_needs(signed_in, fake_provider):
    response = signed_in.get(reverse("bigoauth:authorise", args=["bigin"]))
    assert response.status_code == 302
    location = urlsplit(response["Location"])
    assert f"{location.scheme}://{location.netloc}{location.path}" == f"{fake_provider.url}/oauth/v2/auth"
    params = start(signed_in, "bigin")
    assert params["response_type"] == "code"
    assert params["client_id"] == "1000.BIGIN"
    assert params["redirect_uri"] == "http://testserver/bigoauth/bigin/callback/"
    assert params["scope"] == "ZohoBigin.modules.ALL,ZohoBigin.org.READ"
    assert (params["access_type"], params["prompt"]) == ("offline", "consent")
    assert sha256(params["state"]) in pending(signed_in)
    assert "code_challenge" not in params


def test_every_request_gets_its_own_pending_state(signed_in, fake_provider):
    first = start(signed_in, "bigin")["state"]
    second = start(signed_in, "biggerplate")["state"]
    assert first != second
    assert set(pending(signed_in)) == {sha256(first), sha256(second)}


def test_pkce_challenge_is_sent_when_the_provider_setting_is_on(signed_in, fake_provider, settings):
    settings.BIGOAUTH["PROVIDERS"]["biggerplate"]["PKCE"] = True
    settings.BIGOAUTH = dict(settings.BIGOAUTH)  # fire setting_changed
    params = start(signed_in, "biggerplate")
    assert params["code_challenge_method"] == "S256"
    assert len(params["code_challenge"]) == 43
    assert crypto.decrypt(pending(signed_in)[sha256(params["state"])]["encrypted_code_verifier"])


def test_configured_redirect_uri_wins_over_the_request_host(signed_in, fake_provider, settings):
    settings.BIGOAUTH["PROVIDERS"]["bigin"]["REDIRECT_URI"] = "https://public.example/bigoauth/bigin/callback/"
    settings.BIGOAUTH = dict(settings.BIGOAUTH)
    params = start(signed_in, "bigin")
    assert params["redirect_uri"] == "https://public.example/bigoauth/bigin/callback/"
    assert pending(signed_in)[sha256(params["state"])]["redirect_uri"] == params["redirect_uri"]


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
    params = start(signed_in, "bigin", next=next_url)
    assert pending(signed_in)[sha256(params["state"])]["next_url"] == kept


def test_site_level_request_is_refused_to_a_non_superuser(signed_in, alice, fake_provider):
    alice.is_staff = True
    alice.save()
    response = signed_in.get(reverse("bigoauth:authorise", args=["bigin"]), {"site": "1"})
    assert response.status_code == 403
    assert "Only a superuser can link an account for the whole site." in response.content.decode()
    assert pending(signed_in) == {}


def test_site_level_request_by_a_superuser_is_marked_as_such(client, django_user_model, fake_provider):
    admin = django_user_model.objects.create_superuser("root", password="pw")
    client.force_login(admin)
    params = start(client, "bigin", site="1")
    assert pending(client)[sha256(params["state"])]["site_level"] is True
    assert pending(client)[sha256(params["state"])]["user_pk"] == str(admin.pk)


def test_post_is_accepted_with_a_csrf_token_and_refused_without(alice, fake_provider):
    client = Client(enforce_csrf_checks=True)
    client.force_login(alice)
    url = reverse("bigoauth:authorise", args=["bigin"])
    assert client.post(url).status_code == 403
    token = "k" * 32
    client.cookies["csrftoken"] = token
    response = client.post(url, {"csrfmiddlewaretoken": token})
    assert response.status_code == 302
    assert response["Location"].startswith(f"{fake_provider.url}/oauth/v2/auth?")


@pytest.mark.parametrize("method", ["put", "delete", "head"])
def test_other_methods_are_refused(signed_in, fake_provider, method):
    assert getattr(signed_in, method)(reverse("bigoauth:authorise", args=["bigin"])).status_code == 405
    assert pending(signed_in) == {}


def test_the_response_is_not_cached(signed_in, fake_provider):
    response = signed_in.get(reverse("bigoauth:authorise", args=["bigin"]))
    assert "no-store" in response["Cache-Control"]
