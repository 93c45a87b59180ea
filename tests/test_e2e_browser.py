"""End to end in a real browser: Playwright drives Debian's Chromium against the example project.

The site runs in a subprocess (``tests/e2e_server.py``) on a free port of 127.0.0.1 with a fresh
SQLite file; its sandbox provider is a real OpenID Connect provider, configured in the site's
``BIGOAUTH`` by its ``ISSUER`` alone (no class, no endpoint URLs), so every step is the real one:
sign-in, discovery, authorise, consent, callback with RFC 9207's ``iss``, code exchange with PKCE,
an RS256 ID token checked against the sandbox's key set, userinfo, refresh, revoke. Skipped, with
the reason shown, only where no Chromium or no Playwright can be had;
with ``BIGOAUTH_REQUIRE_BROWSER=1`` (set by ``.ci/run`` once Chromium is installed) that fails instead.
"""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import sqlite3
import time
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from tests.e2e_server import REPOSITORY, ExampleSite

pytestmark = [pytest.mark.browser, pytest.mark.slow]

CHROMIUM = os.environ.get("BIGOAUTH_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = REPOSITORY / "artifacts"
SCREENSHOT = ARTIFACTS / "accounts-page.png"
TIMEOUT_MS = 30_000
# Sandbox tokens that live ten seconds count as stale after five (half their lifetime, below the
# default 60-second REFRESH_LEEWAY), so the test sees a refresh without waiting a minute.
LIFETIME = 10


def _browser_missing() -> str:
    if importlib.util.find_spec("playwright") is None:
        return "the playwright module is not installed (pip install playwright; no browser download needed)"
    if not (Path(CHROMIUM).is_file() and os.access(CHROMIUM, os.X_OK)):
        return f"no Chromium binary at {CHROMIUM} (apt-get install chromium)"
    return ""


@pytest.fixture(scope="module")
def site():
    example = ExampleSite({"SANDBOX_TOKEN_LIFETIME": str(LIFETIME)})
    example.start()
    yield example
    example.cleanup()


@pytest.fixture(scope="module")
def browser():
    reason = _browser_missing()
    if reason and os.environ.get("BIGOAUTH_REQUIRE_BROWSER"):
        pytest.fail(f"BIGOAUTH_REQUIRE_BROWSER is set, but {reason}")
    if reason:
        pytest.skip(reason)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser, site):
    context = browser.new_context(viewport={"width": 1100, "height": 480}, locale="en-GB")
    context.set_default_timeout(TIMEOUT_MS)
    yield context.new_page()
    context.close()


def linked_accounts(site: ExampleSite) -> int:
    with sqlite3.connect(site.database) as db:
        return db.execute("SELECT COUNT(*) FROM django_bigoauth_linkedaccount").fetchone()[0]


