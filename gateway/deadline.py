"""One request's clock: the route's deadline, and a step's nearer one, on one loop timer.

``asyncio.timeout`` costs a timer, a coroutine and a state machine per use;
reading the body and each upstream attempt used one each, a tenth of a stub
request's CPU. Here a request has one timer for all its steps. Only inside a
``guard`` is the request's task cancelled when time is up (the step turns the
cancellation into ``TimeoutError``, as ``asyncio.timeout`` does), so no other
step (the message log, the idempotency record) is ever cut short. A step
that moves its own end later (the idle gap after each body chunk) only notes
it: when the timer fires early it sets itself again for the time now noted.
"""

from __future__ import annotations

import asyncio
import time
from types import TracebackType


class Deadline:
    __slots__ = ("_armed_at", "_end", "_fired", "_handle", "_loop", "_task", "_until")

    def __init__(self, deadline: float) -> None:
        """``deadline`` is the request's, in ``time.monotonic()`` seconds."""
        self._loop = asyncio.get_running_loop()
        self._end = self._loop.time() + deadline - time.monotonic()  # on the loop's clock
        task = asyncio.current_task()
        assert task is not None, "a deadline is for a request's task"
        self._task = task
        self._handle: asyncio.TimerHandle | None = None
        self._armed_at = 0.0
        self._until: float | None = None  # in a guard: when it ends
        self._fired = False

    @property
    def end(self) -> float:
        """The request's deadline on the loop's clock (``loop.time()``)."""
        return self._end

    def guard(self, seconds: float | None = None) -> Deadline:
        """A step that ends at the request's deadline, or ``seconds`` from now if sooner:
        ``with deadline.guard(): await ...`` raises ``TimeoutError`` when it is over."""
        until = self._end
        if seconds is not None:
            until = min(until, self._loop.time() + seconds)
        self._until = until
        if self._handle is None or self._armed_at > until:
            self._arm(until)
        return self

    def extend(self, seconds: float) -> None:
        """Move the current step's end to ``seconds`` from now (never past the deadline)."""
        self._until = min(self._end, self._loop.time() + seconds)

    def close(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None

    def __enter__(self) -> Deadline:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._until = None
        if self._fired:
            self._fired = False
            if self._task.uncancel() == 0 and exc_type is asyncio.CancelledError:
                raise TimeoutError from exc

    def _arm(self, when: float) -> None:
        if self._handle is not None:
            self._handle.cancel()
        self._handle = self._loop.call_at(when, self._expire)
        self._armed_at = when

    def _expire(self) -> None:
        self._handle = None
        until = self._until
        if until is None:  # between steps: the next guard sets the timer again
            return
        if self._loop.time() < until:  # the step's end moved since the timer was set
            self._arm(until)
            return
        self._fired = True
        self._task.cancel()
