"""No token, client secret, authorisation code or PKCE verifier in logs, exceptions, reprs or the database.

Every flow runs against the real socket server of ``tests/fakeprovider.py`` while every log
record of every logger is captured at DEBUG (``django_bigoauth``, ``django.request``,
``urllib3`` ...). A secret counts as leaked when it appears whole or when any ten characters
in a row of its random part do, so a truncated copy is caught too.
"""

from __future__ import annotations

import logging
import secrets
import traceback

import pytest
from django.db import connection

from django_bigoauth import crypto, linking, revocation
from django_bigoauth.exceptions import BigOAuthError, RefreshError, RevokeError
from django_bigoauth.models import LinkedAccount, PendingAuthorisation, Token
from django_bigoauth.providers import CallbackContext, TokenReply, get_provider
from django_bigoauth.redaction import mask
from django_bigoauth.session import AccountSession
from django_bigoauth.state import Authorisation
from tests.test_crypto import raw_token_rows

CLIENT_SECRETS = ("bigin-secret-value", "bp-secret-value")
# What every token of the fake server starts with; mask() shows the first four characters.
PUBLIC_PREFIXES = ("1000.access.", "1000.refresh.", "1000.code.")
WINDOW = 10


def fragments(secret: str) -> set[str]:
    """The secret and every run of ``WINDOW`` characters of its random part.

    Finding any of them in a text means the secret leaked, whole, cut short or re-quoted.
    """
    random_part = next((secret[len(p) :] for p in PUBLIC_PREFIXES if secret.startswith(p)), secret)
    if len(random_part) <= WINDOW:
        return {secret, random_part}
    return {secret} | {random_part[i : i + WINDOW] for i in range(len(random_part) - WINDOW + 1)}


def assert_no_secrets(text: str, secret_values) -> None:
    for secret in secret_values:
        if not secret:
            continue
        for fragment in fragments(secret):
            assert fragment not in text, f"a secret ({mask(secret)}) leaked into: {text[:300]!r}"


def record_texts(records) -> list[str]:
    """Everything a log handler could write for each record: message, args, exception, stack."""
    formatter = logging.Formatter()
    texts = []
    for record in records:
        texts.append(record.getMessage())
        texts.append(repr(record.args))
        if record.exc_info:
            texts.append(formatter.formatException(record.exc_info))
        if record.exc_text:
            texts.append(record.exc_text)
        if record.stack_info:
            texts.append(record.stack_info)
    return texts


def exception_texts(exc: BaseException) -> list[str]:
    """str and repr of the exception and of every exception chained to it, and the traceback."""
    texts = ["".join(traceback.format_exception(type(exc), exc, exc.__traceback__))]
    seen = exc
    while seen is not None:
        texts += [str(seen), repr(seen)]
        seen = seen.__cause__ or seen.__context__
    return texts


def capture_all_loggers(caplog):
    """Every record of every logger, DEBUG and up, including loggers Django sets to INFO."""
    caplog.set_level(logging.DEBUG)
    for name in ("django", "django.request", "django_bigoauth", "urllib3", "requests"):
        caplog.set_level(logging.DEBUG, logger=name)
    return caplog


@pytest.fixture
def capture_everything(caplog):
    return capture_all_loggers(caplog)


def live_secrets(fake) -> set[str]:
    """Every token the fake server has issued, plus the configured client secrets."""
    with fake.lock:
        return set(fake.live_access_tokens) | set(fake.live_refresh_tokens) | set(fake.revoked) | set(CLIENT_SECRETS)


def stored_tokens() -> set[str]:
    return {value for token in Token.objects.all() for value in (token.access_token, token.refresh_token) if value}


def link_bigin(fake, verifier: str = ""):
    code = fake.issue_code()
    account, _created = linking.link_with_code(
        get_provider("bigin"),
        code,
        user=None,
        redirect_uri="http://testserver/bigoauth/bigin/callback/",
        code_verifier=verifier or None,
        context=CallbackContext(accounts_server=fake.url, data_centre="us"),
    )
    return account, code


