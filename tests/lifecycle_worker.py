"""One caller of ``get_access_token()`` in a process of its own (see lifecycle_support.run_in_processes).

Usage: ``python tests/lifecycle_worker.py '<json config>' <index>``. Prints one JSON line.
"""

from __future__ import annotations

import json
import os
import sys
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

    account = LinkedAccount.objects.get(pk=config["account_id"])
    connection.ensure_connection()  # connect now, not in the timed part
    Path(config["ready_dir"], f"ready-{index}").touch()
    go = Path(config["go_file"])
    while not go.exists():
        time.sleep(0.002)
    try:
        report = {"token": account.get_access_token()}
    except Exception as exc:  # noqa: BLE001 - the test wants to see every failure
        report = {"error": f"{type(exc).__name__}: {exc}"}
    connection.close()
    print(json.dumps(report))


if __name__ == "__main__":
    main()
