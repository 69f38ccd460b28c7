"""Immutable results of pooling: :class:`PoolResult` (one analysis) and
:class:`BatchResult` (many).

Both print every method choice with the numbers ("τ² estimator: REML; CI:
Knapp–Hartung, t(12)") because defaults differ between packages.  All numbers
are formatted through :mod:`metaanalysis.formatting`.

Examples
--------
>>> import metaanalysis as ma
>>> res = ma.pool([0.1, 0.3, 0.35, -0.2], [0.01, 0.02, 0.015, 0.03], method="DL")
>>> res.summary().splitlines()[0]
'Random-effects model (k = 4); τ² estimator: DL; CI: Wald-type, normal'
"""

from __future__ import annotations

import dataclasses
import html
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from metaanalysis.formatting import ci, num, pct, pval

__all__ = ["METHOD_NAMES", "TEST_NAMES", "BatchResult", "PoolResult"]

METHOD_NAMES = {
    "EE": "common-effect (inverse variance)",
    "DL": "DerSimonian–Laird",
    "HE": "Hedges",
    "HS": "Hunter–Schmidt",
    "HSk": "Hunter–Schmidt, small-sample corrected",
    "SJ": "Sidik–Jonkman",
    "ML": "maximum likelihood",
    "REML": "restricted maximum likelihood",
    "EB": "empirical Bayes",
    "PM": "Paule–Mandel",
    "PMM": "median-unbiased Paule–Mandel",
    "GLMM": "binomial-normal GLMM",
}
TEST_NAMES = {
    "z": "Wald-type",
    "knha": "Knapp–Hartung",
    "adhoc": "Knapp–Hartung (ad hoc, factor ≥ 1)",
}

SCALARS = (
    "k", "estimate", "se", "stat", "p", "ci_lb", "ci_ub", "pi_lb", "pi_ub", "tau2", "se_tau2",
    "tau2_ci_lb", "tau2_ci_ub", "i2", "i2_ci_lb", "i2_ci_ub", "h2", "q", "q_df", "q_p",
)  # fmt: skip


def _model_line(k, method, test, df) -> str:
    model = "Common-effect model" if method == "EE" else "Random-effects model"
    head = f"{model} (k = {int(k)})"
    if method == "GLMM":
        head += "; binomial-normal GLMM (ML, adaptive Gauss–Hermite)"
    elif method != "EE":
        head += f"; τ² estimator: {method}"
    if test == "z" or df is None or not np.isfinite(df):
        head += f"; CI: {TEST_NAMES.get(test, test) if test != 'z' else 'Wald-type'}, normal"
    else:
        head += f"; CI: {TEST_NAMES.get(test, test)}, t({num(df, 0)})"
    return head


