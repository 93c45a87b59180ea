"""What the async API shares: the check for its extra (httpx), and running sync work off the loop."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

from asgiref.sync import sync_to_async
from django.core.exceptions import ImproperlyConfigured
from django.db import connections

__all__ = ["EXTRA", "off_loop", "require_async_extra"]

EXTRA = "django-bigoauth[async]"

T = TypeVar("T")


def require_async_extra() -> None:
    """Raise ``ImproperlyConfigured`` naming the extra unless httpx can be imported.

    Every async entry point calls this first, so a site without the extra learns it at its
    first async call, whichever that is, not at its first ``asession()``.
    """
    try:
        import httpx  # noqa: F401
    except ImportError:
        raise ImproperlyConfigured(f"The async API of django_bigoauth needs httpx: pip install '{EXTRA}'.") from None


def off_loop(function: Callable[..., T]) -> Callable[..., Coroutine[Any, Any, T]]:
    """``function`` run in a worker thread (never the loop's), which closes its database connections after.

    ``thread_sensitive=False``: a refresh or revoke may wait up to ``HTTP_TIMEOUT`` and poll the
    token row; in Django's one thread for sync code it would hold up every async ORM call of the
    loop meanwhile.
    """

    def in_worker_thread(*args: Any) -> T:
        try:
            return function(*args)
        finally:
            # The worker thread belongs to the loop's executor, not to a request: nothing else
            # closes what it opened, and PostgreSQL and MariaDB would count the connections up.
            connections.close_all()

    return sync_to_async(in_worker_thread, thread_sensitive=False)
