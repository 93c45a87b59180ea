"""``manage.py bigoauth_refresh``: refresh now, through the same locked path; progress, quiet, interruptible."""

from __future__ import annotations

import re
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from django.test.utils import CaptureQueriesContext

from django_bigoauth import operations
from django_bigoauth.models import LinkedAccount, Token
from tests.consoles import Terminal
from tests.fakeprovider import bigoauth_settings_for
from tests.lifecycle_support import closed_port_url, raw_token_row


def refresh(*args: str, stdout=None) -> str:
    out = stdout if stdout is not None else StringIO()
    call_command("bigoauth_refresh", *args, stdout=out)
    return out.getvalue()


def test_account_forces_a_refresh_of_a_fresh_token(fake_provider, make_account):
    account = make_account("bigin", refresh_token=fake_provider.issue_refresh_token(), label="CRM")

    output = refresh("--account", str(account.pk))

    token = Token.objects.get(account=account)
    assert token.access_token != "1000.access.initial"
    assert token.access_token in fake_provider.live_access_tokens
    assert fake_provider.refresh_calls() == 1
    # The owner is named as such, the label is quoted: "(site)" is never mistaken for a label.
    assert output == f"[{account.pk}] Bigin account “CRM” (site): refreshed; the new token expires in 59 minutes\n"
    assert token.access_token not in output and token.refresh_token not in output


def test_the_owner_of_a_users_account_is_named(fake_provider, make_account, django_user_model):
    demo = django_user_model.objects.create_user("demo")
    account = make_account("bigin", user=demo, label="demo", refresh_token=fake_provider.issue_refresh_token())
    assert refresh("--account", str(account.pk)).startswith(f"[{account.pk}] Bigin account “demo” (user demo): ")


def test_all_refreshes_every_active_account(fake_provider, make_account):
    one = make_account("bigin", refresh_token=fake_provider.issue_refresh_token(), external_id="1")
    two = make_account("biggerplate", refresh_token=fake_provider.issue_refresh_token(), external_id="2")
    dead = make_account("bigin", external_id="3", status=LinkedAccount.Status.NEEDS_REAUTH)
    before = raw_token_row(dead)

    output = refresh("--all")

    assert fake_provider.refresh_calls() == 2
    assert output.splitlines() == ["2 of 2 accounts refreshed or tried.", "Refreshed all 2 accounts."]
    assert raw_token_row(dead) == before
    for account in (one, two):
        assert Token.objects.get(account=account).generation == 1
    each = refresh("--all", "--verbosity", "2")  # every account by name
    assert f"[{one.pk}] Bigin account “1” (site): refreshed" in each
    assert f"[{two.pk}] Biggerplate account “2” (site): refreshed" in each
    assert f"[{dead.pk}]" not in each


def test_expiring_within_refreshes_only_those(fake_provider, make_account):
    soon = make_account("bigin", expires_in=300, refresh_token=fake_provider.issue_refresh_token(), external_id="1")
    later = make_account("bigin", expires_in=3000, refresh_token=fake_provider.issue_refresh_token(), external_id="2")
    before = raw_token_row(later)

    output = refresh("--expiring-within", "600", "--verbosity", "2")

    assert fake_provider.refresh_calls() == 1
    assert Token.objects.get(account=soon).access_token in fake_provider.live_access_tokens
    assert raw_token_row(later) == before
    assert f"[{soon.pk}] " in output and f"[{later.pk}] " not in output


def test_nothing_to_refresh(fake_provider, make_account):
    make_account("bigin", expires_in=3000)
    assert refresh("--expiring-within", "600").strip() == "No accounts to refresh."
    assert refresh("--expiring-within", "600", "--verbosity", "0") == ""
    assert fake_provider.requests == []


