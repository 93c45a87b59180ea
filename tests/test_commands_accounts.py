"""``manage.py bigoauth_accounts``: the table of linked accounts, streamed."""

from __future__ import annotations

import re
from io import StringIO

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from django.test.utils import CaptureQueriesContext

from django_bigoauth import operations
from django_bigoauth.models import LinkedAccount, Token


def output(*args: str) -> str:
    out = StringIO()
    call_command("bigoauth_accounts", *args, stdout=out)
    return out.getvalue()


def table(*args: str) -> list[list[str]]:
    """Each line split on runs of two or more spaces (cells hold single spaces)."""
    return [re.split(r"\s{2,}", line) for line in output(*args).splitlines()]


def only_biggerplate(settings) -> None:
    biggerplate = settings.BIGOAUTH["PROVIDERS"]["biggerplate"]
    settings.BIGOAUTH = {**settings.BIGOAUTH, "PROVIDERS": {"biggerplate": biggerplate}}


def test_lists_every_account_with_owner_status_and_expiry(make_account, settings):
    alice = get_user_model().objects.create_user("alice")
    site = make_account("bigin", label="CRM", expires_in=3000)
    LinkedAccount.objects.filter(pk=site.pk).update(data_centre="eu")
    users = make_account("biggerplate", user=alice, label="Maps", expires_in=-120, external_id="bp")
    dead = make_account("bigin", label="Dead", external_id="dead", expires_in=-60)
    LinkedAccount.objects.filter(pk=dead.pk).update(status=LinkedAccount.Status.NEEDS_REAUTH)
    gone = make_account("bigin", label="Old", external_id="old", status=LinkedAccount.Status.REVOKED)
    Token.objects.filter(account=gone).delete()

    text = output()
    rows = [re.split(r"\s{2,}", line) for line in text.splitlines()]

    assert rows[0] == ["id", "provider", "owner", "label", "data centre", "status", "token expires"]
    assert rows[1] == [str(site.pk), "bigin", "(site)", "CRM", "eu", "Active", "in 49 minutes"]
    # Stale and active: the next use refreshes it, and the table says so.
    assert rows[2] == [
        str(users.pk),
        "biggerplate",
        "alice",
        "Maps",
        "-",
        "Active",
        "expired 2 minutes ago (refreshed on next use)",
    ]
    # Stale, but nothing will refresh it: no such promise.
    assert rows[3] == [str(dead.pk), "bigin", "(site)", "Dead", "-", "Needs re-authorisation", "expired 1 minute ago"]
    assert rows[4] == [str(gone.pk), "bigin", "(site)", "Old", "-", "Revoked", "no token"]
    assert "1000." not in text  # no token, not even masked
    assert "\xa0" not in text  # plain spaces in a terminal table
    assert "no expiry" not in text


def test_a_token_without_expiry_reads_no_expiry_not_expires_in_no_expiry(make_account):
    account = make_account("bigin", label="CRM")
    Token.objects.filter(account=account).update(expires_at=None)
    assert table()[1][-1] == "no expiry"


def test_columns_line_up_whatever_the_widths(make_account, django_user_model):
    long_name = django_user_model.objects.create_user("a-rather-long-username")
    make_account("bigin", label="X", external_id="1")
    make_account("biggerplate", user=long_name, label="A label with spaces in it", external_id="2")
    lines = output().splitlines()
    starts = {line.index(cell) for line, cell in zip(lines[1:], ("(site)", "a-rather-long-username"), strict=True)}
    assert len(starts) == 1 and lines[0].index("owner") in starts


def test_filter_by_provider(make_account):
    make_account("bigin", label="CRM")
    make_account("biggerplate", label="Maps", external_id="bp")
    rows = table("--provider", "biggerplate")
    assert [row[1] for row in rows[1:]] == ["biggerplate"]


def test_a_provider_removed_from_the_settings_still_lists_its_accounts(make_account, settings):
    make_account("bigin", label="CRM")
    only_biggerplate(settings)
    rows = table("--provider", "bigin")
    assert [row[1] for row in rows[1:]] == ["bigin"]


@pytest.mark.parametrize("slug", ["nonsense", "bigin"])
def test_an_unknown_or_unconfigured_provider_is_a_usage_error_with_a_hint(db, settings, slug):
    # "bigin" is a built-in provider, but not configured here, and no account has it.
    only_biggerplate(settings)
    out = StringIO()
    with pytest.raises(CommandError) as excinfo:
        call_command("bigoauth_accounts", "--provider", slug, stdout=out)
    assert excinfo.value.returncode == 2
    message = str(excinfo.value)
    assert f"No provider '{slug}' is configured" in message
    assert "Configured providers: biggerplate." in message and "without --provider" in message
    assert out.getvalue() == ""


def test_an_unknown_provider_exits_with_status_2_from_the_command_line(db, capsys):
    from django.core.management import execute_from_command_line

    with pytest.raises(SystemExit) as excinfo:
        execute_from_command_line(["manage.py", "bigoauth_accounts", "--provider", "nonsense"])
    assert excinfo.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "No provider 'nonsense'" in err


def test_works_when_a_token_cannot_be_decrypted(make_account, settings):
    """Exactly when an operator needs the list: after a key went missing."""
    make_account("bigin", label="CRM")
    settings.BIGOAUTH = {**settings.BIGOAUTH, "ENCRYPTION_KEYS": ["Wm8xdGhGOVd4cW1yTmlKS2t1b0FVR3lYc2hhbjlZS3M="]}
    rows = table()
    assert rows[1][1:4] == ["bigin", "(site)", "CRM"]


def test_no_accounts(db):
    assert output().strip() == "No linked accounts."


def test_the_table_is_streamed_in_batches_of_bounded_size(make_account, monkeypatch):
    """No query reads every account: memory stays flat whatever their number."""
    accounts = [make_account("bigin", external_id=f"org-{index}", label=f"L{index}") for index in range(7)]
    real = operations.account_rows
    monkeypatch.setattr(
        "django_bigoauth.management.commands.bigoauth_accounts.account_rows",
        lambda **kwargs: real(batch_size=3, **kwargs),
    )
    with CaptureQueriesContext(connection) as captured:
        rows = table()
    assert [int(row[0]) for row in rows[1:]] == [account.pk for account in accounts]
    reads = [q["sql"] for q in captured.captured_queries if "django_bigoauth_token" in q["sql"]]
    assert len(reads) == 3  # 3 + 3 + 1
    assert all(re.search(r"LIMIT 3\b", sql) for sql in reads), reads
