"""Benchmark: CPU time of the report's figures, drawing and saving per format.

Run with ``python benchmarks/bench_figures.py`` (``--repeat N``: runs, the fastest kept per
phase; ``--profile FILE``: a cProfile of the figure work).  Runs ``metaanalysis report``
on the shipped studies in this process with ``jobs=1``, so that every figure is drawn
here, and adds up the process CPU time (user + system) spent in

* ``draw``: each figure job (``report.run.draw_figure``, ``submission._rob_draw``,
  ``submission._prisma_draw``) less its ``save_figure``;
* ``save <fmt>``: ``Figure.savefig`` per format inside ``save_figure``;
* ``save (all)``: every ``save_figure`` call (the formats plus the resizing around them).

Prints the machine's ``uptime`` load before and after: CPU time grows less with the load
than wall time does, but a busy machine still slows it (shared caches).
"""

from __future__ import annotations

import argparse
import cProfile
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _uptime() -> str:
    try:
        return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    except OSError:
        return "load average: " + " ".join(f"{x:.2f}" for x in os.getloadavg())


def _timed(totals: dict, name: str, fn):
    def wrapper(*args, **kwargs):
        t0 = time.process_time()
        try:
            return fn(*args, **kwargs)
        finally:
            totals[name] += time.process_time() - t0
            totals[f"n {name}"] += 1
    return wrapper


def run_once(studies: Path, profile: cProfile.Profile | None = None) -> dict:
    """Report of ``studies`` in this process (``jobs=1``); CPU seconds per phase."""
    from matplotlib.figure import Figure

    import metaanalysis.plots.output as output
    import metaanalysis.report.run as run
    import metaanalysis.report.submission as submission
    from metaanalysis.report.progress import Progress

    totals: dict = defaultdict(float)
    patched = [(run, "draw_figure"), (submission, "_rob_draw"), (submission, "_prisma_draw"),
               (output, "save_figure"), (run, "save_figure")]
    originals = {(m, n): getattr(m, n) for m, n in patched if hasattr(m, n)}
    savefig = Figure.savefig

    def timed_savefig(self, fname, *args, format=None, **kwargs):
        t0 = time.process_time()
        try:
            return savefig(self, fname, *args, format=format, **kwargs)
        finally:
            totals[f"save {format}"] += time.process_time() - t0

    for (m, n), fn in originals.items():
        phase = "save (all)" if n == "save_figure" else "draw+save"
        setattr(m, n, _timed(totals, phase, fn))
    Figure.savefig = timed_savefig
    tmp = Path(tempfile.mkdtemp(prefix="bench_figures_"))
    try:
        if profile is not None:
            profile.enable()
        t0 = time.process_time()
        run.run_report(str(studies), out=str(tmp / "out"), jobs=1, progress=Progress(quiet=True))
        totals["report (all)"] = time.process_time() - t0
        if profile is not None:
            profile.disable()
    finally:
        for (m, n), fn in originals.items():
            setattr(m, n, fn)
        Figure.savefig = savefig
        shutil.rmtree(tmp, ignore_errors=True)
    totals["draw"] = totals["draw+save"] - totals["save (all)"]
    return dict(totals)


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--studies", default=str(ROOT / "studies"))
    p.add_argument("--repeat", type=int, default=1, help="runs; the fastest kept per phase")
    p.add_argument("--profile", help="write a cProfile of the last run to this file")
    a = p.parse_args(argv)
    os.environ.setdefault("MPLBACKEND", "Agg")
    print(f"before: {_uptime()}")
    runs = []
    for i in range(max(1, a.repeat)):
        prof = cProfile.Profile() if a.profile and i == a.repeat - 1 else None
        runs.append(run_once(Path(a.studies), prof))
        if prof is not None:
            prof.dump_stats(a.profile)
    import matplotlib
    print(f"python {sys.version.split()[0]}; matplotlib {matplotlib.__version__}; "
          f"{len(runs)} run(s), CPU seconds (fastest per phase)")
    n = int(runs[0].get("n draw+save", 0))
    order = ["report (all)", "draw+save", "draw", "save (all)"] + sorted(
        k for k in runs[0] if k.startswith("save ") and k != "save (all)")
    for k in order:
        best = min(r.get(k, 0.0) for r in runs)
        extra = f"   ({n} figures)" if k == "draw+save" else ""
        print(f"{k:<16}{best:8.2f}{extra}")
    print(f"after: {_uptime()}")


if __name__ == "__main__":
    main()
