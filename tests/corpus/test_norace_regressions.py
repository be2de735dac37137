"""NoRace kernels reduced from false positives found on real third-party test suites.

Each kernel is the minimal reproduction of one report triaged as a false positive in
docs/validation.md (benchmarks/real_suites.py). A kernel named ``test_norace_failing_*`` is a
known false positive that is not fixed yet: the corpus harness lists it on its own line and
says when it starts passing (then drop ``failing_`` from its name).
"""

import asyncio
import threading
import time


class Box:
    """janus.Queue reduced: a set of pending wake-up tasks, filled by loop callbacks."""

    def __init__(self, loop):
        self.pending = set()
        self.loop = loop

    def notify_threadsafe(self):
        async def wake():
            pass

        def task_maker():  # runs on the loop thread, in a copy of the submitter's context
            task = self.loop.create_task(wake())
            self.pending.add(task)

        self.loop.call_soon_threadsafe(task_maker)

    def close(self):
        for task in self.pending:
            task.cancel()


def test_norace_call_soon_threadsafe_callback_after_job_finished():
    """From janus 1.0.0 (tests/test_mixed.py): ``Queue.close`` vs ``task_maker``.

    A ``run_in_executor`` job schedules ``task_maker`` with ``call_soon_threadsafe`` and returns.
    The loop is busy, so the job finishes before the callback runs. The loop runs its ready
    callbacks in FIFO order: ``task_maker`` runs before the job's completion callback wakes
    ``main``, so ``pending.add`` happens before ``close`` reads the set. Raceway used to report
    a read-write race on ``set[*]``: the callback ran as the finished executor task, and
    ``create_task`` forked from (and ticked) that task, so the following ``pending.add``
    escaped the ``await`` that joined the job.
    """

    async def main():
        loop = asyncio.get_running_loop()
        box = Box(loop)
        job = loop.run_in_executor(None, box.notify_threadsafe)
        time.sleep(0.2)  # keep the loop busy: the job ends before task_maker runs
        await job
        box.close()
        assert len(box.pending) == 1
        await asyncio.gather(*box.pending, return_exceptions=True)

    asyncio.run(main())


def test_norace_call_soon_threadsafe_callback_runs_after_loop_step():
    """From janus 1.0.0 (tests/test_sync.py): a blocking ``get`` unblocked by a helper thread.

    The helper thread schedules ``task_maker`` with ``call_soon_threadsafe`` and is joined.
    ``main`` reads ``pending`` in the same step (no ``await`` in between), so ``task_maker``
    can only run after that read, at ``main``'s next suspension: both run on the loop thread,
    and a step of a task is atomic with respect to the loop's callbacks. Raceway used to report
    a read-write race on ``set[*]``: the callback was attributed to the (joined) helper thread,
    a preemptive task, and ``create_task`` ticked that thread's clock past the join.
    """

    async def main():
        loop = asyncio.get_running_loop()
        box = Box(loop)
        helper = threading.Thread(target=box.notify_threadsafe)
        helper.start()
        helper.join()
        box.close()  # task_maker has not run yet: the loop is busy with this step
        assert box.pending == set()
        await asyncio.sleep(0)  # now task_maker runs
        assert len(box.pending) == 1
        await asyncio.gather(*box.pending, return_exceptions=True)

    asyncio.run(main())
