"""A provider that misbehaves (compromised, buggy, behind a broken proxy): a clear error, nothing stored or leaked.

Refresh replies are checked like link replies; every reply is read within ``HTTP_TIMEOUT``
for the whole exchange and 1 MiB; JSON nested too deep is an answer, not a crash; and the
admin and the commands report such a failure per account and go on.
"""

from __future__ import annotations

import gzip
import io
import json
import logging
import sys
import time

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from django_bigoauth import signals
from django_bigoauth.exceptions import BigOAuthError, RefreshError
from django_bigoauth.models import LinkedAccount, Token
from tests.fakeprovider import bigoauth_settings_for
from tests.lifecycle_support import overwrite_token, raw_token_row
from tests.rawserver import RawServer, head
from tests.test_no_secrets import assert_no_secrets, error_report, record_texts


def stale(make_account, fake, provider="bigin", **kwargs):
    return make_account(provider, expires_in=-10, refresh_token=fake.issue_refresh_token(), **kwargs)


def assert_unchanged(account, before) -> None:
    assert raw_token_row(account) == before
    token = Token.objects.get(account=account)
    assert token.refresh_claim == ""  # released: the next call may try again
    assert LinkedAccount.objects.get(pk=account.pk).status == LinkedAccount.Status.ACTIVE


# -- refresh replies are checked like link replies ----------------------------------------------


@pytest.mark.parametrize(
    "fields",
    [
        {"access_token": "1000.access.x\r\nX-Injected: 1"},
        {"access_token": "1000.access.caf\u00e9"},
        {"access_token": "1000.access with space"},
        {"access_token": "1000.access." + "a" * 9000},
        {"access_token": "1000.access.ok", "refresh_token": "1000.refresh.\x00nul"},
        {"access_token": "1000.access.ok", "api_domain": "http://api.evil.example"},
        {"access_token": "1000.access.ok", "api_domain": "https://www.zohoapis.evil.example"},
        {"access_token": "1000.access.ok", "api_domain": "https://www.zohoapis.com/path?x=1"},
        {"access_token": "1000.access.ok", "token_type": "Bearer\r\n"},
    ],
    ids=[
        "crlf",
        "non-ascii",
        "space",
        "over-8kb",
        "nul-in-refresh",
        "http-api",
        "foreign-api",
        "api-not-origin",
        "type",
    ],
)
def test_a_refresh_reply_that_cannot_be_stored_or_sent_is_refused(fake_provider, make_account, fields):
    account = stale(make_account, fake_provider)
    before = raw_token_row(account)
    fake_provider.queue_reply(200, {"expires_in": 3600, **fields})

    with pytest.raises(RefreshError) as excinfo:
        account.get_access_token()

    assert "1000.access" not in str(excinfo.value)
    assert_unchanged(account, before)


def test_a_stored_token_no_header_can_carry_fails_before_sending_and_quotes_nothing(fake_provider, make_account):
    """A token written by someone with access to the table: requests would quote the header in its error."""
    account = make_account("bigin", api_domain=fake_provider.api_url)
    overwrite_token(account, access_token="1000.access.secret-part\r\nX-Evil: 1")
    with pytest.raises(BigOAuthError) as excinfo:
        account.session().get("/bigin/v2/org")
    assert "secret-part" not in str(excinfo.value) and "nothing was sent" in str(excinfo.value)
    # Not even chained: requests's own error quotes the whole header.
    assert excinfo.value.__cause__ is None and excinfo.value.__context__ is None
    assert fake_provider.requests == []


# -- size and time ----------------------------------------------------------------------------------


def _token_server(settings, fake, url) -> None:
    config = bigoauth_settings_for(fake, HTTP_TIMEOUT=1)
    config["PROVIDERS"]["biggerplate"]["TOKEN_URL"] = f"{url}/oauth/token"
    settings.BIGOAUTH = config


def test_a_reply_larger_than_a_mebibyte_is_refused_without_reading_it(fake_provider, make_account, settings):
    def huge(connection):
        connection.sendall(head(headers={"Content-Type": "application/json"}))
        chunk = b" " * 65536
        for _ in range(150 * 16):  # 150 MiB if anyone read it all
            connection.sendall(chunk)

    account = stale(make_account, fake_provider, "biggerplate")
    before = raw_token_row(account)
    with RawServer(huge) as server:
        _token_server(settings, fake_provider, server.url)
        started = time.monotonic()
        with pytest.raises(RefreshError, match="more than 1024 KiB"):
            account.get_access_token()
    assert time.monotonic() - started < 5
    assert_unchanged(account, before)


