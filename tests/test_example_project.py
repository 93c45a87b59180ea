"""The example project: its settings, its commands, its sandbox provider, its "Test connection".

Settings are loaded with ``runpy`` under a controlled environment (nothing from a developer's
``.env``); commands run in a subprocess against a temporary SQLite file, exactly as
``make demo`` runs them; the sandbox is exercised over real HTTP against the site served by
``tests/e2e_server.py``.
"""

from __future__ import annotations

import os
import re
import runpy
import secrets
import subprocess
import sys
from datetime import timedelta
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import environ
import pytest
import requests
from django.utils import timezone
from sandbox.keys import ensure_signing_key

from django_bigoauth import client
from django_bigoauth.exceptions import InvalidGrant
from django_bigoauth.providers import Provider, get_provider
from django_bigoauth.providers.generic import OpenIDConnectProvider
from django_bigoauth.state import code_challenge
from tests.e2e_server import EXAMPLE_DIR, REPOSITORY, ExampleSite

SETTINGS_PATH = EXAMPLE_DIR / "demo_site" / "settings.py"
ENV_EXAMPLE = EXAMPLE_DIR / ".env.example"
DOCUMENTED = sorted(set(re.findall(r"^#?\s*([A-Z][A-Z0-9_]*)=", ENV_EXAMPLE.read_text(), re.MULTILINE)))


def load_settings(monkeypatch, env_file: str = "", **env: str) -> dict:
    """The example settings module's globals, seeing exactly ``env`` (and ``env_file`` if given).

    django-environ reads (and ``read_env`` writes) ``Env.ENVIRON``; pointing it at a private
    dict keeps a developer's environment out and keeps this test's values from leaking.
    """
    private = {k: v for k, v in os.environ.items() if k not in DOCUMENTED}
    private.update(DEMO_ENV_FILE=env_file, **env)
    monkeypatch.setattr(environ.Env, "ENVIRON", private)
    return runpy.run_path(str(SETTINGS_PATH))


# -- settings ------------------------------------------------------------------------------------


def test_out_of_the_box_settings_are_a_local_demo_with_only_the_sandbox(monkeypatch):
    conf = load_settings(monkeypatch)

    assert conf["DEBUG"] is True
    assert conf["DATABASES"]["default"]["ENGINE"] == "django.db.backends.sqlite3"
    assert conf["DATABASES"]["default"]["NAME"] == str(EXAMPLE_DIR / "db.sqlite3")
    providers = conf["BIGOAUTH"]["PROVIDERS"]
    assert list(providers) == ["sandbox"]
    sandbox = providers["sandbox"]
    # A standard OpenID Connect provider: no class, no endpoint URLs, its issuer alone.
    assert sandbox == {
        "ISSUER": "http://127.0.0.1:8000/sandbox/o",
        "CLIENT_ID": "sandbox-client",
        "CLIENT_SECRET": "sandbox-demo-secret",
    }
    assert conf["OAUTH2_PROVIDER"]["OIDC_ENABLED"] is True
    assert conf["OAUTH2_PROVIDER"]["OIDC_ISS_ENDPOINT"] == sandbox["ISSUER"]
    assert conf["OAUTH2_PROVIDER"]["ACCESS_TOKEN_EXPIRE_SECONDS"] == 120
    assert conf["OAUTH2_PROVIDER"]["PKCE_REQUIRED"] is True
    assert conf["OAUTH2_PROVIDER"]["ROTATE_REFRESH_TOKEN"] is True
    assert conf["BIGOAUTH"]["ENCRYPTION_KEYS"] == [conf["DEMO_ENCRYPTION_KEY"]]


def test_the_sandbox_issuer_follows_sandbox_base_url(monkeypatch):
    conf = load_settings(monkeypatch, SANDBOX_BASE_URL="http://127.0.0.1:5999/")
    assert conf["BIGOAUTH"]["PROVIDERS"]["sandbox"]["ISSUER"] == "http://127.0.0.1:5999/sandbox/o"
    assert conf["OAUTH2_PROVIDER"]["OIDC_ISS_ENDPOINT"] == "http://127.0.0.1:5999/sandbox/o"