def test_failures_get_one_line_each_and_fail_the_command(fake_provider, make_account):
    good = make_account("bigin", refresh_token=fake_provider.issue_refresh_token(), external_id="1")
    bad = make_account("bigin", refresh_token="1000.refresh.revoked", external_id="2")
    out = StringIO()

    with pytest.raises(CommandError, match="^1 of 2 accounts could not be refreshed.$"):
        call_command("bigoauth_refresh", "--all", stdout=out)

    lines = out.getvalue().splitlines()
    assert lines == [
        f"[{bad.pk}] Bigin account “2” (site): Account {bad.pk} (bigin) must be linked again: the provider refused "
        "its refresh token (invalid_code).",
        "2 of 2 accounts refreshed or tried.",
    ]
    assert f"[{good.pk}]" not in out.getvalue()
    assert "1000.refresh.revoked" not in out.getvalue()
    assert LinkedAccount.objects.get(pk=bad.pk).status == LinkedAccount.Status.NEEDS_REAUTH


def test_one_account_that_fails_is_one_line_the_commands_error(fake_provider, make_account):
    account = make_account("bigin", refresh_token=fake_provider.issue_refresh_token())
    before = raw_token_row(account)
    fake_provider.queue_reply(503, "busy", content_type="text/plain")
    out = StringIO()
    with pytest.raises(CommandError) as excinfo:
        call_command("bigoauth_refresh", "--account", str(account.pk), stdout=out)
    assert out.getvalue() == ""
    message = str(excinfo.value)
    assert "\n" not in message
    assert message.startswith(f"[{account.pk}] Bigin account “org-1” (site): Refreshing account {account.pk}")
    assert raw_token_row(account) == before


def test_an_unreachable_provider_is_named_by_its_origin(fake_provider, make_account, settings):
    dead_end = closed_port_url()
    config = bigoauth_settings_for(fake_provider)
    config["PROVIDERS"]["biggerplate"]["TOKEN_URL"] = f"{dead_end}/oauth/token"
    settings.BIGOAUTH = config
    account = make_account("biggerplate")
    with pytest.raises(CommandError) as excinfo:
        refresh("--account", str(account.pk))
    assert f"Biggerplate's token endpoint at {dead_end} could not be reached (ConnectionError)" in str(excinfo.value)


def test_unknown_account_is_an_error_before_anything_is_sent(fake_provider, make_account):
    account = make_account("bigin", refresh_token=fake_provider.issue_refresh_token())
    with pytest.raises(CommandError, match="^No linked account with id 999.$"):
        refresh("--account", str(account.pk), "--account", "999")
    assert fake_provider.requests == []


@pytest.mark.parametrize(
    "args",
    [[], ["--all", "--expiring-within", "60"], ["--expiring-within", "-5"], ["--account", "1", "--after", "1"]],
)
def test_bad_arguments(fake_provider, db, args):
    with pytest.raises(CommandError):
        refresh(*args)
    assert fake_provider.requests == []


# -- many accounts: progress, quiet, flat memory, interruptions -------------------------------------


@pytest.fixture
def five(fake_provider, make_account):
    return [
        make_account("bigin", refresh_token=fake_provider.issue_refresh_token(), external_id=f"org-{index}")
        for index in range(5)
    ]


@pytest.fixture
def batches_of_two(monkeypatch):
    monkeypatch.setattr("django_bigoauth.management.commands.bigoauth_refresh.BATCH_SIZE", 2)


def test_off_a_terminal_progress_is_a_plain_line_per_batch(five, batches_of_two, fake_provider):
    assert refresh("--all").splitlines() == [
        "2 of 5 accounts refreshed or tried.",
        "4 of 5 accounts refreshed or tried.",
        "5 of 5 accounts refreshed or tried.",
        "Refreshed all 5 accounts.",
    ]
    assert fake_provider.refresh_calls() == 5


def test_on_a_terminal_progress_is_a_bar_and_failures_print_above_it(five, batches_of_two, fake_provider):
    fake_provider.kill(Token.objects.get(account=five[2]).refresh_token)
    out = Terminal()
    with pytest.raises(CommandError, match="^1 of 5 accounts could not be refreshed.$"):
        refresh("--all", stdout=out)
    text = out.getvalue()
    assert re.search(r"\r\[#{30}\] 5 of 5 accounts refreshed or tried\.\x1b\[K\n$", text)
    # The failure is its own line, printed over the bar (cleared first), which is then drawn again.
    failure = f"\r\x1b[K[{five[2].pk}] Bigin account “org-2” (site): Account {five[2].pk} (bigin) must be linked again"
    assert failure in text
    assert text.count("\n") == 2  # the failure's line and the bar's


