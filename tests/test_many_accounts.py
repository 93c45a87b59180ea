"""Ten thousand linked accounts: the admin's lists cost the same queries as with ten, the commands stream.

Marked ``slow``: the accounts are made once per test with ``tests.many_accounts`` (bulk inserts,
one seal per token value: a few seconds). ``benchmarks/bench_admin.py`` times the same pages.
"""

from __future__ import annotations

import io
import re
import tracemalloc
from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from django_bigoauth.admin import LinkedAccountAdmin, TokenAdmin
from django_bigoauth.models import LinkedAccount, Token
from tests.many_accounts import create_accounts

pytestmark = pytest.mark.slow

ACCOUNTS = reverse("admin:django_bigoauth_linkedaccount_changelist")
TOKENS = reverse("admin:django_bigoauth_token_changelist")
# The list as an operator uses it: plain, filtered, searched (by owner, label, external id), sorted, paged.
VIEWS = [
    (ACCOUNTS, {}),
    (ACCOUNTS, {"provider": "bigin"}),
    (ACCOUNTS, {"status__exact": "needs_reauth"}),
    (ACCOUNTS, {"provider": "biggerplate", "status__exact": "active"}),
    (ACCOUNTS, {"q": "bulk-owner-7"}),
    (ACCOUNTS, {"q": "Organisation"}),
    (ACCOUNTS, {"q": "bulk-12"}),
    (ACCOUNTS, {"o": "-1"}),
    (ACCOUNTS, {"p": "1"}),
    (TOKENS, {}),
    (TOKENS, {"o": str(TokenAdmin.list_display.index("expiry"))}),
    (TOKENS, {"o": f"-{TokenAdmin.list_display.index('expiry')}"}),
]
PAGE_SIZES = (10, 100)


def query_counts(client, monkeypatch) -> dict[tuple, int]:
    counts = {}
    for page_size in PAGE_SIZES:
        monkeypatch.setattr(LinkedAccountAdmin, "list_per_page", page_size)
        monkeypatch.setattr(TokenAdmin, "list_per_page", page_size)
        for url, params in VIEWS:
            with CaptureQueriesContext(connection) as captured:
                response = client.get(url, params)
            assert response.status_code == 200, (url, params)
            counts[(page_size, url, tuple(params.items()))] = len(captured.captured_queries)
    return counts


def test_the_admin_lists_make_the_same_queries_for_ten_accounts_or_ten_thousand(admin_client, db, monkeypatch):
    create_accounts(10)
    with_ten = query_counts(admin_client, monkeypatch)
    create_accounts(9_990, prefix="more")
    assert LinkedAccount.objects.count() == 10_000
    with_ten_thousand = query_counts(admin_client, monkeypatch)

    assert with_ten_thousand == with_ten
    # ...and whatever the page size: ten rows or a hundred, the same queries.
    for (page_size, url, params), count in with_ten_thousand.items():
        assert count == with_ten_thousand[(PAGE_SIZES[0], url, params)], (page_size, url, params)


def test_the_bulk_accounts_are_real_ones(db):
    """Owner keys filled and tokens sealed to their own rows by bulk_create, as save() would."""
    create_accounts(200)
    fresh = (
        LinkedAccount.objects.filter(status="active", token__expires_at__gt=timezone.now() + timedelta(minutes=30))
        .exclude(user=None)
        .first()
    )
    assert fresh is not None and fresh.owner_key == f"user:{fresh.user_id}"
    assert fresh.get_access_token() == f"1000.bulk.access.{int(fresh.external_id.rsplit('-', 1)[1]):08d}"
    assert LinkedAccount.objects.filter(user=None).first().owner_key == "site"
    assert Token.objects.count() == LinkedAccount.objects.exclude(status="revoked").count()


class Lines(io.TextIOBase):
    """A stdout that counts lines and keeps none: what a pipe to ``less`` would hold of them."""

    def __init__(self):
        self.lines = 0

    def write(self, text: str) -> int:
        self.lines += text.count("\n")
        return len(text)


def peak_memory_of_listing() -> tuple[int, int]:
    out = Lines()
    tracemalloc.start()
    call_command("bigoauth_accounts", stdout=out)
    _current, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return out.lines, peak