def test_the_sandbox_signing_key_is_read_from_its_file(monkeypatch, tmp_path):
    key_file = tmp_path / "key.pem"
    assert (
        load_settings(monkeypatch, SANDBOX_OIDC_KEY_FILE=str(key_file))["OAUTH2_PROVIDER"]["OIDC_RSA_PRIVATE_KEY"] == ""
    )
    path, created = ensure_signing_key(key_file)
    assert created and path == key_file and key_file.stat().st_mode & 0o777 == 0o600
    pem = load_settings(monkeypatch, SANDBOX_OIDC_KEY_FILE=str(key_file))["OAUTH2_PROVIDER"]["OIDC_RSA_PRIVATE_KEY"]
    assert pem.startswith("-----BEGIN PRIVATE KEY-----")
    assert ensure_signing_key(key_file) == (key_file, False)  # kept: ID tokens already issued stay verifiable
    assert key_file.read_text() == pem


def test_the_default_signing_key_file_is_ignored_by_git():
    ignored = subprocess.run(
        ["git", "check-ignore", "-q", str(EXAMPLE_DIR / "sandbox-oidc-key.pem")], cwd=REPOSITORY, check=False
    )
    assert ignored.returncode == 0


def test_real_providers_are_configured_from_their_credentials(monkeypatch):
    conf = load_settings(
        monkeypatch,
        BIGGERPLATE_CLIENT_ID="bp-id",
        BIGGERPLATE_CLIENT_SECRET="bp-secret",
        BIGGERPLATE_SCOPES="account,maps",
        BIGIN_CLIENT_ID="1000.ABC",
        BIGIN_CLIENT_SECRET="bigin-secret",
        BIGIN_DATA_CENTRE="eu",
        SANDBOX_ENABLED="false",
    )
    providers = conf["BIGOAUTH"]["PROVIDERS"]
    assert set(providers) == {"biggerplate", "bigin"}
    assert providers["biggerplate"] == {
        "CLIENT_ID": "bp-id",
        "CLIENT_SECRET": "bp-secret",
        "SCOPES": ["account", "maps"],
    }
    assert providers["bigin"] == {"CLIENT_ID": "1000.ABC", "CLIENT_SECRET": "bigin-secret", "DATA_CENTRE": "eu"}


@pytest.mark.parametrize(
    ("value", "expected_header"),
    [
        (None, "Bearer tok"),  # unset: the provider's default
        ("", "tok"),  # empty: the bare token, as .env.example says
        ("Token", "Token tok"),
    ],
)
def test_biggerplate_auth_header_format_unset_empty_or_set(monkeypatch, settings, value, expected_header):
    env = {"BIGGERPLATE_CLIENT_ID": "bp-id", "BIGGERPLATE_CLIENT_SECRET": "bp-secret"}
    if value is not None:
        env["BIGGERPLATE_AUTH_HEADER_FORMAT"] = value
    settings.BIGOAUTH = load_settings(monkeypatch, **env)["BIGOAUTH"]
    entry = settings.BIGOAUTH["PROVIDERS"]["biggerplate"]
    assert ("AUTH_HEADER_FORMAT" in entry) is (value is not None)
    assert get_provider("biggerplate").authorization_header("tok") == expected_header


def test_an_empty_auth_header_format_in_the_env_file_means_the_bare_token(monkeypatch, settings, tmp_path):
    env_file = tmp_path / "demo.env"
    env_file.write_text("BIGGERPLATE_CLIENT_ID=bp-id\nBIGGERPLATE_CLIENT_SECRET=s\nBIGGERPLATE_AUTH_HEADER_FORMAT=\n")
    settings.BIGOAUTH = load_settings(monkeypatch, env_file=str(env_file))["BIGOAUTH"]
    assert get_provider("biggerplate").authorization_header("tok") == "tok"