def test_verbosity_0_prints_only_failures(five, batches_of_two, fake_provider):
    for stdout in (StringIO(), Terminal()):
        assert refresh("--all", "--verbosity", "0", stdout=stdout) == ""
    fake_provider.kill(Token.objects.get(account=five[0]).refresh_token)
    out = Terminal()
    with pytest.raises(CommandError):
        refresh("--all", "--verbosity", "0", stdout=out)
    assert out.getvalue() == f"[{five[0].pk}] Bigin account “org-0” (site): Account {five[0].pk} (bigin) must be " + (
        "linked again: the provider refused its refresh token (invalid_code).\n"
    )


def test_accounts_are_read_a_batch_at_a_time(five, fake_provider):
    """No query reads every account, and no list of them all is kept: memory stays flat."""
    with CaptureQueriesContext(connection) as captured:
        results = list(operations.refresh_accounts(all_active=True, batch_size=2))
    assert [result.account.pk for result in results] == [account.pk for account in five]
    reads = [
        q["sql"]
        for q in captured.captured_queries
        if q["sql"].lstrip().upper().startswith("SELECT")
        and "django_bigoauth_linkedaccount" in q["sql"].split("WHERE")[0]
        and "COUNT(" not in q["sql"].upper()
        and "token_generation" in q["sql"]
    ]
    assert len(reads) == 3 and all(re.search(r"LIMIT 2\b", sql) for sql in reads), reads


def test_an_interrupted_run_says_how_to_go_on_and_keeps_what_it_did(five, fake_provider, monkeypatch):
    real = operations._refresh_one
    done = []

    def interrupt_on_the_third(account):
        if len(done) == 2:
            raise KeyboardInterrupt
        done.append(account.pk)
        return real(account)

    monkeypatch.setattr(operations, "_refresh_one", interrupt_on_the_third)
    out = StringIO()
    with pytest.raises(CommandError) as excinfo:
        refresh("--all", stdout=out)
    assert excinfo.value.returncode == 130
    assert str(excinfo.value) == (
        "Interrupted after 2 of 5 accounts; the refreshes made so far are stored. "
        f"To go on from there: bigoauth_refresh --all --after {five[1].pk}"
    )
    generations = dict(Token.objects.values_list("account_id", "generation"))
    assert [generations[account.pk] for account in five] == [1, 1, 0, 0, 0]

    monkeypatch.setattr(operations, "_refresh_one", real)
    assert refresh("--all", "--after", str(five[1].pk)).splitlines()[-1] == "Refreshed all 3 accounts."
    generations = dict(Token.objects.values_list("account_id", "generation"))
    assert [generations[account.pk] for account in five] == [1, 1, 1, 1, 1]
    assert fake_provider.refresh_calls() == 5


def test_a_failure_is_one_line_on_the_terminal_even_when_the_site_logs_to_the_console(
    fake_provider, make_account, capsys
):
    """The example project logs django_bigoauth to the console: the command's own line is the only one."""
    import logging

    from django.core.management import execute_from_command_line

    account = make_account("bigin", refresh_token="1000.refresh.revoked")
    logger = logging.getLogger("django_bigoauth")
    console = logging.StreamHandler()  # to sys.stderr: the terminal the command prints to
    log_file = StringIO()
    elsewhere = logging.StreamHandler(log_file)  # a log file, mail, an error tracker
    for handler in (console, elsewhere):
        logger.addHandler(handler)
    try:
        with pytest.raises(SystemExit) as excinfo:
            execute_from_command_line(["manage.py", "bigoauth_refresh", "--account", str(account.pk)])
    finally:
        for handler in (console, elsewhere):
            logger.removeHandler(handler)
    assert excinfo.value.code == 1
    out, err = capsys.readouterr()
    assert out == ""
    assert err.splitlines() == [
        f"CommandError: [{account.pk}] Bigin account “org-1” (site): Account {account.pk} (bigin) must be linked "
        "again: the provider refused its refresh token (invalid_code)."
    ]
    assert f"Account {account.pk} (bigin) needs re-authorisation" in log_file.getvalue()  # still logged there
    assert console.filters == []  # and the console's logging is as it was
