"""The example project's async view, "Test all connections", in Django's AsyncClient and under uvicorn.

With the AsyncClient the providers are the strict fake on 127.0.0.1; under uvicorn (a real ASGI
server in a subprocess, ``tests/e2e_server.py --asgi``) the account is linked through the app's
own flow at the site's sandbox, a real OAuth 2.0 server that rotates refresh tokens and revokes
the whole family when a used one comes back.
"""

from __future__ import annotations

import os
import re
import sqlite3
import subprocess
import sys
import threading
import time
from datetime import timedelta
from html.parser import HTMLParser
from urllib.parse import urljoin

import pytest
import requests
from asgiref.sync import sync_to_async
from django.utils import timezone

from django_bigoauth.models import LinkedAccount, Token
from tests.e2e_server import EXAMPLE_DIR, REPOSITORY, ExampleSite

TEST_ALL = "/demo/accounts/test-all/"


def section(page: str, account) -> str:
    match = re.search(rf'<section class="card" id="result-{account.pk}">(.*?)</section>', page, re.S)
    assert match, f"no result for account {account.pk}"
    return match.group(1)


@pytest.mark.asyncio
@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("async_orm")
async def test_test_all_connections_checks_every_account_of_the_user_at_once(
    async_client, demo_pages, make_account, django_user_model, monkeypatch
):
    fake = demo_pages
    ann = await django_user_model.objects.acreate(username="ann")
    bob = await django_user_model.objects.acreate(username="bob")
    make = sync_to_async(make_account)
    fake.adopt(access_token="1000.access.fresh")
    fresh = await make("bigin", user=ann, label="Fresh org", access_token="1000.access.fresh", api_domain=fake.api_url)
    stale = await make(
        "biggerplate", user=ann, label="Stale maps", expires_in=-30, refresh_token=fake.issue_refresh_token()
    )
    dead = await make(
        "bigin",
        user=ann,
        label="Dead org",
        external_id="org-2",
        access_token="1000.access.dead",
        refresh_token="1000.refresh.dead",
        api_domain=fake.api_url,
    )
    revoked = await make("bigin", user=ann, external_id="org-3", status=LinkedAccount.Status.REVOKED)
    theirs = await make("bigin", user=bob, external_id="org-4", api_domain=fake.api_url)
    # Every API call waits 300 ms while counting how many are answered at the same time.
    in_flight, most = [0], [0]
    guard = threading.Lock()
    answer = fake.handle

    def slow_api(server, *args):
        if server != "api":
            return answer(server, *args)
        with guard:
            in_flight[0] += 1
            most[0] = max(most[0], in_flight[0])
        try:
            time.sleep(0.3)
            return answer(server, *args)
        finally:
            with guard:
                in_flight[0] -= 1

    monkeypatch.setattr(fake, "handle", slow_api)
    await sync_to_async(async_client.force_login)(ann)

    response = await async_client.get(TEST_ALL)

    assert response.status_code == 200
    page = response.content.decode()
    assert "Checked 3 accounts at once" in page
    assert "GET /bigin/v2/org answered HTTP 200." in section(page, fresh) and "Acme Ltd" in section(page, fresh)
    assert "GET /users/me answered HTTP 200." in section(page, stale)
    assert "it was refreshed first" in section(page, stale)
    assert "connect it again" in section(page, dead)
    assert f'id="result-{revoked.pk}"' not in page and f'id="result-{theirs.pk}"' not in page
    assert most[0] == 3, "the three accounts were not checked at the same time"
    assert fake.refresh_calls() == 2  # the stale token, and the dead one's refused refresh
    assert (await LinkedAccount.objects.aget(pk=dead.pk)).status == LinkedAccount.Status.NEEDS_REAUTH
    assert (await Token.objects.aget(account=stale)).generation == 1
    assert {call.headers.get("Authorization") for call in fake.calls(server="api")} >= {
        "Zoho-oauthtoken 1000.access.fresh",
        "Zoho-oauthtoken 1000.access.dead",
    }


@pytest.mark.asyncio
@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("async_orm")
async def test_test_all_connections_is_for_signed_in_users(async_client, demo_pages, make_account):
    await sync_to_async(make_account)("bigin", api_domain=demo_pages.api_url)
    response = await async_client.get(TEST_ALL)
    assert response.status_code == 302 and response["Location"].endswith(f"login/?next={TEST_ALL}")
    assert demo_pages.requests == []


def test_the_home_page_links_to_test_all_connections(client, demo_pages, make_account, django_user_model):
    user = django_user_model.objects.create_user("ann")
    make_account("bigin", user=user, api_domain=demo_pages.api_url)
    client.force_login(user)
    assert f'href="{TEST_ALL}"' in client.get("/").content.decode()


# -- under uvicorn ------------------------------------------------------------------------------------


class _Forms(HTMLParser):
    """Every form of a page: its action, its hidden fields, and its submit buttons by label."""

    def __init__(self):
        super().__init__()
        self.forms: list[dict] = []
        self._button: tuple | None = None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "form":
            self.forms.append({"action": attrs.get("action") or "", "fields": {}, "buttons": {}})
        elif not self.forms:
            return
        elif tag == "input" and attrs.get("type") == "hidden" and attrs.get("name"):
            self.forms[-1]["fields"][attrs["name"]] = attrs.get("value") or ""
        elif tag == "input" and attrs.get("type") == "submit":
            self.forms[-1]["buttons"][attrs.get("value") or ""] = (attrs.get("name"), attrs.get("value"))
        elif tag == "button":
            self._button = (attrs.get("name"), attrs.get("value"))

    def handle_data(self, data):
        if self._button is not None and data.strip():
            self.forms[-1]["buttons"][data.strip()] = self._button
            self._button = None


