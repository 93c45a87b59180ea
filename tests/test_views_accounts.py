"""The accounts page, the disconnect button, and overriding the templates."""

import re
from datetime import timedelta

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from django_bigoauth import signals
from django_bigoauth.humanize import describe_expiry
from django_bigoauth.models import LinkedAccount, Token
from tests.oauthflow import messages_of

pytestmark = pytest.mark.django_db

ACCOUNTS = "/bigoauth/"
NBSP = "\xa0"  # Django's timesince keeps number and unit together


def disconnect_url(account):
    return reverse("bigoauth:disconnect", args=[account.pk])


def row_of(html, account):
    match = re.search(rf'<tr class="bigoauth-account" data-account="{account.pk}".*?</tr>', html, re.S)
    assert match, f"no row for account {account.pk}"
    return match.group(0)


# -- the accounts page ------------------------------------------------------------------------------


def test_signed_out_visitors_are_sent_to_the_login_page(client, fake_provider):
    response = client.get(ACCOUNTS)
    assert response.status_code == 302 and response["Location"].startswith("/login/")


def test_empty_page_offers_a_connect_button_per_configured_provider(signed_in, fake_provider):
    response = signed_in.get(ACCOUNTS)
    html = response.content.decode()
    assert response.status_code == 200
    assert "You have not linked any accounts yet." in html
    # POST forms with the CSRF token: the button starts the flow, and no other site can.
    assert connect_forms(html) == {
        "/bigoauth/bigin/authorise/": "Connect Bigin",
        "/bigoauth/biggerplate/authorise/": "Connect Biggerplate",
    }
    assert 'href="/bigoauth/bigin/authorise/' not in html


def connect_forms(html):
    """{action: button text} of the POST forms to the authorise view, each with its CSRF token."""
    forms = {}
    for action, body in re.findall(
        r'<form method="post" action="(/bigoauth/[^"]+/authorise/)">(.*?)</form>', html, re.S
    ):
        assert 'name="csrfmiddlewaretoken"' in body
        forms[action] = re.sub(r"<[^>]+>", "", re.search(r"<button[^>]*>(.*?)</button>", body, re.S).group(1)).strip()
    return forms


def test_the_connect_button_starts_the_flow_with_the_csrf_check(alice, fake_provider):
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(alice)
    page = browser.get(ACCOUNTS).content.decode()
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1)
    response = browser.post("/bigoauth/bigin/authorise/", {"csrfmiddlewaretoken": token})
    assert response.status_code == 302 and response["Location"].startswith(f"{fake_provider.url}/oauth/v2/auth?")


def test_page_lists_the_users_accounts_only(signed_in, alice, django_user_model, make_account, fake_provider):
    bob = django_user_model.objects.create_user("bob")
    mine = make_account("bigin", user=alice, label="Acme Ltd", expires_in=3600, external_id="org-1")
    mine.data_centre = "eu"
    mine.save()
    stale = make_account("biggerplate", user=alice, label="maps-of-alice", expires_in=-300, external_id="u-1")
    make_account("bigin", user=bob, label="Bob's CRM", external_id="org-9")
    make_account("bigin", user=None, label="Site CRM", external_id="org-8")

    html = signed_in.get(ACCOUNTS).content.decode()
    assert "Bob's CRM" not in html and "Bob&#x27;s CRM" not in html and "Site CRM" not in html

    row = row_of(html, mine)
    for text in ("Bigin", "Acme Ltd", "EU", "Active", f"in 59{NBSP}minutes", "Reconnect", "Disconnect"):
        assert text in row
    assert connect_forms(row) == {"/bigoauth/bigin/authorise/": "Reconnect Acme Ltd"}
    assert f'action="{disconnect_url(mine)}"' in row and "csrfmiddlewaretoken" in row

    row = row_of(html, stale)
    assert "Biggerplate" in row and f"expired 5{NBSP}minutes ago" in row and "bigoauth-stale" in row


def test_a_revoked_account_offers_reconnect_but_not_disconnect(signed_in, alice, make_account, fake_provider):
    account = make_account("bigin", user=alice, label="Old CRM", status=LinkedAccount.Status.REVOKED)
    Token.objects.filter(account=account).delete()
    row = row_of(signed_in.get(ACCOUNTS).content.decode(), account)
    assert "Revoked" in row and "Reconnect" in row and "Disconnect" not in row


