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
from metaanalysis.errors import ConvergenceWarning
from metaanalysis.tau2 import ESTIMATORS, q_stat, solve_decreasing

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
    import metaanalysis.tau2 as tau2mod

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
