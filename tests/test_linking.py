"""linking.py: a token reply becomes one account and one token, or nothing at all."""

from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from django_bigoauth import signals
from django_bigoauth.exceptions import InvalidGrant, ProviderError
from django_bigoauth.linking import link_with_code, store_account
from django_bigoauth.models import LinkedAccount, Token
from django_bigoauth.providers import CallbackContext, Identity, TokenReply, get_provider

pytestmark = pytest.mark.django_db

OTHER_KEY = "SysVB7yDmZxXQt8pKl-a7-JoHMFcKx9Q3PUMEc3xHpc="


def reply(access="1000.access.one", refresh="1000.refresh.one", **kwargs):
    kwargs.setdefault("token_type", "Bearer")
    kwargs.setdefault("expires_at", timezone.now() + timedelta(hours=1))
    return TokenReply(access_token=access, refresh_token=refresh, **kwargs)


ACME = Identity("org-1", "Acme Ltd")


def store(token_reply, identity=ACME, user=None, context=None, label=""):
    return store_account(
        get_provider("bigin"),
        token_reply,
        user=user,
        context=context or CallbackContext(),
        identity=identity,
        label=label,
    )


def test_link_with_code_stores_the_account_its_data_centre_and_token(fake_provider):
    provider = get_provider("bigin")
    context = CallbackContext(accounts_server=fake_provider.url, data_centre="us")
    account, created = link_with_code(
        provider, fake_provider.issue_code(), user=None, redirect_uri="x", context=context
    )
    assert created
    account.refresh_from_db()
    assert (account.external_id, account.label, account.data_centre) == ("org-1", "Acme Ltd", "us")
    assert account.accounts_server == fake_provider.url
    assert account.api_domain == fake_provider.url
    assert account.token.refresh_token in fake_provider.live_refresh_tokens


def test_a_refused_code_stores_nothing(fake_provider):
    with pytest.raises(InvalidGrant):
        link_with_code(get_provider("bigin"), "1000.code.unknown", user=None, redirect_uri="x")
    assert LinkedAccount.objects.count() == 0 and Token.objects.count() == 0


def test_relinking_updates_the_same_account_and_bumps_the_generation():
    first, created = store(reply())
    second, created_again = store(reply(access="1000.access.two", refresh="1000.refresh.two"))
    assert created and not created_again
    assert first.pk == second.pk
    assert LinkedAccount.objects.count() == 1 and Token.objects.count() == 1
    token = Token.objects.get()
    assert (token.access_token, token.refresh_token, token.generation) == ("1000.access.two", "1000.refresh.two", 2)


def test_relinking_without_a_refresh_token_keeps_the_old_one():
    store(reply())
    store(reply(access="1000.access.two", refresh=None))
    token = Token.objects.get()
    assert (token.access_token, token.refresh_token) == ("1000.access.two", "1000.refresh.one")


def test_relinking_revives_a_revoked_account():
    account, _ = store(reply())
    LinkedAccount.objects.filter(pk=account.pk).update(status=LinkedAccount.Status.REVOKED)
    Token.objects.all().delete()
    store(reply(access="1000.access.two"))
    account.refresh_from_db()
    assert account.status == LinkedAccount.Status.ACTIVE
    assert account.token.access_token == "1000.access.two"


def test_relinking_replaces_a_token_that_no_longer_decrypts(settings):
    store(reply())
    # The key the token was written with is dropped: the old token is unreadable now.
    settings.BIGOAUTH = {**settings.BIGOAUTH, "ENCRYPTION_KEYS": [OTHER_KEY]}
    store(reply(access="1000.access.two", refresh="1000.refresh.two"))
    token = Token.objects.get()
    assert (token.access_token, token.refresh_token) == ("1000.access.two", "1000.refresh.two")


def test_two_organisations_and_site_versus_user_are_separate_accounts(django_user_model):
    user = django_user_model.objects.create_user("alice")
    store(reply(), identity=Identity("org-1"))
    store(reply(), identity=Identity("org-2"))
    store(reply(), identity=Identity("org-1"), user=user)
    assert LinkedAccount.objects.count() == 3
    assert LinkedAccount.objects.filter(user=user).count() == 1


def test_a_label_the_owner_chose_survives_relinking():
    account, _ = store(reply())
    LinkedAccount.objects.filter(pk=account.pk).update(label="Sales CRM")
    store(reply())
    account.refresh_from_db()
    assert account.label == "Sales CRM"


def test_signal_tells_created_then_updated():
    seen = []

    def receiver(sender, account, created, **kwargs):
        seen.append((account.external_id, created))

    signals.account_linked.connect(receiver)
    try:
        store(reply())
        store(reply())
    finally:
        signals.account_linked.disconnect(receiver)
    assert seen == [("org-1", True), ("org-1", False)]


def test_tokens_are_encrypted_in_the_table():
    store(reply(access="1000.access.plaintext-marker", refresh="1000.refresh.plaintext-marker"))
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT * FROM {Token._meta.db_table}")
        rows = cursor.fetchall()
    assert rows and "plaintext-marker" not in repr(rows)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"identity": Identity("x" * 256)},
        {"token_reply": reply(api_domain="https://" + "a" * 200 + ".example")},
        {"token_reply": reply(api_domain="http://api.evil.example")},
        {"token_reply": reply(token_type="T" * 41)},
    ],
    ids=["external-id-too-long", "api-domain-too-long", "api-domain-not-https", "token-type-too-long"],
)
def test_values_that_cannot_be_stored_as_they_are_refuse_the_link(kwargs):
    kwargs.setdefault("token_reply", reply())
    with pytest.raises(ProviderError):
        store(**kwargs)
    assert LinkedAccount.objects.count() == 0 and Token.objects.count() == 0


def test_an_overlong_label_is_shortened():
    account, _ = store(reply(), identity=Identity("org-1", "L" * 400))
    account.refresh_from_db()
    assert len(account.label) == 255 and account.label.endswith("…")
