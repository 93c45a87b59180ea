"""Benchmark of API calls through ``asession()``, ``session()`` in threads and ``session()`` in a row (``make bench``).

200 calls to an API on 127.0.0.1 that answers each in 100 ms, made three ways:

* (a) ``account.asession()`` with ``asyncio.gather``: one event loop, one client;
* (b) ``account.session()`` in a pool of 32 threads, a session per thread;
* (c) ``account.session()``, one call after another.

For each: wall time against one API round trip measured in the same run, SQL queries per call
(in any thread), and token requests. Then the same with the token stale at the start: one token
request for all 200 calls is the target, and for (a) a wall time of at most two round trips and
one refresh (httpx keeps at most 100 connections per client, so 200 calls are two waves).
Baselines from the same run: one round trip, one refresh, and the 200 calls through a plain
``httpx.AsyncClient`` with the header set by hand, which is what (a) costs without this app.
The API runs in a process of its own, so that its threads do not compete with the client for
this process's GIL; the token endpoint is the strict in-process fake, which counts refreshes.

SQLite in a temporary file by default, ``DATABASE_URL``'s server otherwise (as ``bench_tokens.py``).
A benchmark, not a test: it reports and exits 0 whatever it measures.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import queue
import statistics
import threading
import time
from collections.abc import Callable, Iterator
from datetime import timedelta

from support import api_in_another_process, bench_environment, print_table

PATH = "/bigin/v2/org"
THREADS = 32


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=200, help="API calls per contender (default 200)")
    parser.add_argument("--api-delay", type=float, default=0.1, help="API answer time, seconds (default 0.1)")
    parser.add_argument("--delay", type=float, default=0.2, help="token endpoint answer time, seconds (default 0.2)")
    args = parser.parse_args()

    # The API is served by another process (its threads must not share this process's GIL with
    # the client being measured), with TCP_NODELAY as real servers have it and room for 200
    # pending connections. The token endpoint stays the strict in-process fake: it counts refreshes.
    from django.test.utils import override_settings

    from tests.fakeprovider import bigoauth_settings_for

    with bench_environment(delay=args.delay) as fake, api_in_another_process(args.api_delay) as api:
        config = bigoauth_settings_for(fake)
        # The fake names its own API domain in token replies: both are Bigin API domains here.
        config["PROVIDERS"]["bigin"]["API_DOMAINS"] = {"us": api, "eu": fake.api_url}
        with override_settings(BIGOAUTH=config):
            rows = run(args, fake, api)
    print_table(
        rows,
        f"async benchmark: {args.calls} API calls",
        f"(API answers in {args.api_delay * 1000:.0f} ms, token endpoint in {args.delay * 1000:.0f} ms; "
        "wall time over one API round trip measured in this run)",
    )


def run(args: argparse.Namespace, fake, api: str) -> list[tuple[str, ...]]:
    import requests
    from django.utils import timezone

    from django_bigoauth import client
    from django_bigoauth.models import LinkedAccount, Token

    account = LinkedAccount.objects.create(provider="bigin", external_id="bench", api_domain=api)
    Token.objects.create(
        account=account,
        access_token="1000.access.bench",
        refresh_token=fake.issue_refresh_token(),
        expires_at=timezone.now() + timedelta(hours=1),
    )
    headers = {"Authorization": "Zoho-oauthtoken 1000.access.bench"}
    round_trip = median_seconds(lambda: requests.get(f"{api}{PATH}", headers=headers, timeout=10), 5)
    provider = account.provider_instance
    refresh = median_seconds(lambda: client.refresh(provider, fake.issue_refresh_token()), 3)
    plain_httpx(f"{api}{PATH}", headers, 10)  # warms httpx, asyncio and the server up for (a) too
    started = time.perf_counter()
    plain = plain_httpx(f"{api}{PATH}", headers, args.calls)
    httpx_wall = time.perf_counter() - started

    contenders: dict[str, Callable[[int], list[int]]] = {
        "(a) asession() + asyncio.gather": gathered,
        f"(b) session() in {THREADS} threads": in_threads,
        "(c) session(), one after another": one_after_another,
    }
    rows = [("", "wall", "/ round trip", "SQL/call", "token requests", "")]
    walls: dict[tuple[str, bool], float] = {}
    for stale in (False, True):
        rows.append(("token stale at the start" if stale else "token fresh", "", "", "", "", ""))
        for name, contender in contenders.items():
            expires = timezone.now() + (timedelta(minutes=-5) if stale else timedelta(hours=1))
            Token.objects.filter(account=account).update(expires_at=expires)
            row, walls[name, stale] = measure(name, contender, account.pk, args.calls, fake, round_trip, refresh, stale)
            rows.append(row)
    ours = walls["(a) asession() + asyncio.gather", False]
    rows += [
        ("baselines", "", "", "", "", ""),
        ("  one API round trip", f"{round_trip * 1000:.0f} ms", "1.00x", "", "", ""),
        ("  one refresh", f"{refresh * 1000:.0f} ms", f"{refresh / round_trip:.2f}x", "", "1", ""),
        (
            "  plain httpx.AsyncClient + gather",
            f"{httpx_wall * 1000:.0f} ms",
            f"{httpx_wall / round_trip:.2f}x",
            "0",
            "0",
            f"the same calls, token by hand ({plain.count(200)} x 200); (a) fresh = {ours / httpx_wall:.2f}x this",
        ),
    ]
    ours_us, plain_us = client_cost(account.pk, f"{api}{PATH}", headers)
    rows.append(
        (
            "  per request, no network",
            f"{ours_us:.0f} µs",
            "",
            "",
            "",
            f"asession(); a plain httpx.AsyncClient {plain_us:.0f} µs (httpx.MockTransport, {CLIENT_COST_CALLS} calls)",
        )
    )
    return rows


CLIENT_COST_CALLS = 2000


def client_cost(account_pk: int, url: str, headers: dict[str, str]) -> tuple[float, float]:
    """Microseconds per request on the client side, asession() and plain httpx, with no network at all."""
    import httpx
    from asgiref.sync import SyncToAsync
    from django.db import connections

    from django_bigoauth.models import LinkedAccount

    transport = httpx.MockTransport(lambda request: httpx.Response(200, json={"ok": True}))

    async def per_request(client: httpx.AsyncClient, target: str, **kwargs: object) -> float:
        async with client:
            await client.get(target, **kwargs)  # the token is read once, outside the timing
            started = time.perf_counter()
            for _ in range(CLIENT_COST_CALLS):
                await client.get(target, **kwargs)
            return (time.perf_counter() - started) / CLIENT_COST_CALLS * 1e6

    async def main() -> tuple[float, float]:
        account = await LinkedAccount.objects.aget(pk=account_pk)
        ours = await per_request(account.asession(transport=transport), PATH)
        plain = await per_request(httpx.AsyncClient(transport=transport), url, headers=headers)
        return ours, plain

    try:
        return asyncio.run(main())
    finally:
        SyncToAsync.single_thread_executor.submit(connections.close_all).result()


def plain_httpx(url: str, headers: dict[str, str], calls: int) -> list[int]:
    """What (a) costs without django_bigoauth: a new client, the same calls, the header set by hand."""
    import httpx

    async def main() -> list[int]:
        async with httpx.AsyncClient(timeout=10) as http:
            responses = await asyncio.gather(*(http.get(url, headers=headers) for _ in range(calls)))
        return [response.status_code for response in responses]

    return asyncio.run(main())


def measure(name, contender, account_pk, calls, fake, round_trip, refresh, stale) -> tuple[tuple[str, ...], float]:
    refreshes_before = fake.refresh_calls()
    with all_statements() as statements:
        started = time.perf_counter()
        statuses = contender(account_pk, calls)
        wall = time.perf_counter() - started
    refreshes = fake.refresh_calls() - refreshes_before
    failed = sum(status != 200 for status in statuses) + calls - len(statuses)
    note = f"{failed} failed; " if failed else ""
    if stale and name.startswith("(a)"):
        target = 2 * round_trip + refresh
        note += f"target: 1 token request, wall <= 2 round trips + 1 refresh = {target * 1000:.0f} ms: "
        note += "met" if refreshes == 1 and wall <= target else "NOT met"
    cells = (f"  {name}", f"{wall * 1000:.0f} ms", f"{wall / round_trip:.2f}x", f"{len(statements) / calls:.3f}")
    return (*cells, str(refreshes), note), wall


def gathered(account_pk: int, calls: int) -> list[int]:
    from asgiref.sync import SyncToAsync
    from django.db import connections

    from django_bigoauth.models import LinkedAccount

    async def main() -> list[int]:
        account = await LinkedAccount.objects.aget(pk=account_pk)
        async with account.asession() as api:
            responses = await asyncio.gather(*(api.get(PATH) for _ in range(calls)))
        return [response.status_code for response in responses]

    try:
        return asyncio.run(main())
    finally:
        SyncToAsync.single_thread_executor.submit(connections.close_all).result()


def in_threads(account_pk: int, calls: int) -> list[int]:
    from django.db import connection

    from django_bigoauth.models import LinkedAccount

    account = LinkedAccount.objects.get(pk=account_pk)
    work: queue.SimpleQueue[int] = queue.SimpleQueue()
    for number in range(calls):
        work.put(number)
    statuses: list[int] = []

    def worker() -> None:
        try:
            session = account.session()
            while True:
                try:
                    work.get_nowait()
                except queue.Empty:
                    return
                statuses.append(session.get(PATH).status_code)
        finally:
            connection.close()

    threads = [threading.Thread(target=worker) for _ in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return statuses


def one_after_another(account_pk: int, calls: int) -> list[int]:
    from django_bigoauth.models import LinkedAccount

    session = LinkedAccount.objects.get(pk=account_pk).session()
    return [session.get(PATH).status_code for _ in range(calls)]


@contextlib.contextmanager
def all_statements() -> Iterator[list[str]]:
    """Every SQL statement run meanwhile, in any thread (the async ORM has a thread of its own)."""
    from django.db.backends.utils import CursorWrapper

    statements: list[str] = []
    original = CursorWrapper._execute_with_wrappers

    def counting(cursor, sql, params, many, executor):
        statements.append(sql)
        return original(cursor, sql, params, many, executor)

    CursorWrapper._execute_with_wrappers = counting
    try:
        yield statements
    finally:
        CursorWrapper._execute_with_wrappers = original


def median_seconds(call: Callable[[], object], times: int) -> float:
    samples = []
    for _ in range(times):
        started = time.perf_counter()
        call()
        samples.append(time.perf_counter() - started)
    return statistics.median(samples)


if __name__ == "__main__":
    main()
