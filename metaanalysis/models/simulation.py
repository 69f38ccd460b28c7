"""Simulation studies of meta-analytic methods through the batch engine: :func:`simulate`.

Each condition of a grid (number of studies k, heterogeneity τ², true mean μ,
within-study variances or sample sizes) is replicated ``n_rep`` times: data
sets are generated in blocks of :data:`REP_BLOCK` replicates, and every block
is pooled with each requested τ² estimator and test by one engine call
(:func:`metaanalysis.engine.fit` on a ``(block, k)`` batch).  The performance
measures of Morris, White & Crowther (2019, Stat Med 38:2074) are accumulated
block by block and reported with their Monte Carlo standard errors.

Reproducibility: block b of condition c draws from its own generator,
``numpy.random.default_rng(SeedSequence(entropy, spawn_key=(c, b)))``, and the
block sums are added with ``math.fsum`` (exactly rounded, so in any order):
the same seed gives the same table to the last bit whether the blocks run in
this process, on Dask threads or on a cluster, in any grouping.

Generators (``design``):

* ``"normal"`` (normal-normal model): sampling variances vᵢ from ``within``,
  then yᵢ ~ N(μ, τ² + vᵢ) — the same as θᵢ ~ N(μ, τ²), yᵢ | θᵢ ~ N(θᵢ, vᵢ).
* ``"binomial"`` (single proportions, logit scale): sample sizes nᵢ from
  ``n``, θᵢ ~ N(μ, τ²) on the logit scale, events xᵢ ~ Binomial(nᵢ, expit θᵢ),
  then yᵢ, vᵢ as ``effect_sizes("PLO", ...)`` computes them (0.5 added to
  the cells of studies with 0 or nᵢ events, as metafor's ``escalc``); the
  target is μ.
* ``"mean_difference"`` (two arms of nᵢ patients each, normal outcomes with
  SD σ = 1, so effects and τ are in units of σ): θᵢ ~ N(μ, τ²), the difference
  of the arm means yᵢ ~ N(θᵢ, 2/nᵢ), and vᵢ = (s₁² + s₂²)/nᵢ from the arms'
  sample variances, sⱼ² ~ χ²(nᵢ − 1)/(nᵢ − 1) — for normal data the same in
  distribution as drawing every patient and computing the means and SDs (the
  sample mean and variance are independent), and the usual mean-difference
  analysis with *estimated* within-study variances.

Examples
--------
>>> import metaanalysis as ma
>>> sim = ma.simulate(k=[3, 10], tau2=0.1, within=0.1, n_rep=2000,
...                   methods=["DL"], tests=["z", "knha"], seed=1)
>>> cols = ["k", "method", "test", "coverage", "coverage_mcse"]
>>> print(sim[cols].round(3).to_string(index=False))
 k method test  coverage  coverage_mcse
 3     DL    z     0.905          0.007
 3     DL knha     0.945          0.005
10     DL    z     0.924          0.006
10     DL knha     0.944          0.005
"""

from __future__ import annotations

import itertools
import math
import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd

from metaanalysis import engine
from metaanalysis.effects.effect_sizes import effect_sizes
from metaanalysis.engine.batch import check_names
from metaanalysis.errors import ConvergenceWarning, InputError

__all__ = ["DESIGNS", "REP_BLOCK", "simulate"]

#: replicates per block: the unit of random draws, engine calls and partial sums
REP_BLOCK = 10_000
DESIGNS = ("normal", "binomial", "mean_difference")
# partial sums per (method, test): n, Σd, Σd², Σd⁴, covered, Σwidth, Σwidth², rejected,
# Σ(τ̂² − τ²), Σ(τ̂² − τ²)², not converged
_NSUM = 11


@dataclass(frozen=True)
class _Condition:
    k: int
    tau2: float
    mu: float
    spread: object  # within (normal) or n (binomial, mean_difference): number, (lo, hi) or callable

    def draw_spread(self, rng, shape, design):
        s = self.spread
        if callable(s):
            out = np.asarray(s(rng, shape), dtype=float)
            if out.shape != shape:
                raise InputError(f"{'within' if design == 'normal' else 'n'}: the generator "
                                 f"returned shape {out.shape}; expected {shape}")
            return out
        if isinstance(s, tuple):
            lo, hi = s
            if design != "normal":
                return rng.integers(int(lo), int(hi) + 1, size=shape).astype(float)
            return rng.uniform(lo, hi, size=shape)
        return np.full(shape, float(s))


