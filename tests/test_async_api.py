"""The async API: ``aget_account``, ``aget_access_token``, ``arefresh``, ``arevoke``, and the extra they need.

Against the strict fake provider on real 127.0.0.1 sockets. Async tests run on a loop of their
own (pytest-asyncio) with ``transaction=True``: Django's async ORM and the refresh's worker
thread use connections of their own, which would not see a test case's uncommitted rows.
"""

from __future__ import annotations

import asyncio
import sys

import pytest
from asgiref.sync import sync_to_async
from django.core.exceptions import ImproperlyConfigured

import django_bigoauth
from django_bigoauth import signals, tokens
from django_bigoauth.exceptions import (
    AccountNotFound,
    AccountRevoked,
    MultipleAccountsFound,
    ReauthorizationRequired,
    RefreshError,
    RevokeError,
    TokenBindingError,
)
from django_bigoauth.models import LinkedAccount, Token
from django_bigoauth.revocation import RevokeOutcome
from tests.lifecycle_support import raw_token_row

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("async_orm")]


@pytest.fixture
def received():
    """Every signal of django_bigoauth sent during the test, as (name, account pk, extra)."""
    seen = []
    names = ("token_refreshed", "reauthorization_required", "account_revoked", "account_linked")

    def receiver(signal_name):
        def record(sender, account, **kwargs):
            kwargs.pop("signal", None)
            seen.append((signal_name, account.pk, kwargs))

        return record

    receivers = {name: receiver(name) for name in names}
    for name, function in receivers.items():
        getattr(signals, name).connect(function, dispatch_uid=f"test-async-{name}")
    yield seen
    for name in names:
        getattr(signals, name).disconnect(dispatch_uid=f"test-async-{name}")


def stale(make_account, fake, provider="bigin", **kwargs):
    return make_account(provider, expires_in=-30, refresh_token=fake.issue_refresh_token(), **kwargs)


# -- aget_account ---------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_aget_account_finds_the_one_account_like_get_account(make_account, django_user_model):
    user = await django_user_model.objects.acreate(username="ann")
    site = await sync_to_async(make_account)("bigin", external_id="site")
    mine = await sync_to_async(make_account)("bigin", user=user, label="Sales", external_id="s")
    await sync_to_async(make_account)("bigin", user=user, label="Ops", external_id="o")

    assert (await django_bigoauth.aget_account("bigin")).pk == site.pk
    assert (await django_bigoauth.aget_account("bigin", user=user, label="Sales")).pk == mine.pk
    with pytest.raises(MultipleAccountsFound, match="'Ops', 'Sales'|'Sales', 'Ops'"):
        await django_bigoauth.aget_account("bigin", user=user)
    with pytest.raises(AccountNotFound, match="No biggerplate account is linked for the site"):
        await django_bigoauth.aget_account("biggerplate")


@pytest.mark.asyncio
async def test_aget_account_never_returns_a_revoked_account(make_account):
    await sync_to_async(make_account)("bigin", status=LinkedAccount.Status.REVOKED)
    with pytest.raises(AccountNotFound):
        await django_bigoauth.aget_account("bigin")


# -- aget_access_token ------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_a_fresh_token_costs_one_query_and_no_http(fake_provider, make_account, all_queries):
    account = await sync_to_async(make_account)("bigin")
    await LinkedAccount.objects.acount()  # the async ORM's thread connects outside the count
    all_queries.clear()

    assert await account.aget_access_token() == "1000.access.initial"

    assert len(all_queries) == 1
    assert fake_provider.requests == []


@pytest.mark.asyncio
async def test_a_stale_token_is_refreshed_once_with_the_signal(fake_provider, make_account, received):
    account = await sync_to_async(stale)(make_account, fake_provider)

    token = await account.aget_access_token()

    stored = await Token.objects.aget(account=account)
    assert token == stored.access_token and token in fake_provider.live_access_tokens
    assert stored.generation == 1
    assert fake_provider.refresh_calls() == 1
    assert received == [("token_refreshed", account.pk, {})]


