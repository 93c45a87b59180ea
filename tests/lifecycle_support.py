"""Helpers for the token-lifecycle tests: concurrent callers (threads or processes) and raw rows."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from django.db import connection
from django.db.models import TextField
from django.db.models.functions import Cast

REPO_ROOT = Path(__file__).resolve().parent.parent
WORKER = Path(__file__).resolve().parent / "lifecycle_worker.py"


#: Django's vendor names of the databases with row locks (``SELECT ... FOR UPDATE``); "mysql" is MariaDB too.
ROW_LOCKS = ("postgresql", "mysql")


def require_vendor(vendors: str | tuple[str, ...], why: str) -> None:
    """Skip the running test unless the test database is ``vendors`` (one name, or a tuple of them)."""
    wanted = (vendors,) if isinstance(vendors, str) else tuple(vendors)
    if connection.vendor not in wanted:
        pytest.skip(
            f"{why} (needs {' or '.join(wanted)}; this run uses {connection.vendor}: set DATABASE_URL to switch)"
        )


def end_other_sessions() -> None:
    """End every other session on the test database, so a hung test fails instead of hanging its teardown."""
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
        elif connection.vendor == "mysql":
            # KILL takes one literal id, so first find them.
            cursor.execute(
                "SELECT id FROM information_schema.processlist WHERE db = DATABASE() AND id <> CONNECTION_ID()"
            )
            for (session_id,) in cursor.fetchall():
                cursor.execute(f"KILL {int(session_id)}")


def closed_port_url() -> str:
    """A loopback URL nothing listens on: connecting to it fails at once."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def raw_token_row(account) -> tuple:
    """The stored token exactly as the database holds it: ciphertext, not plaintext."""
    from django_bigoauth.models import Token

    return (
        Token.objects.filter(account_id=account.pk)
        .values_list(
            Cast("access_token", TextField()),
            Cast("refresh_token", TextField()),
            "expires_at",
            "generation",
            "token_type",
            "scope",
            "refreshed_at",
        )
        .get()
    )


def run_in_threads(count: int, call: Callable[[], Any], timeout: float = 60) -> tuple[list[Any], list[BaseException]]:
    """Start ``count`` threads that call ``call`` at the same moment; ``(results, errors)``.

    Each thread closes its own database connection when done, as a web server's would.
    """
    barrier = threading.Barrier(count)
    results: list[Any] = []
    errors: list[BaseException] = []
    guard = threading.Lock()

    def worker() -> None:
        try:
            barrier.wait(timeout)
            value = call()
            with guard:
                results.append(value)
        except BaseException as exc:  # noqa: BLE001 - every failure is reported to the test
            with guard:
                errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=worker, daemon=True) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout)
    assert not any(thread.is_alive() for thread in threads), "a caller hung"
    return results, errors


def start_processes(
    count: int,
    account_id: int,
    bigoauth: dict,
    tmp_path: Path,
    *,
    threads: int = 1,
    action: str = "get_access_token",
    coroutines: int = 0,
    timeout: float = 90,
) -> list[subprocess.Popen]:
    """Start ``count`` worker processes (``tests/lifecycle_worker.py``) and let them go at once.

    Each sets Django up against the test database and the given ``BIGOAUTH``, starts ``threads``
    threads, says it is ready, and waits for a go file, so that every call starts within a few
    milliseconds of the others. ``action``: ``get_access_token``, ``session_get`` (one API call
    through ``account.session()``) or ``refresh`` (a forced refresh). ``coroutines``: as many
    callers of ``aget_access_token()`` on one event loop of each process, going at the same
    moment as its threads. Returns the processes.
    """
    settings_dict = connection.settings_dict
    config = {
        # OPTIONS too: MariaDB's charset, PostgreSQL's isolation level and the like.
        "database": {
            key: settings_dict[key] for key in ("ENGINE", "NAME", "USER", "PASSWORD", "HOST", "PORT", "OPTIONS")
        },
        "bigoauth": bigoauth,
        "account_id": account_id,
        "threads": threads,
        "coroutines": coroutines,
        "action": action,
        "ready_dir": str(tmp_path),
        "go_file": str(tmp_path / "go"),
    }
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO_ROOT), os.environ.get("PYTHONPATH", "")])}
    env.pop("DJANGO_SETTINGS_MODULE", None)
    processes = [
        subprocess.Popen(
            [sys.executable, str(WORKER), json.dumps(config), str(index)],
            cwd=REPO_ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for index in range(count)
    ]
    try:
        deadline = time.monotonic() + timeout
        while len(list(tmp_path.glob("ready-*"))) < count:
            failed = [p for p in processes if p.poll() not in (None, 0)]
            if failed:
                raise AssertionError(f"a worker died while starting: {failed[0].communicate()[1][-2000:]}")
            assert time.monotonic() < deadline, "workers did not start in time"
            time.sleep(0.01)
    except BaseException:
        for process in processes:
            process.kill()
        raise
    (tmp_path / "go").touch()
    return processes


def collect(processes: list[subprocess.Popen], timeout: float = 90) -> tuple[list[str], list[str]]:
    """Wait for the workers; ``(results, errors)`` over every thread of every process."""
    results: list[str] = []
    errors: list[str] = []
    try:
        for process in processes:
            out, err = process.communicate(timeout=timeout)
            assert process.returncode == 0, err[-2000:]
            report = json.loads(out.strip().splitlines()[-1])
            results += report["results"]
            errors += report["errors"]
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
    return results, errors


def run_in_processes(
    count: int, account_id: int, bigoauth: dict, tmp_path: Path, *, threads: int = 1, action: str = "get_access_token"
) -> tuple[list[str], list[str]]:
    """``count`` processes x ``threads`` threads doing ``action`` on one account at once; ``(results, errors)``."""
    return collect(start_processes(count, account_id, bigoauth, tmp_path, threads=threads, action=action))


def overwrite_token(account, **values) -> None:
    """Write token columns directly, as a key change or a provider-side change would leave them.

    Encrypted columns are sealed to ``account``, as ``django_bigoauth.store`` does; a test
    that wants a ciphertext from elsewhere copies raw column values instead.
    """
    from django_bigoauth.crypto import Sealed
    from django_bigoauth.models import Token

    sealed = {
        name: Sealed(value, owner=account.pk, field=name) if name in Token.ENCRYPTED_FIELDS and value else value
        for name, value in values.items()
    }
    assert Token.objects.filter(account=account).update(**sealed) == 1