def test_a_token_no_key_can_decrypt_is_shown_as_unreadable_not_active(
    signed_in, alice, make_account, fake_provider, settings
):
    account = make_account("bigin", user=alice, label="Acme Ltd")
    fine = make_account("biggerplate", user=alice, label="Maps", external_id="bp-1")
    # A key rotation gone wrong: the stored tokens cannot be read any more. The page still works.
    settings.BIGOAUTH = {**settings.BIGOAUTH, "ENCRYPTION_KEYS": ["SysVB7yDmZxXQt8pKl-a7-JoHMFcKx9Q3PUMEc3xHpc="]}
    response = signed_in.get(ACCOUNTS)
    assert response.status_code == 200
    row = row_of(response.content.decode(), account)
    assert "Token unreadable" in row and "Active" not in row and "bigoauth-status-unreadable" in row
    assert "Cannot be decrypted with this site's keys: reconnect the account." in row
    assert "minutes" not in row  # no expiry for a token that cannot be used
    assert "Reconnect" in row and "Disconnect" in row  # both still work
    assert "Token unreadable" in row_of(response.content.decode(), fine)


def test_a_ciphertext_copied_from_another_account_is_unreadable_too(signed_in, alice, make_account, fake_provider):
    from django.db.models import TextField, Value

    from tests.lifecycle_support import raw_token_row

    mine = make_account("bigin", user=alice, label="Mine")
    other = make_account("bigin", user=alice, label="Other", external_id="org-2")
    Token.objects.filter(account=other).update(access_token=Value(raw_token_row(mine)[0], output_field=TextField()))
    html = signed_in.get(ACCOUNTS).content.decode()
    assert "Token unreadable" in row_of(html, other)
    assert "Active" in row_of(html, mine) and "Token unreadable" not in row_of(html, mine)


def test_a_stale_token_says_it_is_refreshed_on_next_use(signed_in, alice, make_account, fake_provider):
    soon = make_account("bigin", user=alice, label="Soon", expires_in=20, external_id="1")
    later = make_account("bigin", user=alice, label="Later", expires_in=3600, external_id="2")
    dead = make_account("bigin", user=alice, label="Dead", expires_in=-60, external_id="3")
    LinkedAccount.objects.filter(pk=dead.pk).update(status=LinkedAccount.Status.NEEDS_REAUTH)
    html = signed_in.get(ACCOUNTS).content.decode()

    row = row_of(html, soon)
    assert re.search(r'class="bigoauth-expires bigoauth-stale">in \d+ seconds<', row)
    assert "(refreshed on next use)" in row
    assert "refreshed on next use" not in row_of(html, later)
    # Stale, but nothing will refresh it until it is linked again: no such promise.
    dead_row = row_of(html, dead)
    assert "Needs re-authorisation" in dead_row and "refreshed on next use" not in dead_row


def test_the_page_decrypts_each_of_the_users_tokens_once_and_no_one_elses(
    signed_in, alice, make_account, fake_provider, django_user_model, monkeypatch
):
    from django_bigoauth import crypto

    for index in range(3):
        make_account("bigin", user=alice, external_id=f"a-{index}")
    make_account("bigin", user=django_user_model.objects.create_user("bob"), external_id="b")
    opened = []
    real = crypto.open_sealed
    monkeypatch.setattr(crypto, "open_sealed", lambda ciphertext: opened.append(ciphertext) or real(ciphertext))
    assert signed_in.get(ACCOUNTS).status_code == 200
    assert len(opened) == 3 * 2  # access and refresh token of each of alice's three


def test_an_account_of_a_provider_no_longer_configured_is_still_listed(signed_in, alice, make_account, fake_provider):
    account = make_account("oldprovider", user=alice, label="Legacy")
    row = row_of(signed_in.get(ACCOUNTS).content.decode(), account)
    assert "oldprovider" in row and "Reconnect" not in row


