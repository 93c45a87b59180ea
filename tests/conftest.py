import socket
from datetime import timedelta

import pytest
import requests
from django.utils import timezone

from tests.fakeprovider import FakeProvider, bigoauth_settings_for


@pytest.fixture
def fake_provider(settings):
    """A live token server on 127.0.0.1, with BIGOAUTH pointed at it for the test."""
    fake = FakeProvider().start()
    settings.BIGOAUTH = bigoauth_settings_for(fake)
    yield fake
    fake.stop()


@pytest.fixture
def make_account(db):
    """Create a linked account with a stored token; ``expires_in`` in seconds (negative: expired)."""
    from django_bigoauth.models import LinkedAccount, Token

    def make(
        provider="bigin",
        *,
        user=None,
        expires_in=3600,
        access_token="1000.access.initial",
        refresh_token="1000.refresh.initial",
        external_id="org-1",
        label="",
        api_domain="",
        accounts_server="",
        status=LinkedAccount.Status.ACTIVE,
    ):
        account = LinkedAccount.objects.create(
            provider=provider,
            user=user,
            external_id=external_id,
            label=label,
            status=status,
            api_domain=api_domain,
            accounts_server=accounts_server,
        )
        Token.objects.create(
            account=account,
            access_token=access_token,
            refresh_token=refresh_token,
            expires_at=timezone.now() + timedelta(seconds=expires_in),
        )
        return account

    return make


@pytest.fixture(scope="session")
def django_db_modify_db_settings(django_db_modify_db_settings_parallel_suffix, tmp_path_factory):
    """On SQLite, a test database in a file (unique per run) instead of memory.

    Threads and other processes must share the database in the concurrency tests; an
    in-memory database is private to one connection (or, shared-cache, fails writers with
    "table is locked" instead of waiting). PostgreSQL is left as configured.
    """
    from django.conf import settings

    for db_settings in settings.DATABASES.values():
        if db_settings["ENGINE"] == "django.db.backends.sqlite3" and not db_settings.get("TEST", {}).get("NAME"):
            db_settings.setdefault("TEST", {})["NAME"] = str(tmp_path_factory.mktemp("sqlite") / "test.sqlite3")


@pytest.fixture
def alice(django_user_model):
    return django_user_model.objects.create_user("alice", password="pw")


@pytest.fixture
def signed_in(client, alice):
    """The test client, signed in as alice."""
    client.force_login(alice)
    return client


@pytest.fixture
def outbound(monkeypatch):
    """Every HTTP request (through ``requests``) and every socket connection attempted, refused.

    The fake server only sees what reaches it; this sees what anything tried to send anywhere.
    Nothing is let through, so a regression sends no secret to a real host either.
    """
    attempts = []

    def send(adapter, request, *args, **kwargs):
        attempts.append(("http", request.url))
        raise requests.ConnectionError("outbound request blocked by the test")

    def connect(sock, address):
        attempts.append(("socket", address))
        raise OSError("outbound connection blocked by the test")

    monkeypatch.setattr(requests.adapters.HTTPAdapter, "send", send)
    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setattr(socket.socket, "connect_ex", connect)
    return attempts


@pytest.fixture
def all_queries(monkeypatch):
    """Every SQL statement run from now on, in any thread.

    Django's async ORM runs its queries in a thread of its own, whose connection
    ``django_assert_num_queries`` (this thread's connection only) never sees.
    """
    from django.db.backends.utils import CursorWrapper

    statements = []
    original = CursorWrapper._execute_with_wrappers

    def counting(self, sql, params, many, executor):
        statements.append(sql)
        return original(self, sql, params, many, executor)

    monkeypatch.setattr(CursorWrapper, "_execute_with_wrappers", counting)
    return statements


@pytest.fixture
def async_orm():
    """For async tests: afterwards, close what Django's async ORM opened in asgiref's one sync thread.

    Outside a request nothing closes it (a request's end does, in a site), and PostgreSQL will
    not drop the test database while a connection to it is open.
    """
    yield
    close_async_orm_connections()


def close_async_orm_connections() -> None:
    from asgiref.sync import SyncToAsync
    from django.db import connections

    SyncToAsync.single_thread_executor.submit(connections.close_all).result()


@pytest.fixture
def demo_pages(settings, fake_provider):
    """The example project's URLs and templates on top of the test settings, providers at the fake server."""
    from tests.e2e_server import EXAMPLE_DIR

    settings.ROOT_URLCONF = "demo_site.urls"
    settings.SANDBOX_ENABLED = False
    settings.TEMPLATES = [{**settings.TEMPLATES[0], "DIRS": [EXAMPLE_DIR / "templates"]}]
    return fake_provider
