"""Benchmark: GOSH (all subsets) in metaanalysis vs metafor's gosh().

Run from the repository root::

    python benchmarks/bench_gosh.py [--methods DL,REML] [--skip-r] [--r-repeat 3]

(a) all 2^16 - 1 = 65,535 subsets of the k = 16 magnesium trials
    (dat.egger2001, log odds ratios, tests/data/metafor/egger2001_or.json),
    timed here and in R with metafor's gosh() on the same data and the same
    τ² estimator; the per-subset results are compared too.  Both sides are
    timed in CPU seconds, best of 3: ``time.process_time()`` around
    ``ma.gosh()`` here, user + system time of ``system.time(gosh(...))``
    inside R (so R's start-up is not counted).
(b) all 2^20 - 1 = 1,048,575 subsets of a simulated k = 20 data set
    (numpy seed 20240601), timed here only.

Each part runs once per τ² estimator in ``--methods`` (default ``DL,REML``):
metafor's gosh() refits with the method of the model given to it, so both
sides always refit with the same estimator.  REML is the default of both
``rma()`` and ``ma.pool()``; DL is metafor's fastest gosh() path (it has a
closed-form shortcut for DL and EE), so the DL row is the hardest comparison.
metafor's REML run takes several minutes.  Targets: (a) ≥ 100× faster than
metafor, (b) < 10 s on a 2-core machine.
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

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import metaanalysis as ma  # noqa: E402 -- after the sys.path line

R_SCRIPT = r"""
suppressPackageStartupMessages({library(metafor); library(jsonlite)})
d <- fromJSON(commandArgs(TRUE)[1])
fit <- rma(d$yi, d$vi, method = d$method)
reps <- as.integer(commandArgs(TRUE)[2])
tm <- Inf
for (i in seq_len(reps)) {
  st <- system.time(g <- gosh(fit, progbar = FALSE))
  tm <- min(tm, st[["user.self"]] + st[["sys.self"]])
}
bits <- as.vector(g$incl %*% (2^(seq_len(ncol(g$incl)) - 1)))
cat(toJSON(list(seconds = tm, reps = reps, bits = bits, estimate = g$res$estimate, tau2 = g$res$tau2,
                i2 = g$res$I2, q = g$res$QE, metafor = as.character(packageVersion("metafor"))),
           digits = NA, na = "null", auto_unbox = TRUE))
"""


def _time(fn, repeat=3):
    """Best CPU time (``time.process_time``, all threads of this process) of ``repeat`` runs."""
    best, out = np.inf, None
    for _ in range(repeat):
        t0 = time.process_time()
        out = fn()
        best = min(best, time.process_time() - t0)
    return best, out


def part_a(method: str, skip_r: bool, r_repeat: int = 3) -> None:
    case = json.loads((ROOT / "tests/data/metafor/egger2001_or.json").read_text())
    yi, vi = np.asarray(case["yi"]), np.asarray(case["vi"])
    k = yi.size
    res = ma.pool(yi, vi, method=method)
    secs, g = _time(lambda: ma.gosh(res))
    print(f"(a) GOSH, k = {k} (dat.egger2001 log OR), all {len(g):,} subsets, "
          f"τ² estimator {method}")
    print(f"    metaanalysis : {secs:8.3f} s  CPU (best of 3)")
    rscript = shutil.which("Rscript")
    if skip_r or rscript is None:
        print("    metafor      : skipped (" + ("--skip-r" if skip_r else "Rscript not found")
              + ")")
        return
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp, "data.json")
        data.write_text(json.dumps({"yi": yi.tolist(), "vi": vi.tolist(), "method": method}))
        script = Path(tmp, "gosh.R")
        script.write_text(R_SCRIPT)
        proc = subprocess.run([rscript, str(script), str(data), str(r_repeat)],
                              capture_output=True,
                              text=True, check=False)
    if proc.returncode != 0:
        print(f"    metafor      : failed ({proc.stderr.strip()[-300:]})")
        return
    r = json.loads(proc.stdout)
    print(f"    metafor {r['metafor']}: {r['seconds']:8.3f} s  CPU (best of {r['reps']}; gosh(), "
          f"{len(r['bits']):,} subsets)")
    print(f"    ratio        : {r['seconds'] / secs:8.0f}× faster")
    pos = np.asarray(r["bits"], dtype=np.int64) - 1
    f = g.frame.iloc[pos]
    theirs = {c: np.array([np.nan if x is None else x for x in r[c]], dtype=float)
              for c in ("estimate", "tau2", "i2", "q")}
    na = np.isnan(theirs["estimate"])
    d_est = np.abs(f["estimate"].to_numpy() - theirs["estimate"])[~na]
    print(f"    agreement    : {int((~na).sum()):,} subsets fitted by both; max |Δ| "
          + ", ".join(f"{c} {np.nanmax(np.abs(f[c].to_numpy() - theirs[c])[~na]):.1e}"
                      for c in theirs))
    if na.any():
        print(f"                   metafor returned NA (fit failed) for {int(na.sum()):,} subsets")
    if method != "DL":
        big = int((d_est > 1e-4).sum())
        print(f"                   median |Δ estimate| {np.median(d_est):.1e} (metafor's default "
              f"tolerance is 1e-5); |Δ| > 1e-4 in {big} subsets (metafor stopped early, "
              "or at τ² = 0, a lower local maximum of a bimodal REML likelihood)")


def part_b(method: str) -> None:
    rng = np.random.default_rng(20240601)
    k = 20
    vi = rng.uniform(0.01, 0.2, k)
    yi = rng.normal(0.3, np.sqrt(vi + 0.05))
    res = ma.pool(yi, vi, method=method)
    t0, c0 = time.perf_counter(), time.process_time()
    g = ma.gosh(res)
    secs, cpu = time.perf_counter() - t0, time.process_time() - c0
    print(f"(b) GOSH, k = {k} (simulated, seed 20240601), all {len(g):,} subsets, "
          f"τ² estimator {method}")
    print(f"    metaanalysis : {secs:8.3f} s  wall, {cpu:.3f} s CPU ({os.cpu_count()} CPUs); "
          "target < 10 s")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--methods", default="DL,REML",
                    help="comma-separated τ² estimators, used on both sides (default DL,REML)")
    ap.add_argument("--skip-r", action="store_true", help="do not run metafor")
    ap.add_argument("--r-repeat", type=int, default=3,
                    help="runs of metafor's gosh() per method, best taken (default 3; "
                         "one REML run takes minutes)")
    args = ap.parse_args(argv)
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    for method in methods:
        part_a(method, args.skip_r, args.r_repeat)
    for method in methods:
        part_b(method)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