def _spread_text(s) -> str:
    if callable(s):
        return getattr(s, "__name__", type(s).__name__)
    if isinstance(s, tuple):
        return f"U({s[0]:g}, {s[1]:g})"
    return f"{float(s):g}"


def _data(cond: _Condition, design, rng, m):
    shape = (m, cond.k)
    spread = cond.draw_spread(rng, shape, design)
    if design == "normal":
        if np.any(spread <= 0) or not np.all(np.isfinite(spread)):
            raise InputError("within: the sampling variances must be finite and > 0")
        y = rng.normal(cond.mu, np.sqrt(spread + cond.tau2))
        return y, spread
    n = spread
    if design == "mean_difference":
        if np.any(n < 2) or not np.all(np.isfinite(n)) or np.any(n != np.floor(n)):
            raise InputError("n: the arm sizes must be whole numbers ≥ 2 for "
                             "design='mean_difference'")
        theta = rng.normal(cond.mu, math.sqrt(cond.tau2), size=shape)
        y = theta + rng.normal(0.0, 1.0, size=shape) * np.sqrt(2.0 / n)
        s1 = rng.chisquare(n - 1.0) / (n - 1.0)
        s2 = rng.chisquare(n - 1.0) / (n - 1.0)
        return y, (s1 + s2) / n
    theta = rng.normal(cond.mu, math.sqrt(cond.tau2), size=shape)
    x = rng.binomial(n.astype(np.int64), 1.0 / (1.0 + np.exp(-theta)))
    es = effect_sizes("PLO", events=x.ravel(), total=n.ravel())
    return es["yi"].to_numpy().reshape(shape), es["vi"].to_numpy().reshape(shape)


def _block_sums(spec, c: int, b: int) -> np.ndarray:
    """Partial sums (methods × tests × _NSUM) of block ``b`` of condition ``c``."""
    cond = spec["conditions"][c]
    m = min(REP_BLOCK, spec["n_rep"] - b * REP_BLOCK)
    rng = np.random.default_rng(np.random.SeedSequence(spec["entropy"], spawn_key=(c, b)))
    y, v = _data(cond, spec["design"], rng, m)
    alpha = 1.0 - spec["level"]
    out = np.zeros((len(spec["methods"]), len(spec["tests"]), _NSUM))
    with warnings.catch_warnings():  # non-convergence is counted, not warned per block
        warnings.simplefilter("ignore", ConvergenceWarning)
        for i, method in enumerate(spec["methods"]):
            t2 = None
            conv = None
            for j, test in enumerate(spec["tests"]):
                # the τ² of the first test's fit is reused: same estimate, other interval
                fit = engine.fit(y, v, method=method, test=test, level=spec["level"],
                                 qprofile=False, tau2=t2)
                if t2 is None:
                    t2, conv = fit["tau2"], fit["converged"]
                d = fit["estimate"] - cond.mu
                d2 = d * d
                width = fit["ci_ub"] - fit["ci_lb"]
                et = t2 - cond.tau2
                covered = (fit["ci_lb"] <= cond.mu) & (cond.mu <= fit["ci_ub"])
                out[i, j] = (m, d.sum(), d2.sum(), (d2 * d2).sum(), np.count_nonzero(covered),
                             width.sum(), (width * width).sum(),
                             np.count_nonzero(fit["p"] < alpha), et.sum(), (et * et).sum(),
                             m - np.count_nonzero(conv))
    return out


def _task(spec, c, b0, b1):
    return [(c, b, _block_sums(spec, c, b)) for b in range(b0, b1)]


def _as_list(x):
    return list(x) if isinstance(x, (list, np.ndarray, range)) else [x]


def _names(x, allowed, what):
    names = [x] if isinstance(x, str) else list(x)
    if not names:
        raise InputError(f"{what}: got an empty list; expected at least one of {allowed}")
    for name in names:
        if name not in allowed:
            raise InputError(f"{what}: got {name!r}; expected names from {', '.join(allowed)}")
    return names


