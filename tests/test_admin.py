"""The admin: accounts' health at a glance, refresh and revoke that say what happened, no secret on any page."""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass

import pytest
from cryptography.fernet import Fernet
from django.contrib.auth.models import Permission
from django.contrib.messages import get_messages
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from django_bigoauth.admin import LinkedAccountAdmin
from django_bigoauth.models import LinkedAccount, Token
from django_bigoauth.redaction import mask
from tests.lifecycle_support import overwrite_token
from tests.test_crypto import use_keys
from tests.test_no_secrets import CLIENT_SECRETS, assert_no_secrets, capture_all_loggers, record_texts

CHANGELIST = reverse("admin:django_bigoauth_linkedaccount_changelist")


def change_url(account):
    return reverse("admin:django_bigoauth_linkedaccount_change", args=[account.pk])


def new_access_token():
    return "1000.access." + secrets.token_hex(12)


@dataclass
class Accounts:
    site: LinkedAccount  # Bigin, site-level, fresh
    maps: LinkedAccount  # Biggerplate, Ann's, stale (inside the refresh leeway)
    old: LinkedAccount  # Bigin, Ann's, expired two hours ago
    dead: LinkedAccount  # Bigin, Ann's, needs re-authorisation
    ann: object

    def all(self):
        return [self.site, self.maps, self.old, self.dead]


@pytest.fixture
def accounts(fake_provider, make_account, django_user_model):
    fake = fake_provider
    ann = django_user_model.objects.create_user("ann", email="ann@example.com", password="pw")

    def make(provider, **kwargs):
        return make_account(
            provider,
            access_token=new_access_token(),
            refresh_token=fake.issue_refresh_token(),
            accounts_server=fake.url if provider == "bigin" else "",
            **kwargs,
        )

    return Accounts(
        site=make("bigin", label="Acme CRM", external_id="org-acme"),
        maps=make("biggerplate", user=ann, label="Ann's maps", external_id="bp-ann", expires_in=30),
        old=make("bigin", user=ann, label="Old org", external_id="org-old", expires_in=-7200),
        dead=make("bigin", user=ann, label="Gone", external_id="org-gone", status=LinkedAccount.Status.NEEDS_REAUTH),
        ann=ann,
    )


def every_secret(fake):
    stored = {value for t in Token.objects.all() for value in (t.access_token, t.refresh_token) if value}
    with fake.lock:
        issued = set(fake.live_access_tokens) | set(fake.live_refresh_tokens) | set(fake.revoked)
    return stored | issued | set(CLIENT_SECRETS)


def row_of(html, text):
    """The changelist row (``<tr>...</tr>``) that mentions ``text``."""
    rows = [row for row in re.findall(r"<tr[^>]*>.*?</tr>", html, re.S) if text in row]
    assert len(rows) == 1, f"{len(rows)} rows mention {text!r}"
    return rows[0]


def run_action(client, action, accounts, **extra):
    data = {"action": action, "_selected_action": [account.pk for account in accounts], **extra}
    response = client.post(CHANGELIST, data)
    messages = [(message.level_tag, str(message)) for message in get_messages(response.wsgi_request)]
    client.cookies.pop("messages", None)  # shown: the next action starts with none
    return response, messages


def staff_user(django_user_model, *codenames):
    user = django_user_model.objects.create_user(f"staff-{len(codenames)}", password="pw", is_staff=True)
    user.user_permissions.set(
        Permission.objects.filter(content_type__app_label="django_bigoauth", codename__in=codenames)
    )
    return user


# -- the list ---------------------------------------------------------------------------------


def test_the_list_shows_each_account_at_a_glance(admin_client, accounts):
    response = admin_client.get(CHANGELIST)
    assert response.status_code == 200
    html = response.content.decode()

    site = row_of(html, "Acme CRM")
    assert "Bigin" in site and ">site<" in site and "Active" in site
    assert re.search(r"in 59\xa0minutes", site) and "bigoauth-stale" not in site

    maps = row_of(html, "Ann&#x27;s maps")
    assert "Biggerplate" in maps and ">ann<" in maps
    assert re.search(r'class="bigoauth-stale"[^>]*>in \d+ seconds<', maps)

    old = row_of(html, "Old org")
    assert re.search(r'class="bigoauth-stale"[^>]*>expired 2\xa0hours ago<', old)

    assert "Needs re-authorisation" in row_of(html, "Gone")


