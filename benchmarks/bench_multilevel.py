"""Benchmark: pool_mv on 50 studies × 5 time points, against metafor's rma.mv.

Run with ``python benchmarks/bench_multilevel.py`` (options: ``--studies``,
``--repeats``, ``--no-r``).  A synthetic repeated-measures data set (pain
relief at 1 day, 1 week, 1, 3 and 6 months; every study reports every time
point; sampling correlation 0.5 within a study) is fitted with one mean per
time point under each structure (CS, HCS, AR, HAR, CAR, UN, ID, DIAG; REML).
Times are CPU times of one fit (``time.process_time``; the median over
``--repeats`` fits) and, when ``Rscript`` with metafor is installed, of the
same ``rma.mv`` call (``proc.time()`` user + system inside R, default
optimiser), with the largest difference in the coefficients and the REML
log-likelihoods.  The machine load (``uptime``) is printed with the numbers.
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

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import metaanalysis as ma  # noqa: E402 -- after the sys.path line

STRUCTS = ("CS", "HCS", "AR", "HAR", "CAR", "UN", "ID", "DIAG")
DAYS = (1, 7, 30, 90, 180)

R_CODE = r"""
suppressMessages(library(metafor))
d <- read.csv("%s")
d$months <- d$days / 30
V <- vcalc(vi, cluster = study, obs = as.character(days), rho = 0.5, data = d)
cpu <- function() { p <- proc.time(); p[["user.self"]] + p[["sys.self"]] }
out <- list()
for (s in c(%s)) {
  t0 <- cpu()
  for (r in seq_len(%d)) res <- rma.mv(yi, V, mods = ~ factor(months) - 1,
                                       random = ~ months | study, struct = s, data = d)
  out[[s]] <- list(cpu = (cpu() - t0) / %d, beta = c(res$beta), ll = c(logLik(res)))
}
cat(jsonlite::toJSON(out, digits = NA, auto_unbox = TRUE))
"""


def simulate(n_studies: int, seed: int = 2024) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = []
    for s in range(n_studies):
        u = rng.normal(0, 0.8)
        n = rng.integers(20, 120)
        for t in DAYS:
            vi = rng.uniform(1.8, 2.6) ** 2 / n
            rows.append({"study": f"S{s:03d}", "days": t, "vi": round(vi, 6),
                         "yi": round(3.2 + 0.35 * np.log(t) + u + rng.normal(0, 0.35)
                                     + rng.normal(0, np.sqrt(vi)), 4)})
    return pd.DataFrame(rows)


def fit(d: pd.DataFrame, struct: str):
    return ma.pool_mv(d, study="study", time=d["days"] / 30, struct=struct, rho=0.5,
                      mods=pd.DataFrame({"t": pd.Categorical(d["days"] / 30)}),
                      intercept=False)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--studies", type=int, default=50)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--no-r", action="store_true", help="skip the rma.mv timings")
    args = ap.parse_args(argv)
    d = simulate(args.studies)
    print(f"load: {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f} {os.getloadavg()[2]:.2f} "
          f"(uptime) on {os.cpu_count()} cores")
    print(f"data: {args.studies} studies x {len(DAYS)} time points = {len(d)} estimates; "
          "cell means, REML, sampling correlation 0.5")
    fit(d, "CS")  # imports and first-call costs out of the timings
    ours = {}
    for s in STRUCTS:
        times = []
        for _ in range(args.repeats):
            t0 = time.process_time()
            res = fit(d, s)
            times.append(time.process_time() - t0)
        ours[s] = (float(np.median(times)), res)
    r = {}
    if not args.no_r and shutil.which("Rscript"):
        with tempfile.TemporaryDirectory() as tmp:
            csv = Path(tmp) / "d.csv"
            d.to_csv(csv, index=False)
            code = R_CODE % (csv, ", ".join(f'"{s}"' for s in STRUCTS), args.repeats, args.repeats)
            proc = subprocess.run(["Rscript", "-e", code], capture_output=True, text=True)
            if proc.returncode == 0:
                r = json.loads(proc.stdout.strip().splitlines()[-1])
            else:
                print("rma.mv timing skipped:", proc.stderr.strip().splitlines()[-1:])
    print(f"{'struct':<6} {'pool_mv (s)':>12} {'iterations':>10} {'rma.mv (s)':>11} "
          f"{'ratio':>7} {'max |Δβ|':>10} {'Δ logLik':>10}")
    for s in STRUCTS:
        t, res = ours[s]
        line = f"{s:<6} {t:>12.4f} {res.iterations:>10d}"
        if s in r:
            db = np.max(np.abs(res.coef["estimate"].to_numpy() - np.asarray(r[s]["beta"])))
            line += (f" {r[s]['cpu']:>11.4f} {r[s]['cpu'] / t:>7.1f} {db:>10.2e} "
                     f"{res.loglik - r[s]['ll']:>10.2e}")
        print(line)


if __name__ == "__main__":
    main()
