"""``django_bigoauth.get_account()``: find an account without writing ORM queries."""

from __future__ import annotations

import pytest

from django_bigoauth import get_account
from django_bigoauth.exceptions import AccountNotFound, BigOAuthError, MultipleAccountsFound
from django_bigoauth.models import LinkedAccount


def test_user_none_means_site_level_accounts_only(make_account, alice):
    site = make_account("bigin", external_id="org-site")
    make_account("bigin", user=alice, external_id="org-alice")
    assert get_account("bigin") == site


def test_a_users_account(make_account, alice):
    make_account("bigin", external_id="org-site")
    mine = make_account("bigin", user=alice, external_id="org-alice")
    assert get_account("bigin", user=alice) == mine


def test_no_match_raises_account_not_found(make_account, alice):
    make_account("bigin", user=alice)
    make_account("biggerplate", external_id="bp")
    with pytest.raises(AccountNotFound) as excinfo:
        get_account("bigin")  # alice's is not site-level
    assert isinstance(excinfo.value, BigOAuthError)
    assert isinstance(excinfo.value, LookupError)
    with pytest.raises(AccountNotFound, match="labelled 'Sales'"):
        get_account("biggerplate", label="Sales")


def test_several_matches_name_the_labels(make_account):
    make_account("bigin", external_id="org-1", label="Sales")
    make_account("bigin", external_id="org-2", label="Support")
    with pytest.raises(MultipleAccountsFound) as excinfo:
        get_account("bigin")
    assert isinstance(excinfo.value, BigOAuthError)
    assert "'Sales'" in str(excinfo.value) and "'Support'" in str(excinfo.value)
    assert "label=" in str(excinfo.value)


def test_label_chooses_among_several(make_account):
    make_account("bigin", external_id="org-1", label="Sales")
    support = make_account("bigin", external_id="org-2", label="Support")
    assert get_account("bigin", label="Support") == support


def test_revoked_accounts_are_not_found(make_account):
    make_account("bigin", external_id="old", label="Old", status=LinkedAccount.Status.REVOKED)
    current = make_account("bigin", external_id="new", label="New")
    assert get_account("bigin") == current


def test_an_account_needing_reauthorisation_is_found_so_its_error_can_be_seen(make_account):
    account = make_account("bigin", status=LinkedAccount.Status.NEEDS_REAUTH)
    assert get_account("bigin") == account