def test_a_revoked_account_without_a_token_says_so(admin_client, accounts):
    Token.objects.filter(account=accounts.site).delete()
    LinkedAccount.objects.filter(pk=accounts.site.pk).update(status=LinkedAccount.Status.REVOKED)
    site = row_of(admin_client.get(CHANGELIST).content.decode(), "Acme CRM")
    assert "no token" in site and "Revoked" in site


def test_the_list_costs_the_same_number_of_queries_for_four_rows_or_fourteen(admin_client, accounts, make_account):
    def queries():
        with CaptureQueriesContext(connection) as captured:
            assert admin_client.get(CHANGELIST).status_code == 200
        return len(captured.captured_queries)

    with_four = queries()
    for index in range(10):
        make_account("biggerplate", user=accounts.ann, external_id=f"extra-{index}", access_token=new_access_token())
    assert queries() == with_four


def test_search_by_owner_label_and_external_id(admin_client, accounts):
    def found(query):
        response = admin_client.get(CHANGELIST, {"q": query})
        return {account.pk for account in response.context["cl"].result_list}

    anns = {accounts.maps.pk, accounts.old.pk, accounts.dead.pk}
    assert found("ann") == anns
    assert found("ann@example.com") == anns
    assert found("Acme") == {accounts.site.pk}
    assert found("org-old") == {accounts.old.pk}
    assert found("no-such-thing") == set()


def test_filter_by_provider_and_by_status(admin_client, accounts):
    def found(**params):
        response = admin_client.get(CHANGELIST, params)
        return {account.pk for account in response.context["cl"].result_list}

    assert found(provider="biggerplate") == {accounts.maps.pk}
    assert found(provider="bigin") == {accounts.site.pk, accounts.old.pk, accounts.dead.pk}
    assert found(status__exact="needs_reauth") == {accounts.dead.pk}
    html = admin_client.get(CHANGELIST).content.decode()
    assert "?provider=biggerplate" in html and "?status__exact=needs_reauth" in html


# -- the detail page ---------------------------------------------------------------------------


def test_the_detail_page_shows_the_token_masked(admin_client, make_account, fake_provider):
    account = make_account(access_token="AXQZ" + secrets.token_hex(16), refresh_token="RFWQ" + secrets.token_hex(16))
    token = Token.objects.get(account=account)
    response = admin_client.get(change_url(account))
    assert response.status_code == 200
    html = response.content.decode()
    assert mask(token.access_token) == "AXQZ…" and "AXQZ…" in html and "RFWQ…" in html
    assert_no_secrets(html, {token.access_token, token.refresh_token, *CLIENT_SECRETS})


def test_only_the_label_can_be_changed(admin_client, accounts, django_user_model):
    account = accounts.maps
    token = Token.objects.get(account=account)
    intruder = django_user_model.objects.create_user("mallory")
    data = {
        "label": "Renamed",
        "provider": "bigin",
        "user": intruder.pk,
        "external_id": "someone-else",
        "status": "active",
        "accounts_server": "https://evil.example.com",
        "api_domain": "https://evil.example.com",
        "scopes": "everything",
        "token-TOTAL_FORMS": "1",
        "token-INITIAL_FORMS": "1",
        "token-MIN_NUM_FORMS": "0",
        "token-MAX_NUM_FORMS": "0",
        "token-0-id": str(token.pk),
        "token-0-account": str(account.pk),
        "token-0-access_token": "typed-in-token",
    }
    response = admin_client.post(change_url(account), data)
    assert response.status_code == 302, response.content.decode()[:2000]
    account.refresh_from_db()
    assert account.label == "Renamed"
    assert (account.provider, account.user_id, account.external_id) == ("biggerplate", accounts.ann.pk, "bp-ann")
    assert (account.status, account.accounts_server, account.api_domain, account.scopes) == ("active", "", "", "")
    assert Token.objects.get(account=account).access_token == token.access_token