def test_messages_are_shown_and_the_default_page_is_standalone(signed_in, fake_provider):
    authorised = signed_in.post(reverse("bigoauth:authorise", args=["bigin"]))
    state = re.search(r"state=([^&]+)", authorised["Location"]).group(1)
    signed_in.get(reverse("bigoauth:callback", args=["bigin"]), {"state": state, "error": "access_denied"})
    html = signed_in.get(ACCOUNTS).content.decode()
    assert html.lstrip().startswith("<!DOCTYPE html>")
    assert "/static/django_bigoauth/bigoauth.css" in html
    assert "You did not allow access at Bigin, so nothing was linked." in html


@pytest.mark.parametrize(
    ("delta", "text"),
    [
        (timedelta(minutes=59, seconds=30), f"in 59{NBSP}minutes"),
        (timedelta(hours=2, minutes=5), f"in 2{NBSP}hours"),
        (timedelta(minutes=-3), f"expired 3{NBSP}minutes ago"),
        (timedelta(seconds=42), "in 42 seconds"),
        (timedelta(seconds=-1.5), "expired 1 second ago"),
        (None, "no expiry"),
    ],
)
def test_describe_expiry(delta, text):
    now = timezone.now()
    assert describe_expiry(now + delta if delta is not None else None, now) == text


# -- disconnect -------------------------------------------------------------------------------------------


def test_every_response_is_neither_framed_nor_cached(client, alice, make_account, fake_provider):
    account = make_account("bigin", user=alice, accounts_server=fake_provider.url)
    responses = [client.get(ACCOUNTS), client.post(disconnect_url(account))]  # signed out: to the login page
    client.force_login(alice)
    responses += [
        client.get(ACCOUNTS),
        client.post(ACCOUNTS),  # 405
        client.get(disconnect_url(account)),  # 405
        client.post(reverse("bigoauth:disconnect", args=[account.pk + 1000])),  # 404
        client.post(disconnect_url(account)),  # disconnected
    ]
    assert [r.status_code for r in responses] == [302, 302, 200, 405, 405, 404, 302]
    for response in responses:
        assert response["X-Frame-Options"] == "DENY"
        assert "no-store" in response["Cache-Control"]


def test_disconnect_is_post_only(signed_in, alice, make_account, fake_provider):
    account = make_account("bigin", user=alice, accounts_server=fake_provider.url)
    assert signed_in.get(disconnect_url(account)).status_code == 405
    assert Token.objects.filter(account=account).exists() and fake_provider.requests == []


def test_disconnect_needs_the_csrf_token(alice, make_account, fake_provider):
    account = make_account("bigin", user=alice, accounts_server=fake_provider.url)
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(alice)
    assert browser.post(disconnect_url(account)).status_code == 403
    assert Token.objects.filter(account=account).exists() and fake_provider.requests == []

    page = browser.get(ACCOUNTS).content.decode()
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1)
    response = browser.post(disconnect_url(account), {"csrfmiddlewaretoken": token})
    assert response.status_code == 302 and response["Location"] == ACCOUNTS
    assert not Token.objects.filter(account=account).exists()


def test_disconnect_revokes_at_the_provider_and_drops_the_tokens(signed_in, alice, make_account, fake_provider):
    refresh = fake_provider.issue_refresh_token()
    account = make_account(
        "bigin", user=alice, label="Acme Ltd", refresh_token=refresh, accounts_server=fake_provider.url
    )
    seen = []

    def on_revoked(sender, account, confirmed, **kwargs):
        seen.append((account.pk, confirmed))

    signals.account_revoked.connect(on_revoked)
    try:
        response = signed_in.post(disconnect_url(account))
    finally:
        signals.account_revoked.disconnect(on_revoked)
    assert response.status_code == 302 and response["Location"] == ACCOUNTS
    assert fake_provider.revoked == [refresh]
    assert fake_provider.calls("/oauth/v2/token/revoke")[0].form["token"] == refresh
    assert not Token.objects.filter(account=account).exists()
    account.refresh_from_db()
    assert account.status == LinkedAccount.Status.REVOKED
    assert seen == [(account.pk, True)]
    assert messages_of(response) == [
        "“Acme Ltd” is disconnected: Bigin withdrew this site's access and its tokens are deleted."
    ]


