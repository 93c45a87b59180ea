"""Model constraints, string forms and staleness."""

from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.db import IntegrityError, transaction
from django.utils import timezone

from django_bigoauth.models import LinkedAccount, Token
from django_bigoauth.policy import is_stale

pytestmark = pytest.mark.django_db


def test_one_account_per_provider_external_id_and_user():
    user = get_user_model().objects.create(username="ann")
    LinkedAccount.objects.create(provider="bigin", user=user, external_id="org-1")
    with pytest.raises(IntegrityError), transaction.atomic():
        LinkedAccount.objects.create(provider="bigin", user=user, external_id="org-1")
    # Another organisation, another provider, or another user: all fine.
    LinkedAccount.objects.create(provider="bigin", user=user, external_id="org-2")
    LinkedAccount.objects.create(provider="biggerplate", user=user, external_id="org-1")
    LinkedAccount.objects.create(
        provider="bigin", user=get_user_model().objects.create(username="bob"), external_id="org-1"
    )


def test_site_level_accounts_are_unique_too_despite_null_user():
    LinkedAccount.objects.create(provider="bigin", user=None, external_id="org-1")
    with pytest.raises(IntegrityError), transaction.atomic():
        LinkedAccount.objects.create(provider="bigin", user=None, external_id="org-1")
    LinkedAccount.objects.create(
        provider="bigin", user=get_user_model().objects.create(username="ann"), external_id="org-1"
    )


def test_the_owner_key_is_written_by_save_and_bulk_create_alike():
    user = get_user_model().objects.create(username="ann")
    saved = LinkedAccount.objects.create(provider="bigin", user=user, external_id="org-1")
    (bulk,) = LinkedAccount.objects.bulk_create([LinkedAccount(provider="bigin", external_id="org-1")])
    assert (saved.owner_key, bulk.owner_key) == (f"user:{user.pk}", "site")
    with pytest.raises(IntegrityError), transaction.atomic():
        LinkedAccount.objects.bulk_create([LinkedAccount(provider="bigin", external_id="org-1")])


def test_one_token_per_account():
    account = LinkedAccount.objects.create(provider="bigin", external_id="o")
    Token.objects.create(account=account, access_token="a-secret-token")
    with pytest.raises(IntegrityError), transaction.atomic():
        Token.objects.create(account=account, access_token="another-secret")


def test_status_values_and_defaults():
    assert set(LinkedAccount.Status.values) == {"active", "needs_reauth", "revoked"}
    assert LinkedAccount.objects.create(provider="bigin").status == "active"


def test_str_and_repr_never_show_the_token():
    account = LinkedAccount.objects.create(provider="bigin", external_id="org-9", label="Sales")
    token = Token.objects.create(account=account, access_token="1000.abcdefghijklmnop", refresh_token="1000.zyxwvu")
    for text in (str(account), repr(account), str(token), repr(token)):
        assert "abcdefghijklmnop" not in text and "zyxwvu" not in text
    assert "1000…" in repr(token)
    assert str(account) == "Bigin account “Sales” (site)"


def test_str_names_provider_label_and_owner_one_way(django_user_model, settings):
    ann = django_user_model.objects.create_user("ann")
    owned = LinkedAccount.objects.create(provider="bigin", user=ann, label="Demo")
    assert str(owned) == "Bigin account “Demo” (user ann)"
    unnamed = LinkedAccount.objects.create(provider="biggerplate")
    assert str(unnamed) == f"Biggerplate account {unnamed.pk} (site)"
    by_id = LinkedAccount.objects.create(provider="bigin", external_id="org-7")
    assert str(by_id) == "Bigin account “org-7” (site)"
    settings.BIGOAUTH = {**settings.BIGOAUTH, "PROVIDERS": {}}
    assert str(by_id) == "bigin account “org-7” (site)"  # no longer configured: its slug


def test_expiry_is_an_aware_datetime_and_staleness_uses_the_leeway():
    now = timezone.now()
    assert is_stale(now + timedelta(seconds=30), 60, now)
    assert not is_stale(now + timedelta(seconds=90), 60, now)
    assert is_stale(now - timedelta(seconds=1), 0, now)
    assert not is_stale(None, 60, now)
    account = LinkedAccount.objects.create(provider="bigin")
    token = Token.objects.create(account=account, access_token="a", expires_at=now)
    token.refresh_from_db()
    assert timezone.is_aware(token.expires_at)
