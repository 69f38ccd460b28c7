"""Drawing the report's figures in forked processes (``metaanalysis report --jobs N``).

A figure task is a callable without arguments that draws one figure and writes its
files; its results live in memory (fitted models, selections) and need not pickle,
because every task runs in a process forked after the task was made and inherits it.

:class:`Forked` keeps the submitted tasks in a list and one counter shared by every
child: a child takes the next task from the counter while the counter is within the
tasks it inherited, then ends.  The parent forks a new child whenever a task is waiting
and fewer than ``limit`` children run: at :meth:`Forked.submit`, at :meth:`Forked.poll`
(between the parent's own steps) and when a child ends.  So the figures of an outcome are
drawn while the next outcome is analysed (``limit = jobs - 1`` then, the analyses keep a
processor), and once :meth:`Forked.drain` says every task is known, ``jobs`` children
share the rest while the parent writes its tables.  :meth:`Forked.join` waits for every
task and re-raises the first error a task raised.  With ``jobs=1`` (or where processes
cannot be forked) each task runs at once in the calling process: the same functions
write the same bytes.

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


def _run(tasks, counter, conn) -> None:
    """Child process: run the next task of ``tasks`` (as inherited) until none is left."""
    try:
        while True:
            with counter.get_lock():
                i = counter.value
                if i >= len(tasks):  # later tasks are for later children
                    break
                counter.value = i + 1
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
        self._drained = False
        self._children: dict = {}  # connection -> Process
        self._error: tuple | None = None
        self._ctx = mp.get_context("fork") if self.forking else None
        # index of the next task to run, shared by every child (made before any fork)
        self._counter = self._ctx.Value("l", 0) if self.forking else None

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
        self._refill()

    def poll(self) -> None:
        """Collect finished tasks and fork children for waiting ones (never blocks)."""
        if self.forking:
            self._collect(0)
            self._refill()

    def drain(self) -> None:
        """Every task is submitted: up to ``jobs`` processes share the rest."""
        self._drained = True
        self.limit = self.jobs
        self.poll()

    def join(self) -> None:
        """Wait for every task; raise the first error a task raised."""
        self.drain()
        while self._children:
            self._collect(None)
            self._refill()
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

    def _refill(self) -> None:
        """Fork children while tasks wait and fewer than ``limit`` run (none after an error)."""
        while (self._error is None and len(self._children) < self.limit
               and self._counter.value < len(self._tasks)):
            receive, send = self._ctx.Pipe(duplex=False)
            proc = self._ctx.Process(target=_run, args=(self._tasks, self._counter, send),
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
