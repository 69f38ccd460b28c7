"""Benchmark: the test suite's CPU time per process, per file and per test (docs/testing.md).

Run with ``python benchmarks/bench_tests.py`` (the README's ``python -m pytest``, i.e. the
pyproject options ``-n 2 --dist loadfile``); arguments after ``--`` go to pytest, e.g.
``python benchmarks/bench_tests.py -- -n 0`` or ``-- tests/test_report.py``.  Wall times
grow with the machine's load, CPU times much less, so it prints the ``uptime`` load before
and after and reports CPU (user + system) seconds:

* per process (``main``, the xdist controller, and each worker): start-up (interpreter, pytest and
  its plugins), collection (importing every test module and, for the doctests, every
  package module), the tests themselves, the processes they started (notebook kernel,
  ``subprocess`` runs, forked report writers: their CPU once they ended) and when the
  process finished its last test (wall seconds after the start);
* per test file: CPU, child CPU and the worker that ran it; the slowest tests;
* the critical path: the busiest worker's CPU (itself + its children), and the total
  CPU over two cores -- on a quiet two-core machine the suite's wall time is about the
  larger of the two plus the controller's start-up.

The same file is the pytest plugin that records the times (``-p bench_tests``): each
process appends JSON lines to the file named by ``BENCH_TESTS_OUT``.  ``--json FILE``
keeps them.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


# ---------------------------------------------------------------- the plugin

def _cpu() -> tuple[float, float]:
    me = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime, kids.ru_utime + kids.ru_stime


def _record(kind: str, **fields) -> None:
    out = os.environ.get("BENCH_TESTS_OUT")
    if not out:
        return
    cpu, child = _cpu()
    row = {"kind": kind, "process": os.environ.get("PYTEST_XDIST_WORKER", "main"),
           "cpu": cpu, "child": child, "time": time.time(), **fields}
    with open(out, "a", encoding="utf-8") as f:
        f.write(json.dumps(row) + "\n")


def pytest_sessionstart(session):
    _record("sessionstart")


def pytest_collection_finish(session):
    _record("collected", n=len(session.items))


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item, nextitem):
    _record("test start", id=item.nodeid)
    yield
    _record("test end", id=item.nodeid)


def pytest_sessionfinish(session):
    _record("sessionfinish")


# ---------------------------------------------------------------- the summary

def _uptime() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()


def summarise(rows: list[dict], top: int = 25, nfiles: int = 40) -> str:
    lines = []
    t0 = min(r["time"] for r in rows)
    procs = collections.defaultdict(list)
    for r in rows:
        procs[r["process"]].append(r)
    tests: dict[str, dict] = {}
    for name, rs in procs.items():
        started = {}
        for r in rs:
            if r["kind"] == "test start":
                started[r["id"]] = r
            elif r["kind"] == "test end" and r["id"] in started:
                s = started.pop(r["id"])
                tests[r["id"]] = {"process": name, "cpu": r["cpu"] - s["cpu"],
                                  "child": r["child"] - s["child"], "start": s["time"] - t0,
                                  "end": r["time"] - t0}
    lines.append("per process (CPU s; main: pytest itself, with -n 2 the xdist controller)")
    lines.append("               start-up  collection  tests  children  total   "
                 "last test ends at (wall s)")
    busiest = 0.0
    total = 0.0
    for name in sorted(procs):
        rs = procs[name]
        first = {r["kind"]: r for r in reversed(rs)}
        last = {r["kind"]: r for r in rs}
        start = first.get("sessionstart")
        coll = first.get("collected")
        fin = last.get("sessionfinish") or rs[-1]
        run = [t for t in tests.values() if t["process"] == name]
        cpu_tests = sum(t["cpu"] for t in run)
        startup = start["cpu"] if start else 0.0
        collection = coll["cpu"] - startup if coll else 0.0
        own = fin["cpu"]
        kids = fin["child"]
        if name == "main" and len(procs) > 1:  # the controller: its children are the workers
            total += own
        else:
            total += own + kids
            busiest = max(busiest, own + kids)
        end = max((t["end"] for t in run), default=fin["time"] - t0)
        if name == "main" and len(procs) > 1:
            lines.append(f"  {name:12s} {startup:8.1f}  {'':10s}  {'':5s}  {'workers':>8s}  "
                         f"{own:5.1f}   {end:6.1f}")
            continue
        lines.append(f"  {name:12s} {startup:8.1f}  {collection:10.1f}  {cpu_tests:5.1f}  "
                     f"{kids:8.1f}  {own + kids:5.1f}   {end:6.1f}")
    lines.append(f"critical path: busiest worker {busiest:.1f} s CPU; all processes "
                 f"{total:.1f} s CPU = {total / 2:.1f} s on two cores")
    files = collections.defaultdict(lambda: {"cpu": 0.0, "child": 0.0, "procs": set(),
                                             "start": 1e18, "end": 0.0, "n": 0})
    for tid, t in tests.items():
        f = files[tid.split("::")[0]]
        f["cpu"] += t["cpu"]
        f["child"] += t["child"]
        f["procs"].add(t["process"])
        f["start"] = min(f["start"], t["start"])
        f["end"] = max(f["end"], t["end"])
        f["n"] += 1
    lines.append("")
    lines.append("per file (CPU s):   cpu  children  tests  process  wall from-to")
    ranked = sorted(files.items(), key=lambda kv: -(kv[1]["cpu"] + kv[1]["child"]))
    for name, f in ranked[:nfiles]:
        lines.append(f"  {f['cpu']:7.2f}  {f['child']:7.2f}  {f['n']:5d}  "
                     f"{','.join(sorted(f['procs'])):8s} {f['start']:6.1f}-{f['end']:6.1f}  "
                     f"{name}")
    rest = ranked[nfiles:]
    if rest:
        lines.append(f"  {sum(f['cpu'] + f['child'] for _, f in rest):7.2f}  in the other "
                     f"{len(rest)} files")
    lines.append("")
    lines.append(f"slowest {top} tests (CPU s, children):")
    for tid, t in sorted(tests.items(), key=lambda kv: -(kv[1]["cpu"] + kv[1]["child"]))[:top]:
        lines.append(f"  {t['cpu']:6.2f}  {t['child']:6.2f}  {t['process']:8s} {tid}")
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--top", type=int, default=25, help="slowest tests to list")
    ap.add_argument("--files", type=int, default=40, help="test files to list")
    ap.add_argument("--json", type=Path, help="keep the raw JSON lines here")
    ap.add_argument("pytest_args", nargs="*", help="after --: arguments for pytest")
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "times.jsonl"
        env = dict(os.environ, BENCH_TESTS_OUT=str(out))
        env["PYTHONPATH"] = os.pathsep.join(
            [str(ROOT / "benchmarks")] + [p for p in [env.get("PYTHONPATH")] if p])
        cmd = [sys.executable, "-m", "pytest", "-q", "-p", "bench_tests", *args.pytest_args]
        print("load before:", _uptime())
        print("command:", " ".join(cmd))
        t = time.perf_counter()
        proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
        wall = time.perf_counter() - t
        kids = resource.getrusage(resource.RUSAGE_CHILDREN)
        print("load after: ", _uptime())
        tail = [s for s in proc.stdout.splitlines() if s.strip()][-1:]
        print(f"pytest exit {proc.returncode}: {tail[0] if tail else ''}")
        print(f"wall {wall:.1f} s; CPU of everything it ran {kids.ru_utime:.1f} s user + "
              f"{kids.ru_stime:.1f} s system")
        rows = [json.loads(s) for s in out.read_text().splitlines()] if out.exists() else []
        if args.json:
            args.json.write_text(out.read_text() if out.exists() else "")
    if rows:
        print(summarise(rows, args.top, args.files))
    return proc.returncode


if __name__ == "__main__":
    raise SystemExit(main())
