"""PostgreSQL, MariaDB/MySQL: re-linking takes its row locks in the order every other writer does.

A refresh locks the token row (``SELECT ... FOR UPDATE OF token``; MariaDB has no ``OF`` and
locks the joined account row with it) and may then mark the account as needing
re-authorisation; a revoke deletes the token, then updates the account. A re-link that locked
the account row first and the token row second would deadlock with either, and the re-link
that was meant to repair the account would end in an error.
"""

import threading
import time

import pytest
from django.db import connection

from django_bigoauth.linking import store_account
from django_bigoauth.models import LinkedAccount
from django_bigoauth.providers import CallbackContext, Identity, TokenReply, get_provider
from tests.lifecycle_support import ROW_LOCKS, require_vendor


def _wait_for(condition, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "the refresh request never reached the token endpoint"
        time.sleep(0.01)


@pytest.mark.django_db(transaction=True)
def test_a_relink_during_a_refused_refresh_wins_and_the_refresh_returns_its_token(fake_provider, make_account):
    """No lock is held across the refresh request (only its claim), so the re-link goes ahead at
    once; the refusal that follows is for the old grant and must not mark the new one."""
    fake_provider.delay = 0.5  # the refused refresh is in flight this long
    account = make_account("bigin", expires_in=-10, refresh_token="1000.refresh.dead", external_id="org-1")
    outcome: dict[str, object] = {}

    def refresh() -> None:
        try:
            LinkedAccount.objects.get(pk=account.pk).get_access_token()
            outcome["refresh"] = "refreshed"
        except Exception as exc:  # noqa: BLE001 - the test reports what happened
            outcome["refresh"] = exc
        finally:
            connection.close()

    def relink() -> None:
        # Starts once the refresh is under way; the endpoint then answers invalid_code.
        _wait_for(lambda: fake_provider.refresh_calls() == 1)
        reply = TokenReply(
            access_token="1000.access.relinked", refresh_token="1000.refresh.new", token_type="Bearer", expires_at=None
        )
        try:
            store_account(
                get_provider("bigin"), reply, user=None, context=CallbackContext(), identity=Identity("org-1")
            )
            outcome["relink"] = "linked"
        except Exception as exc:  # noqa: BLE001
            outcome["relink"] = exc
        finally:
            connection.close()

    threads = [threading.Thread(target=refresh), threading.Thread(target=relink)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert not any(thread.is_alive() for thread in threads)

    assert outcome["relink"] == "linked", repr(outcome)
    assert outcome["refresh"] == "refreshed", repr(outcome)  # it got the re-link's token
    # The re-link came second, so it wins: the account works.
    account.refresh_from_db()
    assert account.status == LinkedAccount.Status.ACTIVE
    assert account.token.access_token == "1000.access.relinked"
    assert account.token.refresh_token == "1000.refresh.new"


@pytest.mark.django_db(transaction=True)
def test_simultaneous_first_links_of_one_account_store_it_once():
    require_vendor(ROW_LOCKS, "the insert race needs concurrent transactions")
    from tests.lifecycle_support import run_in_threads

    def link():
        reply = TokenReply(
            access_token="1000.access.same", refresh_token="1000.refresh.same", token_type="Bearer", expires_at=None
        )
        return store_account(
            get_provider("bigin"), reply, user=None, context=CallbackContext(), identity=Identity("org-1")
        )

    results, errors = run_in_threads(4, link)
    assert errors == []
    assert sorted(created for _account, created in results) == [False, False, False, True]
    assert {account.pk for account, _created in results} == set(LinkedAccount.objects.values_list("pk", flat=True))
    assert LinkedAccount.objects.get().token.generation == 4
