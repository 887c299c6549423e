"""gateway/deadline.py's `within`: the work's result, a TimeoutError with the work cancelled
once its time is up, and a cancellation from elsewhere left a cancellation, on both loops."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import uvloop

from gateway.deadline import within

LOOPS = {"asyncio": asyncio.new_event_loop, "uvloop": uvloop.new_event_loop}


@pytest.fixture(params=sorted(LOOPS))
def loop(request: pytest.FixtureRequest) -> asyncio.AbstractEventLoop:
    made = LOOPS[request.param]()
    request.addfinalizer(made.close)
    return made


def test_the_work_s_result_comes_back(loop: asyncio.AbstractEventLoop) -> None:
    async def work() -> str:
        await asyncio.sleep(0)
        return "done"

    assert loop.run_until_complete(within(5, work())) == "done"


def test_time_up_is_a_timeout_error_and_the_work_is_cancelled(
    loop: asyncio.AbstractEventLoop,
) -> None:
    cancelled = []

    async def work() -> None:
        try:
            await asyncio.Event().wait()  # never set
        except asyncio.CancelledError:
            cancelled.append(True)
            raise

    async def main() -> int:
        with pytest.raises(TimeoutError):
            await within(0.01, work())
        task = asyncio.current_task()
        assert task is not None
        return task.cancelling()  # nothing left pending on the task

    assert loop.run_until_complete(main()) == 0
    assert cancelled == [True]


def test_a_cancellation_from_elsewhere_stays_a_cancellation(
    loop: asyncio.AbstractEventLoop,
) -> None:
    async def main() -> None:
        started = asyncio.Event()

        async def work() -> None:
            started.set()
            await asyncio.Event().wait()

        async def bounded() -> None:
            await within(30, work())

        task = asyncio.ensure_future(bounded())
        await started.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    loop.run_until_complete(main())


class CountingLoop(asyncio.SelectorEventLoop):
    """asyncio's own loop, counting the timers armed on it."""

    timers = 0

    def call_later(self, *args: Any, **kwargs: Any) -> asyncio.TimerHandle:
        self.timers += 1
        return super().call_later(*args, **kwargs)


def test_work_done_at_its_first_step_arms_no_timer() -> None:
    loop = CountingLoop()

    async def ready() -> str:
        return "at once"

    async def waits() -> str:
        await asyncio.sleep(0)
        return "later"

    try:
        assert loop.run_until_complete(within(5, ready())) == "at once"
        assert loop.timers == 0
        assert loop.run_until_complete(within(5, waits())) == "later"
        assert loop.timers == 1
    finally:
        loop.close()


def test_an_error_at_the_first_step_or_after_a_wait_comes_through(
    loop: asyncio.AbstractEventLoop,
) -> None:
    async def fails(wait: bool) -> None:
        if wait:
            await asyncio.sleep(0)
        raise ValueError("bad body")

    for wait in (False, True):
        with pytest.raises(ValueError, match="bad body"):
            loop.run_until_complete(within(5, fails(wait)))


def test_the_work_sees_each_wait_and_may_answer_a_cancellation(
    loop: asyncio.AbstractEventLoop,
) -> None:
    async def work(steps: list[int]) -> str:
        for step in range(3):
            steps.append(step)
            await asyncio.sleep(0)
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            return "cleaned up"  # the work's own answer to its time being up
        return "never"

    steps: list[int] = []
    assert loop.run_until_complete(within(0.01, work(steps))) == "cleaned up"
    assert steps == [0, 1, 2]


def test_closing_the_wait_closes_the_work() -> None:
    closed = []

    async def work() -> None:
        try:
            await asyncio.Event().wait()
        finally:
            closed.append(True)

    async def main() -> None:
        bounded = within(30, work())
        bounded.send(None)  # to the work's first wait
        bounded.close()

    loop = asyncio.new_event_loop()
    try:
        loop.run_until_complete(main())
    finally:
        loop.close()
    assert closed == [True]
