"""Benchmark: the engine in a Dask worker with and without a fixed glibc mmap threshold.

Run with ``python benchmarks/bench_dask_malloc.py`` (``--repeat N``).  Each case starts a
``LocalCluster`` of one worker process (one thread) and times ``persist()`` of
``pool_many(REML)`` on 10⁶ meta-analyses of k = 10 in blocks of 100,000 rows (the data are
generated in the worker, nothing travels back), with the worker environment

* ``default``: Dask's ``distributed.nanny.pre-spawn-environ`` (it sets
  ``MALLOC_TRIM_THRESHOLD_=65536``, which also freezes glibc's mmap threshold at 128 KiB, so
  every temporary array of the engine above that size is mapped and unmapped afresh);
* ``mmap``: the same plus ``MALLOC_MMAP_THRESHOLD_=33554432`` (32 MiB), so the engine's
  temporaries are reused from the heap as they are in an ordinary Python process.

Each case runs in its own Python process (the Dask configuration is read when the worker
starts).  The machine's load average is printed with every number.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))


def load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.2f}, {five:.2f}, {fifteen:.2f} on {os.cpu_count()} CPUs"


def case(kind: str) -> None:
    import dask
    import distributed
    from bench_dask import data
    from distributed import Client, LocalCluster, wait

    import metaanalysis as ma

    env = dict(dask.config.get("distributed.nanny.pre-spawn-environ"))
    if kind == "mmap":
        env["MALLOC_MMAP_THRESHOLD_"] = 33554432
    with dask.config.set({"distributed.nanny.pre-spawn-environ": env}):
        yd, vd = data(1_000_000, 10, 100_000)
        with LocalCluster(n_workers=1, threads_per_worker=1, processes=True,
                          dashboard_address=":0") as cluster, Client(cluster) as client:
            ma.pool_many(yd[:100_000], vd[:100_000], client=client, compute=True)  # warm up
            lazy = ma.pool_many(yd, vd, client=client, compute=False)
            t = time.perf_counter()
            done = lazy.persist()
            wait(list(done.arrays.values()))
            took = time.perf_counter() - t
    print(f"  {kind:<8} (distributed {distributed.__version__}): {took:6.2f} s for 10 blocks of "
          f"100,000 rows in one worker  ({load()})", flush=True)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--case", choices=["default", "mmap"], help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.case:
        case(args.case)
        return 0
    print(f"pool_many(REML) on 10^6 rows (k = 10) persisted in one Dask worker; {load()}")
    for _ in range(args.repeat):
        for kind in ("default", "mmap"):
            subprocess.run([sys.executable, __file__, "--case", kind], check=True,
                           stderr=subprocess.DEVNULL)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