@pytest.mark.django_db
def test_link_refresh_failure_and_revoke_log_what_happened_and_never_a_secret(fake_provider, capture_everything):
    fake = fake_provider
    verifier = secrets.token_urlsafe(48)
    account, code = link_bigin(fake, verifier)
    linked_tokens = stored_tokens()

    account.refresh()

    fake.queue_reply(status=500, body="upstream broke", content_type="text/plain")
    with pytest.raises(RefreshError) as server_error:
        account.refresh()
    fake.queue_reply(status=400, body={"error": "invalid_grant"})
    with pytest.raises(BigOAuthError) as reauth_error:
        account.refresh()
    refreshed_tokens = stored_tokens()
    LinkedAccount.objects.filter(pk=account.pk).update(status=LinkedAccount.Status.ACTIVE)
    account.refresh_from_db()

    assert account.revoke().confirmed
    assert fake.revoked  # the revoke really reached the provider

    every_secret = live_secrets(fake) | linked_tokens | refreshed_tokens | {code, verifier}
    texts = record_texts(capture_everything.records)
    texts += exception_texts(server_error.value) + exception_texts(reauth_error.value)
    for text in texts:
        assert_no_secrets(text, every_secret)

    # ... while each step is logged with the account and provider, at a level that fits it.
    ours = [(r.levelname, r.getMessage()) for r in capture_everything.records if r.name == "django_bigoauth"]
    tag = f"account {account.pk} (bigin)"
    assert ("INFO", f"Linked {tag}") in ours
    assert ("INFO", f"Refreshed the token of {tag}") in ours
    assert any(level == "WARNING" and f"Refresh of {tag} failed" in text and "HTTP 500" in text for level, text in ours)
    assert any(level == "WARNING" and f"{tag.capitalize()} needs re-authorisation" in text for level, text in ours)
    assert ("INFO", f"Revoked {tag} at the provider and removed its tokens") in ours
    # The HTTP layer logged too, and was checked above.
    assert any(r.name.startswith("urllib3") for r in capture_everything.records)


@pytest.mark.django_db
def test_a_failed_code_exchange_and_a_failed_revoke_leak_nothing(fake_provider, capture_everything, settings):
    fake = fake_provider
    code = "1000.code." + secrets.token_hex(8)  # never issued: the fake answers invalid_code
    with pytest.raises(BigOAuthError) as link_error:
        linking.link_with_code(
            get_provider("biggerplate"),
            code,
            user=None,
            redirect_uri="http://testserver/cb",
            code_verifier=secrets.token_urlsafe(48),
        )
    assert not LinkedAccount.objects.exists()

    account, _code = link_bigin(fake)
    broken = {**settings.BIGOAUTH, "PROVIDERS": {**settings.BIGOAUTH["PROVIDERS"]}}
    broken["PROVIDERS"]["bigin"] = {**broken["PROVIDERS"]["bigin"], "REVOKE_URL": f"{fake.url}/oauth/v2/refused"}
    settings.BIGOAUTH = broken
    with pytest.raises(RevokeError) as revoke_error:
        revocation.revoke_account(account)
    assert Token.objects.filter(account=account).exists()

    every_secret = live_secrets(fake) | stored_tokens() | {code}
    texts = record_texts(capture_everything.records)
    texts += exception_texts(link_error.value) + exception_texts(revoke_error.value)
    for text in texts:
        assert_no_secrets(text, every_secret)
    ours = [(r.levelname, r.getMessage()) for r in capture_everything.records if r.name == "django_bigoauth"]
    assert any(level == "WARNING" and text.startswith("Linking a biggerplate account failed") for level, text in ours)
    assert any(level == "WARNING" and f"Revoking account {account.pk} (bigin) failed" in text for level, text in ours)