def test_a_provider_with_half_its_credentials_is_still_configured_so_check_can_name_the_gap(monkeypatch):
    conf = load_settings(monkeypatch, BIGIN_CLIENT_ID="1000.ABC")
    assert conf["BIGOAUTH"]["PROVIDERS"]["bigin"]["CLIENT_SECRET"] == ""


def test_database_url_switches_to_postgresql(monkeypatch):
    conf = load_settings(monkeypatch, DATABASE_URL="postgres://postgres@127.0.0.1:5432/example")
    database = conf["DATABASES"]["default"]
    assert database["ENGINE"] == "django.db.backends.postgresql"
    assert (database["NAME"], database["HOST"], database["PORT"]) == ("example", "127.0.0.1", 5432)
    assert "OPTIONS" not in database  # the SQLite lock options stay with SQLite


@pytest.mark.parametrize("scheme", ["mysql", "mariadb"])
def test_database_url_switches_to_mariadb_with_utf8mb4(monkeypatch, scheme):
    conf = load_settings(monkeypatch, DATABASE_URL=f"{scheme}://root:pw@127.0.0.1:3306/example")
    database = conf["DATABASES"]["default"]
    assert database["ENGINE"] == "django.db.backends.mysql"
    assert (database["NAME"], database["USER"], database["PASSWORD"]) == ("example", "root", "pw")
    assert (database["HOST"], database["PORT"]) == ("127.0.0.1", 3306)
    assert database["OPTIONS"] == {"charset": "utf8mb4"}


def test_a_charset_in_the_database_url_wins(monkeypatch):
    conf = load_settings(monkeypatch, DATABASE_URL="mysql://root@127.0.0.1:3306/example?charset=utf8")
    assert conf["DATABASES"]["default"]["OPTIONS"] == {"charset": "utf8"}


def test_encryption_keys_come_from_the_environment_and_debug_off_has_no_demo_key(monkeypatch):
    conf = load_settings(monkeypatch, BIGOAUTH_ENCRYPTION_KEYS="key-one,key-two")
    assert conf["BIGOAUTH"]["ENCRYPTION_KEYS"] == ["key-one", "key-two"]
    conf = load_settings(monkeypatch, DEBUG="false")
    assert conf["BIGOAUTH"]["ENCRYPTION_KEYS"] == []


def test_the_env_file_is_read_and_the_real_environment_wins(monkeypatch, tmp_path):
    env_file = tmp_path / "demo.env"
    env_file.write_text("BIGIN_CLIENT_ID=from-file\nBIGIN_CLIENT_SECRET=file-secret\nSANDBOX_TOKEN_LIFETIME=30\n")
    conf = load_settings(monkeypatch, env_file=str(env_file), BIGIN_CLIENT_ID="from-environment")
    assert conf["BIGOAUTH"]["PROVIDERS"]["bigin"]["CLIENT_ID"] == "from-environment"
    assert conf["BIGOAUTH"]["PROVIDERS"]["bigin"]["CLIENT_SECRET"] == "file-secret"
    assert conf["OAUTH2_PROVIDER"]["ACCESS_TOKEN_EXPIRE_SECONDS"] == 30


def test_every_variable_the_settings_read_is_documented_in_env_example(monkeypatch):
    """Every branch taken (all providers on), recording each name django-environ looks up."""
    read: set[str] = set()

    class Recording(dict):
        def __getitem__(self, key):
            read.add(key)
            return super().__getitem__(key)

        def __contains__(self, key):
            read.add(key)
            return super().__contains__(key)

    monkeypatch.setattr(
        environ.Env,
        "ENVIRON",
        Recording({**os.environ, "DEMO_ENV_FILE": "", "BIGIN_CLIENT_ID": "x", "BIGGERPLATE_CLIENT_ID": "y"}),
    )
    runpy.run_path(str(SETTINGS_PATH))
    assert read, "the recorder saw nothing: settings no longer read through django-environ?"
    assert sorted(read - set(DOCUMENTED)) == []


