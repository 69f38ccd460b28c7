"""Progress of a long run on stderr: a bar on a terminal, one line per step otherwise.

:class:`Progress` is what ``metaanalysis report`` reports through: ``line(text)``
for a message, ``start(what, total)`` / ``step(detail)`` / ``done()`` around a
long step (the analyses, the figures).  On a terminal the step is one bar
redrawn in place; in a log or a pipe each step is one line, so the output of a
CI run stays readable; ``quiet`` silences everything.

Examples
--------
>>> import io
>>> out = io.StringIO()
>>> p = Progress(stream=out)
>>> p.start("figures", 2); p.step("forest/a"); p.step("forest/b"); p.done()
>>> print(out.getvalue().strip())
figures 1/2: forest/a
figures 2/2: forest/b
"""

from __future__ import annotations

import sys
import time


class Progress:
    """Progress lines (or a bar on a terminal) on ``stream`` (default stderr)."""

    def __init__(self, quiet: bool = False, stream=None, bar: bool | None = None):
        self.quiet = quiet
        self.stream = stream if stream is not None else sys.stderr
        isatty = getattr(self.stream, "isatty", None)
        self.bar = bool(isatty and isatty()) if bar is None else bar
        self.what, self.total, self.count, self.t0 = "", 0, 0, 0.0

    def line(self, text: str) -> None:
        """One message line."""
        if not self.quiet:
            self._clear()
            print(text, file=self.stream, flush=True)

    def start(self, what: str, total: int) -> None:
        """Begin a step of ``total`` parts."""
        self.what, self.total, self.count, self.t0 = what, int(total), 0, time.perf_counter()
        if self.bar and not self.quiet:
            self._draw("")

    def step(self, detail: str = "") -> None:
        """One part of the current step is done."""
        self.count += 1
        if self.quiet:
            return
        if self.bar:
            self._draw(detail)
        else:
            of = f"/{self.total}" if self.total else ""
            print(f"{self.what} {self.count}{of}: {detail}".rstrip(": "), file=self.stream,
                  flush=True)

    def done(self) -> None:
        """End the current step (a bar is closed with its elapsed time)."""
        if self.bar and not self.quiet:
            self._draw(f"done in {time.perf_counter() - self.t0:.1f} s")
            print(file=self.stream, flush=True)

    def _draw(self, detail: str) -> None:
        width = 30
        frac = self.count / self.total if self.total else 0.0
        filled = int(round(width * min(frac, 1.0)))
        text = (f"\r{self.what:<9} [{'#' * filled}{'.' * (width - filled)}] "
                f"{self.count}/{self.total} {detail}")[:119]
        print(text.ljust(120), end="", file=self.stream, flush=True)

    def _clear(self) -> None:
        if self.bar and self.total and self.count < self.total:
            print("\r" + " " * 120 + "\r", end="", file=self.stream, flush=True)