def test_connect_the_sandbox_test_the_connection_deny_and_disconnect(page, site):
    from playwright.sync_api import expect

    callbacks: list[str] = []  # every callback URL the browser visits, to search the log for
    page.on("request", lambda request: callbacks.append(request.url) if "/sandbox/callback/" in request.url else None)
    not_found: list[str] = []  # a favicon included: no page asks for something that is not there
    page.on("response", lambda response: not_found.append(response.url) if response.status == 404 else None)

    # Sign in: the accounts page sends an anonymous visitor to the login form and back.
    page.goto(f"{site.url}/bigoauth/")
    expect(page).to_have_url(re.compile(r"/accounts/login/"))
    page.fill("#id_username", "demo")
    page.fill("#id_password", "demo")
    page.click("button[type=submit]")
    expect(page).to_have_url(f"{site.url}/bigoauth/")
    expect(page.locator(".bigoauth-empty")).to_be_visible()

    # Connect: the button POSTs to the authorise view, which sends the browser to the sandbox's
    # consent page; approve, back on the accounts page.
    page.get_by_role("button", name="Connect Sandbox").click()
    expect(page).to_have_url(re.compile(r"/sandbox/o/authorize/\?"))
    expect(page.locator("#authorizationForm")).to_contain_text("Tell the demo site who you are")
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "consent-page.png"), full_page=True)
    page.locator("input[name=allow]").click()
    linked_at = time.monotonic()
    expect(page).to_have_url(f"{site.url}/bigoauth/")
    expect(page.locator("ul.messages")).to_contain_text("is now linked")
    row = page.locator("tr.bigoauth-account[data-provider=sandbox]")
    expect(row).to_have_count(1)
    expect(row).to_contain_text("Sandbox")
    expect(row).to_contain_text("demo")  # the label: the ID token's name claim
    expect(row).to_contain_text("Active")
    # timeuntil separates with no-break spaces, hence \s
    expect(row.locator(".bigoauth-expires")).to_have_text(re.compile(r"^in (1\sminute|\d+\sseconds?)$"))
    page.screenshot(path=str(SCREENSHOT), full_page=True)
    assert linked_accounts(site) == 1

    # A link (a GET) to the authorise URL only shows the confirmation page; its button goes on.
    page.goto(f"{site.url}/bigoauth/sandbox/authorise/")
    expect(page.get_by_role("heading", name="Connect Sandbox")).to_be_visible()
    expect(page.get_by_role("link", name="Cancel")).to_have_attribute("href", "/bigoauth/")
    page.screenshot(path=str(ARTIFACTS / "confirmation-page.png"), full_page=True)
    page.get_by_role("button", name="Continue to Sandbox").click()

    # Deny: Cancel on the consent page comes back as access_denied; nothing is stored.
    expect(page.locator("#authorizationForm")).to_be_visible()
    page.get_by_role("button", name="Cancel").click()
    expect(page).to_have_url(f"{site.url}/bigoauth/")
    expect(page.locator("ul.messages")).to_contain_text("You did not allow access at Sandbox")
    expect(page.locator("tr.bigoauth-account")).to_have_count(1)
    assert linked_accounts(site) == 1
    assert parse_qs(urlsplit(callbacks[-1]).query)["error"] == ["access_denied"]
    # RFC 9207: the sandbox named itself on the callback that carried a code, and the app checked it.
    with_code = [parse_qs(urlsplit(url).query) for url in callbacks if "code=" in url]
    assert with_code and all(query["iss"] == [f"{site.url}/sandbox/o"] for query in with_code)

    # Test connection once the token is stale: the call refreshes it first, then asks "who am I".
    time.sleep(max(0.0, LIFETIME / 2 + 1 - (time.monotonic() - linked_at)))
    row.get_by_role("button", name="Test connection").click()
    result = page.locator("#connection-result")
    expect(result).to_contain_text("GET /sandbox/o/userinfo/ answered HTTP 200")
    expect(page.locator("#connection-answer")).to_contain_text('"preferred_username": "demo"')
    refreshed = re.compile(r"The token was stale .*, so it was refreshed first: .* \(in \d+ seconds?\)\.")
    expect(page.locator("#connection-refreshed")).to_contain_text(refreshed)
    expect(page).to_have_url(f"{site.url}/bigoauth/")  # redirected after the POST, back where it started
    page.screenshot(path=str(ARTIFACTS / "test-connection.png"), full_page=True)
    page.reload()  # a GET: the result was shown once, and nothing is sent again
    expect(page.locator("#connection-result")).to_have_count(0)

    # Disconnect: revoked at the sandbox, tokens gone, the row says so.
    page.goto(f"{site.url}/bigoauth/")
    row.get_by_role("button", name=re.compile("^Disconnect")).click()
    expect(page.locator("ul.messages")).to_contain_text("is disconnected")
    expect(row).to_contain_text("Revoked")

    page.goto(f"{site.url}/admin/")  # a page that names no icon: the browser asks for /favicon.ico
    expect(page.locator("#site-name")).to_be_visible()
    icon = page.request.get(f"{site.url}/favicon.ico")  # headless Chromium may not ask by itself
    assert icon.status == 200 and icon.headers["content-type"].startswith("image/svg+xml")
    assert not_found == []

    # Nothing secret in the site's log: not the codes, not the states.
    log = site.log_text()
    assert "/bigoauth/sandbox/callback/?" in log  # the request log is there...
    for url in callbacks:
        for name, values in parse_qs(urlsplit(url).query).items():
            if name in ("code", "state"):
                assert values[0] not in log, f"the {name} reached the log"  # ...without the secrets
