"""linking.py: a token reply becomes one account and one token, or nothing at all."""

import json
import logging
import re
import secrets
from datetime import timedelta
from pathlib import Path

import pytest
from django.db import DatabaseError, connection
from django.db.models.query import QuerySet
from django.utils import timezone

from django_bigoauth import signals
from django_bigoauth.exceptions import (
    AccountNotStored,
    InvalidGrant,
    ProviderError,
    ProviderTimeout,
    ProviderUnavailable,
)
from django_bigoauth.linking import link_with_code, store_account
from django_bigoauth.models import LinkedAccount, Token
from django_bigoauth.providers import CallbackContext, Identity, Provider, TokenReply, get_provider
from tests.lifecycle_support import raw_token_row

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
    assert account.api_domain == fake_provider.api_url
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


def make_token_writes_fail(monkeypatch):
    """From now on every write of a token row fails (a full disk, say); account rows still save."""
    update = QuerySet.update

    def failing_update(queryset, **kwargs):
        if queryset.model is Token:
            raise DatabaseError("could not extend file: No space left on device")
        return update(queryset, **kwargs)

    def failing_save(token, *args, **kwargs):
        raise DatabaseError("could not extend file: No space left on device")

    monkeypatch.setattr(QuerySet, "update", failing_update)
    monkeypatch.setattr(Token, "save", failing_save)


def test_a_token_that_cannot_be_written_leaves_no_account_behind(monkeypatch):
    make_token_writes_fail(monkeypatch)
    with pytest.raises(AccountNotStored):
        store(reply())
    assert LinkedAccount.objects.count() == 0 and Token.objects.count() == 0


def test_a_token_that_cannot_be_written_leaves_a_relinked_account_as_it_was(monkeypatch, make_account):
    account = make_account(
        external_id="org-1", status=LinkedAccount.Status.NEEDS_REAUTH, api_domain="https://old.example"
    )
    before = LinkedAccount.objects.values().get(), raw_token_row(account)
    make_token_writes_fail(monkeypatch)
    with pytest.raises(AccountNotStored):
        store(reply(api_domain="https://www.zohoapis.eu"))
    # Not "active" with the old, refused token: the account row was rolled back with the token.
    assert (LinkedAccount.objects.values().get(), raw_token_row(account)) == before


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


@pytest.mark.parametrize(
    "kwargs",
    [
        {"identity": Identity("org\x00-1")},
        {"identity": Identity("org-\ud800")},
        {"token_reply": reply(api_domain="https://www.zohoapis.com\x00.evil.example")},
        {"token_reply": reply(token_type="Bea\x00rer")},
        {"token_reply": reply(token_type="Bearer\udfff")},
        {"token_reply": reply(access="1000.access.\x00")},
        {"token_reply": reply(access="1000.access.\u4e2d")},
        {"token_reply": reply(refresh="1000.refresh.\x00")},
        {"token_reply": reply(refresh="1000.refresh.\n")},
        {"context": CallbackContext(data_centre="u\x00s")},
    ],
    ids=[
        "nul-in-external-id",
        "lone-surrogate-in-external-id",
        "nul-in-api-domain",
        "nul-in-token-type",
        "lone-surrogate-in-token-type",
        "nul-in-access-token",
        "non-ascii-access-token",
        "nul-in-refresh-token",
        "newline-in-refresh-token",
        "nul-in-data-centre",
    ],
)
def test_values_a_database_cannot_store_or_http_cannot_send_refuse_the_link(kwargs):
    # PostgreSQL refuses NUL in text ("DataError"), no database takes a lone surrogate, and a
    # token is printable ASCII (RFC 6749, VSCHAR): each would be a 500 or a dead account.
    kwargs.setdefault("token_reply", reply())
    with pytest.raises(ProviderError):
        store(**kwargs)
    assert LinkedAccount.objects.count() == 0 and Token.objects.count() == 0


def test_nul_and_lone_surrogates_are_dropped_from_free_text():
    account, _ = store(
        reply(scope="ZohoBigin.modules.ALL,\x00ZohoBigin.org.READ\ud800"),
        identity=Identity("org-1", "Acme\x00 Ltd\udc80"),
    )
    account.refresh_from_db()
    assert account.label == "Acme Ltd?"
    assert account.scopes == account.token.scope == "ZohoBigin.modules.ALL,ZohoBigin.org.READ?"
    named, _ = store(reply(), identity=Identity("org-2"), label="Sales\x00 CRM")
    named.refresh_from_db()
    assert named.label == "Sales CRM"


