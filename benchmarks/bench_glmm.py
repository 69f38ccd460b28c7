"""Benchmark: ``pool_glmm`` on the 13 GLMM fits of ``metaanalysis report`` and the 7 test cases.

Run with ``python benchmarks/bench_glmm.py`` (``--repeat N``, best of N kept;
``--root`` times another checkout, e.g. an older commit unpacked with ``git archive``).
Prints the machine's ``uptime`` load, and for each set the CPU time
(``time.process_time``, which stays meaningful on a shared machine) of all its fits,
per fit, and the number of likelihood evaluations (batched quadrature calls) per fit.

The report's inputs are the event counts the shipped studies give the GLMM (local
control with its leave-one-out and overlap variants, cement leakage with its
sensitivity analyses, complications), recorded from a report run; the test cases
are those of ``tests/data/proportions_glmm.json``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

#: (events, total) of every pool_glmm call of `metaanalysis report` on studies/
REPORT = [
    ([133, 59, 26, 33], [140, 61, 28, 33]),
    ([59, 26, 33], [61, 28, 33]),
    ([133, 26, 33], [140, 28, 33]),
    ([133, 59, 33], [140, 61, 33]),
    ([133, 59, 26], [140, 61, 28]),
    ([73, 59, 26, 33], [77, 61, 28, 33]),
    ([128, 59, 26, 33], [135, 61, 28, 33]),
    ([42, 32, 10], [140, 115, 33]),
    ([42, 25, 32, 10, 37], [140, 63, 115, 33, 85]),
    ([42, 10, 37], [140, 33, 85]),
    ([42, 25, 10], [140, 63, 33]),
    ([1, 0, 2], [91, 17, 67]),
    ([0, 2], [17, 69]),
]


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeat", type=int, default=5, help="runs of each set; the fastest is kept")
    p.add_argument("--root", default=str(ROOT), help="checkout whose metaanalysis is timed")
    args = p.parse_args(argv)
    sys.path.insert(0, args.root)
    import metaanalysis.models.proportions as prop

    cases = json.loads((ROOT / "tests" / "data" / "proportions_glmm.json").read_text())
    tests = [(c["xi"], c["ni"]) for name, c in cases.items() if name != "generator"]
    calls = {"n": 0}
    evaluator = "_quadrature" if hasattr(prop, "_quadrature") else "_study_loglik"
    inner = getattr(prop, evaluator)

    def counted(*a, **kw):
        calls["n"] += 1
        return inner(*a, **kw)

    setattr(prop, evaluator, counted)
    print("load:", subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip())
    print(f"package: {Path(prop.__file__).parents[2]}")
    for name, data in (("report", REPORT), ("tests", tests)):
        best = float("inf")
        for _ in range(args.repeat):
            calls["n"] = 0
            t = time.process_time()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                for x, n in data:
                    prop.pool_glmm(x, n)
            best = min(best, time.process_time() - t)
        print(f"{name:7s} {len(data):2d} fits: CPU {best:.3f} s, {1000 * best / len(data):.1f} ms "
              f"per fit, {calls['n'] / len(data):.0f} likelihood evaluations per fit")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
