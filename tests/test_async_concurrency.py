"""Exactly one refresh for coroutines, threads and processes at once, and an event loop that keeps ticking.

Against the strict fake provider on real 127.0.0.1 sockets, its token endpoint answering in
200 ms. With ``rotate_refresh_tokens`` it has reuse detection (RFC 9700 4.14.2): a refresh
token presented twice kills the whole grant, so a second refresh request would show as a dead
account (the API refuses the stored token). Run with ``DATABASE_URL`` set for PostgreSQL and
MariaDB.
"""

from __future__ import annotations

import asyncio
import gc
import threading
import time

import pytest
from asgiref.sync import sync_to_async
from django.db import connection

from django_bigoauth import tokens
from django_bigoauth.models import LinkedAccount, Token
from tests.conftest import close_async_orm_connections
from tests.fakeprovider import bigoauth_settings_for
from tests.lifecycle_support import ROW_LOCKS, collect, require_vendor, run_in_threads, start_processes
from tests.test_concurrency import assert_account_works, expired_account

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

COROUTINES = 64
#: The ticker's interval: a periodic task of a real site (a heartbeat, a progress update).
TICK = 0.010
#: How late a tick may be while the coroutines wait for the refresh.
MAX_LAG = 0.020

ROTATION = pytest.mark.parametrize(
    ("provider", "rotate"), [("bigin", False), ("biggerplate", True)], ids=["zoho", "rotating-with-reuse-detection"]
)


@pytest.fixture
def slow_fake(fake_provider):
    fake_provider.delay = 0.2
    return fake_provider


class Ticker:
    """A coroutine that sleeps ``TICK`` over and over and notes how late each wake-up was, and when.

    On a shared machine the kernel may leave the loop's thread waiting for a CPU when its timer
    is due (another process's doing, not the loop being blocked). Linux says how long, in
    ``/proc/thread-self/schedstat``; that wait is taken out of each tick's lateness. Whatever
    holds the loop up from inside the process (code running on it, a blocking call, the GIL held
    by another thread) is not a wait for a CPU, and stays counted.
    """

    def __init__(self) -> None:
        self.ticks: list[tuple[float, float, float, float]] = []  # (slept at, woke at, lateness, CPU wait)
        self._stop = asyncio.Event()

    async def run(self) -> None:
        while not self._stop.is_set():
            asleep, waited_before = time.perf_counter(), cpu_wait()
            await asyncio.sleep(TICK)
            woke, waited_after = time.perf_counter(), cpu_wait()
            self.ticks.append((asleep, woke, woke - asleep - TICK, waited_after - waited_before))

    def stop(self) -> None:
        self._stop.set()

    def lateness_between(self, start: float, end: float) -> list[tuple[float, float]]:
        """(lateness, of which waiting for a CPU) of the ticks asleep at any time from ``start`` to ``end``."""
        return [(late, waited) for asleep, woke, late, waited in self.ticks if woke >= start and asleep <= end]


def cpu_wait() -> float:
    """Seconds this thread has spent runnable but waiting for a CPU; 0 where Linux's schedstat is missing."""
    try:
        with open("/proc/thread-self/schedstat") as stat:
            return int(stat.read().split()[1]) / 1e9
    except (OSError, ValueError, IndexError):
        return 0.0