# -- the sandbox provider ---------------------------------------------------------------------------


def test_the_sandbox_is_an_openid_connect_provider_from_settings_alone(monkeypatch, settings):
    settings.BIGOAUTH = load_settings(monkeypatch, SANDBOX_BASE_URL="http://127.0.0.1:5999")["BIGOAUTH"]
    provider = get_provider("sandbox")

    assert type(provider) is OpenIDConnectProvider
    assert provider.display_name == "Sandbox"
    assert provider.uses_pkce and provider.uses_nonce  # django-oauth-toolkit requires PKCE here
    assert provider.scopes == ["openid", "offline_access"]
    assert provider.endpoint_urls() == {"ISSUER": "http://127.0.0.1:5999/sandbox/o"}  # nothing fetched to say so


# -- the request log filter ------------------------------------------------------------------------


def test_the_request_log_never_shows_the_code_or_the_state():
    from demo_site.logfilters import RedactOAuthQuery

    record = __import__("logging").LogRecord(
        "django.server",
        20,
        __file__,
        1,
        '"%s" %s %s',
        ("GET /bigoauth/sandbox/callback/?code=SECRETCODE&state=SECRETSTATE&iss=x HTTP/1.1", "302", "0"),
        None,
    )
    RedactOAuthQuery().filter(record)
    message = record.getMessage()
    assert "SECRETCODE" not in message and "SECRETSTATE" not in message
    assert "?code=[redacted]&state=[redacted]&iss=x" in message


# -- "Test connection" -----------------------------------------------------------------------------


@pytest.mark.django_db
def test_test_connection_refreshes_a_stale_token_and_shows_the_answer(fake_provider, make_account):
    from demo_site.connection import test_connection

    account = make_account("bigin", expires_in=-5, api_domain=fake_provider.api_url)
    fake_provider.adopt(refresh_token="1000.refresh.initial")

    result = test_connection(account)

    assert result.ok and result.status == 200
    assert result.path == "/bigin/v2/org"
    assert "Acme Ltd" in result.body
    assert result.refreshed is True
    assert result.expires_after > timezone.now() + timedelta(minutes=50) > result.expires_before
    assert fake_provider.refresh_calls() == 1


@pytest.mark.django_db
def test_test_connection_leaves_a_fresh_token_alone(fake_provider, make_account):
    from demo_site.connection import test_connection

    account = make_account("bigin", api_domain=fake_provider.api_url)
    fake_provider.adopt(access_token="1000.access.initial")

    result = test_connection(account)

    assert result.ok and not result.refreshed
    assert result.expires_after == result.expires_before
    assert fake_provider.refresh_calls() == 0


@pytest.mark.django_db
def test_test_connection_explains_a_refused_refresh_token(fake_provider, make_account):
    from demo_site.connection import test_connection

    from django_bigoauth.models import LinkedAccount

    account = make_account("bigin", expires_in=-5, api_domain=fake_provider.api_url)  # refresh token unknown there

    result = test_connection(account)

    assert not result.ok and "connect it again" in result.error
    assert LinkedAccount.objects.get(pk=account.pk).status == LinkedAccount.Status.NEEDS_REAUTH
    assert "1000." not in result.error


@pytest.mark.django_db
def test_test_connection_reports_an_unreachable_provider(settings, make_account):
    from demo_site.connection import test_connection

    unused = _closed_port()
    settings.BIGOAUTH = {
        "PROVIDERS": {
            "biggerplate": {"CLIENT_ID": "a", "CLIENT_SECRET": "b", "API_BASE_URL": f"http://127.0.0.1:{unused}"}
        },
        "ENCRYPTION_KEYS": ["ZmDfcTF7_60GrrY167zsiPd67pEvs0aGOv2oasOM1Pg="],
    }
    account = make_account("biggerplate")

    result = test_connection(account)

    assert result.status is None and result.error == "The provider could not be reached."


