"""Benchmark: a simulation grid of 20 conditions × 100,000 replicates with ma.simulate.

Run with ``python benchmarks/bench_simulate.py`` (options: ``--n-rep``,
``--methods``, ``--tests``, ``--no-dask``).  Grid: k ∈ {2, 3, 5, 10, 20} ×
τ² ∈ {0, 0.05, 0.1, 0.5}, vi ~ U(0.01, 0.3), μ = 0; every replicate pooled
with each method (default REML and DL) and test (z and knha).  Prints the
wall and CPU time in this process and on a 2-worker ``LocalCluster``, the
fits per second, whether both tables are identical (they must be), and the
coverage at k = 3, τ² = 0.1.  The machine's load average is printed with
every number.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import metaanalysis as ma  # noqa: E402 -- after the sys.path line


def load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"load {one:.2f}, {five:.2f}, {fifteen:.2f} on {os.cpu_count()} CPUs"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n-rep", type=int, default=100_000)
    ap.add_argument("--methods", nargs="+", default=["REML", "DL"])
    ap.add_argument("--tests", nargs="+", default=["z", "knha"])
    ap.add_argument("--no-dask", action="store_true")
    args = ap.parse_args(argv)
    grid = dict(k=[2, 3, 5, 10, 20], tau2=[0.0, 0.05, 0.1, 0.5], within=(0.01, 0.3),
                n_rep=args.n_rep, methods=args.methods, tests=args.tests, seed=2014)
    fits = 20 * args.n_rep * len(args.methods)
    print(f"ma.simulate: 20 conditions × {args.n_rep:,} replicates, methods "
          f"{args.methods}, tests {args.tests} ({fits:,} τ² fits); {load()}")
    w, c = time.perf_counter(), time.process_time()
    local = ma.simulate(**grid)
    w, c = time.perf_counter() - w, time.process_time() - c
    print(f"  in-process          : {w:7.1f} s wall  {c:7.1f} s CPU  "
          f"{fits / w:,.0f} fits/s  ({load()})")
    if not args.no_dask:
        from distributed import Client, LocalCluster

        with LocalCluster(n_workers=2, threads_per_worker=1, dashboard_address=":0") as cl, \
                Client(cl) as client:
            ma.simulate(k=3, tau2=0.1, n_rep=10, client=client)  # warm the workers
            w2 = time.perf_counter()
            dist = ma.simulate(**grid, client=client)
            w2 = time.perf_counter() - w2
        print(f"  LocalCluster (2 w.) : {w2:7.1f} s wall  {fits / w2:,.0f} fits/s  "
              f"{w / w2:.2f}x; tables identical: {local.equals(dist)}  ({load()})")
    sel = local[(local["k"] == 3) & (local["tau2"] == 0.1)]
    print("  coverage at k = 3, τ² = 0.1 (± Monte Carlo SE):")
    for _, r in sel.iterrows():
        print(f"    {r['method']:<5} {r['test']:<5} {r['coverage']:.4f} ± "
              f"{r['coverage_mcse']:.4f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