def test_there_is_no_add_page_accounts_come_from_linking(admin_client, accounts):
    assert admin_client.get(reverse("admin:django_bigoauth_linkedaccount_add")).status_code == 403


def test_a_token_no_key_can_decrypt_does_not_break_the_pages(admin_client, accounts, settings):
    working_keys = settings.BIGOAUTH["ENCRYPTION_KEYS"]
    use_keys(settings, Fernet.generate_key().decode())
    broken = accounts.site
    overwrite_token(broken, access_token="1000.access.written-under-a-lost-key")
    use_keys(settings, *working_keys)

    assert admin_client.get(CHANGELIST).status_code == 200
    response = admin_client.get(change_url(broken))
    assert response.status_code == 200
    assert "cannot be decrypted" in response.content.decode()

    # ... and it can be deleted, which is what an operator does with it, alone or in a batch.
    delete_url = reverse("admin:django_bigoauth_linkedaccount_delete", args=[broken.pk])
    page = admin_client.get(delete_url)
    assert page.status_code == 200 and "cannot be decrypted" in page.content.decode()
    response = admin_client.post(
        CHANGELIST, {"action": "delete_selected", "_selected_action": [broken.pk, accounts.old.pk]}
    )
    assert response.status_code == 200 and "cannot be decrypted" in response.content.decode()
    assert admin_client.post(delete_url, {"post": "yes"}).status_code == 302
    assert not LinkedAccount.objects.filter(pk=broken.pk).exists()
    assert not Token.objects.filter(account_id=broken.pk).exists()
    assert LinkedAccount.objects.count() == 3


def test_actions_on_a_token_no_key_can_decrypt_say_so(admin_client, accounts, settings, fake_provider):
    working_keys = settings.BIGOAUTH["ENCRYPTION_KEYS"]
    use_keys(settings, Fernet.generate_key().decode())
    overwrite_token(accounts.site, access_token="1000.access.under-a-lost-key")
    use_keys(settings, *working_keys)

    _response, messages = run_action(admin_client, "refresh_now", [accounts.site])
    assert messages == [
        (
            "error",
            f"Could not refresh {accounts.site}: The token of account {accounts.site.pk} (bigin) cannot be "
            "decrypted with any key in BIGOAUTH['ENCRYPTION_KEYS']; restore the key it was written with, "
            "or link the account again.",
        )
    ]
    _response, messages = run_action(admin_client, "revoke", [accounts.site], post="yes")
    assert messages == [
        ("warning", f"{accounts.site}: removed here only; there was no readable token to revoke at Bigin.")
    ]
    assert fake_provider.refresh_calls() == 0 and fake_provider.revoked == []
    assert not Token.objects.filter(account=accounts.site).exists()


# -- who may see it -----------------------------------------------------------------------------


def test_pages_are_refused_to_anyone_who_is_not_staff(client, accounts, django_user_model):
    for who in (None, django_user_model.objects.create_user("visitor", password="pw")):
        if who:
            client.force_login(who)
        for url in (CHANGELIST, change_url(accounts.site)):
            response = client.get(url)
            assert response.status_code == 302
            assert response["Location"].startswith(reverse("admin:login"))


def test_staff_without_permission_get_403(client, accounts, django_user_model, fake_provider):
    client.force_login(staff_user(django_user_model))
    assert client.get(CHANGELIST).status_code == 403
    assert client.get(change_url(accounts.site)).status_code == 403
    response = client.post(CHANGELIST, {"action": "refresh_now", "_selected_action": [accounts.site.pk]})
    assert response.status_code == 403
    assert fake_provider.refresh_calls() == 0


def test_view_only_staff_see_the_accounts_but_cannot_act(client, accounts, django_user_model, fake_provider):
    client.force_login(staff_user(django_user_model, "view_linkedaccount"))
    html = client.get(CHANGELIST).content.decode()
    assert "Acme CRM" in html
    assert 'value="refresh_now"' not in html and 'value="revoke"' not in html
    assert "Link a site-level" not in html  # superusers only
    assert "1000…" in client.get(change_url(accounts.site)).content.decode()  # the masked token inline
    client.post(CHANGELIST, {"action": "refresh_now", "_selected_action": [accounts.site.pk]})
    client.post(CHANGELIST, {"action": "revoke", "post": "yes", "_selected_action": [accounts.site.pk]})
    assert fake_provider.refresh_calls() == 0 and fake_provider.revoked == []
    assert LinkedAccount.objects.get(pk=accounts.site.pk).status == "active"


