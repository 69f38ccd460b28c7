"""Drawing the report's figures in forked processes (``metaanalysis report --jobs N``).

A figure task is a callable without arguments that draws one figure and writes its
files; its results live in memory (fitted models, selections) and need not pickle,
because every task runs in a process forked after the task was made and inherits it.

:class:`Forked` runs tasks in two phases:

* **while the parent still computes** (the analyses), every :meth:`Forked.submit` is
  queued and :meth:`Forked.poll` (called between the parent's steps) forks one child
  per task, at most ``limit`` at a time, so the figures of an outcome are drawn while
  the next outcome is analysed;
* **once every task is known**, :meth:`Forked.drain` forks ``jobs`` children that
  share the rest of the queue (each takes the next task from a shared counter), so the
  parent is free for its own work (tables, Word files) while they draw.

:meth:`Forked.join` waits for every child and re-raises the first error a task raised.
With ``jobs=1`` (or where processes cannot be forked) each task runs at once in the
calling process: the same functions write the same bytes.

Examples
--------
>>> done = []
>>> with Forked(1) as pool:
...     pool.submit("a", lambda: done.append("a"))
...     pool.drain()
...     pool.join()
>>> done, pool.done
(['a'], ['a'])
"""

from __future__ import annotations

import multiprocessing as mp
import traceback
from collections.abc import Callable
from multiprocessing.connection import wait

__all__ = ["Forked"]


def _run(tasks, indices, counter, conn) -> None:
    """Child process: run the tasks ``indices``, or those a shared ``counter`` hands out."""
    try:
        while True:
            if counter is None:
                if not indices:
                    break
                i = indices.pop(0)
            else:
                with counter.get_lock():
                    i = counter.value
                    counter.value += 1
                if i >= len(tasks):
                    break
            tag, task = tasks[i]
            task()
            conn.send(("done", tag))
    except BaseException as err:  # noqa: BLE001 -- handed to the parent, which raises it
        text = traceback.format_exc()
        try:
            conn.send(("error", err, text))
        except Exception:  # noqa: BLE001 -- the exception itself does not pickle
            conn.send(("error", None, text))
    finally:
        conn.close()


class Forked:
    """At most ``jobs`` forked processes drawing figure tasks (see the module docstring).

    Parameters
    ----------
    jobs : int
        Processes; ``1`` runs every task in the calling process when it is submitted.
    on_done : callable, optional
        Called in the parent with the tag of every finished task (progress lines).
    """

    def __init__(self, jobs: int, on_done: Callable[[str], None] | None = None):
        self.jobs = max(1, int(jobs))
        self.forking = self.jobs > 1 and "fork" in mp.get_all_start_methods()
        self.limit = self.jobs
        self.on_done = on_done
        self.done: list[str] = []
        self._tasks: list[tuple[str, Callable[[], None]]] = []
        self._next = 0  # first task not handed to a child yet
        self._drained = False
        self._children: dict = {}  # connection -> Process
        self._error: tuple | None = None
        self._ctx = mp.get_context("fork") if self.forking else None

    # -- parent side
    @property
    def submitted(self) -> int:
        """Tasks submitted so far."""
        return len(self._tasks) if self.forking else len(self.done)

    def submit(self, tag: str, task: Callable[[], None]) -> None:
        """Queue ``task`` (run it now with ``jobs=1``); ``tag`` names it in progress lines."""
        if self._drained:
            raise RuntimeError("Forked.submit after drain()")
        if not self.forking:
            task()
            self._finished(tag)
            return
        self._tasks.append((tag, task))
        self.poll()

    def poll(self) -> None:
        """Collect finished tasks and start queued ones in free processes (never blocks)."""
        if not self.forking:
            return
        self._collect(0)
        while (not self._drained and self._next < len(self._tasks)
               and len(self._children) < self.limit):
            self._start([self._next], None)
            self._next += 1

    def drain(self) -> None:
        """Every task is submitted: ``jobs`` processes share the rest of the queue."""
        if not self.forking or self._drained:
            self._drained = True
            return
        self._drained = True
        self._collect(0)
        rest = len(self._tasks) - self._next
        if rest <= 0:
            return
        counter = self._ctx.Value("l", self._next)
        for _ in range(min(self.jobs, rest)):
            self._start(None, counter)

    def join(self) -> None:
        """Wait for every task; raise the first error a task raised."""
        self.drain()
        while self._children:
            self._collect(None)
        if self._error is not None:
            err, text = self._error
            self._error = None
            if err is not None:
                raise err
            raise RuntimeError(f"a figure process failed:\n{text}")

    def _finished(self, tag: str) -> None:
        self.done.append(tag)
        if self.on_done is not None:
            self.on_done(tag)

    def _start(self, indices, counter) -> None:
        receive, send = self._ctx.Pipe(duplex=False)
        proc = self._ctx.Process(target=_run, args=(self._tasks, indices, counter, send),
                                 daemon=True)
        proc.start()
        send.close()
        self._children[receive] = proc

    def _collect(self, timeout) -> None:
        if not self._children:
            return
        for conn in wait(list(self._children), timeout):
            try:
                msg = conn.recv()
            except EOFError:  # the child has finished
                proc = self._children.pop(conn)
                proc.join()
                conn.close()
                if proc.exitcode and self._error is None:
                    self._error = (None, f"exit code {proc.exitcode}")
                continue
            if msg[0] == "done":
                self._finished(msg[1])
            elif self._error is None:
                self._error = (msg[1], msg[2])

    def close(self) -> None:
        """Stop every child (after an error in the parent)."""
        for conn, proc in list(self._children.items()):
            proc.terminate()
            proc.join()
            conn.close()
        self._children.clear()

    def __enter__(self) -> Forked:
        return self

    def __exit__(self, kind, value, tb) -> None:
        if kind is not None:
            self.close()
        else:
            self.join()