def _closed_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# -- the commands make demo runs ---------------------------------------------------------------------


def manage(*args: str, database: Path, **env: str) -> subprocess.CompletedProcess:
    """``python example_project/manage.py ...`` as ``make demo`` runs it, on ``database``.

    The sandbox's signing key lives beside the database, never in the checkout.
    """
    full_env = {k: v for k, v in os.environ.items() if k not in DOCUMENTED and k != "DJANGO_SETTINGS_MODULE"}
    full_env.update(
        DEMO_ENV_FILE="",
        DATABASE_URL=f"sqlite:///{database}",
        SANDBOX_OIDC_KEY_FILE=str(database.parent / "sandbox-oidc-key.pem"),
        **env,
    )
    return subprocess.run(
        [sys.executable, str(EXAMPLE_DIR / "manage.py"), *args],
        cwd=REPOSITORY,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=180,
    )


@pytest.mark.slow
def test_check_is_clean_out_of_the_box_and_names_a_missing_secret(tmp_path):
    keyless = manage("check", database=tmp_path / "db.sqlite3")
    assert keyless.returncode == 0, keyless.stderr  # a warning: demo_setup (make demo) makes the key
    assert "sandbox.W001" in keyless.stderr + keyless.stdout and "demo_setup" in keyless.stderr + keyless.stdout

    ensure_signing_key(tmp_path / "sandbox-oidc-key.pem")
    clean = manage("check", database=tmp_path / "db.sqlite3")
    assert clean.returncode == 0, clean.stderr
    assert "System check identified no issues" in clean.stdout

    broken = manage("check", database=tmp_path / "db.sqlite3", BIGIN_CLIENT_ID="1000.ABC")
    assert broken.returncode != 0
    assert "django_bigoauth.E003" in broken.stderr and "bigin" in broken.stderr


SHOW_STATE = (
    "from django.contrib.auth import get_user_model as U; "
    "from oauth2_provider.models import get_application_model as A; "
    "app = A().objects.get(); u = U().objects.get(username='demo'); "
    "print(A().objects.count(), U().objects.count(), app.client_id, app.client_type, app.authorization_grant_type, "
    "app.skip_authorization, app.redirect_uris, u.is_superuser, u.check_password('demo'))"
)


@pytest.mark.slow
def test_migrate_and_demo_setup_create_the_login_and_the_sandbox_application_idempotently(tmp_path):
    database = tmp_path / "db.sqlite3"
    assert manage("migrate", "-v0", database=database).returncode == 0
    first = manage("demo_setup", database=database)
    assert first.returncode == 0, first.stderr
    assert "http://127.0.0.1:8000/" in first.stdout and "demo / demo" in first.stdout
    assert "sandbox-demo-secret" not in first.stdout + first.stderr
    key_file = tmp_path / "sandbox-oidc-key.pem"
    assert "Sandbox signing key created" in first.stdout and key_file.read_text().startswith("-----BEGIN")
    pem = key_file.read_text()

    again = manage("demo_setup", database=database, SANDBOX_CLIENT_SECRET="a-new-secret")
    assert again.returncode == 0, again.stderr
    assert "Sandbox OAuth application updated" in again.stdout  # the secret changed, so the application did
    assert "signing key created" not in again.stdout and key_file.read_text() == pem  # the key is kept
    assert "Demo login kept: demo, password unchanged" in again.stdout

    # The last line: Django 5.2+ shell first says how many objects it imported.
    state = manage("shell", "-c", SHOW_STATE, database=database).stdout.strip().splitlines()[-1].split()
    assert state == [
        "1",
        "1",
        "sandbox-client",
        "confidential",
        "authorization-code",
        "False",
        "http://127.0.0.1/bigoauth/sandbox/callback/",
        "http://localhost/bigoauth/sandbox/callback/",
        "True",
        "True",
    ]