def test_change_permission_allows_refresh_but_revoking_needs_delete(client, accounts, django_user_model):
    client.force_login(staff_user(django_user_model, "view_linkedaccount", "change_linkedaccount"))
    html = client.get(CHANGELIST).content.decode()
    assert 'value="refresh_now"' in html and 'value="revoke"' not in html


# -- actions ----------------------------------------------------------------------------------------


def test_refresh_now_refreshes_each_account_and_says_so(admin_client, accounts, fake_provider):
    before = {t.account_id: (t.access_token, t.generation) for t in Token.objects.all()}
    response, messages = run_action(admin_client, "refresh_now", [accounts.site, accounts.maps])
    assert response.status_code == 302
    assert sorted(messages) == sorted(
        [
            ("success", f"Refreshed {accounts.site}."),
            ("success", f"Refreshed {accounts.maps}."),
        ]
    )
    assert fake_provider.refresh_calls() == 2
    for account in (accounts.site, accounts.maps):
        token = Token.objects.get(account=account)
        assert token.access_token != before[account.pk][0]
        assert token.generation == before[account.pk][1] + 1


def test_refresh_now_reports_a_provider_failure_and_keeps_the_token(admin_client, accounts, fake_provider):
    fake_provider.queue_reply(status=500, body="upstream broke", content_type="text/plain")
    before = Token.objects.get(account=accounts.site)
    _response, messages = run_action(admin_client, "refresh_now", [accounts.site])
    ((level, text),) = messages
    assert level == "error"
    assert text.startswith(f"Could not refresh {accounts.site}:") and "HTTP 500" in text
    after = Token.objects.get(account=accounts.site)
    assert (after.access_token, after.generation) == (before.access_token, before.generation)
    assert LinkedAccount.objects.get(pk=accounts.site.pk).status == "active"


def test_refresh_now_reports_a_refused_refresh_token_as_needing_a_new_link(admin_client, accounts, fake_provider):
    fake_provider.kill(Token.objects.get(account=accounts.maps).refresh_token)
    _response, messages = run_action(admin_client, "refresh_now", [accounts.maps, accounts.dead])
    assert [level for level, _text in messages] == ["error", "error"]
    assert "must be linked again" in messages[0][1] and "invalid_grant" in messages[0][1]
    assert "must be linked again" in messages[1][1]  # already marked: no request sent for it
    assert LinkedAccount.objects.get(pk=accounts.maps.pk).status == "needs_reauth"
    assert fake_provider.refresh_calls() == 1


def test_revoke_asks_for_confirmation_first(admin_client, accounts, fake_provider):
    response, messages = run_action(admin_client, "revoke", [accounts.site, accounts.maps])
    assert response.status_code == 200 and messages == []
    html = response.content.decode()
    assert str(accounts.site) in html and "Yes, revoke" in html
    assert_no_secrets(html, every_secret(fake_provider))
    assert fake_provider.revoked == []
    assert Token.objects.filter(account=accounts.site).exists()


def test_revoke_at_a_provider_that_can_and_one_that_cannot(admin_client, accounts, fake_provider):
    refresh_token = Token.objects.get(account=accounts.site).refresh_token
    _response, messages = run_action(admin_client, "revoke", [accounts.site, accounts.maps], post="yes")
    assert sorted(messages) == [
        ("success", f"{accounts.site}: revoked at Bigin and removed here."),
        (
            "warning",
            f"{accounts.maps}: removed here only; Biggerplate has no revoke endpoint, so the token stays valid "
            "there until it expires or the user revokes it.",
        ),
    ]
    assert fake_provider.revoked == [refresh_token]
    for account in (accounts.site, accounts.maps):
        assert LinkedAccount.objects.get(pk=account.pk).status == "revoked"
        assert not Token.objects.filter(account=account).exists()

    _response, messages = run_action(admin_client, "revoke", [accounts.site], post="yes")
    assert messages == [("info", f"{accounts.site} was already revoked.")]


