"""Callers of one account in a process of their own (see ``lifecycle_support.start_processes``).

Usage: ``python tests/lifecycle_worker.py '<json config>' <index>``. Runs the configured number
of threads, each doing the configured action once, and (``coroutines``) as many coroutines on
one event loop calling ``aget_access_token()``; prints one JSON line:
``{"results": [...], "errors": [...]}``.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from pathlib import Path


def main() -> None:
    config = json.loads(sys.argv[1])
    index = sys.argv[2]
    os.environ["DJANGO_SETTINGS_MODULE"] = "tests.settings"

    import django
    from django.conf import settings

    # Before setup: point this process at the test database and the fake provider.
    settings.DATABASES["default"].update(config["database"])
    settings.DATABASES["default"]["TEST"] = {}
    settings.BIGOAUTH = config["bigoauth"]
    django.setup()

    from django.db import connection

    from django_bigoauth.models import LinkedAccount

    def act() -> str:
        account = LinkedAccount.objects.get(pk=config["account_id"])
        if config["action"] == "session_get":
            response = account.session().get("/bigin/v2/org" if account.provider == "bigin" else "/users/me")
            return f"HTTP {response.status_code}"
        if config["action"] == "refresh":
            return account.refresh()
        return account.get_access_token()

    results: list[str] = []
    errors: list[str] = []
    guard = threading.Lock()
    go = Path(config["go_file"])

    def worker() -> None:
        connection.ensure_connection()  # connect now, not in the timed part
        ready.wait()
        while not go.exists():
            time.sleep(0.002)
        try:
            value = act()
            with guard:
                results.append(value)
        except Exception as exc:  # noqa: BLE001 - the test wants to see every failure
            with guard:
                errors.append(f"{type(exc).__name__}: {exc}")
        finally:
            connection.close()

    def loop_worker() -> None:
        """``coroutines`` callers of ``aget_access_token()`` on one event loop, released by the go file too."""
        import asyncio

        from asgiref.sync import SyncToAsync

        async def one() -> None:
            try:
                account = await LinkedAccount.objects.aget(pk=config["account_id"])
                value = await account.aget_access_token()
                with guard:
                    results.append(value)
            except Exception as exc:  # noqa: BLE001 - the test wants to see every failure
                with guard:
                    errors.append(f"{type(exc).__name__}: {exc}")

        async def many() -> None:
            await asyncio.gather(*(one() for _ in range(config["coroutines"])))

        ready.wait()
        while not go.exists():
            time.sleep(0.002)
        try:
            asyncio.run(many())
        finally:
            SyncToAsync.single_thread_executor.submit(connection.close).result()

    threads = [threading.Thread(target=worker) for _ in range(config["threads"])]
    if config.get("coroutines"):
        threads.append(threading.Thread(target=loop_worker))
    ready = threading.Barrier(len(threads) + 1)
    for thread in threads:
        thread.start()
    ready.wait()
    Path(config["ready_dir"], f"ready-{index}").touch()
    for thread in threads:
        thread.join()
    print(json.dumps({"results": results, "errors": errors}), flush=True)


if __name__ == "__main__":
    main()
