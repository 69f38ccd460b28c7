"""Benchmark: GOSH on all subsets at k = 20 and 25 in blocks (time, peak memory), and on Dask.

Run with ``python benchmarks/bench_gosh_blocks.py`` (options: ``--k 20 25``,
``--methods DL REML``, ``--dask-k 22``).  Each case runs in a fresh Python
process, which reports its wall and CPU time for ``ma.gosh(res,
subsets=2**k, keep=False)`` and its own peak resident memory (``ru_maxrss``):
the per-subset rows are not kept, only the block summaries (histograms,
inclusion contrasts, extremes).  For comparison the memory the rows alone
would take is printed (6 floats and k booleans per subset).  Then the
``--dask-k`` case runs on a 2-worker ``LocalCluster`` and its summaries are
compared with the in-process ones (must be identical).  The machine's load
average is printed with every number.

Data: k studies simulated with seed 20240601 (vi ~ U(0.01, 0.2), yi ~
N(0.3, vi + 0.05)), as benchmarks/bench_gosh.py.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import metaanalysis as ma  # noqa: E402 -- after the sys.path line

CHILD = r"""
import json, resource, sys, time
sys.path.insert(0, {root!r})
import numpy as np, metaanalysis as ma
sys.path.insert(0, {bench!r})
from bench_gosh_blocks import result
res = result({k}, {method!r})
w, c = time.perf_counter(), time.process_time()
g = ma.gosh(res, subsets=2 ** {k}, keep=False)
w, c = time.perf_counter() - w, time.process_time() - c
print(json.dumps({{"wall": w, "cpu": c, "n": len(g), "peak_mb":
                   resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}}))
"""


def load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"load {one:.2f}, {five:.2f}, {fifteen:.2f} on {os.cpu_count()} CPUs"


def result(k, method):
    rng = np.random.default_rng(20240601)
    v = rng.uniform(0.01, 0.2, k)
    y = rng.normal(0.3, np.sqrt(v + 0.05))
    return ma.pool(y, v, method=method)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--k", type=int, nargs="*", default=[20, 25])
    ap.add_argument("--methods", nargs="+", default=["DL", "REML"])
    ap.add_argument("--dask-k", type=int, default=22)
    args = ap.parse_args(argv)
    print(f"GOSH on all 2^k - 1 subsets, keep=False (block summaries only); {load()}")
    for k in args.k:
        for method in args.methods:
            code = CHILD.format(root=str(ROOT), bench=str(Path(__file__).parent), k=k,
                                method=method)
            out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                                 check=True)
            r = json.loads(out.stdout.strip().splitlines()[-1])
            rows_mb = r["n"] * (6 * 8 + k) / 2**20
            print(f"  k = {k}, {method:<4}: {r['n']:>11,} subsets  {r['wall']:7.1f} s wall  "
                  f"{r['cpu']:7.1f} s CPU  {r['cpu'] / r['n'] * 1e9:6.0f} ns/subset  peak RSS "
                  f"{r['peak_mb']:6.0f} MB (the rows alone: {rows_mb:,.0f} MB)  ({load()})")
    if args.dask_k:
        from distributed import Client, LocalCluster

        k = args.dask_k
        res = result(k, "DL")
        t = time.perf_counter()
        local = ma.gosh(res, subsets=2**k, keep=False)
        t_local = time.perf_counter() - t
        with LocalCluster(n_workers=2, threads_per_worker=1, dashboard_address=":0") as cl, \
                Client(cl) as client:
            ma.gosh(result(12, "DL"), client=client)  # warm the workers' imports
            t = time.perf_counter()
            dist = ma.gosh(res, subsets=2**k, keep=False, client=client)
            t_dist = time.perf_counter() - t
        a, b = local.stats, dist.stats
        same = (np.array_equal(a.counts_with, b.counts_with) and a.contrasts.equals(b.contrasts)
                and a.extremes.equals(b.extremes) and a.moments.equals(b.moments))
        print(f"  k = {k}, DL, in-process        : {t_local:7.1f} s wall  ({load()})")
        print(f"  k = {k}, DL, LocalCluster (2 w): {t_dist:7.1f} s wall, "
              f"{t_local / t_dist:.2f}x; summaries identical: {same}  ({load()})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