def test_a_compressed_reply_is_capped_after_decompression(fake_provider, make_account, settings):
    bomb = gzip.compress(b'{"access_token": "' + b"a" * (4 * 1024 * 1024) + b'"}')

    def compressed(connection):
        connection.sendall(
            head(
                headers={
                    "Content-Type": "application/json",
                    "Content-Encoding": "gzip",
                    "Content-Length": str(len(bomb)),
                }
            )
            + bomb
        )

    account = stale(make_account, fake_provider, "biggerplate")
    with RawServer(compressed) as server:
        _token_server(settings, fake_provider, server.url)
        with pytest.raises(RefreshError, match="more than 1024 KiB"):
            account.get_access_token()


def test_a_reply_that_drips_ends_at_the_timeout_for_the_whole_exchange(fake_provider, make_account, settings):
    """One byte every 0.3 s: each read is quick, so a per-read timeout never fires. The deadline does."""

    def drip(connection):
        for byte in head(headers={"Content-Type": "application/json"}) + b'{"access_token": "never-complete"}':
            connection.sendall(bytes([byte]))
            time.sleep(0.3)

    account = stale(make_account, fake_provider, "biggerplate")
    before = raw_token_row(account)
    with RawServer(drip) as server:
        _token_server(settings, fake_provider, server.url)
        started = time.monotonic()
        with pytest.raises(RefreshError, match="did not answer in time"):
            account.get_access_token()
        elapsed = time.monotonic() - started
    assert elapsed < 2.0  # HTTP_TIMEOUT=1 for the exchange, not per byte
    assert_unchanged(account, before)


NESTED = "[" * 200_000


def test_json_nested_deep_enough_to_exhaust_recursion_is_an_answer(fake_provider, make_account):
    account = stale(make_account, fake_provider)
    before = raw_token_row(account)
    fake_provider.queue_reply(200, NESTED)
    with pytest.raises(RefreshError, match="not JSON"):
        account.get_access_token()
    assert_unchanged(account, before)


def test_the_callback_answers_a_nested_reply_with_502_and_stores_nothing(signed_in, fake_provider):
    from tests.oauthflow import bigin_return, callback_url, nothing_stored, start

    authorised = start(signed_in, "bigin")
    fake_provider.queue_reply(200, NESTED)
    response = signed_in.get(callback_url("bigin"), bigin_return(fake_provider, authorised))
    assert response.status_code == 502
    assert nothing_stored()


def test_admin_refresh_now_reports_each_account_and_goes_on(admin_client, fake_provider, make_account):
    broken = stale(make_account, fake_provider, label="Broken", external_id="org-broken")
    fine = stale(make_account, fake_provider, label="Fine", external_id="org-fine")
    fake_provider.queue_reply(200, NESTED)  # the first refresh request (pk order) gets it

    response = admin_client.post(
        "/admin/django_bigoauth/linkedaccount/",
        {"action": "refresh_now", "_selected_action": [broken.pk, fine.pk]},
        follow=True,
    )

    assert response.status_code == 200
    texts = [str(m) for m in response.context["messages"]]
    assert any("Broken" in text and "not JSON" in text for text in texts)
    assert any(text.startswith("Refreshed") and "Fine" in text for text in texts)


def test_refresh_all_reports_each_failure_goes_on_and_exits_non_zero(fake_provider, make_account):
    broken = stale(make_account, fake_provider, label="Broken", external_id="org-broken")
    fine = stale(make_account, fake_provider, label="Fine", external_id="org-fine")
    fake_provider.queue_reply(200, NESTED)
    out = io.StringIO()
    with pytest.raises(CommandError, match="1 of 2 accounts could not be refreshed"):
        call_command("bigoauth_refresh", "--all", stdout=out)
    assert f"[{broken.pk}] Bigin account “Broken” (site): " in out.getvalue()  # its failure, one line
    assert f"[{fine.pk}]" not in out.getvalue()  # successes are counted, not listed (-v 2 lists them)
    assert Token.objects.get(account=fine).generation == 1


