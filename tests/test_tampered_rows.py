"""Stored columns are trusted no further than they were checked.

Someone with write access to the tables (a restored backup, a compromised replica, SQL
injection elsewhere in the site) changes where an account lives or copies ciphertext between
rows: nothing secret goes anywhere it should not, and the failure names the account.
"""

from __future__ import annotations

import pytest
from django.db import connection

from django_bigoauth import crypto
from django_bigoauth.exceptions import RevokeError, TokenBindingError, TokenDecryptionError, UnsafeURL
from django_bigoauth.models import LinkedAccount, Token
from tests.lifecycle_support import raw_token_row


def set_raw(account, **columns) -> None:
    """Write raw column values with SQL, as an attacker with table access would."""
    table = connection.ops.quote_name(Token._meta.db_table)
    assignments = ", ".join(f"{connection.ops.quote_name(name)} = %s" for name in columns)
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {table} SET {assignments} WHERE {connection.ops.quote_name('account_id')} = %s",  # noqa: S608
            [*columns.values(), account.pk],
        )


def raw(account) -> tuple[str, str]:
    access, refresh, *_ = raw_token_row(account)
    return access, refresh


# -- where the account lives -------------------------------------------------------------------


@pytest.mark.parametrize(
    "server", ["https://evil.example", "http://127.0.0.1:9", "https://accounts.zoho.com.evil.example"]
)
def test_a_changed_accounts_server_gets_neither_the_secret_nor_the_refresh_token(
    fake_provider, make_account, outbound, server
):
    account = make_account("bigin", expires_in=-10, accounts_server=fake_provider.url)
    LinkedAccount.objects.filter(pk=account.pk).update(accounts_server=server)
    for call in (account.get_access_token, account.refresh):
        with pytest.raises(UnsafeURL, match=rf"Account {account.pk} \(bigin\)"):
            call()
    with pytest.raises(RevokeError, match="not an accounts server"):
        account.revoke()
    assert outbound == []
    assert Token.objects.get(account=account).refresh_claim == ""
    assert LinkedAccount.objects.get(pk=account.pk).status == LinkedAccount.Status.ACTIVE


@pytest.mark.parametrize("api_domain", ["https://evil.example", "https://www.zohoapis.com.evil.example"])
def test_a_changed_api_domain_never_receives_the_access_token(fake_provider, make_account, outbound, api_domain):
    account = make_account("bigin", api_domain=fake_provider.api_url)
    LinkedAccount.objects.filter(pk=account.pk).update(api_domain=api_domain)
    with pytest.raises(UnsafeURL, match=rf"Account {account.pk} \(bigin\).*not an API domain"):
        LinkedAccount.objects.get(pk=account.pk).session().get("/bigin/v2/org")
    assert outbound == []


def test_every_data_centres_api_domain_is_accepted_for_bigin(make_account, settings):
    settings.BIGOAUTH = {"PROVIDERS": {"bigin": {"CLIENT_ID": "x", "CLIENT_SECRET": "y"}}}
    for code, api in (("eu", "https://www.zohoapis.eu"), ("ca", "https://www.zohoapis.ca")):
        account = make_account("bigin", api_domain=api, external_id=code)
        assert account.session().base_url == f"{api}/"


# -- ciphertext bound to its row and column ----------------------------------------------------------


def test_ciphertext_copied_from_another_account_is_refused(fake_provider, make_account, outbound):
    victim = make_account("bigin", access_token="1000.access.victims", external_id="victim")
    attacker = make_account("bigin", access_token="1000.access.attackers", expires_in=-10, external_id="attacker")
    victim_access, victim_refresh = raw(victim)
    set_raw(attacker, access_token=victim_access, refresh_token=victim_refresh)

    with pytest.raises(TokenBindingError, match=rf"account {attacker.pk} \(bigin\)") as excinfo:
        attacker.get_access_token()
    assert isinstance(excinfo.value, TokenDecryptionError)
    with pytest.raises(TokenDecryptionError):
        attacker.refresh()
    with pytest.raises(TokenDecryptionError):
        attacker.session().get("/bigin/v2/org")
    assert outbound == []
    assert victim.get_access_token() == "1000.access.victims"  # the victim's own row still reads


