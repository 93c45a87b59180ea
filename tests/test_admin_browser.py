"""The admin's lists in a real browser at 1280 px: every column fits, none is cut off.

Debian's Chromium, headless, driven by Playwright (no browser download), against the test
settings served by pytest-django's ``live_server``. Skipped with the reason where no browser
can be had; ``BIGOAUTH_REQUIRE_BROWSER=1`` turns that into a failure, as for the end-to-end test.
"""

from __future__ import annotations

import os
from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from django.utils import timezone

from tests.test_e2e_browser import ARTIFACTS, CHROMIUM, CHROMIUM_ARGS, TIMEOUT_MS, _browser_missing

pytestmark = [pytest.mark.browser, pytest.mark.slow]

WIDTH = 1280


@pytest.fixture(scope="module")
def chromium():
    reason = _browser_missing()
    if reason and os.environ.get("BIGOAUTH_REQUIRE_BROWSER"):
        pytest.fail(f"BIGOAUTH_REQUIRE_BROWSER is set, but {reason}")
    if reason:
        pytest.skip(reason)
    from playwright.sync_api import sync_playwright

    # Playwright's sync API runs an event loop in this thread, which Django takes for an async
    # context: the ORM calls of these tests (setup and teardown) are plain synchronous ones.
    saved = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
            yield browser
            browser.close()
    finally:
        if saved is None:
            os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        else:
            os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = saved


@pytest.fixture
def realistic_accounts(transactional_db, make_account):
    """Accounts with the longest values a real list shows: long labels, usernames, expiries."""
    user_model = get_user_model()
    # A long username (Django allows 150 characters) and a label with a long word: they must wrap.
    owner = user_model.objects.create_user(
        "margaret.hamilton-smith.finance-department", email="margaret.hamilton-smith@example.com"
    )
    accounts = [
        make_account("bigin", label="Acme Manufacturing Ltd (Europe)", external_id="60012345678", expires_in=-7200),
        make_account("bigin", user=owner, label="Hamilton-Smith Consulting GmbH", external_id="60098765432"),
        make_account("biggerplate", user=owner, label="Kundenbeziehungsmanagementabteilung", external_id="1234567"),
    ]
    from django_bigoauth.models import LinkedAccount, Token

    LinkedAccount.objects.filter(pk=accounts[0].pk).update(data_centre="eu", status="needs_reauth")
    Token.objects.update(refreshed_at=timezone.now() - timedelta(days=3, hours=5))
    return accounts


@pytest.fixture
def admin_page(chromium, live_server, realistic_accounts, settings):
    settings.ALLOWED_HOSTS = ["*"]
    admin = get_user_model().objects.create_superuser("root", password="pw")
    client = Client()
    client.force_login(admin)
    context = chromium.new_context(viewport={"width": WIDTH, "height": 800}, locale="en-GB")
    context.set_default_timeout(TIMEOUT_MS)
    host = live_server.url.split("//", 1)[1].split(":")[0]
    session = client.cookies["sessionid"].value
    context.add_cookies([{"name": "sessionid", "value": session, "domain": host, "path": "/"}])
    yield context.new_page(), live_server.url
    context.close()


def overflow(page) -> dict:
    """How far the list's table sticks out of its box, and which header cells end outside it."""
    return page.evaluate(
        """() => {
            const box = document.querySelector('#changelist .results');
            const table = box.querySelector('table');
            const right = box.getBoundingClientRect().right;
            const cut = [...table.querySelectorAll('thead th')]
                .filter(th => th.getBoundingClientRect().right > right + 0.5)
                .map(th => th.innerText.trim());
            return {overflow: table.scrollWidth - box.clientWidth, cut: cut};
        }"""
    )


@pytest.mark.parametrize(
    ("path", "name"),
    [("linkedaccount", "admin-accounts-1280.png"), ("token", "admin-tokens-1280.png")],
)
def test_every_column_of_the_admin_lists_fits_at_1280_px(admin_page, path, name):
    page, url = admin_page
    page.goto(f"{url}/admin/django_bigoauth/{path}/")
    page.wait_for_selector("#result_list")
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / name), full_page=True)
    measured = overflow(page)
    assert measured == {"overflow": 0, "cut": []}, f"{path} list at {WIDTH} px: {measured}"