@pytest.mark.asyncio
async def test_a_refused_refresh_token_needs_reauthorisation_signalled_once(fake_provider, make_account, received):
    account = await sync_to_async(make_account)("bigin", expires_in=-30, refresh_token="1000.refresh.unknown")

    with pytest.raises(ReauthorizationRequired, match="must be linked again") as excinfo:
        await account.aget_access_token()
    with pytest.raises(ReauthorizationRequired):
        await account.aget_access_token()  # at once now, without HTTP

    assert "1000.refresh.unknown" not in str(excinfo.value)
    assert account.status == LinkedAccount.Status.NEEDS_REAUTH
    assert (await LinkedAccount.objects.aget(pk=account.pk)).status == LinkedAccount.Status.NEEDS_REAUTH
    assert fake_provider.refresh_calls() == 1
    assert received == [("reauthorization_required", account.pk, {})]


@pytest.mark.asyncio
async def test_coroutines_on_a_refused_refresh_token_all_learn_it_from_one_request(
    fake_provider, make_account, received
):
    account = await sync_to_async(make_account)("bigin", expires_in=-30, refresh_token="1000.refresh.unknown")
    copies = [await LinkedAccount.objects.aget(pk=account.pk) for _ in range(8)]

    outcomes = await asyncio.gather(*(each.aget_access_token() for each in copies), return_exceptions=True)

    assert all(isinstance(outcome, ReauthorizationRequired) for outcome in outcomes), outcomes
    assert len({id(outcome) for outcome in outcomes}) == 8  # copies: no two share a traceback
    assert [each.status for each in copies] == [LinkedAccount.Status.NEEDS_REAUTH] * 8
    assert fake_provider.refresh_calls() == 1
    assert received == [("reauthorization_required", account.pk, {})]


@pytest.mark.asyncio
async def test_a_provider_that_fails_gives_refresh_error_and_leaves_the_token_alone(fake_provider, make_account):
    account = await sync_to_async(stale)(make_account, fake_provider)
    before = await sync_to_async(raw_token_row)(account)
    fake_provider.queue_reply(503, "busy", "text/plain")

    with pytest.raises(RefreshError, match="failed"):
        await account.aget_access_token()

    assert await sync_to_async(raw_token_row)(account) == before
    assert (await Token.objects.aget(account=account)).refresh_claim == ""  # released for the next call
    assert await account.aget_access_token() in fake_provider.live_access_tokens


@pytest.mark.asyncio
async def test_revoked_and_tokenless_accounts_raise_without_http(fake_provider, make_account):
    revoked = await sync_to_async(make_account)("bigin", status=LinkedAccount.Status.REVOKED)
    tokenless = await sync_to_async(make_account)("bigin", external_id="no-token")
    await Token.objects.filter(account=tokenless).adelete()

    with pytest.raises(AccountRevoked):
        await revoked.aget_access_token()
    with pytest.raises(ReauthorizationRequired, match="has no token"):
        await tokenless.aget_access_token()
    assert fake_provider.requests == []


@pytest.mark.asyncio
async def test_a_token_copied_from_another_account_is_refused(fake_provider, make_account):
    from django.db.models import TextField
    from django.db.models.functions import Cast

    first = await sync_to_async(make_account)("bigin", access_token="1000.access.first")
    second = await sync_to_async(make_account)("bigin", external_id="o2", access_token="1000.access.second")
    ciphertext = await (
        Token.objects.filter(account=first).values_list(Cast("access_token", TextField()), flat=True).aget()
    )
    await sync_to_async(_write_raw_access_token)(second, ciphertext)

    with pytest.raises(TokenBindingError) as excinfo:
        await second.aget_access_token()
    assert "1000.access.first" not in str(excinfo.value)
    assert fake_provider.requests == []


def _write_raw_access_token(account, ciphertext: str) -> None:
    from django.db.models import TextField, Value

    Token.objects.filter(account=account).update(access_token=Value(ciphertext, output_field=TextField()))


# -- arefresh ------------------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_arefresh_refreshes_a_fresh_token_too(fake_provider, make_account, received):
    account = await sync_to_async(make_account)("bigin", refresh_token=fake_provider.issue_refresh_token())

    token = await account.arefresh()

    assert token != "1000.access.initial"
    assert token == (await Token.objects.aget(account=account)).access_token
    assert fake_provider.refresh_calls() == 1
    assert received == [("token_refreshed", account.pk, {})]


