"""Immutable results of pooling: :class:`PoolResult` (one analysis) and
:class:`BatchResult` (many).

Both print every method choice with the numbers (τ² estimator, how the CI and
tests are computed with their distribution, the Q-profile intervals) because
defaults differ between packages.  Text and HTML come from one
:class:`~metaanalysis.results.display.Display`; all numbers and method names are
formatted through :mod:`metaanalysis.formatting`.  Arrays are read-only and
``PoolResult.data`` is a copy on every access: a result never changes.

Examples
--------
>>> import metaanalysis as ma
>>> res = ma.pool([0.1, 0.3, 0.35, -0.2], [0.01, 0.02, 0.015, 0.03], method="DL")
>>> print(res.summary().splitlines()[1])
  τ² estimator: DL (DerSimonian–Laird)
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from metaanalysis.formatting import (
    METHOD_NAMES,
    TEST_NAMES,
    ci,
    dist_text,
    inference_text,
    level_text,
    method_text,
    num,
    p_text,
    pct,
    pval,
    stat_text,
)
from metaanalysis.frozen import FrameField, freeze_arrays
from metaanalysis.results.display import Display, Displayed, Lines, Table

__all__ = ["METHOD_NAMES", "TEST_NAMES", "BatchResult", "PoolResult"]

SCALARS = (
    "k", "estimate", "se", "stat", "p", "ci_lb", "ci_ub", "pi_lb", "pi_ub", "tau2", "se_tau2",
    "tau2_ci_lb", "tau2_ci_ub", "i2", "i2_ci_lb", "i2_ci_ub", "h2", "q", "q_df", "q_p",
    "h2_ci_lb", "h2_ci_ub",
)  # fmt: skip


_NAMES: dict = {}


def _field_names(cls) -> frozenset:
    """The field names of a result class (computed once per class)."""
    names = _NAMES.get(cls)
    if names is None:
        names = _NAMES[cls] = frozenset(f.name for f in dataclasses.fields(cls))
    return names


def _inference(test: str, df) -> str:
    """CI/test text; a t-based test with no df (k = 1) fell back to the normal."""
    if test != "z" and (df is None or not np.isfinite(df)):
        return f"{inference_text('z')} (test={test!r} needs k ≥ 2)"
    return inference_text(test, df)


def _methods(method, test, df, qprofile, measure=None, unit=None) -> list:
    """The method facts shared by PoolResult and BatchResult."""
    facts = []
    if method == "GLMM":
        facts.append(("Model", "binomial-normal GLMM on the logit scale, adaptive "
                      "Gauss–Hermite quadrature"))
        facts.append(("τ² estimator", method_text("ML")))
    elif method == "EE":
        facts.append(("Weights", "inverse variance (τ² = 0)"))
    else:
        facts.append(("τ² estimator", method_text(method)))
    facts.append(("CI and tests", inference_text(test, df) if isinstance(df, str)
                  else _inference(test, df)))
    if qprofile and method not in ("EE", "GLMM"):
        facts.append(("τ², I², H² intervals", "Q-profile (Viechtbauer 2007)"))
    if measure:
        facts.append(("Measure", measure + (f"; unit: {unit}" if unit else "")))
    elif unit:
        facts.append(("Unit", unit))
    return facts


@dataclass(frozen=True, eq=False, repr=False)
class PoolResult(Displayed):
    """One pooled meta-analysis (immutable).

    Attributes follow metafor's names; ``i2``, its interval and ``weights`` are
    in percent.  ``notes`` are printed with the result.  Arrays are read-only and
    ``data`` (the effect-size frame, if any) is a new copy on every access.  Build
    one with :func:`metaanalysis.pool`.

    Examples
    --------
    >>> import metaanalysis as ma
    >>> res = ma.pool([0.2, 0.5, 0.4], [0.04, 0.05, 0.03], method="EE")
    >>> res.k, res.method
    (3, 'EE')
    """

    k: int
    method: str
    test: str
    level: float
    estimate: float
    se: float
    stat: float
    p: float
    ci_lb: float
    ci_ub: float
    pi_lb: float
    pi_ub: float
    tau2: float
    se_tau2: float
    tau2_ci_lb: float
    tau2_ci_ub: float
    i2: float
    i2_ci_lb: float
    i2_ci_ub: float
    h2: float
    q: float
    q_df: float
    q_p: float
    weights: np.ndarray
    yi: np.ndarray
    vi: np.ndarray
    labels: tuple
    measure: str | None = None
    ni: np.ndarray | None = None
    df: float | None = None
    converged: bool = True
    unit: str | None = None
    notes: tuple = ()
    data: pd.DataFrame | None = FrameField()
    h2_ci_lb: float = math.nan  # Q-profile interval of H² (as metafor's confint)
    h2_ci_ub: float = math.nan
    q_lrt: float = math.nan  # GLMM only: likelihood-ratio test of heterogeneity (rma.glmm QE.LRT)
    q_lrt_p: float = math.nan

    def __post_init__(self):
        freeze_arrays(self)

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_fit(cls, values: Mapping[str, Any], **extra: Any) -> PoolResult:
        """Build a result from the per-fit values of one analysis.

        ``values`` holds the numbers of one fit (one row of
        :func:`metaanalysis.engine.batch.fit`, or a dict of Python/NumPy scalars);
        keys that are not attributes are ignored.  ``extra`` adds or overrides
        attributes (``method``, ``yi``, ``notes`` ...).  The scalar attributes
        are converted here, once: ``k`` to ``int``, ``converged`` to ``bool``,
        ``level`` and the statistics in ``SCALARS`` to ``float`` (NaN when
        absent), and ``df`` to ``float`` or ``None`` when missing or not
        finite (normal-theory inference).

        Examples
        --------
        >>> import numpy as np
        >>> from metaanalysis.results.pool_result import PoolResult
        >>> res = PoolResult.from_fit(
        ...     {"k": 2, "estimate": np.float64(0.3), "se": 0.1},
        ...     method="EE", test="z", level=0.95, weights=np.full(2, 50.0),
        ...     yi=np.array([0.2, 0.4]), vi=np.array([0.02, 0.02]), labels=("a", "b"),
        ... )
        >>> type(res.estimate).__name__, res.k, bool(np.isnan(res.tau2)), res.df
        ('float', 2, True, None)
        """
        names = _field_names(cls)
        kw = {key: val for key, val in values.items() if key in names}
        kw.update(extra)
        for name in SCALARS:
            kw[name] = int(kw[name]) if name == "k" else float(kw.get(name, math.nan))
        kw["level"] = float(kw["level"])
        df = kw.get("df")
        kw["df"] = float(df) if df is not None and math.isfinite(df) else None
        kw["converged"] = bool(kw.get("converged", True))
        return cls(**kw)

    # ------------------------------------------------------------------ helpers
    def with_(self, **changes) -> PoolResult:
        """Return a copy with some attributes replaced."""
        return dataclasses.replace(self, **changes)

    @property
    def stat_name(self) -> str:
        return "z" if self.df is None or not np.isfinite(self.df) else "t"

    def method_line(self) -> str:
        """The model and every method choice on one line."""
        return self._display().headline()

    def _qprofile(self) -> bool:
        return bool(np.isfinite(self.tau2_ci_lb))

    def _display(self) -> Display:
        lv = level_text(self.level)
        re = self.method != "EE"
        title = f"{'Random-effects' if re else 'Common-effect'} model (k = {self.k})"
        methods = _methods(self.method, self.test, self.df, self._qprofile(), self.measure,
                           self.unit)
        rows = [("Estimate", f"{num(self.estimate)} (SE {num(self.se)}), {lv} CI "
                 f"{ci(self.ci_lb, self.ci_ub)}, {stat_text(self.stat, self.df)}, {p_text(self.p)}")]
        if re and np.isfinite(self.pi_lb):
            crit = "normal" if self.stat_name == "z" else dist_text(self.df)
            rows.append((f"{lv} prediction interval", f"{ci(self.pi_lb, self.pi_ub)} ({crit})"))
        q = f"Q({num(self.q_df, 0)}) = {num(self.q, 2)}, {p_text(self.q_p)}"
        if self.method == "GLMM" and np.isfinite(self.q_lrt):  # Wald-type Q and the LRT
            q = (f"Wald {q}; likelihood ratio {stat_text(self.q_lrt, self.q_df, 'LRT')}, "
                 f"{p_text(self.q_lrt_p)}")
        if not re:
            rows.append(("Heterogeneity (from Q)", f"I² = {pct(self.i2)}, H² = {num(self.h2, 2)}; {q}"))
        elif np.isfinite(self.tau2):
            t2 = f"τ² = {num(self.tau2)}"
            if np.isfinite(self.se_tau2):
                t2 += f" (SE {num(self.se_tau2)})"
            i2 = f"I² = {pct(self.i2)}"
            h2 = f"H² = {num(self.h2, 2)}"
            if self._qprofile():
                t2 += f", {lv} CI {ci(self.tau2_ci_lb, self.tau2_ci_ub)}"
                i2 += f" [{pct(self.i2_ci_lb)}, {pct(self.i2_ci_ub)}]"
                if np.isfinite(self.h2_ci_lb):
                    h2 += f" {ci(self.h2_ci_lb, self.h2_ci_ub, 2)}"
            rows.append(("Heterogeneity", f"{t2}; τ = {num(np.sqrt(self.tau2))}"))
            rows.append(("", f"{i2}, {h2}; {q}"))
        else:
            rows.append(("Heterogeneity", f"undefined (k = {self.k})"))
        natural = self._natural_row(lv)
        if natural:
            rows.append(natural)
        return Display(title, tuple(methods), (Lines(tuple(rows)),), tuple(self.notes))

    def _natural_row(self, lv: str):
        """Estimate, CI and PI back on the natural scale (proportions, ratios, r), if any."""
        from metaanalysis.effects.transforms import NATURAL_MEASURES, natural_label

        if self.measure not in NATURAL_MEASURES or not np.isfinite(self.estimate):
            return None
        b = self.back_transform().iloc[0]
        text = f"{num(b['estimate'])}, {lv} CI {ci(b['ci_lb'], b['ci_ub'])}"
        if np.isfinite(b["pi_lb"]):
            text += f", {lv} PI {ci(b['pi_lb'], b['pi_ub'])}"
        return natural_label(self.measure), text

    def _frame(self) -> pd.DataFrame:
        row = {"method": self.method, "test": self.test, "level": self.level}
        row.update({key: getattr(self, key) for key in SCALARS})
        row["df"] = np.nan if self.df is None else self.df
        row["converged"] = self.converged
        if self.measure:
            row["measure"] = self.measure
        return pd.DataFrame([row])

    def to_frame(self) -> pd.DataFrame:
        """One-row DataFrame of the pooled numbers and method choices
        (``attrs["description"]``: the model and every method choice in words)."""
        return super().to_frame()

    def studies_frame(self) -> pd.DataFrame:
        """One row per study: label, yi, vi, se, CI, weight (%)."""
        from scipy import special

        z = special.ndtri(1 - (1 - self.level) / 2)
        se = np.sqrt(self.vi)
        return pd.DataFrame(
            {"label": list(self.labels), "yi": self.yi, "vi": self.vi, "se": se,
             "ci_lb": self.yi - z * se, "ci_ub": self.yi + z * se, "weight": self.weights}
        )  # fmt: skip

    def back_transform(self) -> pd.DataFrame:
        """Estimate, CI and PI on the natural scale of ``measure``.

        Uses :func:`metaanalysis.effects.transforms.to_natural` (expit for PLO, sin² for
        PAS, Miller's inverse with the harmonic mean of ``ni`` for PFT, exp for
        ratios, tanh for ZCOR, identity otherwise).

        Examples
        --------
        >>> import metaanalysis as ma
        >>> res = ma.pool([-1.0, -0.5], [0.1, 0.2], method="EE", measure="PLO")
        >>> round(float(res.back_transform()["estimate"].iloc[0]), 4)
        0.3029
        """
        from metaanalysis.effects.transforms import to_natural

        keys = ("estimate", "ci_lb", "ci_ub", "pi_lb", "pi_ub")
        x = np.array([getattr(self, key) for key in keys], dtype=float)
        nat = np.asarray(to_natural(self.measure, x, self.ni), dtype=float)
        return pd.DataFrame([dict(zip(keys, nat))])


@dataclass(frozen=True, eq=False, repr=False)
class BatchResult(Displayed):
    """Many independent meta-analyses (from :func:`metaanalysis.pool_many`).

    Every :class:`PoolResult` number is an array of length ``batch`` (read-only);
    ``weights`` has shape ``(batch, k)``; ``omitted`` counts the studies dropped per
    row by ``nan_policy="omit"`` (None otherwise).  Numbers left out by
    ``pool_many(outputs=...)`` are None (and absent from ``to_frame()``).

    Examples
    --------
    >>> import numpy as np, metaanalysis as ma
    >>> b = ma.pool_many(np.array([[0.1, 0.2, 0.4], [0.0, 0.3, np.nan]]),
    ...                  np.array([[0.01, 0.02, 0.02], [0.01, 0.01, np.nan]]), method="DL")
    >>> b.k.tolist()
    [3, 2]
    """

    method: str
    test: str
    level: float
    k: np.ndarray
    estimate: np.ndarray
    se: np.ndarray
    stat: np.ndarray
    p: np.ndarray
    ci_lb: np.ndarray
    ci_ub: np.ndarray
    pi_lb: np.ndarray
    pi_ub: np.ndarray
    tau2: np.ndarray
    se_tau2: np.ndarray
    tau2_ci_lb: np.ndarray
    tau2_ci_ub: np.ndarray
    i2: np.ndarray
    i2_ci_lb: np.ndarray
    i2_ci_ub: np.ndarray
    h2: np.ndarray
    q: np.ndarray
    q_df: np.ndarray
    q_p: np.ndarray
    df: np.ndarray
    converged: np.ndarray
    weights: np.ndarray
    yi: np.ndarray
    vi: np.ndarray
    qprofile: bool = False
    omitted: np.ndarray | None = None
    h2_ci_lb: np.ndarray | None = None  # Q-profile interval of H²
    h2_ci_ub: np.ndarray | None = None

    def __post_init__(self):
        freeze_arrays(self)

    def __len__(self) -> int:
        return len(self.k)

    def _frame(self) -> pd.DataFrame:
        # attributes not computed (pool_many(outputs=...)) are None and left out
        cols = {key: getattr(self, key) for key in SCALARS + ("df",)
                if getattr(self, key) is not None}
        cols["converged"] = self.converged
        if self.omitted is not None:
            cols["omitted"] = self.omitted
        return pd.DataFrame(cols)

    def to_frame(self) -> pd.DataFrame:
        """One row per meta-analysis (``attrs["description"]``: the method choices)."""
        return super().to_frame()

    def _display(self) -> Display:
        n = len(self)
        k = np.asarray(self.k)
        kind = "Random-effects" if self.method != "EE" else "Common-effect"
        ks = f"k = {int(k.min())}" if n and k.min() == k.max() else (
            f"k = {int(k.min())} to {int(k.max())}" if n else "no rows")
        title = f"{kind} models: {n} meta-analyses ({ks})"
        df = "t(k − 1) in each row" if self.test != "z" else None
        methods = _methods(self.method, self.test, df, self.qprofile)
        if self.test == "z":
            methods[1] = ("CI and tests", inference_text("z"))
        if not self.qprofile and self.method != "EE":
            methods.append(("τ², I², H² intervals", "not computed (qprofile=False)"))
        rows = [("Converged", f"{int(np.count_nonzero(self.converged))} of {n}")]
        if self.omitted is not None:
            om = np.asarray(self.omitted)
            rows.append(("Omitted (nan_policy='omit')",
                         f"{int(om.sum())} studies with unusable values in "
                         f"{int(np.count_nonzero(om))} of {n} rows"))
        empty = int(np.count_nonzero(k == 0))
        if empty:
            rows.append(("Rows with no study", f"{empty} (their results are NaN)"))
        keys = (("Estimate", "estimate"), ("τ²", "tau2"), ("I²", "i2"))
        for label, key in keys if self.method != "EE" else keys[::2]:
            if getattr(self, key) is None:  # not computed (outputs=)
                continue
            vals = np.asarray(getattr(self, key), dtype=float)
            if np.isfinite(vals).any():
                fmt = pct if key == "i2" else num
                rows.append((label, f"median {fmt(np.nanmedian(vals))}, range "
                             f"[{fmt(np.nanmin(vals))}, {fmt(np.nanmax(vals))}]"))
        head = self._frame().head(10)
        columns = {"k": head["k"].map(lambda x: num(x, 0))}
        if "estimate" in head:
            columns["estimate"] = head["estimate"].map(num)
        if "ci_lb" in head and "ci_ub" in head:
            columns[f"{level_text(self.level)} CI"] = [ci(a, b) for a, b in
                                                       zip(head["ci_lb"], head["ci_ub"])]
        for label, key, fmt in (("τ²", "tau2", num), ("I²", "i2", pct), ("p", "p", pval)):
            if key in head:
                columns[label] = head[key].map(fmt)
        shown = pd.DataFrame(columns, index=head.index)
        computed = [f.name for f in dataclasses.fields(self)
                    if f.name in SCALARS + ("weights",) and getattr(self, f.name) is None]
        if computed:
            rows.append(("Not computed (outputs=)", ", ".join(computed)))
        caption = "First 10 rows:" if n > 10 else ""
        return Display(title, tuple(methods), (Lines(tuple(rows)), Table(caption, shown)))