@pytest.mark.slow
def test_demo_setup_again_keeps_the_password_and_so_the_browsers_session(tmp_path):
    database = tmp_path / "db.sqlite3"
    assert manage("migrate", "-v0", database=database).returncode == 0
    assert manage("demo_setup", "--url", "http://127.0.0.1:8765/", database=database).returncode == 0
    change = "from django.contrib.auth.models import User as U; u = U.objects.get(); u.set_password('mine'); u.save()"
    assert manage("shell", "-c", change, database=database).returncode == 0
    show = "from django.contrib.auth.models import User as U; print('HASH', U.objects.get().password)"
    before = manage("shell", "-c", show, database=database).stdout

    again = manage("demo_setup", "--url", "http://127.0.0.1:8765/", database=database)
    assert again.returncode == 0, again.stderr
    assert "Open http://127.0.0.1:8765/ and sign in as demo." in again.stdout
    # The same hash: Django's session auth hash is derived from it, so signed-in browsers stay signed in.
    assert manage("shell", "-c", show, database=database).stdout == before

    reset = manage("demo_setup", "--reset-password", database=database)
    assert "Demo login reset: demo / demo" in reset.stdout and "signed out" in reset.stdout
    assert manage("shell", "-c", show, database=database).stdout != before


# -- the sandbox over real HTTP ------------------------------------------------------------------------


class _Form(HTMLParser):
    """The fields of the consent form of django-oauth-toolkit's authorise page."""

    def __init__(self):
        super().__init__()
        self.fields: dict[str, str] = {}

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "input" and attrs.get("type") == "hidden" and attrs.get("name"):
            self.fields[attrs["name"]] = attrs.get("value") or ""


@pytest.fixture(scope="module")
def site():
    example = ExampleSite()
    example.start()
    yield example
    example.cleanup()


def signed_in(site: ExampleSite) -> requests.Session:
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


def consent(site: ExampleSite, browser: requests.Session, provider: Provider, *, allow: bool):
    """Authorise at the sandbox as a browser would; returns (callback query, redirect_uri, verifier)."""
    verifier = secrets.token_urlsafe(48)
    redirect_uri = f"{site.url}/bigoauth/sandbox/callback/"
    url = provider.authorization_url(redirect_uri=redirect_uri, state="st-1", code_challenge=code_challenge(verifier))
    page = browser.get(url, timeout=30)
    assert page.status_code == 200 and "authorizationForm" in page.text, site.log_tail()
    form = _Form()
    form.feed(page.text)
    if allow:
        form.fields["allow"] = "Authorize"
    answer = browser.post(url, data=form.fields, headers={"Referer": url}, allow_redirects=False, timeout=30)
    assert answer.status_code == 302, site.log_tail()
    location = answer.headers["Location"]
    assert location.startswith(redirect_uri)
    return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}, redirect_uri, verifier


@pytest.mark.slow
def test_the_sandbox_is_a_real_authorisation_server_for_the_apps_client(site, monkeypatch, settings):
    """Code with PKCE and an ID token, two-minute tokens, userinfo, rotation on refresh, replay refused, revoke."""
    settings.BIGOAUTH = load_settings(monkeypatch, SANDBOX_BASE_URL=site.url)["BIGOAUTH"]
    provider = get_provider("sandbox")
    browser = signed_in(site)

    callback, redirect_uri, verifier = consent(site, browser, provider, allow=True)
    assert callback["state"] == "st-1" and callback["code"]

    reply = client.exchange_code(provider, callback["code"], redirect_uri=redirect_uri, code_verifier=verifier)
    assert reply.refresh_token
    assert timedelta(seconds=100) < reply.expires_at - timezone.now() <= timedelta(seconds=120)
    assert reply.id_claims is not None and reply.id_claims["name"] == "demo"  # an RS256 ID token, validated
    identity = client.fetch_identity(provider, reply.access_token)  # userinfo
    assert identity is not None and identity.label == "demo" and identity.external_id == reply.id_claims["sub"]

    refreshed = client.refresh(provider, reply.refresh_token)
    assert refreshed.access_token != reply.access_token
    assert refreshed.refresh_token and refreshed.refresh_token != reply.refresh_token  # rotated
    with pytest.raises(InvalidGrant):
        client.refresh(provider, reply.refresh_token)  # a used refresh token is refused

    callback, redirect_uri, verifier = consent(site, browser, provider, allow=True)
    reply = client.exchange_code(provider, callback["code"], redirect_uri=redirect_uri, code_verifier=verifier)
    client.revoke(provider, reply.refresh_token, token_type_hint="refresh_token")
    me = requests.get(
        f"{site.url}/sandbox/o/userinfo/", headers={"Authorization": f"Bearer {reply.access_token}"}, timeout=30
    )
    assert me.status_code == 401  # revoking the refresh token killed its access token too


