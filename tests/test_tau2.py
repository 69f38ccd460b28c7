"""τ² estimators and the safeguarded solver on hard inputs.

The iterative estimators are checked against their defining equations (score
or estimating equation = 0 at an interior solution, ≤ 0 at the boundary) and
against scipy's brentq on the same equation.  Closed-form values are checked
against tests/data/metafor/*.json in test_engine.py.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from scipy import optimize, stats

from metaanalysis import engine
from metaanalysis.engine.tau2 import ESTIMATORS, q_stat, solve_decreasing
from metaanalysis.errors import ConvergenceWarning

ITER = ("ML", "REML", "EB", "PM", "PMM")


def _equation(method, y, v):
    k = len(y)

    def q(t):
        return q_stat(y[None], v[None], np.ones((1, k)), np.array([t]))[0][0]

    def score(t, reml):
        w = 1 / (v + t)
        mu = (w * y).sum() / w.sum()
        s = (w**2 * (y - mu) ** 2).sum() - w.sum()
        return s + ((w**2).sum() / w.sum() if reml else 0.0)

    if method == "ML":
        return lambda t: score(t, False)
    if method == "REML":
        return lambda t: score(t, True)
    target = stats.chi2.ppf(0.5, k - 1) if method == "PMM" else k - 1
    return lambda t: q(t) - target


def _hard_rows(rng):
    rows = []
    rows.append((np.array([0.1, 0.9]), np.array([0.01, 0.02])))  # k = 2, heterogeneous
    rows.append((np.array([0.1, 0.11]), np.array([0.5, 0.4])))  # k = 2, boundary
    rows.append((np.full(6, 0.3), np.linspace(0.01, 0.1, 6)))  # identical effects
    rows.append((rng.normal(0, 1, 8), np.logspace(-8, 4, 8)))  # vi spanning 1e-8..1e4
    rows.append((rng.normal(0, 100, 10), np.logspace(-8, -6, 10)))  # τ² >> vi
    rows.append((rng.normal(0, 1e-5, 10), np.full(10, 1e4)))  # τ² << vi
    rows.append((np.array([0, 0, 0, 5.0]), np.array([1e-8, 1e-8, 1e-8, 1e-8])))
    return rows


@pytest.mark.parametrize("method", ITER)
def test_iterative_estimators_solve_their_equation(method):
    rng = np.random.default_rng(20240601)
    rows = _hard_rows(rng)
    k = max(len(y) for y, _ in rows)
    Y = np.full((len(rows), k), np.nan)
    V = np.full((len(rows), k), np.nan)
    for i, (y, v) in enumerate(rows):
        Y[i, : len(y)], V[i, : len(v)] = y, v
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        t, ok = ESTIMATORS[method](Y, V, np.isfinite(Y))
    assert ok.all()
    assert (t >= 0).all()
    for i, (y, v) in enumerate(rows):
        f = _equation(method, y, v)
        if f(0.0) <= 0:
            assert t[i] == 0.0, (method, i)
        else:
            hi = 1.0
            while f(hi) > 0:
                hi *= 4
            root = optimize.brentq(f, 0.0, hi, xtol=1e-300, rtol=1e-14, maxiter=1000)
            assert t[i] == pytest.approx(root, rel=1e-9), (method, i)


def test_solver_converges_where_plain_newton_would_overshoot():
    # g(x) = atan(c - x): Newton from far away diverges; rtsafe must not
    c = np.array([0.3, 5.0, 1e-6])

    def g(x, cc):
        return np.arctan(cc - x), -1 / (1 + (cc - x) ** 2)

    x, ok = solve_decreasing(g, (c,), np.zeros(3), np.full(3, 1e3), np.full(3, 900.0))
    assert ok.all()
    np.testing.assert_allclose(x, c, rtol=1e-10)


def test_engine_flags_nonconvergence_per_row():
    # one iteration is not enough for REML: the warning and the per-row flag must say so
    import metaanalysis.engine.tau2 as tau2mod

    rng = np.random.default_rng(3)
    v = rng.uniform(0.01, 0.2, (4, 8))
    y = rng.normal(0, np.sqrt(v + 0.3))
    old = tau2mod.MAXITER
    try:
        tau2mod.solve_decreasing.__defaults__  # noqa: B018  (keyword-only defaults below)
        kw = tau2mod.solve_decreasing.__kwdefaults__
        saved = dict(kw)
        kw["maxiter"] = 1
        with pytest.warns(ConvergenceWarning, match="did not converge"):
            out = engine.fit(y, v, method="REML", qprofile=False)
        assert not out["converged"].all()
    finally:
        kw.update(saved)
        tau2mod.MAXITER = old
    out = engine.fit(y, v, method="REML", qprofile=False)
    assert out["converged"].all()


def test_closed_form_truncated_at_zero():
    # homogeneous data: DL's moment equation is negative; τ² must be 0 (not < 0)
    y = np.array([[0.10, 0.11, 0.09, 0.10]])
    v = np.full((1, 4), 0.05)
    for method in ("DL", "HE", "HS", "HSk", "SJ"):
        t, _ = ESTIMATORS[method](y, v, np.isfinite(y))
        assert t[0] >= 0.0
    assert ESTIMATORS["DL"](y, v, np.isfinite(y))[0][0] == 0.0


# ------------------------------------------------ global maximum (multimodal likelihood)
# Rows 3955 and 1293 of benchmarks/bench_pool.py's simulate(100000, 10) (rounded to
# 6 digits): the REML likelihood has a local maximum at τ² = 0 (score ≤ 0 there)
# and a higher one inside.  PyMARE's REML found the interior one; the old engine
# stopped at 0 (|Δτ²| = 0.32 in the benchmark).
MULTIMODAL = [
    ([0.396879, 0.33416, 0.337425, 0.486566, 0.009402, 0.355917, -1.066807, 0.791281,
      -1.108086, 2.266696],
     [0.072852, 0.023456, 0.485417, 0.084714, 0.39679, 0.041799, 0.422071, 0.112286,
      0.315647, 0.38449]),
    ([0.397892, -0.445751, 0.04958, 0.022548, 2.471704, 0.477733, -0.398345, 0.233104,
      0.337599, 1.188162],
     [0.065714, 0.494127, 0.156755, 0.445889, 0.33844, 0.220609, 0.340052, 0.327928,
      0.015677, 0.376021]),
]


def _brute_force_max(y, v, reml, n=20001):
    """Dense-grid maximiser of the (restricted) log-likelihood, boundary 0 included."""
    grid = np.concatenate([[0.0], np.geomspace(1e-6, 1e6, n) * v.min()])
    s = v[None, :] + grid[:, None]
    w = 1.0 / s
    mu = (w * y).sum(1) / w.sum(1)
    ll = -0.5 * (np.log(s).sum(1) + (w * (y - mu[:, None]) ** 2).sum(1))
    if reml:
        ll -= 0.5 * np.log(w.sum(1))
    j = int(np.argmax(ll))
    return grid[j], ll[j]


def _ll(y, v, t, reml):
    w = 1.0 / (v + t)
    mu = (w * y).sum() / w.sum()
    ll = -0.5 * (np.log(v + t).sum() + (w * (y - mu) ** 2).sum())
    return ll - 0.5 * np.log(w.sum()) if reml else ll


@pytest.mark.parametrize("scale", [1.0, 1e4])  # 1e4: vi around 1e3 (the regression engineer's case)
@pytest.mark.parametrize("reml", [True, False])
@pytest.mark.parametrize("case", range(len(MULTIMODAL)))
def test_global_maximum_beats_boundary(case, reml, scale):
    y = np.array(MULTIMODAL[case][0]) * np.sqrt(scale)
    v = np.array(MULTIMODAL[case][1]) * scale
    t_bf, ll_bf = _brute_force_max(y, v, reml)
    est = ESTIMATORS["REML" if reml else "ML"]
    t, ok = est(y[None], v[None], np.ones((1, y.size), bool))
    assert ok[0]
    if reml:  # REML: the interior maximum wins (for ML these two rows keep τ² = 0)
        assert t[0] > 0.0 and t_bf > 0.0
        assert _ll(y, v, t[0], reml) > _ll(y, v, 0.0, reml)
    # our answer is at least as good as the dense grid, and at the same place
    assert _ll(y, v, t[0], reml) >= ll_bf - 1e-10
    assert t[0] == pytest.approx(t_bf, rel=2e-3, abs=1e-12)


def test_global_maximum_random_batch():
    # random data with very unequal vi (many multimodal likelihoods): every row's
    # answer must match a brute-force dense-grid maximisation of the likelihood
    rng = np.random.default_rng(7)
    B, k = 200, 8
    v = np.exp(rng.uniform(np.log(1e-2), np.log(1e3), (B, k)))
    y = rng.normal(0, np.sqrt(v + rng.choice([0.0, 1.0, 100.0], (B, 1))))
    for reml in (True, False):
        t, ok = ESTIMATORS["REML" if reml else "ML"](y, v, np.ones((B, k), bool))
        assert ok.all()
        for i in range(B):
            _, ll_bf = _brute_force_max(y[i], v[i], reml, 6001)
            assert _ll(y[i], v[i], t[i], reml) >= ll_bf - 1e-9 * max(1.0, abs(ll_bf))


@pytest.mark.parametrize("method", ["REML", "ML"])
def test_design_global_maximum(method):
    # meta-regression shares the search: intercept-only designs equal the engine's on
    # the multimodal rows, and with a moderator the answer beats a dense grid
    reml = method == "REML"
    for yl, vl in MULTIMODAL:
        y, v = np.array(yl), np.array(vl)
        t_eng, _ = ESTIMATORS[method](y[None], v[None], np.ones((1, y.size), bool))
        out = engine.fit(y, v, X=np.ones((y.size, 1)), method=method, qprofile=False)
        assert out["tau2"][0] == pytest.approx(t_eng[0], rel=1e-8, abs=1e-12)
        X = np.column_stack([np.ones(y.size), np.arange(y.size) % 2])
        t = engine.fit(y, v, X=X, method=method, qprofile=False)["tau2"][0]
        grid = np.concatenate([[0.0], np.geomspace(1e-6, 1e4, 6001) * v.min()])
        lls = [_ll_design(y, v, X, g, reml) for g in grid]
        assert _ll_design(y, v, X, t, reml) >= max(lls) - 1e-10


def _ll_design(y, v, X, t, reml):
    w = 1 / (v + t)
    XtWX = X.T @ (w[:, None] * X)
    b = np.linalg.solve(XtWX, X.T @ (w * y))
    r = y - X @ b
    ll = -0.5 * (np.log(v + t).sum() + (w * r * r).sum())
    return ll - 0.5 * np.linalg.slogdet(XtWX)[1] if reml else ll


# ------------------------------------------------------------ speed-related paths
def test_halley_slopes_match_finite_differences():
    """The iterations use Halley's slope g' − g g''/(2g'); check it against
    central differences of the defining functions (REML/ML: 1 − tr(P)/y'PPy,
    Viechtbauer 2005; Q-profile: 1/target − 1/Q(τ²), Viechtbauer 2007)."""
    from metaanalysis.engine.design import Intercept
    from metaanalysis.engine.likelihood import _halley
    from metaanalysis.engine.wls import q_terms

    rng = np.random.default_rng(11)
    k = 9
    y = rng.normal(size=k)
    v = np.exp(rng.uniform(-4, 1, size=k))
    t, h = 0.37, 1e-4

    def lik(tt, reml):
        w = 1 / (v + tt)
        u = w * (y - (w * y).sum() / w.sum())
        trp = w.sum() - ((w * w).sum() / w.sum() if reml else 0.0)
        return 1 - trp / (u * u).sum()

    def halley(f):
        f0, fp, fm = f(t), f(t + h), f(t - h)
        d1, d2 = (fp - fm) / (2 * h), (fp - 2 * f0 + fm) / h**2
        return f0, d1 - f0 * d2 / (2 * d1)

    for reml in (True, False):
        val, slope = _halley(Intercept(), reml)(np.array([t]), y[:, None], v[:, None])
        f0, s_fd = halley(lambda tt, r=reml: lik(tt, r))
        assert val[0] == pytest.approx(f0, rel=1e-12)
        assert slope[0] == pytest.approx(s_fd, rel=1e-5)

    def q(tt):
        return q_stat(y[None], v[None], np.ones((1, k)), np.array([tt]))[0][0]

    q0, a2, a3 = (a[0] for a in q_terms(Intercept(), y[:, None], v[:, None], np.array([t]), 2))
    assert -a2 == pytest.approx((q(t + h) - q(t - h)) / (2 * h), rel=1e-6)
    assert 2 * a3 == pytest.approx((q(t + h) - 2 * q0 + q(t - h)) / h**2, rel=1e-4)


def test_qprofile_limit_beyond_cap_is_not_iterated():
    """k = 2 with far-apart effects: the upper Q-profile limit lies beyond the
    search bound max(100, 10 τ̂²) (metafor's confint convention), so it is the
    bound itself, flagged, converged, and found without a bisection run."""
    import metaanalysis.engine.qprofile as qp
    from metaanalysis.engine.tau2 import as_chunk

    y = np.array([[0.0, 10.0]])
    v = np.array([[0.01, 0.02]])
    t = np.array([0.0])
    calls = []
    orig = qp.q_terms

    def counting(*a, **kw):
        calls.append(1)
        return orig(*a, **kw)

    qp.q_terms = counting
    try:
        lb, ub, ok, capped = qp.tau2_ci(as_chunk(y, v, np.isfinite(y)), t)
    finally:
        qp.q_terms = orig
    assert ub[0] == 100.0 and capped[0] and ok[0]
    # k = 2: Q(τ²) = (y₁ − y₂)²/(v₁ + v₂ + 2τ²); lower limit where it equals χ²₀.₉₇₅(1)
    assert lb[0] == pytest.approx((100 / stats.chi2.ppf(0.975, 1) - 0.03) / 2, rel=1e-10)
    assert len(calls) < 15  # was > 40 when the capped row was bisected to the bound


def test_qprofile_cached_inputs_change_nothing():
    """Passing Q(0) and Q(τ̂²) from the engine gives the same limits as computing them."""
    from metaanalysis.engine.qprofile import tau2_ci
    from metaanalysis.engine.tau2 import as_chunk

    rng = np.random.default_rng(5)
    v = np.exp(rng.uniform(-5, 0, size=(50, 8)))
    y = rng.normal(0, np.sqrt(v + 0.1))
    m = np.isfinite(y)
    t, _ = ESTIMATORS["REML"](y, v, m)
    qt, _ = q_stat(y, v, np.ones_like(y), t)
    a = tau2_ci(as_chunk(y, v, m), t)
    b = tau2_ci(as_chunk(y, v, m), t, q_hat=qt)
    for x, z in zip(a, b):
        np.testing.assert_array_equal(x, z)


def test_q_equation_estimators_converge_on_a_single_study():
    # Found in a GOSH batch (egger2001, PM): a one-study subset has Q(0) = 1.5e-31 from
    # rounding and the target k − 1 = 0, so no τ² can solve Q(τ²) = 0; it must not be
    # reported as a non-converged row.
    import json
    import warnings
    from pathlib import Path

    from metaanalysis import engine

    d = json.loads((Path(__file__).parent / "data" / "metafor" / "egger2001_or.json").read_text())
    y = np.full((1, len(d["yi"])), np.nan)
    v = np.full_like(y, np.nan)
    y[0, 14], v[0, 14] = d["yi"][14], d["vi"][14]
    for method in ("PM", "PMM", "EB"):
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            out = engine.fit(y, v, method=method, qprofile=False)
        assert bool(out["converged"][0]), method
        assert out["estimate"][0] == pytest.approx(d["yi"][14], rel=1e-12)
