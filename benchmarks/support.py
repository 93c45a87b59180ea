"""What the benchmarks share: Django on a throwaway test database beside the strict fake provider, and tables.

Not a benchmark itself (``make bench`` runs ``bench_*.py`` only).
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")


@contextlib.contextmanager
def bench_environment(**fake_options: float) -> Iterator:
    """Django on a throwaway test database, and the fake provider on 127.0.0.1 with BIGOAUTH pointing at it.

    SQLite in a temporary file (so that threads and processes share the database as a real
    site's would), or ``DATABASE_URL``'s server, where a ``test_<name>`` database is created
    and dropped. Yields the started ``FakeProvider``.
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


def print_table(rows: list[tuple[str, ...]], title: str, subtitle: str) -> None:
    """``rows`` (label, values..., note) as aligned columns, under a line naming the database, Django and Python."""
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


API_SERVER = """
import asyncio, socket, sys

delay = float(sys.argv[1])
OK = b'{"org": [{"id": "bench"}]}'
REFUSED = b'{"code": "INVALID_TOKEN"}'


def reply(status, body):
    head = f"HTTP/1.1 {status}\\r\\nContent-Type: application/json\\r\\nContent-Length: {len(body)}\\r\\n\\r\\n"
    return head.encode() + body


async def serve(reader, writer):
    writer.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    try:
        while True:
            head = await reader.readuntil(b"\\r\\n\\r\\n")
            await asyncio.sleep(delay)
            ok = b"\\r\\nauthorization: zoho-oauthtoken " in head.lower()
            writer.write(reply("200 OK", OK) if ok else reply("401 Unauthorized", REFUSED))
            await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError):
        writer.close()


async def main():
    server = await asyncio.start_server(serve, "127.0.0.1", 0, backlog=1024)
    print(server.sockets[0].getsockname()[1], flush=True)
    await server.serve_forever()


asyncio.run(main())
"""


@contextlib.contextmanager
def api_in_another_process(delay: float) -> Iterator[str]:
    """An API on 127.0.0.1 that answers every request after ``delay`` seconds, served by another process.

    Not the fake provider's in-process API: its threads would share this process's GIL with the
    client being measured, and ``http.server`` spends about a millisecond of Python per request,
    so 200 concurrent requests would measure the server, not the client. This one is asyncio
    with a fixed reply (tens of microseconds per request) and TCP_NODELAY. It accepts any
    ``Zoho-oauthtoken`` header: which token is not what is measured here.
    """
    import subprocess

    process = subprocess.Popen([sys.executable, "-c", API_SERVER, str(delay)], stdout=subprocess.PIPE, text=True)
    try:
        port = int(process.stdout.readline())
        yield f"http://127.0.0.1:{port}"
    finally:
        process.kill()
        process.wait()


def servers(database_name: str) -> dict[str, str]:
    """Database URL per name: SQLite always; PostgreSQL and MariaDB on 127.0.0.1 when they answer.

    ``database_name`` names the user database in the URLs (Django creates and drops
    ``test_<name>`` there); ``DATABASE_URL`` adds a column of its own.
    """
    import socket

    found = {"SQLite": "sqlite://"}
    for name, scheme, port, module in (
        ("PostgreSQL", "postgres://postgres", 5432, "psycopg"),
        ("MariaDB", "mysql://root", 3306, "MySQLdb"),
    ):
        try:
            __import__(module)
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
        except (ImportError, OSError):
            print(f"{name}: not measured (no server on 127.0.0.1:{port} or no {module})", file=sys.stderr)
            continue
        found[name] = f"{scheme}@127.0.0.1:{port}/{database_name}"
    if os.environ.get("DATABASE_URL"):
        found["DATABASE_URL"] = os.environ["DATABASE_URL"]
    return found


def measure_on_every_database(script: str, arguments: list[str], database_name: str) -> dict[str, dict]:
    """Run ``script --child *arguments`` once per database of :func:`servers`; its last stdout line, as JSON.

    A failed child becomes ``{"error": its last line of stderr}``, so one database down does not
    stop the table.
    """
    import json
    import subprocess

    columns: dict[str, dict] = {}
    for name, url in servers(database_name).items():
        print(f"measuring on {name}...", file=sys.stderr, flush=True)
        child = subprocess.run(
            [sys.executable, script, "--child", *arguments],
            env={**os.environ, "DATABASE_URL": url},
            capture_output=True,
            text=True,
            cwd=ROOT,
        )
        if child.returncode != 0:
            last = child.stderr.strip().splitlines()[-1] if child.stderr.strip() else "failed"
            columns[name] = {"error": last}
            continue
        columns[name] = json.loads(child.stdout.strip().splitlines()[-1])
    return columns
