"""A request's deadline: one timer, cutting short only the steps it guards."""

from __future__ import annotations

import asyncio
import time

import pytest

from gateway.deadline import Deadline


def run(steps: object) -> object:
    return asyncio.run(steps)  # type: ignore[arg-type]


def test_a_guarded_step_past_the_deadline_is_timeout_error() -> None:
    async def steps() -> None:
        clock = Deadline(time.monotonic() + 0.05)
        try:
            with pytest.raises(TimeoutError), clock.guard():
                await asyncio.sleep(5)
        finally:
            clock.close()

    run(steps())


def test_a_step_it_does_not_guard_is_never_cut_short() -> None:
    """The message log and the idempotency record run outside any guard: past the deadline
    they finish; the next guarded step is over at once."""

    async def steps() -> str:
        clock = Deadline(time.monotonic() + 0.05)
        try:
            with clock.guard():
                await asyncio.sleep(0)
            await asyncio.sleep(0.2)  # past the deadline, unguarded
            with pytest.raises(TimeoutError), clock.guard():
                await asyncio.sleep(5)
            await asyncio.sleep(0)  # no cancellation left over
            return "finished"
        finally:
            clock.close()

    assert run(steps()) == "finished"


def test_a_step_window_moves_on_as_the_step_goes_on() -> None:
    """The body's idle gap: each chunk gives the step another window, up to the deadline."""

    async def steps() -> int:
        clock = Deadline(time.monotonic() + 10)
        chunks = 0
        try:
            with clock.guard(0.5):
                for _ in range(4):
                    await asyncio.sleep(0.2)  # 0.8 s in all, more than one window
                    chunks += 1
                    clock.extend(0.5)
            with pytest.raises(TimeoutError), clock.guard(0.2):
                await asyncio.sleep(5)  # no chunk: the gap ends the step
        finally:
            clock.close()
        return chunks

    assert run(steps()) == 4


def test_a_cancellation_from_elsewhere_stays_a_cancellation() -> None:
    async def steps() -> None:
        clock = Deadline(time.monotonic() + 10)
        try:
            with clock.guard():
                await asyncio.sleep(5)
        finally:
            clock.close()

    async def main() -> None:
        task = asyncio.ensure_future(steps())
        await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    run(main())
