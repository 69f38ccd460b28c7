"""Subgroup analysis: pooling within subgroups and testing their differences.

:func:`subgroups` pools each subgroup with the package engine (separate τ²),
or fits one τ² common to all subgroups by meta-regression on the subgroup
dummies; Q-between is a common-effect fit of the subgroup estimates
(Borenstein et al. 2009, ch. 19) or the moderator test of that regression.

References
----------
Borenstein M, Hedges LV, Higgins JPT, Rothstein HR (2009). *Introduction to
Meta-Analysis*. Wiley, ch. 19.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

import numpy as np
import pandas as pd

from metaanalysis.errors import InputError
from metaanalysis.formatting import (
    ci,
    inference_text,
    level_text,
    method_text,
    num,
    p_text,
    pct,
    stat_text,
)
from metaanalysis.results.display import Display, Displayed, Lines, Table


@dataclass(frozen=True, eq=False, repr=False)
class SubgroupResult(Displayed):
    """Result of :func:`subgroups` (immutable).

    ``groups`` maps each level to its :class:`PoolResult`; ``q_between`` is the
    test for subgroup differences on ``q_between_df`` degrees of freedom (an F
    statistic on ``(q_between_df, q_between_df2)`` df when ``tau2="common"`` and
    ``test="knha"``).  ``tau2`` says whether τ² was estimated separately per
    subgroup or once, in common.
    """

    groups: dict
    q_between: float
    q_between_df: int
    q_between_p: float
    tau2: str
    method: str
    test: str
    level: float
    overall: Any = field(repr=False)
    q_between_df2: float | None = None
    tau2_common: float | None = None
    notes: tuple[str, ...] = ()

    def __post_init__(self):
        object.__setattr__(self, "groups", MappingProxyType(dict(self.groups)))

    def _frame(self) -> pd.DataFrame:
        rows = {str(g): {"k": r.k, "estimate": r.estimate, "se": r.se, "p": r.p,
                         "ci_lb": r.ci_lb, "ci_ub": r.ci_ub, "tau2": r.tau2, "i2": r.i2,
                         "q": r.q, "q_p": r.q_p} for g, r in self.groups.items()}
        out = pd.DataFrame.from_dict(rows, orient="index")
        out.index.name = "group"
        return out

    def to_frame(self) -> pd.DataFrame:
        """One row per subgroup: k, estimate, se, p, CI, τ², I², Q and its p
        (``attrs["description"]``: the method choices)."""
        return super().to_frame()

    def _display(self) -> Display:
        lv = level_text(self.level)
        some = next(iter(self.groups.values()))
        how = ("separately in each subgroup" if self.tau2 == "separate"
               else f"one τ² common to all subgroups (τ² = {num(self.tau2_common)}, from the "
                    "meta-regression on subgroup)")
        methods = (("τ² estimator", method_text(self.method)), ("τ² per subgroup", how),
                   ("CI and tests", inference_text(self.test, None if self.test == "z"
                                                   else "t(k − 1) in each subgroup"
                                                   if self.tau2 == "separate" else some.df)))
        table = pd.DataFrame(
            {"k": [str(r.k) for r in self.groups.values()],
             "estimate": [num(r.estimate) for r in self.groups.values()],
             f"{lv} CI": [ci(r.ci_lb, r.ci_ub) for r in self.groups.values()],
             "τ²": [num(r.tau2) for r in self.groups.values()],
             "I²": [pct(r.i2) for r in self.groups.values()]},
            index=pd.Index([str(g) for g in self.groups], name="subgroup"))
        if self.tau2 == "separate":
            test = (f"{stat_text(self.q_between, self.q_between_df, 'Q')}, "
                    f"{p_text(self.q_between_p)} (Q-between: common-effect fit of the subgroup "
                    "estimates)")
        elif self.q_between_df2 is not None:
            test = (f"{stat_text(self.q_between, (self.q_between_df, self.q_between_df2), 'F')}, "
                    f"{p_text(self.q_between_p)} (moderator test, common τ²)")
        else:
            test = (f"{stat_text(self.q_between, self.q_between_df, 'QM')}, "
                    f"{p_text(self.q_between_p)} (moderator test, common τ²)")
        rows = (("Test for subgroup differences", test),)
        return Display(f"Subgroup analysis ({len(self.groups)} subgroups, k = {self.overall.k})",
                       methods, (Table("", table), Lines(rows)), tuple(self.notes))


def subgroups(yi, vi=None, groups=None, *, method: str = "REML", test: str = "z",
              level: float = 0.95, tau2: str = "separate", labels=None) -> SubgroupResult:
    """Pool within subgroups and test for differences between them.

    Parameters
    ----------
    yi, vi : array_like
        Effect sizes and sampling variances (``yi`` may be an ``effect_sizes``
        DataFrame; then ``groups`` may be a column name).
    groups : array_like or str
        Subgroup of each study.  Subgroups are ordered as a pandas
        ``Categorical`` orders them (sorted, unless the categories are given).
    method, test, level :
        As in :func:`metaanalysis.pool`.
    tau2 : {"separate", "common"}
        ``"separate"`` (default): an independent model per subgroup; Q-between
        is the heterogeneity Q of a common-effect fit of the subgroup estimates
        (with their standard errors), on G − 1 df (Borenstein et al. 2009, ch.
        19).  ``"common"``: one τ² for all subgroups, from the meta-regression
        on subgroup dummies; subgroup estimates and the test of differences
        (QM, or F with Knapp-Hartung) come from that model.

    Returns
    -------
    SubgroupResult

    Examples
    --------
    >>> import metaanalysis as ma
    >>> sg = ma.subgroups([0.1, 0.3, 0.2, 0.6, 0.5], [0.01, 0.02, 0.02, 0.03, 0.02],
    ...                   ["a", "a", "a", "b", "b"], method="DL")
    >>> sorted(sg.groups)
    ['a', 'b']
    """
    from metaanalysis import engine
    from metaanalysis.effects.study_data import LABEL_COLUMNS
    from metaanalysis.models.pooling import pool
    from metaanalysis.models.regression import as_yi_vi_mods, factor_levels, meta_regression

    if tau2 not in ("separate", "common"):
        raise InputError(f"tau2={tau2!r} is not known; expected 'separate' or 'common'")
    if isinstance(yi, pd.DataFrame) and isinstance(groups, str):
        if groups not in yi.columns:
            raise InputError(f"groups={groups!r} is not a column of the DataFrame")
        if labels is None:
            for col in LABEL_COLUMNS:
                if col in yi.columns:
                    labels = [str(x) for x in yi[col]]
                    break
        groups = yi[groups]
    if groups is None:
        raise InputError("groups is required (one subgroup label per study)")
    measure = yi.attrs.get("measure") if isinstance(yi, pd.DataFrame) else None
    y, v, _ = as_yi_vi_mods(yi, vi, None if not isinstance(yi, pd.DataFrame) else [])
    g = pd.Series(groups).reset_index(drop=True)
    if len(g) != y.size:
        raise InputError(f"groups has {len(g)} entries but there are {y.size} studies")
    if g.isna().any():
        raise InputError(f"groups has missing values in rows "
                         f"{list(np.flatnonzero(g.isna().to_numpy())[:5])}")
    cat, levels = factor_levels(g)
    if len(levels) < 2:
        raise InputError(f"groups has a single level {levels!r}; expected at least two subgroups")
    labels = (tuple(str(x) for x in labels) if labels is not None
              else tuple(f"Study {i + 1}" for i in range(y.size)))
    if len(labels) != y.size:
        raise InputError(f"labels has {len(labels)} entries but there are {y.size} studies")
    lab = np.asarray(labels, dtype=object)
    # A DataFrame from effect_sizes travels into every fit, so results keep their
    # measure, ni and study data (forest text columns, back-transforms).
    frame = yi.reset_index(drop=True) if isinstance(yi, pd.DataFrame) else None

    def _fit(mk, labs):
        if frame is None:
            return pool(y[mk], v[mk], method=method, test=test, level=level, labels=labs,
                        measure=measure)
        part = frame.loc[mk].reset_index(drop=True)
        part.attrs = dict(frame.attrs)
        return pool(part, method=method, test=test, level=level, labels=labs)

    overall = _fit(np.ones(y.size, dtype=bool), list(labels))
    notes: list[str] = []
    fitted: dict = {}
    masks = {lv: (cat == lv).to_numpy() for lv in levels}
    if tau2 == "separate":
        for lv in levels:
            mk = masks[lv]
            fitted[lv] = _fit(mk, list(lab[mk]))
        est = np.array([fitted[lv].estimate for lv in levels])
        se = np.array([fitted[lv].se for lv in levels])
        between = engine.fit(est[None, :], (se**2)[None, :], method="EE", test="z",
                             qprofile=False, outputs=("q", "q_p"))
        qb = float(between["q"][0])
        qb_df = len(levels) - 1
        qb_p = float(between["q_p"][0])
        qb_df2 = None
        tau2_common = None
        small = [str(lv) for lv in levels if fitted[lv].k < 2]
        if small:
            notes.append(f"Subgroups with a single study (no τ² estimate): {', '.join(small)}.")
    else:
        reg = meta_regression(y, v, pd.DataFrame({"group": cat}), method=method, test=test,
                              level=level)
        qb, qb_df, qb_p = reg.qm, reg.qm_df, reg.qm_p
        qb_df2 = reg.qm_df2 if test != "z" else None
        tau2_common = reg.tau2
        Xg = np.column_stack([masks[lv].astype(float) for lv in levels])
        # cell means with the common τ² (metafor: mods = ~ factor(g) - 1, tau2 fixed)
        cell = engine.fit(y, v, X=Xg, method=method, test=test, level=level,
                          tau2=np.array([tau2_common]), qprofile=False)
        for j, lv in enumerate(levels):
            mk = masks[lv]
            base = _fit(mk, list(lab[mk]))
            fixed = engine.fit(y[mk][None, :], v[mk][None, :], method=method, test="z",
                               level=level, tau2=np.array([tau2_common]), qprofile=False)
            fitted[lv] = base.with_(
                estimate=float(cell["coef"][0, j]), se=float(cell["coef_se"][0, j]),
                stat=float(cell["coef_stat"][0, j]), p=float(cell["coef_p"][0, j]),
                ci_lb=float(cell["coef_ci_lb"][0, j]), ci_ub=float(cell["coef_ci_ub"][0, j]),
                tau2=tau2_common, i2=float(fixed["i2"][0]), h2=float(fixed["h2"][0]),
                pi_lb=float(fixed["pi_lb"][0]), pi_ub=float(fixed["pi_ub"][0]),
                weights=np.asarray(fixed["weights"][0], float),
                se_tau2=float("nan"), tau2_ci_lb=float("nan"), tau2_ci_ub=float("nan"),
                i2_ci_lb=float("nan"), i2_ci_ub=float("nan"),
                df=float(y.size - len(levels)) if test != "z" else None,
                notes=base.notes + (f"τ² common to all subgroups ({num(tau2_common)}).",))
    return SubgroupResult(groups=fitted, q_between=qb, q_between_df=int(qb_df), q_between_p=qb_p,
                          tau2=tau2, method=method, test=test, level=level, overall=overall,
                          q_between_df2=qb_df2, tau2_common=tau2_common, notes=tuple(notes))
