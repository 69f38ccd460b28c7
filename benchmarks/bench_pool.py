"""Benchmark: the batch engine against PyMARE 0.0.13 and a metafor loop, in one run.

Run with ``python benchmarks/bench_pool.py`` (``--quick`` for a short run;
``--max-elements`` caps batch × k).  Prints, with the machine's ``uptime`` load:

1. ``pool_many(method="REML")`` vs PyMARE's vectorised
   ``VarianceBasedLikelihoodEstimator(method="REML")`` on the same arrays, at
   k = 2 … 100 and N = 10³ … 10⁶ rows (N × k capped by ``--max-elements``):
   per-fit CPU time of both, the ratio, and the largest |Δτ²| against PyMARE run
   with ``xtol=1e-9`` on the first 10⁴ rows (PyMARE's default stops at 1e-6);
   ours twice: ``pool_many`` (every output but the Q-profile) and ``engine.fit``
   with PyMARE's outputs only (``outputs=("estimate", "se", "tau2")``);
2. DL and HE against PyMARE's ``DerSimonianLaird`` and ``Hedges``;
3. peak memory per row (``tracemalloc``) of those fits, and as a multiple of
   the input (2 k float64 per row);
4. batch meta-regression (p = 2, k = 20, 10,000 rows, one design shared) vs
   PyMARE's REML estimator with that ``X``;
5. one ``pool()`` on dat.bcg (k = 13, REML, Q-profile CIs and PI), per call,
   and a metafor ``rma()`` + ``confint()`` loop timed inside R (skipped when
   Rscript or metafor is missing).

All times are CPU times (``time.process_time``; ``proc.time()`` user + system in R),
best of a few repeats, which stay meaningful on a shared machine.
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
import tracemalloc
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import metaanalysis as ma  # noqa: E402 -- after the sys.path line
from metaanalysis import engine  # noqa: E402

R_CODE = r"""
suppressMessages(library(metafor))
yi <- c(%s); vi <- c(%s)
reps <- %d
cpu <- function() { p <- proc.time(); p[["user.self"]] + p[["sys.self"]] }
t0 <- cpu()
for (i in seq_len(reps)) { r <- rma(yi, vi, method = "REML"); ci <- confint(r); pr <- predict(r) }
cat(sprintf("%%.10f\n", (cpu() - t0) / reps))
t0 <- cpu()
for (i in seq_len(reps)) r <- rma(yi, vi, method = "REML")
cat(sprintf("%%.10f\n", (cpu() - t0) / reps))
"""


def simulate(batch: int, k: int, seed: int = 2024):
    rng = np.random.default_rng(seed)
    v = rng.uniform(0.01, 0.5, size=(batch, k))
    tau2 = rng.choice([0.0, 0.02, 0.1, 0.5], size=(batch, 1))
    y = rng.normal(0.3, np.sqrt(v + tau2))
    return y, v


def cpu(fn, repeat: int) -> float:
    """Best CPU time of ``repeat`` runs."""
    best = np.inf
    for _ in range(repeat):
        t = time.process_time()
        fn()
        best = min(best, time.process_time() - t)
    return best


def peak(fn) -> int:
    tracemalloc.start()
    fn()
    _, top = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return top


def uptime() -> str:
    try:
        load = os.getloadavg()
        return f"load average {load[0]:.2f}, {load[1]:.2f}, {load[2]:.2f} on {os.cpu_count()} CPUs"
    except OSError:  # pragma: no cover
        return "load average unavailable"


def pymare_estimator(name, **kw):
    from pymare import estimators

    if name == "REML":
        return estimators.VarianceBasedLikelihoodEstimator(method="REML", **kw)
    return {"DL": estimators.DerSimonianLaird, "HE": estimators.Hedges}[name]()


def run_pymare(name, y, v, X, **kw):
    est = pymare_estimator(name, **kw)
    est.fit(y=y.T, v=v.T, X=X)
    return est


def compare(method, k, n, repeat, out):
    y, v = simulate(n, k)
    X = np.ones((k, 1))
    ma.pool_many(y[:10], v[:10], method=method)  # warm-up
    reps = repeat if n <= 10**5 else 1
    t_many = cpu(lambda: ma.pool_many(y, v, method=method), reps)
    t_fit = cpu(lambda: engine.fit(y, v, method=method, qprofile=False,
                                   outputs=("estimate", "se", "tau2")), reps)
    t_pm = cpu(lambda: run_pymare(method, y, v, X), 1)
    mine = engine.fit(y, v, method=method, qprofile=False, outputs=("tau2",))["tau2"]
    m = min(n, 10**4)
    kw = {"xtol": 1e-9} if method == "REML" else {}
    ref = np.ravel(run_pymare(method, y[:m], v[:m], X, **kw).params_["tau2"])
    diff = np.abs(ref - mine[:m]).max()
    mem = peak(lambda: engine.fit(y[: min(n, 10**5)], v[: min(n, 10**5)], method=method,
                                  qprofile=False, outputs=("estimate", "se", "tau2")))
    rows = min(n, 10**5)
    line = (f"{method:>4} k={k:<3} N={n:<8} pool_many {t_many / n * 1e6:7.3f} µs  "
            f"fit(est,se,tau2) {t_fit / n * 1e6:7.3f} µs  PyMARE {t_pm / n * 1e6:8.3f} µs  "
            f"ratio {t_pm / t_many:5.1f}x / {t_pm / t_fit:5.1f}x  max|Δτ²| {diff:.1e}  "
            f"peak {mem / rows:7.0f} B/row ({mem / rows / (16 * k):4.1f}x input)")
    print(line, flush=True)
    out.append({"method": method, "k": k, "n": n, "pool_many": t_many / n,
                "fit": t_fit / n, "pymare": t_pm / n, "diff": diff, "peak_per_row": mem / rows})


def regression_bench(repeat):
    k, n = 20, 10_000
    y, v = simulate(n, k, seed=7)
    x = np.linspace(-1, 1, k)
    X = np.column_stack([np.ones(k), x])
    y = y + 0.2 * x
    ma.pool_many(y[:10], v[:10], mods=x)
    t_ours = cpu(lambda: ma.pool_many(y, v, mods=x, method="REML"), repeat)
    t_fit = cpu(lambda: engine.fit(y, v, X=X, method="REML", qprofile=False,
                                   outputs=("coef", "coef_se", "tau2")), repeat)
    t_pm = cpu(lambda: run_pymare("REML", y, v, X), 1)
    mine = engine.fit(y, v, X=X, method="REML", qprofile=False, outputs=("tau2",))["tau2"]
    ref = np.ravel(run_pymare("REML", y[:2000], v[:2000], X, xtol=1e-9).params_["tau2"])
    diff = np.abs(ref - mine[:2000]).max()
    print(f"meta-regression REML, p=2, k={k}, N={n}: pool_many(mods=) {t_ours / n * 1e6:.2f} µs/fit, "
          f"engine.fit(coef,se,tau2) {t_fit / n * 1e6:.2f} µs/fit, PyMARE {t_pm / n * 1e6:.2f} µs/fit "
          f"-> {t_pm / t_ours:.1f}x / {t_pm / t_fit:.1f}x faster (max|Δτ²| {diff:.1e})", flush=True)


def single_pool(repeat):
    bcg = json.loads((ROOT / "tests" / "data" / "metafor" / "bcg_rr.json").read_text())
    y, v = bcg["yi"], bcg["vi"]
    reps = 300
    per = {}
    for method in ("REML", "DL"):
        ma.pool(y, v, method=method)
        per[method] = cpu(lambda m=method: [ma.pool(y, v, method=m) for _ in range(reps)],
                          repeat) / reps
    print(f"single pool() on dat.bcg (k = 13, REML, Q-profile CIs for τ²/I²/H², PI): "
          f"{per['REML'] * 1e6:.0f} µs per call (DL: {per['DL'] * 1e6:.0f} µs)", flush=True)
    if shutil.which("Rscript") is None:
        print("metafor rma() loop: skipped (Rscript not found)")
        return
    with tempfile.TemporaryDirectory() as tmp:
        script = Path(tmp) / "b.R"
        script.write_text(R_CODE % (", ".join(map(repr, y)), ", ".join(map(repr, v)), 200))
        proc = subprocess.run(["Rscript", str(script)], capture_output=True, text=True,
                              check=False)
    if proc.returncode != 0:
        print("metafor rma() loop: skipped (" + (proc.stderr.strip().splitlines() or ["R failed"])[-1] + ")")
        return
    full, plain = (float(x) for x in proc.stdout.split())
    print(f"metafor on dat.bcg in R: rma(REML) + confint + predict {full * 1e6:.0f} µs per call, "
          f"rma alone {plain * 1e6:.0f} µs -> pool() is {full / per['REML']:.1f}x faster than the "
          f"first", flush=True)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer sizes")
    ap.add_argument("--max-elements", type=float, default=2e7,
                    help="skip sizes with N × k above this (memory)")
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args(argv)
    print(f"uptime: {uptime()}")
    ks = (2, 10, 100) if args.quick else (2, 5, 10, 20, 50, 100)
    ns = (10**3, 10**5) if args.quick else (10**3, 10**4, 10**5, 10**6)
    results: list[dict] = []
    for method in ("REML", "DL", "HE"):
        for k in ks if method == "REML" else (2, 10, 100):
            for n in ns if method == "REML" else (10**5,):
                if n * k > args.max_elements:
                    print(f"{method:>4} k={k:<3} N={n:<8} skipped (N x k = {n * k:.0e} > "
                          f"--max-elements {args.max_elements:.0e})")
                    continue
                compare(method, k, n, args.repeat, results)
    worst = min((r["pymare"] / r["pool_many"], r["k"], r["n"]) for r in results
                if r["method"] == "REML")
    print(f"REML: smallest ratio pool_many vs PyMARE {worst[0]:.1f}x (k = {worst[1]}, N = {worst[2]}); "
          f"largest |Δτ²| {max(r['diff'] for r in results if r['method'] == 'REML'):.1e}")
    regression_bench(args.repeat)
    single_pool(args.repeat)
    print(f"uptime: {uptime()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