@pytest.mark.asyncio
async def test_arefresh_of_a_revoked_account_raises_without_http(fake_provider, make_account):
    account = await sync_to_async(make_account)("bigin", status=LinkedAccount.Status.REVOKED)
    with pytest.raises(AccountRevoked):
        await account.arefresh()
    assert fake_provider.requests == []


# -- arevoke ---------------------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_arevoke_revokes_at_the_provider_and_removes_the_tokens(fake_provider, make_account, received):
    refresh_token = fake_provider.issue_refresh_token()
    account = await sync_to_async(make_account)("bigin", refresh_token=refresh_token)

    result = await account.arevoke()

    assert result.outcome is RevokeOutcome.REVOKED and bool(result)
    assert fake_provider.revoked == [refresh_token]
    assert not await Token.objects.filter(account=account).aexists()
    assert (await LinkedAccount.objects.aget(pk=account.pk)).status == LinkedAccount.Status.REVOKED
    assert received == [("account_revoked", account.pk, {"confirmed": True})]
    with pytest.raises(AccountRevoked):
        await account.aget_access_token()


@pytest.mark.asyncio
async def test_a_refused_arevoke_raises_and_changes_nothing(fake_provider, make_account, received):
    account = await sync_to_async(make_account)("bigin", refresh_token=fake_provider.issue_refresh_token())
    before = await sync_to_async(raw_token_row)(account)
    fake_provider.queue_reply(200, {"status": "failure"}, path_suffix="/revoke")

    with pytest.raises(RevokeError):
        await account.arevoke()

    assert await sync_to_async(raw_token_row)(account) == before
    assert (await LinkedAccount.objects.aget(pk=account.pk)).status == LinkedAccount.Status.ACTIVE
    assert received == []


# -- the extra -------------------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_without_httpx_every_async_entry_point_names_the_extra_and_does_nothing(
    fake_provider, make_account, monkeypatch, received
):
    account = await sync_to_async(stale)(make_account, fake_provider)
    before = await sync_to_async(raw_token_row)(account)
    monkeypatch.setitem(sys.modules, "httpx", None)  # "import httpx" now fails, as without the extra

    calls = [
        lambda: django_bigoauth.aget_account("bigin"),
        account.aget_access_token,
        account.arefresh,
        account.arevoke,
        lambda: tokens.aget_access_token(account),
    ]
    for call in calls:
        with pytest.raises(ImproperlyConfigured, match=r"pip install 'django-bigoauth\[async\]'"):
            await call()
    with pytest.raises(ImproperlyConfigured, match=r"django-bigoauth\[async\]"):
        account.asession()

    assert fake_provider.requests == []
    assert await sync_to_async(raw_token_row)(account) == before
    assert received == []


def test_the_sync_api_does_not_need_httpx(fake_provider, make_account, monkeypatch):
    monkeypatch.setitem(sys.modules, "httpx", None)
    account = make_account("bigin", api_domain=fake_provider.api_url)
    fake_provider.adopt(access_token="1000.access.initial")
    assert account.get_access_token() == "1000.access.initial"
    assert account.session().get("/bigin/v2/org").status_code == 200


# -- secrets ------------------------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_an_error_report_of_a_failed_async_refresh_shows_no_secret(fake_provider, make_account):
    from tests.test_no_secrets import CLIENT_SECRETS, assert_no_secrets, error_report

    refresh_token = fake_provider.issue_refresh_token()
    account = await sync_to_async(make_account)(
        "bigin", expires_in=-10, refresh_token=refresh_token, access_token="1000.access.stalesecret"
    )
    fake_provider.queue_reply(500, "x", content_type="text/plain")
    with pytest.raises(RefreshError):
        try:
            await account.aget_access_token()
        except RefreshError:
            report = error_report(sys.exc_info())
            raise
    assert_no_secrets(report, [refresh_token, "1000.access.stalesecret", *CLIENT_SECRETS])
