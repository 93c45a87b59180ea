"""Serve the example project on a free loopback port, for tests that need the real site.

Run as a script (what :class:`ExampleSite` does)::

    python tests/e2e_server.py /tmp/somewhere/db.sqlite3
    python tests/e2e_server.py postgres://postgres@127.0.0.1:5432/example
    python tests/e2e_server.py --asgi /tmp/somewhere/db.sqlite3    # under uvicorn

It binds 127.0.0.1 on a port the OS picks (so parallel runs never collide), points
``SANDBOX_BASE_URL`` (and so the sandbox's issuer) at that port and makes the sandbox's signing
key before Django reads its settings, migrates the SQLite file,
runs ``demo_setup``, and serves with Django's threaded development server (the same server
class ``runserver`` uses; threads matter: the app's callback calls the sandbox's token
endpoint on this very server), or with ``--asgi`` under uvicorn (``demo_site.asgi``). It
prints ``READY <url>`` once it accepts requests.
"""

from __future__ import annotations

import os
import socketserver
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPOSITORY = Path(__file__).resolve().parent.parent
EXAMPLE_DIR = REPOSITORY / "example_project"
READY = "READY "


class ExampleSite:
    """The example project in a subprocess: ``with ExampleSite(env) as site: site.url``.

    ``env`` adds to (or overrides) the environment the site is started with; the database is
    always a fresh SQLite file in a temporary directory, and no ``.env`` file is read.
    ``asgi=True`` serves it under uvicorn instead of Django's WSGI development server.
    """

    def __init__(self, env: dict[str, str] | None = None, *, asgi: bool = False, startup_timeout: float = 90.0):
        self.extra_env = dict(env or {})
        self.asgi = asgi
        self.startup_timeout = startup_timeout
        self.url = ""
        self.process: subprocess.Popen | None = None
        self._tmp = tempfile.TemporaryDirectory(prefix="bigoauth-e2e-")
        self.database = Path(self._tmp.name) / "db.sqlite3"
        self.log_path = Path(self._tmp.name) / "server.log"

    def __enter__(self) -> ExampleSite:
        self.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self.stop()

    def start(self) -> None:
        env = {
            **os.environ,
            "DEMO_ENV_FILE": "",
            "DEBUG": "true",
            "PYTHONUNBUFFERED": "1",
            # The sandbox's signing key in the temporary directory, never in the checkout.
            "SANDBOX_OIDC_KEY_FILE": str(Path(self._tmp.name) / "sandbox-oidc-key.pem"),
            **self.extra_env,
        }
        env.pop("DJANGO_SETTINGS_MODULE", None)  # the test suite's; the site has its own
        self._log = self.log_path.open("w")
        self.process = subprocess.Popen(
            [sys.executable, __file__, *(["--asgi"] if self.asgi else []), str(self.database)],
            cwd=REPOSITORY,
            env=env,
            stdout=subprocess.PIPE,
            stderr=self._log,
            text=True,
        )
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            line = self.process.stdout.readline()
            if line.startswith(READY):
                self.url = line[len(READY) :].strip()
                return
            if not line and self.process.poll() is not None:
                break
        self.stop()
        raise RuntimeError(f"The example site did not start:\n{self.log_tail()}")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if getattr(self, "_log", None) is not None and not self._log.closed:
            self._log.close()

    def log_text(self) -> str:
        """Everything the site logged so far (the request log and the app's log)."""
        if getattr(self, "_log", None) is not None and not self._log.closed:
            self._log.flush()
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def log_tail(self, lines: int = 60) -> str:
        return "\n".join(self.log_text().splitlines()[-lines:])

    def cleanup(self) -> None:
        self.stop()
        self._tmp.cleanup()


def _serve(database: str) -> None:
    """The site under Django's threaded development server (WSGI)."""
    _add_example_to_path()
    from django.core.servers.basehttp import WSGIRequestHandler, WSGIServer

    server_class = type("ThreadedWSGIServer", (socketserver.ThreadingMixIn, WSGIServer), {"daemon_threads": True})
    httpd = server_class(("127.0.0.1", 0), WSGIRequestHandler)
    url = f"http://127.0.0.1:{httpd.server_port}"
    _prepare(url, database)
    from django.contrib.staticfiles.handlers import StaticFilesHandler
    from django.core.wsgi import get_wsgi_application

    httpd.set_app(StaticFilesHandler(get_wsgi_application()))
    print(f"{READY}{url}", flush=True)
    httpd.serve_forever()


def _serve_asgi(database: str) -> None:
    """The site under uvicorn (ASGI): async views share one event loop, sync ones run in threads."""
    _add_example_to_path()
    import copy
    import socket

    import uvicorn
    import uvicorn.config

    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)  # bound and listening before READY: connections wait in the backlog until uvicorn runs
    url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    _prepare(url, database)
    # uvicorn's own logging, with its request log on stderr (the site's log file): stdout only says READY.
    log_config = copy.deepcopy(uvicorn.config.LOGGING_CONFIG)
    log_config["handlers"]["access"]["stream"] = "ext://sys.stderr"
    # By import string, as the uvicorn command does: uvicorn sets its logging up, then imports the app.
    config = uvicorn.Config("demo_site.asgi:application", lifespan="off", log_level="info", log_config=log_config)
    server = uvicorn.Server(config)
    print(f"{READY}{url}", flush=True)
    server.run(sockets=[sock])


def _add_example_to_path() -> None:
    for path in (str(REPOSITORY), str(EXAMPLE_DIR)):
        if path not in sys.path:
            sys.path.insert(0, path)


def _prepare(url: str, database: str) -> None:
    """Point the sandbox at ``url`` before Django reads its settings, then migrate and run demo_setup."""
    os.environ["SANDBOX_BASE_URL"] = url
    # The sandbox signs ID tokens with this key; made before Django reads its settings (which read it).
    from sandbox.keys import ensure_signing_key

    ensure_signing_key()
    # A path is a SQLite file; a URL (postgres://...) is used as it is, for trying other databases.
    os.environ["DATABASE_URL"] = database if "://" in database else f"sqlite:///{database}"
    os.environ["DJANGO_SETTINGS_MODULE"] = "demo_site.settings"
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", verbosity=0, interactive=False)
    call_command("demo_setup", url=f"{url}/", stdout=sys.stderr)


if __name__ == "__main__":
    if sys.argv[1] == "--asgi":
        _serve_asgi(sys.argv[2])
    else:
        _serve(sys.argv[1])