def test_the_refresh_token_copied_into_the_access_token_column_is_refused(fake_provider, make_account, outbound):
    account = make_account("bigin", access_token="1000.access.mine", refresh_token="1000.refresh.mine")
    _access, refresh = raw(account)
    set_raw(account, access_token=refresh)
    with pytest.raises(TokenBindingError):
        account.get_access_token()
    with pytest.raises(TokenBindingError):
        Token.objects.get(account=account)
    assert outbound == []


def test_a_refresh_token_copied_from_another_account_is_never_sent(fake_provider, make_account, outbound):
    victim = make_account("bigin", refresh_token="1000.refresh.victims", external_id="victim")
    attacker = make_account("bigin", expires_in=-10, external_id="attacker")
    set_raw(attacker, refresh_token=raw(victim)[1])
    with pytest.raises(TokenDecryptionError):
        attacker.get_access_token()
    with pytest.raises(TokenDecryptionError):
        attacker.refresh()
    assert outbound == []
    assert Token.objects.get(account=victim).refresh_token == "1000.refresh.victims"


def test_the_admin_shows_a_copied_ciphertext_as_unreadable(admin_client, make_account):
    victim = make_account("bigin", external_id="victim")
    attacker = make_account("bigin", external_id="attacker", label="Attacker")
    set_raw(attacker, access_token=raw(victim)[0])
    page = admin_client.get(f"/admin/django_bigoauth/linkedaccount/{attacker.pk}/change/")
    assert page.status_code == 200 and "cannot be decrypted" in page.content.decode()


def test_ciphertext_written_before_binding_is_bound_by_the_migration(make_account):
    """Migration 0003 binds every readable legacy row to its account and column; a second run changes nothing."""
    import importlib

    from django.apps import apps

    migration = importlib.import_module("django_bigoauth.migrations.0003_bind_token_ciphertext")
    account = make_account("bigin", access_token="1000.access.legacy", refresh_token="1000.refresh.legacy")
    set_raw(
        account, access_token=crypto.encrypt("1000.access.legacy"), refresh_token=crypto.encrypt("1000.refresh.legacy")
    )
    with pytest.raises(TokenDecryptionError):
        account.get_access_token()  # unbound: refused, like a copied value

    class Editor:
        connection = connection

    migration.bind(apps, Editor)
    assert account.get_access_token() == "1000.access.legacy"
    assert Token.objects.get(account=account).refresh_token == "1000.refresh.legacy"
    once = raw(account)
    migration.bind(apps, Editor)
    assert raw(account) == once

    migration.unbind(apps, Editor)  # the reverse migration
    assert crypto.decrypt(raw(account)[0]) == "1000.access.legacy"


# -- SECRET_KEY rotation as Django documents it -----------------------------------------------------


def test_derived_keys_follow_secret_key_fallbacks(settings, make_account, fake_provider):
    settings.BIGOAUTH = {**settings.BIGOAUTH, "ENCRYPTION_KEYS": []}
    settings.SECRET_KEY = "the-old-secret-key-of-this-site"
    account = make_account("bigin", access_token="1000.access.under-old-secret")

    settings.SECRET_KEY = "the-new-secret-key-of-this-site"
    settings.SECRET_KEY_FALLBACKS = ["the-old-secret-key-of-this-site"]
    assert account.get_access_token() == "1000.access.under-old-secret"

    from django_bigoauth.rotation import rotate_keys

    assert rotate_keys().rotated == 1  # moved to the key of the new SECRET_KEY
    settings.SECRET_KEY_FALLBACKS = []
    assert account.get_access_token() == "1000.access.under-old-secret"


# -- the session's URL rules --------------------------------------------------------------------------


def test_a_relative_url_with_a_url_in_its_query_stays_on_the_api(fake_provider, make_account):
    fake_provider.adopt(access_token="1000.access.query")
    account = make_account("bigin", access_token="1000.access.query", api_domain=fake_provider.api_url)
    session = account.session()
    assert session.resolve("/bigin/v2/search?next=https://evil.example/x") == (
        f"{fake_provider.api_url}/bigin/v2/search?next=https://evil.example/x"
    )
    assert session.get("/bigin/v2/search?next=https://evil.example/x").status_code == 200
    with pytest.raises(UnsafeURL):
        session.resolve("//evil.example/bigin/v2/org")  # scheme-relative: another host
