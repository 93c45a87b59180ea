"""Benchmark of the token hot path and of a refresh storm (``make bench``).

Prints a table:

* the median time of ``get_access_token()`` on a fresh token against bare ORM fetches of the
  same row (target: at most 1.25x, decryption included);
* the SQL queries of that hot path (target: 1);
* a refresh storm: N concurrent callers of one expired token against a real token server on
  127.0.0.1 that answers in 200 ms -> token endpoint calls (target: 1) and wall time against
  one provider round trip.

Runs from the repository root on SQLite (a temporary file) by default, on PostgreSQL when
``DATABASE_URL`` is set (a ``test_<name>`` database is created and dropped, as the tests do).
A benchmark, not a test: it reports and exits 0 whatever it measures.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=2000, help="hot-path calls per sample (default 2000)")
    parser.add_argument("--rounds", type=int, default=7, help="samples per contender, interleaved (default 7)")
    parser.add_argument("--callers", type=int, default=32, help="concurrent callers in the storm (default 32)")
    parser.add_argument("--delay", type=float, default=0.2, help="token endpoint answer time, seconds (default 0.2)")
    args = parser.parse_args()

    with bench_environment(delay=args.delay) as fake:
        rows = run(args, fake)
    print_table(rows, "token benchmark", f"({args.rounds} interleaved samples of {args.calls} calls each; medians)")


@contextlib.contextmanager
def bench_environment(**fake_options: float) -> Iterator:
    """Django on a throwaway test database, and the fake provider on 127.0.0.1 with BIGOAUTH pointing at it.

    SQLite in a temporary file (so that threads share the database as a real site's would), or
    ``DATABASE_URL``'s server, where a ``test_<name>`` database is created and dropped.
    """
    import django
    from django.conf import settings

    tmpdir = tempfile.TemporaryDirectory(prefix="bigoauth-bench-")
    database = settings.DATABASES["default"]
    if database["ENGINE"].endswith("sqlite3"):
        database["TEST"] = {"NAME": str(Path(tmpdir.name) / "bench.sqlite3")}
    django.setup()

    from django.db import connection
    from django.test.utils import override_settings

    from tests.fakeprovider import FakeProvider, bigoauth_settings_for

    old_name = connection.creation.create_test_db(verbosity=0, autoclobber=True, serialize=False)
    fake = FakeProvider(**fake_options).start()
    try:
        with override_settings(BIGOAUTH=bigoauth_settings_for(fake)):
            yield fake
    finally:
        fake.stop()
        connection.creation.destroy_test_db(old_name, verbosity=0)
        tmpdir.cleanup()


def run(args: argparse.Namespace, fake) -> list[tuple[str, str, str]]:
    from django.db import connection
    from django.db.models import TextField
    from django.db.models.functions import Cast
    from django.test.utils import CaptureQueriesContext
    from django.utils import timezone

    from django_bigoauth import client, crypto
    from django_bigoauth.models import LinkedAccount, Token

    account = LinkedAccount.objects.create(provider="bigin", external_id="bench", api_domain=fake.url)
    Token.objects.create(
        account=account,
        access_token="1000." + "a" * 64,
        refresh_token=fake.issue_refresh_token(),
        expires_at=timezone.now() + timedelta(hours=1),
    )
    pk = account.pk
    ciphertext = Token.objects.filter(account_id=pk).values_list(Cast("access_token", TextField()), flat=True).get()

    contenders = {
        "get_access_token()": lambda: account.get_access_token(),
        "Token.objects.get(account_id=...)": lambda: Token.objects.get(account_id=pk),
        "same row, ciphertext only": lambda: (
            Token.objects.filter(account_id=pk).values_list(Cast("access_token", TextField()), "expires_at").get()
        ),
        "decryption alone": lambda: crypto.decrypt(ciphertext),
    }
    medians = interleaved_medians(contenders, args.calls, args.rounds)
    ours, orm, raw, decrypt = (medians[name] for name in contenders)

    with CaptureQueriesContext(connection) as queries:
        account.get_access_token()
    requests_before = len(fake.requests)
    account.get_access_token()
    hot_path_http = len(fake.requests) - requests_before

    # One provider round trip, measured the way a refresh makes it.
    provider = account.provider_instance
    started = time.perf_counter()
    client.refresh(provider, fake.issue_refresh_token())
    round_trip = time.perf_counter() - started

    Token.objects.filter(account_id=pk).update(expires_at=timezone.now() - timedelta(minutes=5))
    calls_before = fake.refresh_calls()
    wall, errors = storm(pk, args.callers)
    storm_calls = fake.refresh_calls() - calls_before

    return [
        ("get_access_token(), fresh token (median)", f"{ours:.1f} µs", ""),
        ("Token.objects.get(account_id=...) (median)", f"{orm:.1f} µs", f"ratio {ours / orm:.2f}x (target <= 1.25x)"),
        ("same row, ciphertext only, no decryption", f"{raw:.1f} µs", f"ratio {ours / raw:.2f}x"),
        ("Fernet decryption of the access token", f"{decrypt:.1f} µs", f"{decrypt / ours:.0%} of the hot path"),
        ("hot path: SQL queries", str(len(queries.captured_queries)), "target 1"),
        ("hot path: HTTP requests", str(hot_path_http), "target 0"),
        (f"storm: {args.callers} callers -> token endpoint calls", str(storm_calls), "target 1"),
        ("storm: failed callers", str(errors), "target 0"),
        ("storm: wall time", f"{wall * 1000:.0f} ms", f"{wall / round_trip:.2f}x one round trip"),
        ("one provider round trip", f"{round_trip * 1000:.0f} ms", f"token endpoint delay {args.delay * 1000:.0f} ms"),
    ]


def interleaved_medians(contenders: dict, calls: int, rounds: int) -> dict[str, float]:
    """Median microseconds per call; rounds alternate between contenders so noise hits all alike."""
    samples: dict[str, list[float]] = {name: [] for name in contenders}
    for function in contenders.values():
        for _ in range(200):
            function()  # warm caches, connections and the ORM's query compilation paths
    for _ in range(rounds):
        for name, function in contenders.items():
            timings = []
            for _ in range(calls):
                started = time.perf_counter_ns()
                function()
                timings.append(time.perf_counter_ns() - started)
            samples[name].append(statistics.median(timings) / 1000)
    return {name: statistics.median(values) for name, values in samples.items()}


def storm(account_pk: int, callers: int) -> tuple[float, int]:
    """``callers`` threads call ``get_access_token()`` at once; returns (wall seconds, failures)."""
    from django.db import connection

    from django_bigoauth.models import LinkedAccount

    accounts = [LinkedAccount.objects.get(pk=account_pk) for _ in range(callers)]
    barrier = threading.Barrier(callers + 1)
    failures = []

    def caller(account) -> None:
        try:
            barrier.wait()
            account.get_access_token()
        except Exception as exc:  # noqa: BLE001 - counted and reported
            failures.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=caller, args=(account,)) for account in accounts]
    for thread in threads:
        thread.start()
    barrier.wait()
    started = time.perf_counter()
    for thread in threads:
        thread.join()
    return time.perf_counter() - started, len(failures)


def print_table(rows: list[tuple[str, ...]], title: str, subtitle: str) -> None:
    """``rows`` as aligned columns, under a line naming the database, Django and Python."""
    import django
    from django.db import connection

    python = sys.version.split()[0]
    print(f"django_bigoauth {title} - {connection.vendor}, Django {django.get_version()}, Python {python}")
    print(subtitle)
    widths = [max(len(row[column]) for row in rows) for column in range(len(rows[0]))]
    print("-" * (sum(widths) + 2 * len(widths) + 30))
    for row in rows:
        values = [cell.rjust(width) for cell, width in zip(row[1:-1], widths[1:-1], strict=True)]
        print("  ".join([row[0].ljust(widths[0]), *values, row[-1]]))


if __name__ == "__main__":
    main()