# -- secrets and control characters -------------------------------------------------------------


def test_a_token_refreshed_receiver_that_raises_shows_no_token_in_the_error_report(fake_provider, make_account):
    account = stale(make_account, fake_provider)

    def broken_receiver(**kwargs):
        raise RuntimeError("a receiver of the site's that fails")

    signals.token_refreshed.connect(broken_receiver, dispatch_uid="t-broken")
    try:
        with pytest.raises(RuntimeError):
            try:
                account.refresh()
            except RuntimeError:
                report = error_report(sys.exc_info())
                raise
    finally:
        signals.token_refreshed.disconnect(dispatch_uid="t-broken")
    stored = Token.objects.get(account=account)
    assert_no_secrets(report, [stored.access_token, stored.refresh_token])


HOSTILE_ERROR = "invalid\r\nERROR forged line \x1b[31mred\x1b[0m \x07\x9b2J\u202eevil"


def test_a_providers_error_text_reaches_logs_and_command_output_without_control_characters(
    fake_provider, make_account, caplog
):
    caplog.set_level(logging.DEBUG, logger="django_bigoauth")
    account = stale(make_account, fake_provider)
    fake_provider.queue_reply(400, {"error": HOSTILE_ERROR})
    out, err = io.StringIO(), io.StringIO()
    with pytest.raises(CommandError) as excinfo:
        call_command("bigoauth_refresh", "--account", str(account.pk), stdout=out, stderr=err)
    texts = record_texts(caplog.records) + [out.getvalue(), err.getvalue(), str(excinfo.value)]
    assert any("forged line" in text for text in texts)  # the text is there, made harmless
    for text in texts:
        assert not any(char in text for char in "\r\x1b\x07\x9b\u202e"), repr(text)
    assert out.getvalue() == "" and "\n" not in str(excinfo.value)  # one line per failure: the command's error


def test_an_identity_label_with_control_characters_is_stored_clean(fake_provider, make_account):
    from django_bigoauth.linking import link_with_code
    from django_bigoauth.providers import CallbackContext, get_provider

    fake_provider.org_name = "Acme\x1b[2J\r\nLtd\u202e"
    account, _ = link_with_code(
        get_provider("bigin"),
        fake_provider.issue_code(),
        user=None,
        redirect_uri="x",
        context=CallbackContext(accounts_server=fake_provider.url, data_centre="us"),
    )
    assert account.label == "Acme Ltd"
    out = io.StringIO()
    call_command("bigoauth_accounts", stdout=out)
    assert "\x1b" not in out.getvalue() and "\u202e" not in out.getvalue()


def test_reply_json_of_anything_is_a_value_or_not_json():
    from django_bigoauth.transport import NOT_JSON, Reply

    def reply(body: bytes) -> Reply:
        return Reply(200, {}, body, "https://x.example/token")

    assert reply(b'{"a": 1}').json() == {"a": 1}
    for body in (NESTED.encode(), b"\xff\xfe", b"{", b"", b"1" * 5000):
        value = reply(body).json()
        assert value is NOT_JSON or isinstance(value, int)
    assert json.loads("1" * 10) == reply(b"1" * 10).json()


def test_no_internal_object_that_holds_a_token_shows_it_in_its_repr():
    from datetime import datetime, timezone

    from django_bigoauth import crypto, policy, tokens
    from django_bigoauth.providers import TokenReply
    from django_bigoauth.transport import Reply

    secret = "1000.access.reprsecretvalue"
    reply = TokenReply(secret, "1000.refresh.reprsecretvalue", "Bearer", datetime.now(timezone.utc))
    sealed_text = crypto.SealedText(secret)
    sealed_text.owner, sealed_text.field = "1", "access_token"
    objects = [
        reply,
        tokens.CurrentToken(secret, 1, None, None),
        tokens._Outcome(token=tokens.CurrentToken(secret, 1, None, None), refreshed=True),
        policy.refresh_values(reply),
        crypto.Sealed(secret, owner=1, field="access_token"),
        sealed_text,
        Reply(200, {}, json.dumps({"access_token": secret}).encode(), "https://x.example/token"),
    ]
    for obj in objects:
        assert "reprsecretvalue" not in repr(obj), type(obj).__name__