def test_bigoauth_accounts_streams_ten_thousand_rows_in_bounded_queries_and_flat_memory(db):
    create_accounts(1_000)
    lines, peak_with_1000 = peak_memory_of_listing()
    assert lines == 1 + 1_000
    create_accounts(9_000, prefix="more")
    lines, peak_with_10000 = peak_memory_of_listing()
    assert lines == 1 + 10_000
    # Ten times the accounts, about the same memory: one batch of rows at a time.
    assert peak_with_10000 < 1.3 * peak_with_1000, (peak_with_1000, peak_with_10000)

    out = StringIO()
    with CaptureQueriesContext(connection) as captured:
        call_command("bigoauth_accounts", "--provider", "bigin", stdout=out)
    rows = [q["sql"] for q in captured.captured_queries if "django_bigoauth_token" in q["sql"]]
    bigin = LinkedAccount.objects.filter(provider="bigin").count()
    assert len(out.getvalue().splitlines()) == 1 + bigin
    assert len(rows) == bigin // 500 + 1 and all(re.search(r"LIMIT 500\b", sql) for sql in rows)


def test_the_token_list_sorts_ids_not_ciphertext(admin_client, db, monkeypatch):
    """The sorted query reads ids only; the ciphertext (for the masked prefixes) is read for the page's rows."""
    create_accounts(30)
    monkeypatch.setattr(TokenAdmin, "list_per_page", 10)
    for params in ({}, {"o": str(TokenAdmin.list_display.index("expiry"))}, {"p": "2"}):
        with CaptureQueriesContext(connection) as captured:
            response = admin_client.get(TOKENS, params)
        assert response.status_code == 200 and len(response.context["cl"].result_list) == 10
        sorted_reads = [q["sql"] for q in captured.captured_queries if "ORDER BY" in q["sql"]]
        assert sorted_reads and all("access_token" not in sql for sql in sorted_reads), sorted_reads
        page = [q["sql"] for q in captured.captured_queries if "access_token" in q["sql"]]
        assert len(page) == 1 and "ORDER BY" not in page[0]
        assert "1000…" in response.content.decode()  # the masked prefixes are there


def token_list_in_full(admin_client, params: dict[str, str]) -> tuple[list[int], tuple]:
    """Every token of the list, page after page (account ids, in order), and the order it was sorted by."""
    seen: list[int] = []
    page = 1
    while True:
        response = admin_client.get(TOKENS, {**params, "p": str(page)})
        assert response.status_code == 200
        changelist = response.context["cl"]
        seen += [token.account_id for token in changelist.result_list]
        if page >= changelist.paginator.num_pages:
            return seen, changelist.queryset.query.order_by
        page += 1


def test_the_token_list_pages_in_a_total_order_an_index_can_serve(admin_client, db, monkeypatch):
    """No token shown twice or skipped across pages, by default in expiry order, which an index serves.

    Django would end the order on ``-pk`` after the admin's default order: ``expires_at, -id``
    cannot be read through the expiry index, and MariaDB sorted all ten thousand tokens for
    each page (``benchmarks/bench_admin.py``).
    """
    create_accounts(400)  # expiries repeat every 180 accounts: ties to break
    monkeypatch.setattr(TokenAdmin, "list_per_page", 50)
    tokens = Token.objects.select_related("account")
    expiry = str(TokenAdmin.list_display.index("expiry"))

    by_default, order_by = token_list_in_full(admin_client, {})
    assert order_by == ("expires_at", "pk")
    by_expiry, order_by = token_list_in_full(admin_client, {"o": expiry})
    assert order_by == ("expires_at", "pk")
    assert by_default == by_expiry == [t.account_id for t in tokens.order_by("expires_at", "pk")]

    latest_first, order_by = token_list_in_full(admin_client, {"o": f"-{expiry}"})
    assert order_by == ("-expires_at", "-pk")
    assert latest_first == [t.account_id for t in tokens.order_by("-expires_at", "-pk")]

    assert sorted(by_default) == sorted(t.account_id for t in tokens)
    # Only the expiry sorts: a column of the account would sort every token on each page.
    for column in ("display_provider", "account_link", "token_type"):
        unsorted, order_by = token_list_in_full(admin_client, {"o": str(TokenAdmin.list_display.index(column))})
        assert order_by == ("expires_at", "pk") and unsorted == by_default, column
    page = admin_client.get(TOKENS).content.decode()
    assert page.count('class="sortable') == 1