def test_revoke_reports_a_refusal_and_changes_nothing(admin_client, accounts, fake_provider, settings):
    conf = {**settings.BIGOAUTH, "PROVIDERS": {**settings.BIGOAUTH["PROVIDERS"]}}
    conf["PROVIDERS"]["bigin"] = {**conf["PROVIDERS"]["bigin"], "REVOKE_URL": f"{fake_provider.url}/oauth/v2/refused"}
    settings.BIGOAUTH = conf
    _response, messages = run_action(admin_client, "revoke", [accounts.site], post="yes")
    ((level, text),) = messages
    assert level == "error"
    assert text.startswith(f"Could not revoke {accounts.site}:") and "not_found" in text
    assert LinkedAccount.objects.get(pk=accounts.site.pk).status == "active"
    assert Token.objects.filter(account=accounts.site).exists()


# -- linking a site-level account ---------------------------------------------------------------------


def link_forms(html):
    """The "Link a site-level ... account" forms: {action: (hidden fields, button text)}."""
    forms = {}
    for action, body in re.findall(
        r'<form method="post" action="([^"]+)" class="bigoauth-link-site">(.*?)</form>', html, re.S
    ):
        fields = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)">', body))
        forms[action] = (fields, re.search(r"<button[^>]*>(.*?)</button>", body, re.S).group(1))
    return forms


def test_a_superuser_gets_a_link_button_per_provider(admin_client, accounts):
    html = admin_client.get(CHANGELIST).content.decode()
    forms = link_forms(html)
    for slug, name in (("bigin", "Bigin"), ("biggerplate", "Biggerplate")):
        authorise = reverse("bigoauth:authorise", kwargs={"provider": slug})
        # A POST form with the CSRF token: a site-level link is never started by a GET.
        fields, text = forms[authorise]
        assert fields["site"] == "1" and fields["next"] == CHANGELIST and fields["csrfmiddlewaretoken"]
        assert text == f"Link a site-level {name} account"
    assert f'href="{reverse("bigoauth:authorise", kwargs={"provider": "bigin"})}' not in html


def test_the_link_button_starts_a_site_level_flow_with_the_csrf_check(accounts, fake_provider, django_user_model):
    from django.test import Client

    from django_bigoauth.models import PendingAuthorisation

    browser = Client(enforce_csrf_checks=True)
    browser.force_login(django_user_model.objects.create_superuser("root", password="pw"))
    authorise = reverse("bigoauth:authorise", kwargs={"provider": "bigin"})
    fields, _text = link_forms(browser.get(CHANGELIST).content.decode())[authorise]
    assert browser.post(authorise, {"site": "1", "next": CHANGELIST}).status_code == 403  # no token: refused
    assert not PendingAuthorisation.objects.exists()
    response = browser.post(authorise, fields)
    assert response.status_code == 302 and response["Location"].startswith(f"{fake_provider.url}/oauth/v2/auth?")
    pending = PendingAuthorisation.objects.get()
    assert (pending.site_level, pending.next_url, pending.started_by_post) == (True, CHANGELIST, True)


# -- no secret on any page, in any message, in any log record --------------------------------------