def simulate(
    *,
    k,
    tau2,
    mu=0.0,
    within=0.1,
    n=None,
    design: str = "normal",
    n_rep: int = 10_000,
    methods=("REML",),
    tests=("z",),
    level: float = 0.95,
    seed=None,
    client=None,
    scheduler: str | None = None,
    blocks_per_task: int = 1,
) -> pd.DataFrame:
    """Simulate meta-analyses and measure how the methods perform.

    Every combination of ``k``, ``tau2``, ``mu`` and ``within`` (or ``n``) is
    a condition; each is replicated ``n_rep`` times, and every replicate is
    pooled with each of ``methods`` × ``tests`` through the batch engine.

    Parameters
    ----------
    k : int or list of int
        Studies per meta-analysis (≥ 2).
    tau2 : float or list of float
        Between-study variance τ² (the truth for ``tau2_bias``).
    mu : float or list of float
        True mean effect (the target of bias, coverage; the rejection rate is
        that of H0: μ = 0, so it is the type I error when ``mu=0`` and the
        power otherwise).  ``design="binomial"``: on the logit scale;
        ``design="mean_difference"``: in units of the outcome's SD.
    within : float, (lo, hi) tuple, callable or a list of these
        ``design="normal"``: the sampling variances vᵢ — equal (a number),
        uniform on (lo, hi), or ``f(rng, shape) -> array`` (e.g. a few large
        studies: ``lambda rng, s: np.where(rng.random(s) < 0.25, 0.01, 0.1)``).
    n : int, (lo, hi) tuple, callable or a list of these
        ``design="binomial"``: sample sizes nᵢ; ``design="mean_difference"``:
        the size of each of the two arms (a tuple draws integers
        uniformly from lo..hi).
    design : {"normal", "binomial", "mean_difference"}
        The data generator (see the module description).
    n_rep : int
        Replicates per condition.
    methods : list of str
        τ² estimators (``pool``'s ``method`` names, ``"EE"`` included).
    tests : list of str
        ``"z"``, ``"knha"``, ``"adhoc"``.
    level : float
        Confidence level of the intervals; the tests reject at 1 − level.
    seed : int, optional
        Seed of the whole study (``None``: fresh entropy, recorded in
        ``df.attrs["seed"]`` so the run can be repeated).
    client, scheduler
        Run the blocks through Dask (optional extra ``metaanalysis[dask]``):
        a ``dask.distributed.Client`` or a scheduler name.  The result is the
        same to the last bit.
    blocks_per_task : int
        Blocks of :data:`REP_BLOCK` replicates per Dask task.

    Returns
    -------
    pandas.DataFrame
        One row per condition × method × test: ``design, k, tau2, mu, within``
        (or ``n``), ``method, test, n_rep``, and ``bias, rmse, coverage,
        ci_width, rejection, tau2_bias``, each with its Monte Carlo standard
        error (``*_mcse``; Morris et al. 2019, Table 6), and
        ``not_converged`` (replicates whose τ² iteration did not converge).
        ``df.attrs``: ``description``, ``seed``, ``level``.

    Examples
    --------
    >>> import metaanalysis as ma
    >>> sim = ma.simulate(k=5, tau2=0.0, n_rep=1000, methods=["REML", "DL"], seed=7)
    >>> sim[["method", "test", "n_rep"]].values.tolist()
    [['REML', 'z', 1000], ['DL', 'z', 1000]]
    """
    if design not in DESIGNS:
        raise InputError(f"design: got {design!r}; expected one of {', '.join(DESIGNS)}")
    methods = _names(methods, engine.METHODS, "methods")
    tests = _names(tests, engine.TESTS, "tests")
    check_names(methods[0], tests[0], level)
    if isinstance(n_rep, bool) or not isinstance(n_rep, (int, np.integer)) or n_rep < 2:
        raise InputError(f"n_rep: got {n_rep!r}; expected an integer ≥ 2")
    if isinstance(blocks_per_task, bool) or not isinstance(blocks_per_task, (int, np.integer)) \
            or blocks_per_task < 1:
        raise InputError(f"blocks_per_task: got {blocks_per_task!r}; expected a positive integer")
    if design != "normal":
        if n is None:
            raise InputError(f"n: missing; design={design!r} needs the study sample sizes")
        spreads, spread_name = _as_list(n), "n"
    else:
        if n is not None:
            raise InputError("n: only for design='binomial' or 'mean_difference'; give "
                             "within= (the sampling variances) for design='normal'")
        spreads, spread_name = _as_list(within), "within"
    ks = _as_list(k)
    for kk in ks:
        if isinstance(kk, bool) or not isinstance(kk, (int, np.integer)) or kk < 2:
            raise InputError(f"k: got {kk!r}; expected integers ≥ 2")
    for t in _as_list(tau2):
        if not np.isfinite(t) or t < 0:
            raise InputError(f"tau2: got {t!r}; expected finite values ≥ 0")
    conditions = [_Condition(int(kk), float(t), float(m), s)
                  for kk, t, m, s in itertools.product(ks, _as_list(tau2), _as_list(mu), spreads)]
    entropy = np.random.SeedSequence(seed).entropy
    spec = {"conditions": conditions, "design": design, "n_rep": int(n_rep), "methods": methods,
            "tests": tests, "level": float(level), "entropy": entropy}
    n_blocks = -(-int(n_rep) // REP_BLOCK)
    ranges = [(c, b, min(b + blocks_per_task, n_blocks))
              for c in range(len(conditions)) for b in range(0, n_blocks, blocks_per_task)]
    if client is not None or scheduler is not None:
        from metaanalysis.models.distributed import require_dask

        require_dask("simulate(client=/scheduler=)")
        import dask

        tasks = [dask.delayed(_task, pure=True)(spec, c, b0, b1) for c, b0, b1 in ranges]
        if client is not None:
            done = client.gather(client.compute(tasks))
        else:
            done = dask.compute(*tasks, scheduler=scheduler)
    else:
        done = [_task(spec, c, b0, b1) for c, b0, b1 in ranges]
    parts = {}
    for chunk in done:
        for c, b, sums in chunk:
            parts[(c, b)] = sums
    rows = []
    for c, cond in enumerate(conditions):
        blocks = np.stack([parts[(c, b)] for b in range(n_blocks)])
        for i, method in enumerate(methods):
            for j, test in enumerate(tests):
                s = [math.fsum(blocks[:, i, j, q]) for q in range(_NSUM)]
                rows.append({"design": design, "k": cond.k, "tau2": cond.tau2, "mu": cond.mu,
                             spread_name: _spread_text(cond.spread), "method": method,
                             "test": test, **_measures(s)})
    df = pd.DataFrame(rows)
    gen = {"normal": "yᵢ ~ N(μ, τ² + vᵢ), vᵢ from 'within'",
           "binomial": "θᵢ ~ N(μ, τ²) (logit), xᵢ ~ Bin(nᵢ, expit θᵢ), yᵢ, vᵢ = PLO "
                       "(0.5 added to 0 cells)",
           "mean_difference": "θᵢ ~ N(μ, τ²), two arms of nᵢ with SD 1: yᵢ ~ N(θᵢ, 2/nᵢ), "
                              "vᵢ = (s₁² + s₂²)/nᵢ from the arms' sample variances"}[design]
    df.attrs.update(
        seed=entropy, level=float(level), design=design,
        description=(f"Simulation: {len(conditions)} condition(s) × {n_rep} replicates; "
                     f"generator: {gen}; τ² estimators: {', '.join(methods)}; tests: "
                     f"{', '.join(tests)}; level {level:g}; seed {entropy}; blocks of "
                     f"{REP_BLOCK} replicates; Monte Carlo SEs as Morris et al. (2019)"))
    return df


def _measures(s) -> dict:
    """Performance measures and their Monte Carlo SEs from the summed block partials."""
    n, sd, sd2, sd4, cov, sw, sw2, rej, st, st2, nc = s
    out = {"n_rep": int(n)}

    def mean_se(total, total_sq):
        mean = total / n
        var = max(total_sq / n - mean * mean, 0.0) * n / (n - 1)
        return mean, math.sqrt(var / n)

    out["bias"], out["bias_mcse"] = mean_se(sd, sd2)
    mse, mse_se = mean_se(sd2, sd4)
    out["rmse"] = math.sqrt(mse)
    out["rmse_mcse"] = mse_se / (2 * out["rmse"]) if mse > 0 else 0.0
    p = cov / n
    out["coverage"], out["coverage_mcse"] = p, math.sqrt(p * (1 - p) / n)
    out["ci_width"], out["ci_width_mcse"] = mean_se(sw, sw2)
    r = rej / n
    out["rejection"], out["rejection_mcse"] = r, math.sqrt(r * (1 - r) / n)
    out["tau2_bias"], out["tau2_bias_mcse"] = mean_se(st, st2)
    out["not_converged"] = int(nc)
    return out
