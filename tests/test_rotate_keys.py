"""``bigoauth_rotate_keys``: every token moves to the first key, in batches, once, and says what it did."""

import re
from io import StringIO

import pytest
from cryptography.fernet import Fernet
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db.models import F

from django_bigoauth import crypto, rotation
from django_bigoauth.models import Token
from django_bigoauth.rotation import rotate_keys
from tests.consoles import Terminal
from tests.lifecycle_support import overwrite_token
from tests.test_crypto import bound, fernet_plaintext, raw_by_account, use_keys

KEY_A = Fernet.generate_key().decode()
KEY_B = Fernet.generate_key().decode()
KEY_UNKNOWN = Fernet.generate_key().decode()


def run(*args):
    out = StringIO()
    call_command("bigoauth_rotate_keys", *args, stdout=out, stderr=out)
    return out.getvalue()


@pytest.fixture
def accounts_under_a(settings, make_account):
    """Five accounts written under key A: {account: (access token, refresh token)}."""
    use_keys(settings, KEY_A)
    made = {}
    for index in range(5):
        provider = "bigin" if index % 2 else "biggerplate"
        access, refresh = f"1000.access.plain-{index}", f"1000.refresh.plain-{index}"
        if index == 4:
            refresh = ""  # an account linked without a refresh token
        account = make_account(provider, access_token=access, refresh_token=refresh, external_id=f"org-{index}")
        made[account] = (access, refresh)
    return made


def test_rotation_moves_every_token_to_the_new_key_so_the_old_one_can_go(settings, accounts_under_a):
    use_keys(settings, KEY_B, KEY_A)
    output = run("--batch-size", "2")
    assert "Re-encrypted 5 tokens; 0 were already under the first key." in output

    raw = raw_by_account()
    for account, (access, refresh) in accounts_under_a.items():
        access_raw, refresh_raw = raw[account.pk]
        # Decrypting once with B gives the plaintext: re-encrypted, and not encrypted twice.
        assert fernet_plaintext(KEY_B, access_raw) == bound(account, "access_token", access)
        assert (
            refresh_raw == ""
            if not refresh
            else fernet_plaintext(KEY_B, refresh_raw) == bound(account, "refresh_token", refresh)
        )

    use_keys(settings, KEY_B)
    for account, (access, refresh) in accounts_under_a.items():
        assert account.get_access_token() == access
        assert Token.objects.get(account=account).refresh_token == refresh


def test_a_second_run_changes_nothing(settings, accounts_under_a):
    use_keys(settings, KEY_B, KEY_A)
    run()
    before = raw_by_account()
    output = run("--batch-size", "3")
    assert raw_by_account() == before
    assert "Re-encrypted 0 tokens; 5 were already under the first key." in output


def test_a_run_with_nothing_to_do_changes_nothing(settings, accounts_under_a):
    before = raw_by_account()
    assert "Re-encrypted 0 tokens; 5 were already under the first key." in run()
    assert raw_by_account() == before


@pytest.mark.django_db(transaction=True)
def test_an_interrupted_run_keeps_finished_batches_and_a_rerun_completes(settings, accounts_under_a, monkeypatch):
    use_keys(settings, KEY_B, KEY_A)
    real_reencrypt = crypto.reencrypt
    calls = []

    def interrupted_in_the_second_batch(ciphertext):
        calls.append(ciphertext)
        if len(calls) == 5:  # batch 1 = accounts 1 and 2 (4 values); the 5th value is in batch 2
            raise KeyboardInterrupt
        return real_reencrypt(ciphertext)

    monkeypatch.setattr(crypto, "reencrypt", interrupted_in_the_second_batch)
    with pytest.raises(KeyboardInterrupt):
        rotate_keys(batch_size=2)
    monkeypatch.setattr(crypto, "reencrypt", real_reencrypt)

    ordered = sorted(accounts_under_a, key=lambda account: account.pk)
    raw = raw_by_account()
    for account in ordered[:2]:  # committed before the interruption
        assert crypto.is_under_primary_key(raw[account.pk][0])
    for account in ordered[2:]:  # the interrupted batch was rolled back as a whole
        assert not crypto.is_under_primary_key(raw[account.pk][0])
    for account, (access, _refresh) in accounts_under_a.items():
        assert account.get_access_token() == access  # readable throughout

    report = rotate_keys(batch_size=2)
    assert (report.rotated, report.already_current, report.failed) == (3, 2, [])


def test_a_token_under_an_unknown_key_is_named_and_the_rest_are_rotated(settings, accounts_under_a, make_account):
    use_keys(settings, KEY_UNKNOWN)
    lost = make_account("bigin", access_token="1000.access.lost", refresh_token="1000.refresh.lost", external_id="x")
    lost_raw = raw_by_account()[lost.pk]
    use_keys(settings, KEY_B, KEY_A)

    out = StringIO()
    with pytest.raises(CommandError) as excinfo:
        call_command("bigoauth_rotate_keys", "--batch-size", "2", stdout=out, stderr=out)
    message = str(excinfo.value)
    assert excinfo.value.returncode == 1  # manage.py exits non-zero
    assert f"account {lost.pk} (bigin)" in message
    assert "1 token cannot be decrypted with any key in ENCRYPTION_KEYS and was left as it is" in message
    assert "Re-encrypted 5 tokens" in out.getvalue()
    assert "lost" not in message + out.getvalue()

    raw = raw_by_account()
    assert raw[lost.pk] == lost_raw  # left exactly as it was
    use_keys(settings, KEY_B)
    for account, (access, _refresh) in accounts_under_a.items():
        assert account.get_access_token() == access


