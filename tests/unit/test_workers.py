"""Worker threads: blocking calls off the event loop, results back to the caller, in order."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from streamhouse.workers import WorkerThreads


async def test_results_and_errors_come_back_to_the_caller() -> None:
    workers = WorkerThreads(2, "test")
    try:
        assert await workers.run(divmod, 17, 5) == (3, 2)
        with pytest.raises(ZeroDivisionError):
            await workers.run(divmod, 1, 0)
    finally:
        workers.shutdown()


async def test_one_thread_runs_jobs_one_at_a_time_in_submission_order() -> None:
    workers = WorkerThreads(1, "test")
    log: list[tuple[str, int]] = []

    def job(index: int) -> int:
        log.append(("start", index))
        time.sleep(0.002)
        log.append(("end", index))
        return index

    try:
        results = await asyncio.gather(*(workers.run(job, index) for index in range(6)))
    finally:
        workers.shutdown()
    assert results == list(range(6))
    assert log == [(edge, index) for index in range(6) for edge in ("start", "end")]


async def test_blocked_jobs_get_threads_of_their_own_up_to_the_count() -> None:
    workers = WorkerThreads(3, "test")
    # Each job returns only once all three run at the same time.
    meeting = threading.Barrier(3, timeout=10)
    try:
        results = await asyncio.gather(*(workers.run(meeting.wait) for _ in range(3)))
    finally:
        workers.shutdown()
    assert sorted(results) == [0, 1, 2]


async def test_shutdown_lets_queued_jobs_finish_then_refuses_new_ones() -> None:
    workers = WorkerThreads(2, "test")
    release = threading.Event()
    done: list[int] = []

    def job(index: int) -> None:
        release.wait(10)
        done.append(index)

    futures = [workers.run(job, index) for index in range(5)]
    release.set()
    await asyncio.to_thread(workers.shutdown)
    assert sorted(done) == list(range(5))
    await asyncio.gather(*futures)
    with pytest.raises(RuntimeError, match="shut down"):
        workers.run(job, 5)