def test_no_page_message_or_log_record_holds_a_secret(admin_client, accounts, fake_provider, caplog):
    capture_everything = capture_all_loggers(caplog)
    secrets_seen = every_secret(fake_provider)
    assert len(secrets_seen) == 4 * 2 + len(CLIENT_SECRETS)
    pages = [
        admin_client.get(CHANGELIST),
        admin_client.get(CHANGELIST, {"q": "ann"}),
        admin_client.get(CHANGELIST, {"provider": "bigin"}),
        *(admin_client.get(change_url(account)) for account in accounts.all()),
        admin_client.get(reverse("admin:django_bigoauth_linkedaccount_history", args=[accounts.site.pk])),
        admin_client.get(reverse("admin:django_bigoauth_linkedaccount_delete", args=[accounts.site.pk])),
        admin_client.post(
            CHANGELIST, {"action": "delete_selected", "_selected_action": [a.pk for a in accounts.all()]}
        ),
        admin_client.post(CHANGELIST, {"action": "revoke", "_selected_action": [a.pk for a in accounts.all()]}),
        admin_client.get(reverse("admin:django_bigoauth_token_changelist")),
        *(admin_client.get(token_url(account)) for account in accounts.all()),
    ]
    fake_provider.queue_reply(status=500, body="upstream broke", content_type="text/plain")
    _response, refresh_messages = run_action(admin_client, "refresh_now", accounts.all())
    _response, revoke_messages = run_action(admin_client, "revoke", accounts.all(), post="yes")
    pages.append(admin_client.get(CHANGELIST))
    assert all(page.status_code == 200 for page in pages)

    secrets_seen |= every_secret(fake_provider)
    assert fake_provider.revoked  # the revoke action reached the provider
    for page in pages:
        assert_no_secrets(page.content.decode(), secrets_seen)
    for _level, text in refresh_messages + revoke_messages:
        assert_no_secrets(text, secrets_seen)
    for text in record_texts(capture_everything.records):
        assert_no_secrets(text, secrets_seen)


# -- the token admin: view only, masked ------------------------------------------------------------

TOKEN_CHANGELIST = reverse("admin:django_bigoauth_token_changelist")


def token_url(account, view="change"):
    token_pk = Token.objects.filter(account=account).values_list("pk", flat=True).get()
    return reverse(f"admin:django_bigoauth_token_{view}", args=[token_pk])


def test_the_token_list_shows_each_token_masked_with_a_link_to_its_account(admin_client, accounts, fake_provider):
    response = admin_client.get(TOKEN_CHANGELIST)
    assert response.status_code == 200
    html = response.content.decode()
    assert len(response.context["cl"].result_list) == 4

    token = Token.objects.get(account=accounts.maps)
    maps = row_of(html, "Ann&#x27;s maps")
    assert f'href="{change_url(accounts.maps)}"' in maps
    assert "Biggerplate" in maps and "Bearer" in maps
    assert re.search(r'class="bigoauth-stale"[^>]*>in \d+ seconds<', maps)
    assert f">{mask(token.access_token)}<" in maps and f">{mask(token.refresh_token)}<" in maps
    assert re.search(r'class="bigoauth-stale"[^>]*>expired 2\xa0hours ago<', row_of(html, "Old org"))
    assert_no_secrets(html, every_secret(fake_provider))


def test_the_token_list_costs_the_same_number_of_queries_for_four_rows_or_fourteen(
    admin_client, accounts, make_account
):
    def queries():
        with CaptureQueriesContext(connection) as captured:
            assert admin_client.get(TOKEN_CHANGELIST).status_code == 200
        return len(captured.captured_queries)

    with_four = queries()
    for index in range(10):
        make_account("biggerplate", user=accounts.ann, external_id=f"extra-{index}", access_token=new_access_token())
    assert queries() == with_four


def test_a_token_can_be_looked_at_but_not_added_changed_or_deleted(admin_client, accounts, fake_provider):
    token = Token.objects.get(account=accounts.site)
    page = admin_client.get(token_url(accounts.site))
    assert page.status_code == 200
    html = page.content.decode()
    assert f">{mask(token.access_token)}<" in html and f'href="{change_url(accounts.site)}"' in html
    assert 'name="_save"' not in html and "<textarea" not in html and 'name="access_token"' not in html
    assert_no_secrets(html, every_secret(fake_provider))

    assert admin_client.get(reverse("admin:django_bigoauth_token_add")).status_code == 403
    post = admin_client.post(token_url(accounts.site), {"access_token": "typed-in", "token_type": "Evil"})
    assert post.status_code == 403
    assert admin_client.get(token_url(accounts.site, "delete")).status_code == 403
    assert admin_client.post(token_url(accounts.site, "delete"), {"post": "yes"}).status_code == 403
    listing = admin_client.get(TOKEN_CHANGELIST).content.decode()
    assert 'value="delete_selected"' not in listing and reverse("admin:django_bigoauth_token_add") not in listing
    admin_client.post(TOKEN_CHANGELIST, {"action": "delete_selected", "post": "yes", "_selected_action": [token.pk]})

    after = Token.objects.get(pk=token.pk)
    assert (after.access_token, after.token_type, after.generation) == (token.access_token, "Bearer", 0)


