"""Decide once, do I/O twice: the token and session logic as generators that yield their I/O.

The hot path, the forced refresh, an API call's 401 rules and ``get_account`` are written once,
as generators (the "bring your own I/O" design of h11). A generator yields a *step* (rows to
fetch, a refresh to make, a request to send) and gets the step's result back, or has the step's
exception raised where it yielded. The sync API drives a generator with :func:`run`, the async
API with :func:`arun`; the drivers decide nothing, they only move rows and bytes::

    def current_token(account):               # sync shell
        return steps.run(_current_steps(account))

    async def acurrent_token(account):        # async shell
        return await steps.arun(_current_steps(account))

Rows come back in :class:`Rows`, whose repr shows no value: a generator's frame in an error
report is not covered by ``sensitive_variables`` (its caller is gone by then), and a row can
hold a decrypted token.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable, Generator
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from django.db.models import QuerySet

    from .models import LinkedAccount

__all__ = ["Fetch", "Refresh", "Rows", "Steps", "ado", "arun", "do", "run"]

T = TypeVar("T")
#: A decision generator: yields steps, receives their results, returns its answer.
StepGenerator = Generator[Any, Any, T]


@dataclasses.dataclass(frozen=True)
class Fetch:
    """Evaluate ``queryset`` (already sliced by the yielder); the result is :class:`Rows`."""

    queryset: QuerySet

    def __repr__(self) -> str:
        return f"<Fetch {self.queryset.model.__name__}>"


@dataclasses.dataclass(frozen=True)
class Refresh:
    """Make sure a token newer than ``seen_generation`` is stored; the result is a ``CurrentToken``.

    Sync: ``tokens.refresh_token_now``. Async: ``tokens.arefresh_token_now``, which shares one
    future per account among the coroutines of a loop and runs the sync one off the loop.
    """

    account: LinkedAccount
    seen_generation: int


class Rows(list):
    """Fetched rows; shown as a count, never as values."""

    def __repr__(self) -> str:
        return f"<Rows: {len(self)}>"


class Steps:
    """One generator being driven: ``next_step()`` until it returns ``None``, feeding each step's outcome."""

    def __init__(self, generator: StepGenerator[Any]) -> None:
        self._generator = generator
        self._result: Any = None
        self._failure: Exception | None = None
        self.value: Any = None

    def next_step(self) -> Any:
        """The generator's next step, or ``None`` once it has returned (its answer is then ``value``)."""
        result, failure = self._result, self._failure
        self._result = self._failure = None
        try:
            if failure is not None:
                return self._generator.throw(failure)
            return self._generator.send(result)
        except StopIteration as done:
            self.value = done.value
            return None

    def succeeded(self, result: Any) -> None:
        self._result = result

    def failed(self, failure: Exception) -> None:
        self._failure = failure


def run(generator: StepGenerator[T], perform: Callable[[Any], Any] | None = None) -> T:
    """Drive ``generator`` synchronously: each step done by ``perform`` (default :func:`do`)."""
    perform = perform or do
    steps = Steps(generator)
    while (step := steps.next_step()) is not None:
        try:
            steps.succeeded(perform(step))
        except Exception as exc:  # noqa: BLE001 - raised in the generator, where it yielded
            steps.failed(exc)
    return steps.value


async def arun(generator: StepGenerator[T], perform: Callable[[Any], Awaitable[Any]] | None = None) -> T:
    """Drive ``generator`` on the event loop: each step awaited through ``perform`` (default :func:`ado`)."""
    perform = perform or ado
    steps = Steps(generator)
    while (step := steps.next_step()) is not None:
        try:
            steps.succeeded(await perform(step))
        except Exception as exc:  # noqa: BLE001 - raised in the generator, where it yielded
            steps.failed(exc)
    return steps.value


def do(step: Fetch | Refresh) -> Any:
    """The sync I/O of a step."""
    if isinstance(step, Fetch):
        return Rows(step.queryset)
    from .tokens import refresh_token_now

    return refresh_token_now(step.account, step.seen_generation)


async def ado(step: Fetch | Refresh) -> Any:
    """The async I/O of a step: Django's async ORM for rows; a refresh off the loop."""
    if isinstance(step, Fetch):
        return Rows([row async for row in step.queryset])
    from .tokens import arefresh_token_now

    return await arefresh_token_now(step.account, step.seen_generation)
