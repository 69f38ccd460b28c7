"""Benchmark: pool_many through Dask on 1, 2 and all local cores vs in-process, and vs PyMARE.

Run with ``python benchmarks/bench_dask.py`` (options: ``--rows`` (default
1,000,000), ``--k`` (10), ``--chunk`` (100,000 rows per block), ``--pymare-rows``
(20,000), ``--method`` (REML)).  Needs the optional extra ``metaanalysis[dask]``.

The data (yi, vi) are a Dask array generated block by block from a fixed seed
(one ``SeedSequence`` child per block), so the cluster workers make their own blocks and
nothing but the results travels to this process; the in-process run fits the
same numbers (the graph computed here).  Wall-clock times, best of
``--repeat``; the load average of the machine is printed with them, since a
shared machine slows every row.

Rows:

* ``pool_many(y, v)`` in this process (one engine call on NumPy arrays);
* ``pool_many(yd, vd, client=...)`` on a ``LocalCluster`` of 1, 2 and
  ``os.cpu_count()`` worker processes (1 thread each), blocks of ``--chunk`` rows;
* the threaded scheduler (one process, ``os.cpu_count()`` threads);
* batch meta-regression (``mods=``: one moderator shared by every row, p = 2)
  in this process, on threads and on the all-cores ``LocalCluster``
  (``--no-regression`` skips it);
* PyMARE's ``VarianceBasedLikelihoodEstimator`` (REML) on ``--pymare-rows`` rows.

Every Dask run must give results identical, bit for bit, to one unchunked
engine call in this process (the engine gives a row the same bits whatever
the other rows of its batch; docs/scale.md): printed for τ² and the
estimates (coefficients with ``mods``), with the largest difference.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import metaanalysis as ma  # noqa: E402 -- after the sys.path line


def load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.2f}, {five:.2f}, {fifteen:.2f} on {os.cpu_count()} CPUs"


def _block(k, seed, block_id=None, block_info=None):
    """One block of rows: v ~ U(0.01, 0.5), τ² from {0, 0.02, 0.1, 0.5}, y ~ N(0.3, v + τ²)."""
    n = block_info[None]["chunk-shape"][0]
    rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(block_id[0],)))
    v = rng.uniform(0.01, 0.5, size=(n, k))
    tau2 = rng.choice([0.0, 0.02, 0.1, 0.5], size=(n, 1))
    return np.concatenate([rng.normal(0.3, np.sqrt(v + tau2)), v], axis=1)


def data(rows, k, chunk, seed=2024):
    """(y, v) as Dask arrays whose blocks are generated where they are computed."""
    import dask.array as da

    nblk = -(-rows // chunk)
    sizes = tuple(min(chunk, rows - i * chunk) for i in range(nblk))
    yv = da.map_blocks(_block, k, seed, chunks=(sizes, (2 * k,)), dtype=float,
                       meta=np.empty((0, 0)))
    return yv[:, :k], yv[:, k:]


def best(fn, repeat):
    times, out = [], None
    for _ in range(repeat):
        t = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t)
    return min(times), out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--chunk", type=int, default=100_000)
    ap.add_argument("--pymare-rows", type=int, default=20_000)
    ap.add_argument("--method", default="REML")
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--no-regression", action="store_true", help="skip the mods= rows")
    ap.add_argument("--blocks-only", action="store_true",
                    help="no unchunked in-process call (for 10^7 rows, whose one engine call "
                         "would not fit in memory): the reference is the same blocks computed "
                         "one after another in this process (scheduler='sync')")
    args = ap.parse_args(argv)
    import dask
    from distributed import Client, LocalCluster

    print(f"pool_many({args.method}), {args.rows:,} meta-analyses of k = {args.k}, "
          f"blocks of {args.chunk:,} rows; {load()}")
    yd, vd = data(args.rows, args.k, args.chunk)
    reference = "the sync blocks" if args.blocks_only else "one engine call"
    if args.blocks_only:
        y = v = None
        t_in, ref = best(lambda: ma.pool_many(yd, vd, method=args.method, scheduler="sync",
                                              compute=True), 1)
        per_in = t_in / args.rows
        print(f"  in-process, blocks one after another (sync; data made in the blocks): "
              f"{t_in:7.2f} s  {per_in * 1e6:6.3f} µs/fit  ({load()})")
    else:
        y, v = dask.compute(yd, vd, scheduler="threads")
        t_in, ref = best(lambda: ma.pool_many(y, v, method=args.method), args.repeat)
        per_in = t_in / args.rows
        print(f"  in-process (NumPy, one engine call): {t_in:7.2f} s  {per_in * 1e6:6.3f} "
              f"µs/fit  ({load()})")

        t_blk, blk = best(lambda: ma.pool_many(y, v, method=args.method, chunks=args.chunk,
                                               scheduler="sync"), 1)
        print(f"  in-process, same blocks (sync)     : {t_blk:7.2f} s  "
              f"{t_blk / args.rows * 1e6:6.3f} µs/fit; τ² vs one engine call: max |Δ| "
              f"{float(np.max(np.abs(blk.tau2 - ref.tau2))):.1e}, "
              f"{int(np.sum(blk.tau2 != ref.tau2))} rows differ  ({load()})")

    def report(name, t, res, ref=ref, per_in=per_in, est="estimate"):
        same = (np.array_equal(res.tau2, ref.tau2)
                and np.array_equal(getattr(res, est), getattr(ref, est)))
        dmax = float(np.max(np.abs(res.tau2 - ref.tau2)))
        print(f"  {name:<34}: {t:7.2f} s  {t / args.rows * 1e6:6.3f} µs/fit  "
              f"{per_in * args.rows / t:5.2f}x in-process; τ², {est} identical to "
              f"{reference}: {same} (max |Δτ²| {dmax:.1e})  ({load()})")

    t, res = best(lambda: ma.pool_many(yd, vd, method=args.method, scheduler="threads",
                                       compute=True), args.repeat)
    report(f"Dask threads ({os.cpu_count()} threads)", t, res)
    x = np.linspace(0.0, 1.0, args.k)  # one moderator, shared by every row
    if not args.no_regression:
        if args.blocks_only:
            t_reg, ref_reg = best(lambda: ma.pool_many(yd, vd, mods=x, method=args.method,
                                                       scheduler="sync", compute=True), 1)
        else:
            t_reg, ref_reg = best(lambda: ma.pool_many(y, v, mods=x, method=args.method),
                                  args.repeat)
        per_reg = t_reg / args.rows
        print(f"  mods=: in-process (one engine call) : {t_reg:7.2f} s  {per_reg * 1e6:6.3f} "
              f"µs/fit  ({load()})")
        t, res = best(lambda: ma.pool_many(yd, vd, mods=x, method=args.method,
                                           scheduler="threads", compute=True), args.repeat)
        report(f"mods=: Dask threads ({os.cpu_count()})", t, res, ref_reg, per_reg, "coef")

    workers = sorted({1, 2, os.cpu_count() or 1})
    for n in workers:
        with LocalCluster(n_workers=n, threads_per_worker=1, processes=True,
                          dashboard_address=":0") as cluster, Client(cluster) as client:
            ma.pool_many(yd[: args.chunk], vd[: args.chunk], method=args.method,
                         client=client, compute=True)  # warm the workers' imports
            t, res = best(lambda c=client: ma.pool_many(yd, vd, method=args.method, client=c,
                                                       compute=True), args.repeat)
            label = "all cores" if n == os.cpu_count() else f"{n} worker{'s' * (n > 1)}"
            report(f"LocalCluster, {n} process{'es' * (n > 1)} ({label})", t, res)
            if n == max(workers) and not args.no_regression:
                t, res = best(lambda c=client: ma.pool_many(
                    yd, vd, mods=x, method=args.method, client=c, compute=True), args.repeat)
                report(f"mods=: LocalCluster, {n} processes", t, res, ref_reg, per_reg, "coef")

    try:
        from pymare.estimators import VarianceBasedLikelihoodEstimator
    except ImportError:  # pragma: no cover
        print("  PyMARE: not installed; row skipped")
        return 0
    n = min(args.pymare_rows, args.rows)
    if y is None:
        y, v = (np.asarray(a) for a in dask.compute(yd[:n], vd[:n], scheduler="sync"))
    X = np.ones((args.k, 1))

    def run_pymare():
        est = VarianceBasedLikelihoodEstimator(method="REML")
        est.fit(y=y[:n].T, v=v[:n].T, X=X)
        return est

    t_pm, est = best(run_pymare, 1)
    diff = np.abs(np.ravel(est.params_["tau2"]) - ref.tau2[:n])
    print(f"  PyMARE REML ({n:,} rows, one process) : {t_pm:7.2f} s  {t_pm / n * 1e6:6.3f} µs/fit"
          f"  -> in-process metaanalysis {t_pm / n / per_in:.1f}x faster per fit "
          f"(|Δτ²| median {np.median(diff):.1g}, max {diff.max():.1g})  ({load()})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