def test_an_overlong_label_is_shortened():
    account, _ = store(reply(), identity=Identity("org-1", "L" * 400))
    account.refresh_from_db()
    assert len(account.label) == 255 and account.label.endswith("…")


# -- who the token belongs to ------------------------------------------------------------------
# A provider that cannot be asked right now fails the link (the same account must not come
# back as a second one); a provider that answers but names nobody gets a best-effort link.


def link(fake, slug="bigin", user=None):
    context = CallbackContext(accounts_server=fake.url, data_centre="us") if slug == "bigin" else CallbackContext()
    return link_with_code(get_provider(slug), fake.issue_code(), user=user, redirect_uri="x", context=context)


def nothing_stored():
    return LinkedAccount.objects.count() == 0 and Token.objects.count() == 0


def warnings_of(caplog):
    return [r.getMessage() for r in caplog.records if r.name == "django_bigoauth" and r.levelno == logging.WARNING]


def set_timeout(settings, seconds):
    settings.BIGOAUTH = {**settings.BIGOAUTH, "HTTP_TIMEOUT": seconds}


@pytest.mark.parametrize("status", [429, 500, 502, 503])
def test_an_identity_endpoint_that_is_down_fails_the_link(fake_provider, status):
    fake_provider.queue_reply(status, {"code": "INTERNAL_ERROR"}, path_suffix="/org")
    with pytest.raises(ProviderUnavailable):
        link(fake_provider)
    assert nothing_stored()


def test_an_identity_endpoint_that_cannot_be_reached_fails_the_link(fake_provider):
    fake_provider.take_down("api")
    with pytest.raises(ProviderUnavailable):
        link(fake_provider)
    assert nothing_stored()


def test_an_identity_endpoint_that_times_out_fails_the_link(fake_provider, settings):
    set_timeout(settings, 0.2)
    fake_provider.queue_reply(200, {"org": [{"id": "org-1"}]}, delay=0.6, path_suffix="/org")
    with pytest.raises(ProviderTimeout):
        link(fake_provider)
    assert nothing_stored()


def test_relinking_during_an_identity_outage_leaves_the_account_as_it_was(fake_provider):
    account, _ = link(fake_provider)
    before = raw_token_row(account)
    fake_provider.queue_reply(503, "Service Unavailable", "text/plain", path_suffix="/org")
    with pytest.raises(ProviderUnavailable):
        link(fake_provider)
    assert list(LinkedAccount.objects.values_list("pk", "external_id")) == [(account.pk, "org-1")]
    assert raw_token_row(account) == before


@pytest.mark.parametrize(
    ("status", "body"),
    [
        (401, {"code": "OAUTH_SCOPE_MISMATCH", "message": "invalid oauth scope to access this URL"}),
        (403, {"code": "NO_PERMISSION"}),
        (404, "Not Found"),
        (200, {"org": []}),
        (200, {"org": [{"company_name": "No id"}]}),
        (200, "<html>Maintenance</html>"),
        (200, '{"org": [{"id": "org-1"'),
    ],
    ids=["401-scope-mismatch", "403", "404", "200-no-org", "200-no-id", "200-html", "200-broken-json"],
)
def test_an_answer_that_names_nobody_links_without_an_external_id(fake_provider, caplog, status, body):
    fake_provider.queue_reply(status, body, path_suffix="/org")
    account, created = link(fake_provider)
    assert created
    account.refresh_from_db()
    assert (account.external_id, account.label) == ("", "Bigin")
    assert Token.objects.get().access_token in fake_provider.live_access_tokens
    assert any("bigin" in text and f"HTTP {status}" in text for text in warnings_of(caplog)), warnings_of(caplog)


def test_an_unidentified_account_is_relinked_in_place(fake_provider):
    for _ in range(2):
        fake_provider.queue_reply(401, {"code": "OAUTH_SCOPE_MISMATCH"}, path_suffix="/org")
        link(fake_provider)
    assert list(LinkedAccount.objects.values_list("external_id", flat=True)) == [""]
    assert Token.objects.get().generation == 2


def test_an_unidentified_token_never_replaces_or_duplicates_an_identified_account(fake_provider, alice, caplog):
    # Alice linked org-1 while the org scope was granted; now the provider names nobody. The
    # token may be org-1's (a second account would be a duplicate) or another organisation's
    # (merging would hand org-1's account another organisation's token): nothing is stored.
    account, _ = link(fake_provider, user=alice)
    before = raw_token_row(account)
    fake_provider.queue_reply(401, {"code": "OAUTH_SCOPE_MISMATCH"}, path_suffix="/org")
    with pytest.raises(ProviderError):
        link(fake_provider, user=alice)
    assert list(LinkedAccount.objects.values_list("external_id", flat=True)) == ["org-1"]
    assert raw_token_row(account) == before
    assert any(f"did not say whose token this is, and user {alice.pk}" in text for text in warnings_of(caplog))