@pytest.mark.slow
def test_the_sandbox_refuses_a_code_without_its_pkce_verifier_and_reports_a_denial(site, monkeypatch, settings):
    settings.BIGOAUTH = load_settings(monkeypatch, SANDBOX_BASE_URL=site.url)["BIGOAUTH"]
    provider = get_provider("sandbox")
    browser = signed_in(site)

    callback, redirect_uri, _verifier = consent(site, browser, provider, allow=True)
    with pytest.raises(InvalidGrant):
        client.exchange_code(provider, callback["code"], redirect_uri=redirect_uri, code_verifier="wrong" * 10)

    denied, _, _ = consent(site, browser, provider, allow=False)
    assert denied["error"] == "access_denied" and "code" not in denied


# -- the demo's pages ----------------------------------------------------------------------------------


def _test_url(account) -> str:
    return f"/demo/accounts/{account.pk}/test/"


def test_the_home_page_lists_the_users_accounts_with_a_test_button(client, demo_pages, make_account, django_user_model):
    user = django_user_model.objects.create_user("ann", password="pw")
    mine = make_account("bigin", user=user, label="Ann's org", api_domain=demo_pages.api_url)
    theirs = make_account("bigin", user=django_user_model.objects.create_user("bob"), label="Bob's org")
    client.force_login(user)

    page = client.get("/").content.decode()

    assert "Ann&#x27;s org" in page and _test_url(mine) in page
    assert "Bob" not in page and _test_url(theirs) not in page


def test_test_connection_redirects_and_shows_the_answer_once(client, demo_pages, make_account, django_user_model):
    user = django_user_model.objects.create_user("ann", password="pw")
    account = make_account("bigin", user=user, label="Acme", api_domain=demo_pages.api_url)
    demo_pages.adopt(access_token="1000.access.initial")
    client.force_login(user)

    response = client.post(_test_url(account))

    # Post/redirect/get: a reload of the page it lands on cannot call the API again.
    assert response.status_code == 302 and response["Location"] == "/"
    assert len(demo_pages.calls("/bigin/v2/org")) == 1
    page = client.get("/").content.decode()
    assert 'id="connection-result">Test connection: Acme: GET /bigin/v2/org answered HTTP 200.<' in page
    assert re.search(r'<pre id="connection-answer">.*Acme Ltd', page, re.S)
    assert re.search(
        r'id="connection-fresh">The token was still fresh, so no refresh was needed: it expires at '
        r"\d\d:\d\d:\d\d \(in 59\xa0minutes\)\.<",
        page,
    )
    reloaded = client.get("/").content.decode()
    assert "connection-result" not in reloaded and "Acme Ltd" not in reloaded
    assert len(demo_pages.calls("/bigin/v2/org")) == 1