def test_a_token_rewritten_during_rotation_keeps_the_newer_value(settings, accounts_under_a, monkeypatch):
    """A refresh that lands between the read and the write wins (SQLite has no row locks)."""
    use_keys(settings, KEY_B, KEY_A)
    first = min(accounts_under_a, key=lambda account: account.pk)
    real_reencrypt = crypto.reencrypt
    state = {"refreshed": False}

    def refresh_meanwhile(ciphertext):
        if not state["refreshed"]:
            state["refreshed"] = True
            overwrite_token(first, access_token="1000.access.from-a-refresh", generation=F("generation") + 1)
        return real_reencrypt(ciphertext)

    monkeypatch.setattr(crypto, "reencrypt", refresh_meanwhile)
    report = rotate_keys(batch_size=10)
    assert (report.rotated, report.changed_meanwhile) == (4, 1)
    assert first.get_access_token() == "1000.access.from-a-refresh"

    monkeypatch.setattr(crypto, "reencrypt", real_reencrypt)
    assert rotate_keys().rotated == 1  # its refresh token, still under A, goes now
    use_keys(settings, KEY_B)
    assert first.get_access_token() == "1000.access.from-a-refresh"
    assert Token.objects.get(account=first).refresh_token == accounts_under_a[first][1]


def test_off_a_terminal_progress_is_one_plain_line_per_batch(settings, accounts_under_a):
    use_keys(settings, KEY_B, KEY_A)
    output = run("--batch-size", "2")
    assert output.splitlines() == [
        "2 of 5 tokens checked.",
        "4 of 5 tokens checked.",
        "5 of 5 tokens checked.",
        "Re-encrypted 5 tokens; 0 were already under the first key.",
    ]
    for access, refresh in accounts_under_a.values():
        assert access not in output and (not refresh or refresh not in output)


def test_on_a_terminal_progress_is_a_bar_redrawn_in_place(settings, accounts_under_a):
    use_keys(settings, KEY_B, KEY_A)
    out = Terminal()
    call_command("bigoauth_rotate_keys", "--batch-size", "2", stdout=out, stderr=out)
    text = out.getvalue()
    bars = re.findall(r"\r\[([#-]{30})\] (\d) of 5 tokens checked\.", text)
    assert [done for _bar, done in bars][-1] == "5" and bars[-1][0] == "#" * 30
    assert text.endswith("\nRe-encrypted 5 tokens; 0 were already under the first key.\n")
    assert text.count("\n") == 2  # the bar's line, ended once; then the summary


def test_verbosity_0_is_quiet_unless_something_failed(settings, accounts_under_a, make_account):
    use_keys(settings, KEY_B, KEY_A)
    for stdout in (StringIO(), Terminal()):
        call_command("bigoauth_rotate_keys", "--batch-size", "2", "--verbosity", "0", stdout=stdout)
        assert stdout.getvalue() == ""
    use_keys(settings, KEY_UNKNOWN)
    make_account("bigin", external_id="lost")
    use_keys(settings, KEY_B, KEY_A)
    out = StringIO()
    with pytest.raises(CommandError, match="1 token cannot be decrypted"):
        call_command("bigoauth_rotate_keys", "--verbosity", "0", stdout=out)
    assert out.getvalue() == ""


def test_an_interrupted_run_keeps_its_batches_and_a_second_run_finishes(settings, accounts_under_a, monkeypatch):
    use_keys(settings, KEY_B, KEY_A)
    real_read_batch = rotation._read_batch
    calls = []

    def interrupt_on_the_third_batch(*args):
        calls.append(args)
        rows = real_read_batch(*args)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return rows

    monkeypatch.setattr(rotation, "_read_batch", interrupt_on_the_third_batch)
    out = StringIO()
    with pytest.raises(CommandError) as excinfo:
        call_command("bigoauth_rotate_keys", "--batch-size", "2", stdout=out)
    assert excinfo.value.returncode == 130
    assert "4 tokens were re-encrypted in the batches committed so far" in str(excinfo.value)
    monkeypatch.setattr(rotation, "_read_batch", real_read_batch)
    assert sum(crypto.is_under_primary_key(value) for row in raw_by_account().values() for value in row if value) == 8

    assert "Re-encrypted 1 token; 4 were already under the first key." in run()
    use_keys(settings, KEY_B)
    for account, (access, _refresh) in accounts_under_a.items():
        assert account.get_access_token() == access


def test_the_output_has_counts_and_never_a_token_or_ciphertext(settings, accounts_under_a):
    use_keys(settings, KEY_B, KEY_A)
    before = raw_by_account()
    output = run("--verbosity", "3")
    after = raw_by_account()
    for account, (access, refresh) in accounts_under_a.items():
        for secret in (access, refresh, *before[account.pk], *after[account.pk]):
            assert not secret or secret not in output
    assert "plain-" not in output


def test_bad_arguments_and_bad_keys_stop_before_any_row_changes(settings, accounts_under_a):
    before = raw_by_account()
    with pytest.raises(CommandError, match="at least 1"):
        run("--batch-size", "0")
    use_keys(settings, "not-a-fernet-key-at-all", KEY_A)
    with pytest.raises(CommandError, match="Fernet") as excinfo:
        run()
    assert "not-a-fernet-key-at-all" not in str(excinfo.value)
    assert raw_by_account() == before