def test_the_unidentified_rule_looks_at_the_same_owner_only(fake_provider, alice):
    link(fake_provider)  # a site-level org-1
    fake_provider.queue_reply(401, {"code": "OAUTH_SCOPE_MISMATCH"}, path_suffix="/org")
    account, created = link(fake_provider, user=alice)
    assert created and account.external_id == "" and account.user == alice
    assert LinkedAccount.objects.count() == 2


class AcmeProvider(Provider):
    """A custom provider whose ``parse_identity`` trusts the reply (it raises KeyError on /me's)."""

    name = "Acme"
    identity_path = "/me"

    def parse_identity(self, data):
        return Identity(external_id=str(data["id"]), label=data.get("name", ""))


@pytest.fixture
def acme(fake_provider, settings):
    settings.BIGOAUTH = {
        **settings.BIGOAUTH,
        "PROVIDERS": {
            **settings.BIGOAUTH["PROVIDERS"],
            "acme": {
                "CLASS": "tests.test_linking.AcmeProvider",
                "CLIENT_ID": "acme-client",
                "CLIENT_SECRET": "acme-secret-value",
                "AUTHORIZE_URL": f"{fake_provider.url}/oauth/auth",
                "TOKEN_URL": f"{fake_provider.url}/oauth/token",
                "API_BASE_URL": fake_provider.api_url,
            },
        },
    }
    return fake_provider


def test_a_parse_identity_that_raises_is_a_reply_that_names_nobody(acme, caplog):
    account, created = link(acme, "acme")
    assert created and account.external_id == "" and account.label == "Acme"
    warnings = [text for text in warnings_of(caplog) if "KeyError" in text]
    assert warnings and all("acme" in text for text in warnings)
    for token in acme.live_access_tokens:
        assert all(token not in text for text in warnings_of(caplog))


def test_the_documented_provider_example_reads_its_reply_defensively():
    page = (Path(__file__).resolve().parent.parent / "docs" / "providers.md").read_text()
    section = page.split("## Adding a provider in code", 1)[1]
    source = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    namespace = {}
    exec(compile(source, "docs/providers.md", "exec"), namespace)
    provider = namespace["AcmeProvider"]("acme", {})
    assert provider.parse_identity({"id": 7, "name": "Ada"}) == Identity("7", "Ada")
    for odd in ({}, {"id": ""}, {"name": "no id"}, [], None, "text", json.loads('{"id": null}')):
        assert provider.parse_identity(odd) is None


# -- error reports (the DEBUG page, AdminEmailHandler) of the new failures show no token -----------
# link_with_code masks every frame it calls; store_account and fetch_identity are public and
# are also called on their own (the example project, a site's own code).


def _report_of(function, *args, **kwargs) -> str:
    """The error report of ``function(*args, **kwargs)``, from its own frame down."""
    import sys

    from django_bigoauth.exceptions import BigOAuthError
    from tests.test_no_secrets import error_report

    try:
        function(*args, **kwargs)
    except BigOAuthError:
        return error_report(sys.exc_info())  # (drops this frame: its locals hold the arguments)
    raise AssertionError("no BigOAuthError")


def test_an_error_report_of_an_identity_endpoint_that_is_down_shows_no_token(fake_provider):
    from django_bigoauth import client
    from tests.test_no_secrets import assert_no_secrets

    access = "1000.access." + secrets.token_hex(8)
    fake_provider.queue_reply(503, "down", "text/plain", path_suffix="/org")
    report = _report_of(client.fetch_identity, get_provider("bigin"), access, api_domain=fake_provider.api_url)
    assert "ProviderUnavailable" in report and "********" in report
    assert_no_secrets(report, [access])


def test_an_error_report_of_a_failed_database_write_shows_no_token(monkeypatch):
    from tests.test_no_secrets import assert_no_secrets

    make_token_writes_fail(monkeypatch)
    access, refresh = "1000.access." + secrets.token_hex(8), "1000.refresh." + secrets.token_hex(8)
    report = _report_of(store, reply(access=access, refresh=refresh))
    assert "AccountNotStored" in report and "********" in report
    assert_no_secrets(report, [access, refresh])
