"""Bayesian vs frequentist pooling for the shipped k = 2 outcomes.

Run from the repository root:  python docs/bayes_comparison.py
Its output is pasted into docs/bayes.md.  Effect sizes are metafor's escalc
values stored in tests/data/metafor/ (complications: PLO; VAS: MC with r = 0.5).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

import metaanalysis as ma
from metaanalysis.effects.transforms import to_natural
from metaanalysis.formatting import ci, num

DATA = Path(__file__).resolve().parent.parent / "tests" / "data" / "metafor"


def frequentist_rows(yi, vi):
    rows = []
    for method, test in (("REML", "z"), ("REML", "knha"), ("DL", "z")):
        r = ma.pool(yi, vi, method=method, test=test)
        rows.append((f"{method}, {test}", r.estimate, r.ci_lb, r.ci_ub, r.pi_lb, r.pi_ub,
                     f"tau = {num(np.sqrt(r.tau2))}"))
    return rows


def bayes_rows(yi, vi, measure, ni=None):
    tab = ma.prior_sensitivity(yi, vi, measure=measure, ni=ni)
    rows = []
    for name, r in tab.iterrows():
        rows.append((f"Bayes {name}", r["mu_median"], r["mu_ci_lb"], r["mu_ci_ub"],
                     r["pi_lb"], r["pi_ub"],
                     f"tau median {num(r['tau_median'])} {ci(r['tau_ci_lb'], r['tau_ci_ub'])}"))
    return rows


def show(title, rows, measure=None, ni=None):
    print(title)
    print(f"  {'method':34}{'estimate':>10}  {'95% CI / CrI':22}{'95% PI':22}  heterogeneity")
    for name, est, lb, ub, plb, pub, het in rows:
        print(f"  {name:34}{num(est):>10}  {ci(lb, ub):22}{ci(plb, pub):22}  {het}")
        if measure is not None:
            nat = to_natural(measure, np.array([est, lb, ub, plb, pub]), ni=ni)
            print(f"  {'  (as proportion)':34}{num(nat[0]):>10}  {ci(nat[1], nat[2]):22}"
                  f"{ci(nat[3], nat[4]):22}")
    print()


def main():
    comp = json.loads((DATA / "mwa_complications_k2.json").read_text())
    yi, vi = np.array(comp["PLO"]["yi"]), np.array(comp["PLO"]["vi"])
    show("Complications per patient, Chen 2022 (1/91) and Khan 2018 (2/69), logit scale (PLO)",
         frequentist_rows(yi, vi) + bayes_rows(yi, vi, "PLO"), measure="PLO")

    vas = json.loads((DATA / "mwa_vas_about1month.json").read_text())
    keep = [0, 1]  # Khan 2018 and Wang 2022
    yi = np.array(vas["MC"]["yi"])[keep]
    vi = np.array(vas["MC"]["vi"])[keep]
    ni = np.array([vas["data"][i]["n"] for i in keep], dtype=float)
    u = ma.bayes._priors.uisd(vi, ni)
    show(f"VAS reduction at about 1 month (MC, r = 0.5), Khan 2018 and Wang 2022; "
         f"UISD = {num(u)} VAS points",
         frequentist_rows(yi, vi) + bayes_rows(yi, vi, "MC", ni=ni))
    default = ma.pool_bayes(yi, vi, measure="MC", ni=ni, labels=["Khan 2018", "Wang 2022"])
    print(default.summary())


if __name__ == "__main__":
    main()
