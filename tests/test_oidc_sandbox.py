"""An OpenID Connect provider from its ISSUER alone, against a real one: the example project's sandbox.

The sandbox (django-oauth-toolkit with ``OIDC_ENABLED``, RS256 ID tokens, rotating refresh
tokens with reuse protection, RFC 9207's ``iss``) runs in a subprocess on 127.0.0.1
(``tests/e2e_server.py``). The app runs here, in the test process, configured with nothing but
``ISSUER``, ``CLIENT_ID`` and ``CLIENT_SECRET``: discovery, the authorisation request, the
callback, the ID token, refresh, userinfo and revoke all talk to the real server.
"""

from __future__ import annotations

from html.parser import HTMLParser
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from django.test import Client

from django_bigoauth import client
from django_bigoauth.exceptions import InvalidGrant
from django_bigoauth.models import LinkedAccount, Token
from django_bigoauth.providers import get_provider
from django_bigoauth.providers.generic import OpenIDConnectProvider
from tests.e2e_server import ExampleSite

pytestmark = [pytest.mark.slow, pytest.mark.django_db]

KEY = "ZmDfcTF7_60GrrY167zsiPd67pEvs0aGOv2oasOM1Pg="
#: the sandbox's registered redirect URIs are loopback ones, any port (RFC 8252)
APP_HOST = "127.0.0.1"


@pytest.fixture(scope="module")
def site():
    example = ExampleSite()
    example.start()
    yield example
    example.cleanup()


@pytest.fixture
def sandbox(site, settings):
    settings.BIGOAUTH = {
        "PROVIDERS": {
            "sandbox": {
                "ISSUER": f"{site.url}/sandbox/o",
                "CLIENT_ID": "sandbox-client",
                "CLIENT_SECRET": "sandbox-demo-secret",
            }
        },
        "ENCRYPTION_KEYS": [KEY],
    }
    return site


class _Form(HTMLParser):
    def __init__(self):
        super().__init__()
        self.fields: dict[str, str] = {}

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "input" and attrs.get("type") == "hidden" and attrs.get("name"):
            self.fields[attrs["name"]] = attrs.get("value") or ""


def sandbox_user(site: ExampleSite) -> requests.Session:
    """A browser signed in at the sandbox as demo/demo."""
    browser = requests.Session()
    browser.get(f"{site.url}/accounts/login/", timeout=30)
    answer = browser.post(
        f"{site.url}/accounts/login/",
        data={"username": "demo", "password": "demo", "csrfmiddlewaretoken": browser.cookies["csrftoken"]},
        headers={"Referer": f"{site.url}/accounts/login/"},
        allow_redirects=False,
        timeout=30,
    )
    assert answer.status_code == 302, site.log_tail()
    return browser


def consent(site: ExampleSite, browser: requests.Session, authorise_url: str) -> str:
    """Approve on the sandbox's consent page; returns where it sends the browser back."""
    page = browser.get(authorise_url, timeout=30)
    assert page.status_code == 200 and "authorizationForm" in page.text, site.log_tail()
    form = _Form()
    form.feed(page.text)
    form.fields["allow"] = "Authorize"
    answer = browser.post(
        authorise_url, data=form.fields, headers={"Referer": authorise_url}, allow_redirects=False, timeout=30
    )
    assert answer.status_code == 302, site.log_tail()
    return answer.headers["Location"]


def link(site: ExampleSite, app: Client) -> tuple[dict[str, str], object]:
    """The whole flow through the app's views: authorise, consent at the sandbox, callback."""
    started = app.post("/bigoauth/sandbox/authorise/")
    assert started.status_code == 302, started.content[:500]
    authorise_url = started["Location"]
    back = consent(site, sandbox_user(site), authorise_url)
    parts = urlsplit(back)
    assert parts.path == "/bigoauth/sandbox/callback/"
    returned = {k: v[0] for k, v in parse_qs(parts.query).items()}
    response = app.get(parts.path, returned)
    return {k: v[0] for k, v in parse_qs(urlsplit(authorise_url).query).items()} | {"returned": returned}, response


@pytest.fixture
def app(alice):
    browser = Client(HTTP_HOST=APP_HOST)
    browser.force_login(alice)
    return browser


def test_discovery_from_the_issuer_alone(sandbox):
    provider = get_provider("sandbox")
    assert isinstance(provider, OpenIDConnectProvider)
    metadata = provider.metadata()
    assert metadata.issuer == f"{sandbox.url}/sandbox/o" and metadata.openid
    assert metadata.token_endpoint == f"{sandbox.url}/sandbox/o/token/"
    assert metadata.revocation_endpoint == f"{sandbox.url}/sandbox/o/revoke_token/"
    assert metadata.userinfo_endpoint == f"{sandbox.url}/sandbox/o/userinfo/"
    assert metadata.authorization_response_iss_parameter_supported  # RFC 9207
    assert "RS256" in provider.id_token_algorithms


def test_link_refresh_userinfo_and_revoke_against_the_sandbox(sandbox, app, alice):
    sent, response = link(sandbox, app)

    # What went out: the defaults of an OpenID Connect provider.
    assert sent["scope"] == "openid offline_access" and sent["prompt"] == "consent"
    assert sent["nonce"] and sent["code_challenge_method"] == "S256"
    assert sent["returned"]["iss"] == f"{sandbox.url}/sandbox/o"  # RFC 9207, checked before the exchange
    # What came back: a linked account named by the RS256 ID token's sub (the sandbox user's pk).
    assert response.status_code == 302, response.content.decode()[:2000]
    account = LinkedAccount.objects.get()
    assert account.user == alice and account.label == "demo" and account.external_id.isdigit()
    token = Token.objects.get(account=account)
    assert token.refresh_token and "offline_access" in account.scopes

    # userinfo names the same account (what is used when a reply carries no ID token).
    provider = get_provider("sandbox")
    identity = client.fetch_identity(provider, token.access_token)
    assert identity is not None and (identity.external_id, identity.label) == (account.external_id, "demo")

    # Refresh at the discovered token endpoint: rotated, and the old refresh token is dead.
    old_refresh = token.refresh_token
    account.refresh()
    token = Token.objects.get(account=account)
    assert token.refresh_token != old_refresh
    with pytest.raises(InvalidGrant):
        client.refresh(provider, old_refresh)  # reuse detection: the sandbox now revokes the family
    account.refresh_from_db()

    # The family is gone, so link again, then revoke at the discovered revocation endpoint.
    sent, response = link(sandbox, app)
    assert response.status_code == 302
    account = LinkedAccount.objects.get()
    access_token = Token.objects.get(account=account).access_token
    result = account.revoke()
    assert result.confirmed
    userinfo = requests.get(
        provider.get_identity_url(), headers={"Authorization": f"Bearer {access_token}"}, timeout=30
    )
    assert userinfo.status_code == 401  # revoking the refresh token ended its access token too