def submit(browser: requests.Session, page: requests.Response, button: str) -> requests.Response:
    """Press the button labelled ``button`` of ``page``, as a browser would."""
    parser = _Forms()
    parser.feed(page.text)
    form = next((form for form in parser.forms if button in form["buttons"]), None)
    assert form is not None, f"no {button!r} button at {page.url}"
    data = dict(form["fields"])
    name, value = form["buttons"][button]
    if name:
        data[name] = value or ""
    return browser.post(urljoin(page.url, form["action"] or page.url), data=data, headers={"Referer": page.url})


def site_shell(site: ExampleSite, code: str) -> str:
    """Run ``code`` in ``manage.py shell`` against the site's database; its last line of output."""
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    env.update(DEMO_ENV_FILE="", DEBUG="true", DATABASE_URL=f"sqlite:///{site.database}")
    done = subprocess.run(
        [sys.executable, str(EXAMPLE_DIR / "manage.py"), "shell", "-c", code],
        cwd=REPOSITORY,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout.strip().splitlines()[-1]


@pytest.fixture(scope="module")
def asgi_site():
    site = ExampleSite(asgi=True)
    site.start()
    yield site
    site.cleanup()


@pytest.mark.slow
def test_under_uvicorn_test_all_connections_checks_a_sandbox_account_and_a_dead_one(asgi_site):
    site = asgi_site
    browser = requests.Session()
    login = browser.get(f"{site.url}/accounts/login/", timeout=30)
    signed_in = browser.post(
        login.url,
        data={"username": "demo", "password": "demo", "csrfmiddlewaretoken": browser.cookies["csrftoken"]},
        headers={"Referer": login.url},
        timeout=30,
    )
    assert signed_in.status_code == 200, site.log_tail()

    # Link the sandbox through the app: confirm, consent at the sandbox, back through the callback.
    confirm = browser.get(f"{site.url}/bigoauth/sandbox/authorise/", timeout=30)
    consent_page = submit(browser, confirm, "Continue to Sandbox")
    assert "authorizationForm" in consent_page.text, site.log_tail()
    linked = submit(browser, consent_page, "Authorize")
    assert linked.status_code == 200 and linked.url.startswith(f"{site.url}/bigoauth/"), site.log_tail()
    # A second account of demo's whose refresh token the sandbox never issued, and the first made stale.
    site_shell(
        site,
        "from django.contrib.auth import get_user_model; from django_bigoauth.models import LinkedAccount, Token; "
        "a = LinkedAccount.objects.create(provider='sandbox', user=get_user_model().objects.get(username='demo'), "
        "external_id='dead', label='Dead one'); "
        "Token.objects.create(account=a, access_token='dead-access', refresh_token='dead-refresh'); print(a.pk)",
    )
    with sqlite3.connect(site.database) as db:
        db.execute(
            "UPDATE django_bigoauth_token SET expires_at = ? WHERE account_id = "
            "(SELECT id FROM django_bigoauth_linkedaccount WHERE label = 'demo')",
            ((timezone.now() - timedelta(minutes=1)).strftime("%Y-%m-%d %H:%M:%S.%f"),),
        )
        (generation_before,) = db.execute(
            "SELECT t.generation FROM django_bigoauth_token t JOIN django_bigoauth_linkedaccount a "
            "ON a.id = t.account_id WHERE a.label = 'demo'"
        ).fetchone()

    home = browser.get(f"{site.url}/", timeout=30)
    assert f'href="{TEST_ALL}"' in home.text
    page = browser.get(f"{site.url}{TEST_ALL}", timeout=60)

    assert page.status_code == 200, site.log_tail()
    assert "Checked 2 accounts at once" in page.text
    with sqlite3.connect(site.database) as db:
        accounts = dict(db.execute("SELECT label, id FROM django_bigoauth_linkedaccount").fetchall())
        statuses = dict(db.execute("SELECT label, status FROM django_bigoauth_linkedaccount").fetchall())
        (generation_after,) = db.execute(
            f"SELECT generation FROM django_bigoauth_token WHERE account_id = {accounts['demo']}"
        ).fetchone()
    sandbox = re.search(rf'id="result-{accounts["demo"]}">(.*?)</section>', page.text, re.S).group(1)
    dead = re.search(rf'id="result-{accounts["Dead one"]}">(.*?)</section>', page.text, re.S).group(1)
    assert "GET /sandbox/o/userinfo/ answered HTTP 200." in sandbox and "&quot;sub&quot;" in sandbox
    assert "it was refreshed first" in sandbox
    assert "connect it again" in dead
    assert generation_after == generation_before + 1
    assert statuses == {"demo": "active", "Dead one": "needs_reauth"}
    # Under uvicorn, the request log masks the callback's code and state as runserver's does.
    log = site.log_text()
    assert "/bigoauth/sandbox/callback/?" in log and "code=[redacted]" in log
    assert not re.search(r"callback/\?[^ ]*code=(?!\[redacted\])", log)