@ROTATION
@pytest.mark.asyncio
@pytest.mark.usefixtures("async_orm")
async def test_64_coroutines_share_one_refresh_and_the_loop_is_never_blocked(
    slow_fake, make_account, monkeypatch, provider, rotate
):
    slow_fake.rotate_refresh_tokens = rotate
    account = await sync_to_async(expired_account)(make_account, slow_fake, provider)
    accounts = [await LinkedAccount.objects.aget(pk=account.pk) for _ in range(COROUTINES)]
    leaders = []
    sync_refresh = tokens.refresh_token_now

    def counted_refresh(*args):
        leaders.append(threading.current_thread().name)
        return sync_refresh(*args)

    monkeypatch.setattr(tokens, "refresh_token_now", counted_refresh)
    # When the token request reached the provider, and when it was answered: the refresh window.
    window: dict[str, float] = {}
    real_handle = slow_fake.handle

    def timed_handle(server, method, path, *args):
        if path.endswith("/token"):
            window.setdefault("sent", time.perf_counter())
        reply = real_handle(server, method, path, *args)
        if path.endswith("/token"):
            window["answered"] = time.perf_counter()
        return reply

    monkeypatch.setattr(slow_fake, "handle", timed_handle)
    ticker = Ticker()
    ticking = asyncio.create_task(ticker.run())
    await asyncio.sleep(5 * TICK)
    # What the suite has left in memory so far is not scanned by the garbage collector meanwhile:
    # a full collection of a long test session's heap pauses any loop, whatever runs on it.
    gc.collect()
    gc.freeze()
    try:
        results = await asyncio.gather(*(each.aget_access_token() for each in accounts))
        done = time.perf_counter()
    finally:
        gc.unfreeze()
    await asyncio.sleep(2 * TICK)  # the tick asleep when the last coroutine got its token wakes up too
    ticker.stop()
    await ticking

    stored = await Token.objects.aget(account=account)
    assert results == [stored.access_token] * COROUTINES
    assert slow_fake.refresh_calls() == 1
    assert len(leaders) == 1, "the coroutines of one loop must wait on one future, not one thread each"
    assert leaders[0] != threading.current_thread().name  # the refresh ran off the loop
    # The lateness of the ticks while the 64 coroutines waited for the 200 ms refresh.
    ticks = ticker.lateness_between(window["sent"], max(window["answered"], done))
    assert len(ticks) >= 0.2 / (TICK + MAX_LAG), f"the ticker hardly ran: {len(ticks)} ticks"
    held_up = max(late - waited for late, waited in ticks)
    worst = max(ticks)
    assert held_up <= MAX_LAG, (
        f"the loop was blocked: a tick {held_up * 1000:.1f} ms late beyond waiting for a CPU "
        f"(the latest: {worst[0] * 1000:.1f} ms late, {worst[1] * 1000:.1f} ms of it waiting for a CPU)"
    )
    await sync_to_async(assert_account_works)(account, slow_fake)


@ROTATION
def test_coroutines_threads_and_processes_at_once_cost_one_refresh(slow_fake, make_account, tmp_path, provider, rotate):
    """2 processes (4 threads and 16 coroutines each) and this one (8 threads, 32 coroutines) on one expired token."""
    slow_fake.rotate_refresh_tokens = rotate
    account = expired_account(make_account, slow_fake, provider)
    processes = start_processes(
        2, account.pk, bigoauth_settings_for(slow_fake), tmp_path, threads=4, coroutines=16
    )  # they go as soon as this returns
    here: dict[str, list] = {}

    async def coroutines() -> None:
        async def one():
            return await (await LinkedAccount.objects.aget(pk=account.pk)).aget_access_token()

        here["coroutines"] = await asyncio.gather(*(one() for _ in range(32)), return_exceptions=True)

    def loop() -> None:
        try:
            asyncio.run(coroutines())
        finally:
            close_async_orm_connections()

    on_a_loop = threading.Thread(target=loop)
    on_a_loop.start()
    thread_results, thread_errors = run_in_threads(
        8, lambda: LinkedAccount.objects.get(pk=account.pk).get_access_token()
    )
    on_a_loop.join(60)
    process_results, process_errors = collect(processes)

    assert not on_a_loop.is_alive()
    assert thread_errors == [] and process_errors == []
    assert all(isinstance(value, str) for value in here["coroutines"]), here["coroutines"]
    stored = Token.objects.get(account=account).access_token
    assert thread_results + here["coroutines"] + process_results == [stored] * (8 + 32 + 2 * (4 + 16))
    assert slow_fake.refresh_calls() == 1
    assert_account_works(account, slow_fake)


def test_worker_threads_close_their_database_connections(slow_fake, make_account):
    """Refreshes and revokes run in the loop's worker threads; none leaves a connection open behind."""
    require_vendor(ROW_LOCKS, "counting a server's connections")
    accounts = [
        make_account("bigin", expires_in=-30, refresh_token=slow_fake.issue_refresh_token(), external_id=f"org-{n}")
        for n in range(8)
    ]
    for account in accounts[4:]:
        Token.objects.filter(account=account).update(expires_at=None)  # fresh: revoked below
    before = server_connections()

    async def work() -> None:
        await asyncio.gather(
            *(account.aget_access_token() for account in accounts[:4]),
            *(account.arevoke() for account in accounts[4:]),
        )

    asyncio.run(work())
    close_async_orm_connections()  # Django's async ORM thread: a request's end closes it in a site

    assert slow_fake.refresh_calls() == 4 and len(slow_fake.revoked) == 4
    assert server_connections() == before


def server_connections() -> int:
    """Connections to the test database the server knows of, this one included."""
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()")
        else:
            cursor.execute("SELECT count(*) FROM information_schema.processlist WHERE db = DATABASE()")
        return cursor.fetchone()[0]
