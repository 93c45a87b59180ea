"""``manage.py bigoauth_accounts``: the table of linked accounts."""

from __future__ import annotations

from io import StringIO

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command

from django_bigoauth.models import LinkedAccount, Token
from django_bigoauth.operations import describe_expiry, format_duration


def table(*args: str) -> list[list[str]]:
    out = StringIO()
    call_command("bigoauth_accounts", *args, stdout=out)
    return [line.split() for line in out.getvalue().splitlines()]


def test_lists_every_account_with_owner_status_and_expiry(make_account, settings):
    alice = get_user_model().objects.create_user("alice")
    site = make_account("bigin", label="CRM", expires_in=3000)
    LinkedAccount.objects.filter(pk=site.pk).update(data_centre="eu")
    users = make_account("biggerplate", user=alice, label="Maps", expires_in=-120, external_id="bp")
    gone = make_account("bigin", label="Old", external_id="old", status=LinkedAccount.Status.REVOKED)
    Token.objects.filter(account=gone).delete()

    out = StringIO()
    call_command("bigoauth_accounts", stdout=out)
    lines = out.getvalue().splitlines()

    assert lines[0].split() == ["id", "provider", "owner", "label", "data", "centre", "status", "expires", "in"]
    assert lines[1].split() == [str(site.pk), "bigin", "(site)", "CRM", "eu", "Active", "49m"]
    assert lines[2].split()[:6] == [str(users.pk), "biggerplate", "alice", "Maps", "-", "Active"]
    assert lines[2].split()[6:] == ["expired", "2m", "ago"]
    assert lines[3].split() == [str(gone.pk), "bigin", "(site)", "Old", "-", "Revoked", "no", "token"]
    assert "1000." not in out.getvalue()  # no token, not even masked


def test_filter_by_provider(make_account):
    make_account("bigin", label="CRM")
    make_account("biggerplate", label="Maps", external_id="bp")
    rows = table("--provider", "biggerplate")
    assert [row[1] for row in rows[1:]] == ["biggerplate"]


def test_works_when_a_token_cannot_be_decrypted(make_account, settings):
    """Exactly when an operator needs the list: after a key went missing."""
    make_account("bigin", label="CRM")
    settings.BIGOAUTH = {**settings.BIGOAUTH, "ENCRYPTION_KEYS": ["Wm8xdGhGOVd4cW1yTmlKS2t1b0FVR3lYc2hhbjlZS3M="]}
    rows = table()
    assert rows[1][1:4] == ["bigin", "(site)", "CRM"]


def test_no_accounts(db):
    out = StringIO()
    call_command("bigoauth_accounts", stdout=out)
    assert out.getvalue().strip() == "No linked accounts."


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(45, "45s"), (59 * 60 + 59, "59m"), (2 * 3600 + 5 * 60, "2h 05m"), (3 * 86400 + 4 * 3600, "3d 4h")],
)
def test_format_duration(seconds, text):
    assert format_duration(seconds) == text


def test_describe_expiry_without_expiry():
    from django.utils import timezone

    assert describe_expiry(None, timezone.now()) == "no expiry"