def test_an_undecryptable_token_is_shown_as_such(admin_client, accounts, settings):
    working_keys = settings.BIGOAUTH["ENCRYPTION_KEYS"]
    use_keys(settings, Fernet.generate_key().decode())
    overwrite_token(accounts.site, access_token="1000.access.written-under-a-lost-key")
    use_keys(settings, *working_keys)

    listing = admin_client.get(TOKEN_CHANGELIST)
    assert listing.status_code == 200
    site = row_of(listing.content.decode(), "Acme CRM")
    assert "cannot be decrypted" in site and "1000…" in site  # the refresh token still reads
    page = admin_client.get(token_url(accounts.site))
    assert page.status_code == 200 and "cannot be decrypted" in page.content.decode()
    history = admin_client.get(token_url(accounts.site, "history"))
    assert history.status_code == 200


def test_token_pages_are_refused_to_anyone_who_is_not_staff(client, accounts, django_user_model):
    for who in (None, django_user_model.objects.create_user("visitor", password="pw")):
        if who:
            client.force_login(who)
        for url in (TOKEN_CHANGELIST, token_url(accounts.site)):
            response = client.get(url)
            assert response.status_code == 302
            assert response["Location"].startswith(reverse("admin:login"))


def test_staff_need_the_view_token_permission(client, accounts, django_user_model):
    client.force_login(staff_user(django_user_model, "view_linkedaccount"))
    assert client.get(TOKEN_CHANGELIST).status_code == 403
    client.force_login(staff_user(django_user_model, "view_linkedaccount", "view_token"))
    assert client.get(TOKEN_CHANGELIST).status_code == 200
    assert client.get(token_url(accounts.site)).status_code == 200


def test_deleting_an_account_still_takes_its_token_along(client, accounts, django_user_model):
    # The token admin allows no delete of its own; that must not block deleting the account.
    client.force_login(staff_user(django_user_model, "view_linkedaccount", "delete_linkedaccount"))
    delete_url = reverse("admin:django_bigoauth_linkedaccount_delete", args=[accounts.site.pk])
    page = client.get(delete_url).content.decode()
    assert "Yes, I’m sure" in page or "Yes, I'm sure" in page
    assert client.post(delete_url, {"post": "yes"}).status_code == 302
    assert not LinkedAccount.objects.filter(pk=accounts.site.pk).exists()
    assert not Token.objects.filter(account_id=accounts.site.pk).exists()


# -- the account page's Revoke button, and a Delete that says what it does not do ------------------------


def revoke_url(account):
    return reverse("admin:django_bigoauth_linkedaccount_revoke", args=[account.pk])


def test_the_account_page_has_a_revoke_button_and_a_delete_that_says_it_is_local(admin_client, accounts):
    html = admin_client.get(change_url(accounts.site)).content.decode()
    assert f'href="{revoke_url(accounts.site)}"' in html and ">Revoke<" in html
    assert ">Delete here only<" in html and "the provider is not told" in html

    delete_page = admin_client.get(reverse("admin:django_bigoauth_linkedaccount_delete", args=[accounts.site.pk]))
    assert "the provider is not told" in delete_page.content.decode()
    bulk = admin_client.post(CHANGELIST, {"action": "delete_selected", "_selected_action": [accounts.site.pk]})
    assert "the providers are not told" in bulk.content.decode()


def test_the_revoke_button_shows_the_list_actions_confirmation_page_and_changes_nothing(
    admin_client, accounts, fake_provider
):
    response = admin_client.get(revoke_url(accounts.site))
    assert response.status_code == 200
    assert [t.name for t in response.templates][0] == LinkedAccountAdmin.revoke_confirmation_template
    html = response.content.decode()
    assert str(accounts.site) in html and "Yes, revoke" in html
    assert f'href="{change_url(accounts.site)}" class="button cancel-link"' in html  # back to the account
    assert 'name="action"' not in html  # it posts to itself, not to the list
    assert_no_secrets(html, every_secret(fake_provider))
    assert admin_client.post(revoke_url(accounts.site)).status_code == 200  # no post=yes: still asks
    assert fake_provider.revoked == []
    assert LinkedAccount.objects.get(pk=accounts.site.pk).status == "active"


