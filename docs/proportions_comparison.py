"""GLMM vs logit vs Freeman-Tukey on the shipped proportion data (docs/proportions.md).

Run from the repository root:  python docs/proportions_comparison.py
Data: /work/shared/domain/thermal-ablation-studies.md (abstract counts).
"""

from __future__ import annotations

import metaanalysis as ma
from metaanalysis.formatting import ci, num, pct
from metaanalysis.models.proportions import pool_proportions

DATASETS = {
    "Local tumour control (patients)": (
        ["khan2018", "liu2023"], [59, 26], [61, 28], "patients"),
    "Cement leakage (lesions)": (
        ["chen2022", "wang2022", "zhang2024", "wu2021"], [42, 32, 37, 10], [140, 115, 85, 33], "lesions"),
    "Complications (patients)": (
        ["chen2022", "khan2018", "jvir2014", "zhang2024"], [1, 2, 0, 2], [91, 69, 17, 67], "patients"),
}  # fmt: skip

MODELS = [  # (label, measure, method)
    ("GLMM (binomial-normal, ML)", "PLO", "GLMM"),
    ("logit, REML", "PLO", "REML"),
    ("Freeman-Tukey, REML", "PFT", "REML"),
    ("arcsine, REML", "PAS", "REML"),
    ("raw proportion, REML", "PR", "REML"),
]


def main() -> None:
    for title, (labels, events, total, unit) in DATASETS.items():
        print(f"## {title}\n")
        lb, ub = ma.proportion_ci(events, total)  # Clopper-Pearson
        for s, x, n, lo, hi in zip(labels, events, total, lb, ub):
            print(
                f"  {s:<10} {x:>3}/{n:<4} {pct(100 * x / n)}  exact 95% CI {ci(100 * lo, 100 * hi, 1)} %"
            )
        print()
        print(
            f"  {'model':<28} {'proportion':>10}  {'95% CI':<18} {'95% PI':<18} {'tau2':>7} {'I2':>6}"
        )
        notes = set()
        for name, measure, method in MODELS:
            res = pool_proportions(events, total, measure=measure, method=method,
                                   labels=labels, unit=unit)  # fmt: skip
            b = res.back_transform().iloc[0]
            print(
                f"  {name:<28} {num(b['estimate']):>10}  {ci(b['ci_lb'], b['ci_ub']):<18} "
                f"{ci(b['pi_lb'], b['pi_ub']):<18} {num(res.tau2):>7} {pct(res.i2):>6}"
            )
            notes.update(
                n.split(";")[0].split(":")[0] for n in res.notes if "GLMM" in n or "Miller" in n
            )
        print("\n  notes printed with the two-step results:", "; ".join(sorted(notes)) or "none")
        print()


if __name__ == "__main__":
    main()
