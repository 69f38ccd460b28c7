"""Benchmark: ``metaanalysis report`` on the shipped studies, per phase, with --jobs 1 and 2.

Run with ``python benchmarks/bench_report.py`` (``--repeat N`` runs of each, the fastest
kept; ``--jobs 1 2 4`` to choose; ``--studies`` for another folder).  Every run is a fresh
``python`` process (imports included), writing into a temporary folder.  Prints the
machine's ``uptime`` load before and after, and for each ``--jobs`` the wall time of the
main process's phases, read from its progress events:

* ``load``: interpreter start, imports, reading and checking the studies and the plan;
* ``analyses``: the 28 analyses with their sensitivity analyses (figure processes already
  draw the flow diagram, the risk-of-bias figures and each outcome's figures meanwhile);
* ``tables+submission``: the main process writes the tables, Table 1, GRADE and the Word
  files while the figure processes draw;
* ``wait figures``: the main process waits for the last figures;
* ``finish``: report.md, provenance, the atomic swap of the output folder;

then the total wall time and the CPU time of the main process, of its figure processes and
both (on N processors the wall time cannot drop below the total CPU time / N).
The lead reruns it on a quiet machine; on a loaded one, wall times grow with the load.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

_CHILD = r"""
import json, os, resource, sys, time
t0 = time.perf_counter()
sys.path.insert(0, sys.argv[1])
from metaanalysis.report.progress import Progress
from metaanalysis.report.run import run_report

marks = {}

class Timed(Progress):
    def start(self, what, total):
        marks.setdefault(f"{what} start", time.perf_counter() - t0)
        super().start(what, total)

    def done(self):
        marks[f"{self.what} done"] = time.perf_counter() - t0
        super().done()

    def line(self, text):
        if text.startswith("submission:"):
            marks["submission done"] = time.perf_counter() - t0
        super().line(text)

run_report(sys.argv[2], out=sys.argv[3], jobs=int(sys.argv[4]), progress=Timed(quiet=True))
marks["end"] = time.perf_counter() - t0
me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
marks["cpu main"] = me.ru_utime + me.ru_stime
marks["cpu figures"] = kids.ru_utime + kids.ru_stime
print(json.dumps(marks))
"""


def _uptime() -> str:
    try:
        return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    except OSError:
        return "load average: " + " ".join(f"{x:.2f}" for x in os.getloadavg())


def run_once(studies: Path, jobs: int, root: Path = ROOT) -> dict:
    """One report in a fresh process (the package from ``root``); its phase marks (seconds
    from the start) and CPU."""
    tmp = Path(tempfile.mkdtemp(prefix="bench_report_"))
    try:
        env = dict(os.environ, MPLBACKEND="Agg")
        t0 = time.perf_counter()
        out = subprocess.run([sys.executable, "-c", _CHILD, str(root), str(studies),
                              str(tmp / "out"), str(jobs)], capture_output=True, text=True,
                             env=env, cwd=tmp)
        wall = time.perf_counter() - t0
        if out.returncode:
            raise SystemExit(f"report failed (--jobs {jobs}):\n{out.stderr}")
        marks = json.loads(out.stdout.strip().splitlines()[-1])
        marks["wall"] = wall
        return marks
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def phases(m: dict) -> dict:
    """Wall time of each phase of the main process, from its marks."""
    fig_start = m.get("figures start", m["analyses done"])
    sub = m.get("submission done", fig_start)
    fig_done = m.get("figures done", sub)
    return {"load": m["analyses start"],
            "analyses": m["analyses done"] - m["analyses start"],
            "tables+submission": sub - m["analyses done"],
            "wait figures": max(0.0, fig_done - sub),
            "finish": m["end"] - max(fig_done, sub),
            "total (process)": m["wall"],
            "cpu main": m["cpu main"], "cpu figures": m["cpu figures"],
            "cpu total": m["cpu main"] + m["cpu figures"]}


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--studies", default=str(ROOT / "studies"))
    p.add_argument("--jobs", type=int, nargs="+", default=[1, 2])
    p.add_argument("--repeat", type=int, default=2, help="runs per --jobs; the fastest is kept")
    p.add_argument("--root", default=str(ROOT),
                   help="checkout whose package is timed (e.g. an older commit, unpacked)")
    a = p.parse_args(argv)
    print(f"before: {_uptime()}")
    print(f"{os.cpu_count()} processors; python {sys.version.split()[0]}; "
          f"package {a.root}; studies {a.studies}")
    best = {}
    for jobs in a.jobs:
        runs = [phases(run_once(Path(a.studies), jobs, Path(a.root)))
                for _ in range(max(1, a.repeat))]
        best[jobs] = min(runs, key=lambda r: r["total (process)"])
        print(f"--jobs {jobs}: totals of {len(runs)} runs: "
              + ", ".join(f"{r['total (process)']:.1f}" for r in runs) + f" s ({_uptime()})")
    names = list(next(iter(best.values())))
    print(f"\n{'phase (s, fastest run)':<24}" + "".join(f"{'--jobs ' + str(j):>12}"
                                                     for j in best))
    for n in names:
        print(f"{n:<24}" + "".join(f"{best[j][n]:>12.2f}" for j in best))
    print(f"\nafter: {_uptime()}")


if __name__ == "__main__":
    main()
