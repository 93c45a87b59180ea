"""Benchmark of the admin's lists with ten thousand linked accounts against the same pages with ten (``make bench``).

For each database that answers (SQLite always; PostgreSQL on 127.0.0.1:5432 and MariaDB on
127.0.0.1:3306 when they answer and their drivers are installed; ``DATABASE_URL`` adds or
replaces one), a child process of this script (``--child``) creates a ``test_<name>``
database, links 10 accounts (``tests/many_accounts.py``: bulk inserts, every token sealed to
its row), renders each page below ``--rounds`` times as a signed-in superuser, then adds
9,990 accounts and renders them again. It prints, per page, the median time with 10,000
accounts as a ratio to the same page with 10 (target: under 2x) and the queries of each
(target: the same number). Pages show 10 rows, so that the page with 10 accounts is as full
as the one with 10,000; the last line shows the admin's default of 100 rows per page, which
renders ten times the rows of the 10-account page (one row costs about a quarter of a
millisecond).

A benchmark, not a test (the query counts are a test: ``tests/test_many_accounts.py``): it
reports and exits 0 whatever it measures.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

from support import measure_on_every_database

ACCOUNTS = "/admin/django_bigoauth/linkedaccount/"
TOKENS = "/admin/django_bigoauth/token/"
#: (label, path, query, rows per page). Ten per page, so that both sizes fill the page they are
#: compared on (as far as a filter or a search lets ten accounts); the admin's default hundred last.
#: A sort (``o``) names its column; the admin's query string numbers it (see ``sort_by_number``).
PAGES = (
    ("accounts", ACCOUNTS, {}, 10),
    ("accounts, filtered by provider and status", ACCOUNTS, {"provider": "bigin", "status__exact": "active"}, 10),
    ("accounts, searched by owner", ACCOUNTS, {"q": "owner-7"}, 10),
    ("accounts, searched by label", ACCOUNTS, {"q": "Organisation"}, 10),
    ("tokens (by expiry)", TOKENS, {}, 10),
    ("tokens, sorted by expiry, latest first", TOKENS, {"o": "-expiry"}, 10),
    ("accounts, 100 per page (more rows, not only more accounts)", ACCOUNTS, {}, 100),
)
SMALL, LARGE = 10, 10_000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=9, help="renders per page and size, median taken (default 9)")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(measure(args)))
        return
    columns = measure_on_every_database(__file__, ["--rounds", str(args.rounds)], "bench_admin")
    print_table(columns, args)


# -- one database (the child process) ---------------------------------------------------------


def measure(args: argparse.Namespace) -> dict:
    import django
    from django.conf import settings

    tmpdir = tempfile.TemporaryDirectory(prefix="bigoauth-bench-admin-")
    database = settings.DATABASES["default"]
    if database["ENGINE"].endswith("sqlite3"):
        database["TEST"] = {"NAME": str(Path(tmpdir.name) / "bench.sqlite3")}
    django.setup()

    from django.contrib.auth import get_user_model
    from django.db import connection
    from django.test import Client
    from django.test.utils import setup_test_environment

    from tests.many_accounts import create_accounts

    setup_test_environment()
    old_name = connection.creation.create_test_db(verbosity=0, autoclobber=True, serialize=False)
    try:
        client = Client()
        client.force_login(get_user_model().objects.create_superuser("bench-root", password="unused"))
        create_accounts(SMALL)
        analyse(connection)
        small = render_all(client, args.rounds)
        began = time.perf_counter()
        create_accounts(LARGE - SMALL, prefix="more")
        made_in = time.perf_counter() - began
        analyse(connection)
        large = render_all(client, args.rounds)
        result = {"vendor": connection.vendor, "small": small, "large": large, "made_s": made_in}
    finally:
        connection.creation.destroy_test_db(old_name, verbosity=0)
        tmpdir.cleanup()
    return result


def analyse(connection) -> None:
    """Fresh planner statistics, as a live database has them (autovacuum, or MariaDB's own sampling)."""
    tables = ("django_bigoauth_linkedaccount", "django_bigoauth_token", "auth_user")
    with connection.cursor() as cursor:
        if connection.vendor == "mysql":
            cursor.execute(f"ANALYZE TABLE {', '.join(tables)}")
            cursor.fetchall()
        else:
            cursor.execute("ANALYZE")


def render_all(client, rounds: int) -> dict[str, dict]:
    from django.contrib import admin
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from django_bigoauth.models import LinkedAccount, Token

    admins = {ACCOUNTS: admin.site._registry[LinkedAccount], TOKENS: admin.site._registry[Token]}
    results = {}
    for label, path, query, per_page in PAGES:
        query = sort_by_number(client, path, query)
        model_admin = admins[path]
        saved = model_admin.list_per_page
        model_admin.list_per_page = per_page
        try:
            for _ in range(3):
                assert client.get(path, query).status_code == 200  # warm up
            timings = []
            for _ in range(rounds):
                began = time.perf_counter()
                response = client.get(path, query)
                timings.append(time.perf_counter() - began)
                assert response.status_code == 200
            with CaptureQueriesContext(connection) as captured:
                response = client.get(path, query)
            rows = len(response.context["cl"].result_list)
        finally:
            model_admin.list_per_page = saved
        results[label] = {
            "ms": statistics.median(timings) * 1000,
            "queries": len(captured.captured_queries),
            "rows": rows,
        }
    return results


def sort_by_number(client, path: str, query: dict[str, str]) -> dict[str, str]:
    """``query`` with its ``o`` (a column's name, ``-`` for descending) as the changelist's column number."""
    if "o" not in query:
        return query
    columns = list(client.get(path).context["cl"].list_display)
    descending, name = query["o"].startswith("-"), query["o"].lstrip("-")
    return {**query, "o": f"{'-' if descending else ''}{columns.index(name)}"}


# -- the table ---------------------------------------------------------------------------------


def print_table(columns: dict[str, dict], args: argparse.Namespace) -> None:
    import django

    names = list(columns)
    print(f"django_bigoauth admin benchmark - Django {django.get_version()}, Python {sys.version.split()[0]}")
    print(f"(median of {args.rounds} renders; {LARGE:,} accounts against {SMALL}; target: under 2x, same queries)")
    for name in names:
        data = columns[name]
        if "error" in data:
            print(f"{name}: {data['error']}")
        else:
            print(f"{name}: {LARGE - SMALL:,} accounts with tokens made in {data['made_s']:.1f} s")
    rows = []
    for label, *_rest in PAGES:
        cells = []
        for name in names:
            data = columns[name]
            if "error" in data:
                cells.append("error")
                continue
            small, large = data["small"][label], data["large"][label]
            queries = (
                f"{small['queries']}"
                if small["queries"] == large["queries"]
                else (f"{small['queries']}->{large['queries']}")
            )
            cells.append(
                f"{large['ms'] / small['ms']:.2f}x ({small['ms']:.0f}->{large['ms']:.0f} ms, "
                f"{small['rows']}->{large['rows']} rows, {queries} q)"
            )
        rows.append((label, cells))
    label_width = max(len(label) for label, _cells in rows)
    widths = [max(len(name), *(len(cells[i]) for _l, cells in rows)) for i, name in enumerate(names)]
    header = "".ljust(label_width) + "  " + "  ".join(n.ljust(w) for n, w in zip(names, widths, strict=True))
    print(header)
    print("-" * len(header))
    for label, cells in rows:
        print(f"{label.ljust(label_width)}  " + "  ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)))


if __name__ == "__main__":
    main()