def test_the_revoke_button_revokes_and_says_so_on_the_account_page(admin_client, accounts, fake_provider):
    refresh_token = Token.objects.get(account=accounts.site).refresh_token
    response = admin_client.post(revoke_url(accounts.site), {"post": "yes"})
    assert response.status_code == 302 and response["Location"] == change_url(accounts.site)
    messages = [(m.level_tag, str(m)) for m in get_messages(response.wsgi_request)]
    assert messages == [("success", f"{accounts.site}: revoked at Bigin and removed here.")]
    assert fake_provider.revoked == [refresh_token]
    assert LinkedAccount.objects.get(pk=accounts.site.pk).status == "revoked"
    assert not Token.objects.filter(account=accounts.site).exists()
    # Revoked: the page offers no second Revoke.
    assert f'href="{revoke_url(accounts.site)}"' not in admin_client.get(change_url(accounts.site)).content.decode()


def test_the_revoke_button_needs_the_delete_permission(client, accounts, django_user_model, fake_provider):
    client.force_login(staff_user(django_user_model, "view_linkedaccount", "change_linkedaccount"))
    assert f'href="{revoke_url(accounts.site)}"' not in client.get(change_url(accounts.site)).content.decode()
    assert client.get(revoke_url(accounts.site)).status_code == 403
    assert client.post(revoke_url(accounts.site), {"post": "yes"}).status_code == 403
    assert fake_provider.revoked == []
    assert LinkedAccount.objects.get(pk=accounts.site.pk).status == "active"


def test_the_revoke_button_needs_a_csrf_token_and_a_real_account(accounts, fake_provider, django_user_model):
    from django.test import Client

    browser = Client(enforce_csrf_checks=True)
    browser.force_login(django_user_model.objects.create_superuser("root", password="pw"))
    assert browser.post(revoke_url(accounts.site), {"post": "yes"}).status_code == 403
    assert fake_provider.revoked == []
    missing = browser.get(reverse("admin:django_bigoauth_linkedaccount_revoke", args=[999_999]))
    assert missing.status_code == 302  # the admin's "does not exist" redirect, with a message


def test_admin_messages_name_an_account_one_way(admin_client, accounts, fake_provider):
    _response, refreshed = run_action(admin_client, "refresh_now", [accounts.site])
    _response, revoked = run_action(admin_client, "revoke", [accounts.site, accounts.maps], post="yes")
    assert [text for _level, text in refreshed] == ["Refreshed Bigin account “Acme CRM” (site)."]
    texts = sorted(text for _level, text in revoked)
    assert texts[0].startswith("Biggerplate account “Ann's maps” (user ann): removed here only")
    assert texts[1].startswith("Bigin account “Acme CRM” (site): revoked")


def test_search_takes_every_term_and_quoted_phrases(admin_client, accounts):
    def found(query):
        response = admin_client.get(CHANGELIST, {"q": query})
        return {account.pk for account in response.context["cl"].result_list}

    assert found("ann maps") == {accounts.maps.pk}  # the owner and the label, both must match
    assert found('"Old org"') == {accounts.old.pk}
    assert found('"org old"') == set()
    assert found("ANN@EXAMPLE") == {accounts.maps.pk, accounts.old.pk, accounts.dead.pk}  # any case


def test_each_row_has_django_admins_action_checkbox(admin_client, accounts):
    html = admin_client.get(CHANGELIST).content.decode()
    assert (
        f'<input type="checkbox" name="_selected_action" value="{accounts.site.pk}" class="action-select" '
        'aria-label="Select this object for an action - Bigin account “Acme CRM” (site)">'
    ) in html
    assert 'id="action-toggle"' in html  # the header's select-all box, as Django draws it
