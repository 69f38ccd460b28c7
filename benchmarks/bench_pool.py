"""Benchmark: pool_many REML vs PyMARE and a metafor loop, plus a single pool().

Run with ``python benchmarks/bench_pool.py`` (options: ``--batch``, ``--pymare-batch``,
``--r-fits``).  Prints per-fit times and the ratios in one run.  All times are CPU times (``time.process_time`` in Python,
``proc.time()`` user + system in R), which stay meaningful on a shared machine:

* ``pool_many(method="REML")`` on 100,000 simulated meta-analyses of k = 10
  (Q-profile off, the pool_many default; also timed with it on);
* PyMARE's vectorised ``VarianceBasedLikelihoodEstimator(method="REML")`` on the
  first ``--pymare-batch`` rows of the same data (default: all of them, so both
  run on the same batch; per-fit time);
* a loop of metafor ``rma(method="REML")`` over the first ``--r-fits`` rows via
  ``Rscript`` (timed inside R; the row is skipped when Rscript or metafor is missing);
* one ``pool()`` call on the BCG data (k = 13, REML, with Q-profile intervals).
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import metaanalysis as ma  # noqa: E402 -- after the sys.path line

R_CODE = r"""
suppressMessages(library(metafor))
d <- as.matrix(read.csv("%s", header = FALSE))
k <- ncol(d) / 2
n <- nrow(d)
est <- numeric(n)
cpu <- function() { p <- proc.time(); p[["user.self"]] + p[["sys.self"]] }
t0 <- cpu()
for (i in seq_len(n)) {
  fit <- try(rma(d[i, 1:k], d[i, (k + 1):(2 * k)], method = "REML"), silent = TRUE)
  est[i] <- if (inherits(fit, "try-error")) NA else fit$tau2
}
el <- cpu() - t0
cat(sprintf("%%.10f\n", el / n))
cat(sum(is.na(est)), "\n")
"""


def simulate(batch: int, k: int, seed: int = 2024):
    rng = np.random.default_rng(seed)
    v = rng.uniform(0.01, 0.5, size=(batch, k))
    tau2 = rng.choice([0.0, 0.02, 0.1, 0.5], size=(batch, 1))
    y = rng.normal(0.3, np.sqrt(v + tau2))
    return y, v


def best_of(fn, repeat: int) -> float:
    """Best CPU time (process_time) of ``repeat`` runs: stable on a shared machine."""
    times = []
    for _ in range(repeat):
        t = time.process_time()
        fn()
        times.append(time.process_time() - t)
    return min(times)


def time_r(y, v):
    if shutil.which("Rscript") is None:
        return None, "Rscript not found"
    with tempfile.TemporaryDirectory() as tmp:
        csv = Path(tmp) / "d.csv"
        np.savetxt(csv, np.hstack([y, v]), delimiter=",", fmt="%.17g")
        script = Path(tmp) / "b.R"
        script.write_text(R_CODE % csv.as_posix())
        proc = subprocess.run(
            ["Rscript", str(script)], capture_output=True, text=True, check=False
        )
        if proc.returncode != 0:
            return None, proc.stderr.strip().splitlines()[-1] if proc.stderr else "Rscript failed"
        lines = proc.stdout.split()
        return float(lines[0]), f"{int(lines[1])} fits failed in R"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batch", type=int, default=100_000)
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--pymare-batch", type=int, default=100_000)
    ap.add_argument("--r-fits", type=int, default=200)
    args = ap.parse_args(argv)

    y, v = simulate(args.batch, args.k)
    ma.pool_many(y[:100], v[:100])  # warm-up (imports)
    t_ours = best_of(lambda: ma.pool_many(y, v, method="REML"), 3)
    res = ma.pool_many(y, v, method="REML")
    t_ours_qp = best_of(lambda: ma.pool_many(y, v, method="REML", qprofile=True), 1)
    per_ours = t_ours / args.batch
    print(
        f"metaanalysis.pool_many REML, {args.batch} x k={args.k}: {t_ours:.3f} s total, "
        f"{per_ours * 1e6:.3f} µs/fit; converged {int(res.converged.sum())}/{args.batch}"
    )
    print(f"  with Q-profile CIs (qprofile=True): {t_ours_qp / args.batch * 1e6:.3f} µs/fit")

    try:
        from pymare.estimators import VarianceBasedLikelihoodEstimator
    except ImportError:  # pragma: no cover
        print("PyMARE: not installed; row skipped")
    else:
        n = min(args.pymare_batch, args.batch)
        X = np.ones((args.k, 1))

        def run_pymare():
            est = VarianceBasedLikelihoodEstimator(method="REML")
            est.fit(y=y[:n].T, v=v[:n].T, X=X)
            return est

        t_pm = best_of(run_pymare, 1)
        est = run_pymare()
        diff = np.abs(np.ravel(est.params_["tau2"]) - res.tau2[:n])
        per_pm = t_pm / n
        print(
            f"PyMARE VarianceBasedLikelihoodEstimator REML, {n} fits: {per_pm * 1e6:.3f} µs/fit  "
            f"-> metaanalysis is {per_pm / per_ours:.1f}x faster per fit "
            f"(|Δτ²| median {np.median(diff):.2g}, max {diff.max():.2g})"
        )

    n = min(args.r_fits, args.batch)
    per_r, info = time_r(y[:n], v[:n])
    if per_r is None:
        print(f"metafor rma loop: skipped ({info})")
    else:
        print(
            f"metafor rma(method='REML') loop in R, {n} fits: {per_r * 1e3:.3f} ms/fit ({info})  "
            f"-> metaanalysis is {per_r / per_ours:.0f}x faster per fit"
        )

    bcg = json.loads((ROOT / "tests" / "data" / "metafor" / "bcg_rr.json").read_text())
    reps = 500
    per = {}
    for method in ("REML", "DL"):
        ma.pool(bcg["yi"], bcg["vi"], method=method)
        per[method] = best_of(
            lambda m=method: [ma.pool(bcg["yi"], bcg["vi"], method=m) for _ in range(reps)], 5
        ) / reps
    print(
        f"single pool() on BCG (k = 13, REML, Q-profile CIs): {per['REML'] * 1e6:.0f} µs per call "
        f"(DL: {per['DL'] * 1e6:.0f} µs)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