def test_test_connection_goes_back_to_the_page_it_came_from(client, demo_pages, make_account, django_user_model):
    user = django_user_model.objects.create_user("ann", password="pw")
    account = make_account("bigin", user=user, api_domain=demo_pages.api_url)
    demo_pages.adopt(access_token="1000.access.initial")
    client.force_login(user)
    accounts_page = client.get("/bigoauth/").content.decode()
    assert 'name="next" value="/bigoauth/"' in accounts_page  # the button on the app's page
    assert client.post(_test_url(account), {"next": "/bigoauth/"})["Location"] == "/bigoauth/"
    assert client.post(_test_url(account), {"next": "https://evil.example/"})["Location"] == "/"


def test_test_connection_of_an_unreadable_token_says_only_that(
    client, demo_pages, make_account, django_user_model, settings
):
    user = django_user_model.objects.create_user("ann", password="pw")
    account = make_account("bigin", user=user, label="Acme", api_domain=demo_pages.api_url)
    settings.BIGOAUTH = {**settings.BIGOAUTH, "ENCRYPTION_KEYS": ["SysVB7yDmZxXQt8pKl-a7-JoHMFcKx9Q3PUMEc3xHpc="]}
    client.force_login(user)

    home = client.get("/").content.decode()
    row = re.search(rf'<tr id="account-{account.pk}">.*?</tr>', home, re.S).group(0)
    assert "Token unreadable" in row and "Active" not in row and "connect the account again" in row

    page = client.get(client.post(_test_url(account))["Location"]).content.decode()
    assert "The stored token cannot be decrypted" in page
    assert "still fresh" not in page and "was refreshed" not in page  # nothing said about freshness
    assert demo_pages.requests == []


def test_the_home_page_says_a_stale_token_is_refreshed_on_its_next_use(
    client, demo_pages, make_account, django_user_model
):
    user = django_user_model.objects.create_user("ann", password="pw")
    stale = make_account("bigin", user=user, label="Soon", expires_in=20, external_id="1")
    fresh = make_account("bigin", user=user, label="Later", expires_in=3600, external_id="2")
    client.force_login(user)
    home = client.get("/").content.decode()
    row = re.search(rf'<tr id="account-{stale.pk}">.*?</tr>', home, re.S).group(0)
    assert re.search(r"in \d+ seconds", row) and "refreshed on its next use" in row
    assert "0 minutes" not in home
    assert "refreshed on its next use" not in re.search(rf'<tr id="account-{fresh.pk}">.*?</tr>', home, re.S).group(0)


def test_favicon_for_every_page(client, demo_pages, django_user_model):
    from django.contrib.staticfiles import finders

    response = client.get("/favicon.ico")
    assert response.status_code == 301 and response["Location"] == "/static/django_bigoauth/favicon.svg"
    assert finders.find("django_bigoauth/favicon.svg")
    assert 'rel="icon" href="/static/django_bigoauth/favicon.svg"' in client.get("/").content.decode()
    client.force_login(django_user_model.objects.create_user("ann", password="pw"))
    assert 'rel="icon" href="/static/django_bigoauth/favicon.svg"' in client.get("/bigoauth/").content.decode()


def test_test_connection_is_for_the_owner_only_and_by_post(client, demo_pages, make_account, django_user_model):
    owner = django_user_model.objects.create_user("ann")
    account = make_account("bigin", user=owner, api_domain=demo_pages.api_url)

    assert client.post(_test_url(account)).status_code == 302  # signed out: to the login page
    client.force_login(django_user_model.objects.create_user("bob"))
    assert client.post(_test_url(account)).status_code == 404  # someone else's account
    client.force_login(owner)
    assert client.get(_test_url(account)).status_code == 405  # a link cannot trigger API calls
    assert demo_pages.requests == []  # none of these reached the provider


@pytest.mark.slow
def test_test_all_connections_is_served_by_the_development_server_too(site):
    """``make demo`` serves the site with runserver (WSGI), which runs the async view as well."""
    browser = signed_in(site)
    page = browser.get(f"{site.url}/demo/accounts/test-all/", timeout=30)
    assert page.status_code == 200, site.log_tail()
    assert "Checked 0 accounts at once" in page.text and "No linked accounts to test" in page.text
