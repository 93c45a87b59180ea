"""Benchmark of the token hot path and of refresh storms, on every database that answers (``make bench``).

One table, a column per database (SQLite always; PostgreSQL on 127.0.0.1:5432 and MariaDB on
127.0.0.1:3306 when they answer and their drivers are installed; ``DATABASE_URL`` adds or
replaces one):

* the median time of ``get_access_token()`` on a fresh token as a ratio to a bare ORM fetch
  of the same row, measured in the same run (target: at most 1.25x, decryption included),
  and the SQL queries of that hot path (target: 1);
* refresh storms: P processes x T threads calling ``get_access_token()`` on one expired token
  against the strict fake provider on 127.0.0.1 (reuse detection on: a second refresh would
  kill the grant) answering in 200 ms -> token requests (target 1), failed callers (target 0),
  wall time as a multiple of one provider round trip.

Each database is measured by a child process of this script (``--child``), which creates and
drops a ``test_<name>`` database as the tests do. A benchmark, not a test: it reports and exits
0 whatever it measures.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

from support import bench_environment, measure_on_every_database

STORMS = ((4, 8), (4, 16))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=2000, help="hot-path calls per sample (default 2000)")
    parser.add_argument("--rounds", type=int, default=7, help="samples per contender, interleaved (default 7)")
    parser.add_argument("--delay", type=float, default=0.2, help="token endpoint answer time, seconds (default 0.2)")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(measure(args)))
        return
    columns = measure_on_every_database(
        __file__, ["--calls", str(args.calls), "--rounds", str(args.rounds), "--delay", str(args.delay)], "bench"
    )
    print_table(columns, args)


# -- one database (the child process) ---------------------------------------------------------


def measure(args: argparse.Namespace) -> dict:
    from django.db import connection

    with bench_environment(delay=args.delay, rotate_refresh_tokens=True) as fake:
        with tempfile.TemporaryDirectory(prefix="bigoauth-storms-") as folders:
            return {"vendor": connection.vendor, **hot_path(args, fake), **storms(fake, Path(folders))}


def hot_path(args: argparse.Namespace, fake) -> dict:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext
    from django.utils import timezone

    from django_bigoauth.models import LinkedAccount, Token

    account = LinkedAccount.objects.create(provider="biggerplate", external_id="hot")
    Token.objects.create(
        account=account,
        access_token="1000." + "a" * 64,
        refresh_token="unused",
        expires_at=timezone.now() + timedelta(hours=1),
    )
    pk = account.pk
    contenders = {
        "ours": lambda: account.get_access_token(),
        "orm": lambda: Token.objects.get(account_id=pk),
    }
    medians = interleaved_medians(contenders, args.calls, args.rounds)
    with CaptureQueriesContext(connection) as queries:
        account.get_access_token()
    requests_before = len(fake.requests)
    account.get_access_token()
    return {
        "hot_us": medians["ours"],
        "orm_us": medians["orm"],
        "hot_queries": len(queries.captured_queries),
        "hot_http": len(fake.requests) - requests_before,
    }


def storms(fake, tmp: Path) -> dict:
    from django.db import connection
    from django.utils import timezone

    from django_bigoauth import client
    from django_bigoauth.models import LinkedAccount, Token
    from django_bigoauth.providers import get_provider
    from tests.fakeprovider import bigoauth_settings_for
    from tests.lifecycle_support import collect, start_processes

    started = time.perf_counter()
    client.refresh(get_provider("biggerplate"), fake.issue_refresh_token())
    round_trip = time.perf_counter() - started
    result: dict = {"round_trip_ms": round_trip * 1000}
    for processes, threads in STORMS:
        account = LinkedAccount.objects.create(provider="biggerplate", external_id=f"storm-{processes}x{threads}")
        Token.objects.create(
            account=account,
            access_token="1000.access.stale",
            refresh_token=fake.issue_refresh_token(),
            expires_at=timezone.now() - timedelta(minutes=5),
        )
        calls_before = fake.refresh_calls()
        folder = tmp / f"storm-{processes}x{threads}"
        folder.mkdir()
        connection.close()
        workers = start_processes(processes, account.pk, bigoauth_settings_for(fake), folder, threads=threads)
        began = time.perf_counter()
        results, errors = collect(workers)
        wall = time.perf_counter() - began
        stored = Token.objects.get(account=account).access_token
        key = f"{processes}x{threads}"
        result[key] = {
            "token_requests": fake.refresh_calls() - calls_before,
            "failed": len(errors) + sum(token != stored for token in results),
            "wall_rtt": wall / round_trip,
            "alive": stored in fake.live_access_tokens,
        }
    return result


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
                began = time.perf_counter_ns()
                function()
                timings.append(time.perf_counter_ns() - began)
            samples[name].append(statistics.median(timings) / 1000)
    return {name: statistics.median(values) for name, values in samples.items()}


# -- the table ---------------------------------------------------------------------------------


def print_table(columns: dict[str, dict], args: argparse.Namespace) -> None:
    import django

    names = list(columns)
    rows: list[tuple[str, list[str], str]] = []

    def row(label: str, render, target: str) -> None:
        cells = []
        for name in names:
            data = columns[name]
            cells.append("error" if "error" in data else render(data))
        rows.append((label, cells, target))

    row("get_access_token(), fresh token (median)", lambda d: f"{d['hot_us']:.0f} µs", "")
    row("bare ORM fetch of the row (median)", lambda d: f"{d['orm_us']:.0f} µs", "baseline")
    row("hot path / ORM fetch", lambda d: f"{d['hot_us'] / d['orm_us']:.2f}x", "<= 1.25x")
    row("hot path: SQL queries", lambda d: str(d["hot_queries"]), "1")
    row("hot path: HTTP requests", lambda d: str(d["hot_http"]), "0")
    for processes, threads in STORMS:
        key = f"{processes}x{threads}"
        row(
            f"storm {processes} proc x {threads} threads: token requests",
            lambda d, k=key: str(d[k]["token_requests"]),
            "1",
        )
        row(f"storm {processes} proc x {threads} threads: failed callers", lambda d, k=key: str(d[k]["failed"]), "0")
        row(
            f"storm {processes} proc x {threads} threads: wall / round trip",
            lambda d, k=key: f"{d[k]['wall_rtt']:.1f}x",
            "process start-up excluded; exit included",
        )
        row(
            f"storm {processes} proc x {threads} threads: grant alive after",
            lambda d, k=key: str(d[k]["alive"]),
            "True",
        )
    row(
        "one provider round trip",
        lambda d: f"{d['round_trip_ms']:.0f} ms",
        f"endpoint delay {args.delay * 1000:.0f} ms",
    )

    print(f"django_bigoauth token benchmark - Django {django.get_version()}, Python {sys.version.split()[0]}")
    print(f"({args.rounds} interleaved samples of {args.calls} calls; medians; reuse detection on)")
    for name in names:
        if "error" in columns[name]:
            print(f"{name}: {columns[name]['error']}")
    label_width = max(len(label) for label, _cells, _target in rows)
    widths = [max(len(name), *(len(cells[i]) for _l, cells, _t in rows)) for i, name in enumerate(names)]
    header = "".ljust(label_width) + "  " + "  ".join(n.rjust(w) for n, w in zip(names, widths, strict=True))
    print(header + "  target")
    print("-" * (len(header) + 30))
    for label, cells, target in rows:
        line = "  ".join(cell.rjust(w) for cell, w in zip(cells, widths, strict=True))
        print(f"{label.ljust(label_width)}  {line}  {target}")


if __name__ == "__main__":
    main()