@pytest.mark.django_db
def test_the_token_table_holds_no_plaintext_after_linking_and_after_refreshing(fake_provider):
    account, _code = link_bigin(fake_provider)

    def assert_rows_clean(tokens):
        rows = raw_token_rows()
        assert len(rows) == 1
        for value in rows[0].values():
            assert_no_secrets(str(value), tokens)
        account_table = connection.ops.quote_name(LinkedAccount._meta.db_table)
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT * FROM {account_table}")  # noqa: S608
            for row in cursor.fetchall():
                assert_no_secrets(" ".join(map(str, row)), tokens)

    linked = stored_tokens()
    assert len(linked) == 2  # an access and a refresh token
    assert_rows_clean(linked)

    account.refresh()
    refreshed = stored_tokens()
    assert refreshed != linked
    assert_rows_clean(refreshed | linked)


@pytest.mark.django_db
def test_str_and_repr_of_every_object_holding_a_secret(make_account):
    access, refresh = "1000.access." + secrets.token_hex(12), "1000.refresh." + secrets.token_hex(12)
    verifier = secrets.token_urlsafe(48)
    account = make_account(access_token=access, refresh_token=refresh)
    token = Token.objects.get(account=account)
    reply = TokenReply(access_token=access, refresh_token=refresh, token_type="Bearer", expires_at=None)
    pending = Authorisation(provider="bigin", user_pk="1", redirect_uri="http://testserver/cb", code_verifier=verifier)
    row = PendingAuthorisation.objects.create(
        state_hash="0" * 64,
        browser_hash="1" * 64,
        provider="bigin",
        user_pk="1",
        redirect_uri="http://testserver/cb",
        encrypted_code_verifier=crypto.encrypt(verifier),
    )
    session = AccountSession(account)
    for obj in (account, token, reply, pending, row, session):
        for text in (str(obj), repr(obj), f"{obj!r:>10}"):
            assert_no_secrets(text, {access, refresh, verifier, row.encrypted_code_verifier})
    assert mask(access) in repr(token) and mask(access) in repr(reply)


# -- error reports: the DEBUG 500 page, AdminEmailHandler's HTML, tools that read frame locals ------


def error_report(exc_info) -> str:
    from django.test import RequestFactory
    from django.views.debug import ExceptionReporter

    exc_type, exc, traceback_ = exc_info
    # Drop the test's own frame: its locals (the fake server's records) are not the app's.
    exc.__traceback__ = traceback_.tb_next
    reporter = ExceptionReporter(RequestFactory().get("/"), exc_type, exc, traceback_.tb_next)
    return reporter.get_traceback_html() + reporter.get_traceback_text()


def test_an_error_report_of_a_failed_refresh_shows_no_secret(fake_provider, make_account):
    import sys

    refresh_token = fake_provider.issue_refresh_token()
    account = make_account("bigin", expires_in=-10, refresh_token=refresh_token, access_token="1000.access.stalesecret")
    fake_provider.queue_reply(500, "x", content_type="text/plain")
    with pytest.raises(RefreshError):
        try:
            account.get_access_token()
        except RefreshError:
            report = error_report(sys.exc_info())
            raise
    assert "********" in report  # the locals are there, masked
    assert_no_secrets(report, [refresh_token, "1000.access.stalesecret", *CLIENT_SECRETS])


def test_an_error_report_of_a_failed_code_exchange_shows_no_secret(fake_provider):
    import sys

    code = fake_provider.issue_code()
    fake_provider.queue_reply(502, "bad gateway", content_type="text/plain")
    with pytest.raises(BigOAuthError):
        try:
            linking.link_with_code(
                get_provider("biggerplate"), code, user=None, redirect_uri="https://site/cb/", code_verifier="v" * 43
            )
        except BigOAuthError:
            report = error_report(sys.exc_info())
            raise
    assert_no_secrets(report, [code, "v" * 43, *CLIENT_SECRETS])


def test_an_error_report_from_an_api_call_shows_no_token(fake_provider, make_account):
    import sys

    import requests

    down = fake_provider.take_down("api")  # the API domain stops answering: a connection error
    account = make_account("bigin", access_token="1000.access.apisecret", api_domain=down)
    with pytest.raises(requests.ConnectionError):
        try:
            account.session().get("/bigin/v2/org", timeout=0.5)
        except requests.ConnectionError:
            report = error_report(sys.exc_info())
            raise
    assert_no_secrets(report, ["1000.access.apisecret"])