def test_disconnect_without_a_revoke_endpoint_drops_the_tokens_and_says_so(
    signed_in, alice, make_account, fake_provider
):
    account = make_account("biggerplate", user=alice, label="maps")
    response = signed_in.post(disconnect_url(account))
    assert response.status_code == 302
    assert not Token.objects.filter(account=account).exists() and fake_provider.requests == []
    assert "Biggerplate offers no way to withdraw access remotely" in messages_of(response)[0]


def test_when_the_provider_refuses_the_tokens_stay(signed_in, alice, make_account, fake_provider, settings):
    settings.BIGOAUTH["PROVIDERS"]["bigin"]["REVOKE_URL"] = f"{fake_provider.url}/oauth/v2/token/revoke-broken"
    settings.BIGOAUTH = dict(settings.BIGOAUTH)
    account = make_account("bigin", user=alice, label="Acme Ltd", accounts_server=fake_provider.url)
    response = signed_in.post(disconnect_url(account))
    assert response.status_code == 302 and response["Location"] == ACCOUNTS
    assert len(fake_provider.requests) == 1
    assert Token.objects.get(account=account).refresh_token == "1000.refresh.initial"
    account.refresh_from_db()
    assert account.status == LinkedAccount.Status.ACTIVE
    assert "did not confirm that access for “Acme Ltd” was withdrawn" in messages_of(response)[0]


def test_when_the_provider_cannot_be_reached_the_tokens_stay(signed_in, alice, make_account, fake_provider):
    account = make_account("bigin", user=alice, accounts_server=fake_provider.url)
    fake_provider.stop()
    response = signed_in.post(disconnect_url(account))
    assert response.status_code == 302
    assert Token.objects.filter(account=account).exists()


def test_another_users_account_cannot_be_disconnected(signed_in, django_user_model, make_account, fake_provider):
    bob = django_user_model.objects.create_user("bob")
    theirs = make_account("bigin", user=bob, accounts_server=fake_provider.url)
    site = make_account("bigin", user=None, external_id="org-2", accounts_server=fake_provider.url)
    for account in (theirs, site):
        assert signed_in.post(disconnect_url(account)).status_code == 404
    assert Token.objects.count() == 2 and fake_provider.requests == []
    assert set(LinkedAccount.objects.values_list("status", flat=True)) == {LinkedAccount.Status.ACTIVE}


def test_signed_out_disconnect_goes_to_login(client, make_account, alice, fake_provider):
    account = make_account("bigin", user=alice)
    response = client.post(disconnect_url(account))
    assert response.status_code == 302 and response["Location"].startswith("/login/")
    assert Token.objects.filter(account=account).exists()


# -- overriding the templates -------------------------------------------------------------------------------


def test_a_site_can_put_the_pages_in_its_own_layout(signed_in, alice, make_account, fake_provider, settings, tmp_path):
    (tmp_path / "django_bigoauth").mkdir()
    (tmp_path / "layout.html").write_text(
        "<html><body><nav>SITE NAV</nav><div id=main>{% block content %}{% endblock %}</div></body></html>"
    )
    # The documented recipe: a django_bigoauth/base.html of the site's own, mapping the blocks.
    (tmp_path / "django_bigoauth" / "base.html").write_text(
        '{% extends "layout.html" %}{% block content %}{% block bigoauth_content %}{% endblock %}{% endblock %}'
    )
    # And one extra button per account, by extending the app's own accounts template.
    (tmp_path / "django_bigoauth" / "accounts.html").write_text(
        '{% extends "django_bigoauth/accounts.html" %}'
        "{% block bigoauth_account_actions %}<button>Test {{ row.account.label }}</button>{% endblock %}"
    )
    settings.TEMPLATES = [{**settings.TEMPLATES[0], "DIRS": [str(tmp_path)]}]
    make_account("bigin", user=alice, label="Acme Ltd")

    html = signed_in.get(ACCOUNTS).content.decode()
    assert "<nav>SITE NAV</nav>" in html and "<!DOCTYPE html>" not in html
    assert "Linked accounts" in html and "<button>Test Acme Ltd</button>" in html

    error = signed_in.get(reverse("bigoauth:callback", args=["bigin"]))
    assert error.status_code == 400 and "<nav>SITE NAV</nav>" in error.content.decode()
