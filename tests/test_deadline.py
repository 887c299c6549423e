"""gateway/deadline.py's `within`: the work's result, a TimeoutError with the work cancelled
once its time is up, and a cancellation from elsewhere left a cancellation, on both loops."""

from __future__ import annotations

import asyncio

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