@dataclass(frozen=True)
class PoolResult:
    """One pooled meta-analysis (immutable).

    Attributes follow metafor's names; ``i2``, its interval and ``weights`` are
    in percent.  ``notes`` are printed with the result.  Build one with
    :func:`metaanalysis.pool`.

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
    data: Any = field(default=None, repr=False, compare=False)

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
        names = {f.name for f in dataclasses.fields(cls)}
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
        """The one-line description of every method choice."""
        return _model_line(self.k, self.method, self.test, self.df)

    def summary(self) -> str:
        """Multi-line text: model and method choices, estimate, heterogeneity, notes."""
        lv = f"{100 * self.level:g}%"
        lines = [self.method_line()]
        if self.measure:
            lines.append(
                f"Measure: {self.measure}" + (f"; unit: {self.unit}" if self.unit else "")
            )
        stat = f"{self.stat_name}" + (f"({num(self.df, 0)})" if self.stat_name == "t" else "")
        lines.append(
            f"Estimate {num(self.estimate)} (SE {num(self.se)}), {lv} CI {ci(self.ci_lb, self.ci_ub)}, "
            f"{stat} = {num(self.stat, 2)}, p = {pval(self.p)}".replace("p = <", "p <")
        )
        if self.method != "EE" and np.isfinite(self.pi_lb):
            crit = "normal" if self.stat_name == "z" else f"t({num(self.df, 0)})"
            lines.append(f"{lv} prediction interval {ci(self.pi_lb, self.pi_ub)} ({crit})")
        qp = pval(self.q_p)
        qline = f"Q({num(self.q_df, 0)}) = {num(self.q, 2)}, p = {qp}".replace("p = <", "p <")
        if self.method == "EE":
            lines.append(
                f"Heterogeneity (from Q): I² = {pct(self.i2)}, H² = {num(self.h2, 2)}; {qline}"
            )
        elif np.isfinite(self.tau2):
            t2 = f"τ² = {num(self.tau2)} (SE {num(self.se_tau2)})"
            if np.isfinite(self.tau2_ci_lb):
                t2 += f", {lv} CI {ci(self.tau2_ci_lb, self.tau2_ci_ub)}"
            i2 = f"I² = {pct(self.i2)}"
            if np.isfinite(self.i2_ci_lb):
                i2 += f" [{pct(self.i2_ci_lb)}, {pct(self.i2_ci_ub)}]"
            lines.append(f"Heterogeneity: {t2}; τ = {num(np.sqrt(self.tau2))}")
            lines.append(f"  {i2}, H² = {num(self.h2, 2)}; {qline}")
            if np.isfinite(self.tau2_ci_lb):
                lines.append("  (τ² and I² intervals: Q-profile, Viechtbauer 2007)")
        else:
            lines.append("Heterogeneity: undefined")
        natural = self._natural_line(lv)
        if natural:
            lines.append(natural)
        for note in self.notes:
            lines.append(f"Note: {note}")
        return "\n".join(lines)

    def _natural_line(self, lv: str) -> str:
        """Estimate, CI and PI back on the natural scale (proportions, ratios, r), if any."""
        from metaanalysis.effects.transforms import NATURAL_MEASURES, natural_label

        if self.measure not in NATURAL_MEASURES or not np.isfinite(self.estimate):
            return ""
        try:
            b = self.back_transform().iloc[0]
        except Exception:  # noqa: BLE001 -- display must never fail
            return ""
        line = f"{natural_label(self.measure)}: {num(b['estimate'])}, {lv} CI {ci(b['ci_lb'], b['ci_ub'])}"
        if np.isfinite(b["pi_lb"]):
            line += f", {lv} PI {ci(b['pi_lb'], b['pi_ub'])}"
        return line

    def __repr__(self) -> str:
        return self.summary()

    __str__ = __repr__

    def to_frame(self) -> pd.DataFrame:
        """One-row DataFrame of the pooled numbers and method choices."""
        row = {"method": self.method, "test": self.test, "level": self.level}
        row.update({key: getattr(self, key) for key in SCALARS})
        row["df"] = np.nan if self.df is None else self.df
        row["converged"] = self.converged
        if self.measure:
            row["measure"] = self.measure
        return pd.DataFrame([row])

    def studies_frame(self) -> pd.DataFrame:
        """One row per study: label, yi, vi, se, CI, weight (%)."""
        from scipy import special

        z = special.ndtri(1 - (1 - self.level) / 2)
        se = np.sqrt(self.vi)
        return pd.DataFrame(
            {"label": list(self.labels), "yi": self.yi, "vi": self.vi, "se": se,
             "ci_lb": self.yi - z * se, "ci_ub": self.yi + z * se, "weight": self.weights}
        )  # fmt: skip

    def _repr_html_(self) -> str:
        try:
            head = html.escape(self.method_line())
            frame = self.to_frame().drop(columns=["method", "test", "level"])
            rows = "".join(
                f"<tr><th>{html.escape(str(c))}</th><td>{html.escape(self._fmt(c, frame[c].iloc[0]))}</td></tr>"
                for c in frame.columns
            )
            notes = "".join(f"<li>{html.escape(n)}</li>" for n in self.notes)
            return (
                f"<div><p><b>{head}</b></p><table>{rows}</table>"
                + (f"<ul>{notes}</ul>" if notes else "")
                + "</div>"
            )
        except Exception:  # noqa: BLE001  (the notebook display must never raise)
            try:
                return f"<pre>{html.escape(self.summary())}</pre>"
            except Exception:  # noqa: BLE001
                return "<pre>PoolResult</pre>"

    @staticmethod
    def _fmt(name, value) -> str:
        if name in ("p", "q_p"):
            return pval(value)
        if name in ("i2", "i2_ci_lb", "i2_ci_ub"):
            return pct(value)
        if name in ("k", "q_df", "df"):
            return num(value, 0)
        if isinstance(value, (bool, np.bool_, str)):
            return str(value)
        return num(value)

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


@dataclass(frozen=True)
class BatchResult:
    """Many independent meta-analyses (from :func:`metaanalysis.pool_many`).

    Every :class:`PoolResult` number is an array of length ``batch``;
    ``weights`` has shape ``(batch, k)``.

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

    def __len__(self) -> int:
        return len(self.k)

    def to_frame(self) -> pd.DataFrame:
        """One row per meta-analysis."""
        cols = {key: getattr(self, key) for key in SCALARS}
        cols["df"] = self.df
        cols["converged"] = self.converged
        if self.omitted is not None:
            cols["omitted"] = self.omitted
        return pd.DataFrame(cols)

    def summary(self) -> str:
        """Method choices and the range of results."""
        n = len(self)
        head = _model_line(0, self.method, self.test, None).split(" (k = 0)")
        lines = [f"{head[0]}, {n} meta-analyses{head[1]}"]
        if self.test != "z":
            lines[0] = lines[0].replace("normal", "t(k − 1)")
        if not self.qprofile:
            lines.append("Q-profile intervals for τ² and I² not computed (qprofile=False)")
        bad = int(np.sum(~self.converged))
        lines.append(f"converged: {n - bad} of {n}")
        if self.omitted is not None:
            rows = int(np.count_nonzero(self.omitted))
            lines.append(f"omitted (nan_policy='omit'): {int(np.sum(self.omitted))} studies with "
                         f"unusable values in {rows} of {n} rows")
        return "\n".join(lines)

    def __repr__(self) -> str:
        return self.summary()

    def _repr_html_(self) -> str:
        try:
            return f"<p>{html.escape(self.summary())}</p>" + self.to_frame().head(20)._repr_html_()
        except Exception:  # noqa: BLE001
            return "<pre>BatchResult</pre>"
