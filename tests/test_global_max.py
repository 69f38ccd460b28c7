"""ML and REML return the global maximum of the (restricted) likelihood.

Reference values: tests/data/global_max_reference.json (made by
tests/data/global_max_reference.R with R metafor 3.8-1): four studies whose
restricted likelihood has interior maxima at 0.54 and 25.80 (issue 12).
The property tests compare with a dense grid, evaluated here with a plain
implementation of the likelihood (not the engine's).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import metaanalysis as ma
from metaanalysis import engine
from metaanalysis.engine.design import make_design
from metaanalysis.engine.likelihood import tau2_lik
from metaanalysis.engine.wls import Chunk

REF = json.loads((Path(__file__).parent / "data" / "global_max_reference.json").read_text())
G4 = REF["gibson4"]


def _ll(y, v, X, t, reml):
    """(Restricted) log-likelihood at each τ² in ``t`` (metafor's, constants included)."""
    t = np.atleast_1d(np.asarray(t, float))
    k, p = X.shape
    s = v[None, :] + t[:, None]
    w = 1.0 / s
    XtWX = np.einsum("ki,nk,kj->nij", X, w, X)
    beta = np.linalg.solve(XtWX, np.einsum("ki,nk,k->ni", X, w, y)[..., None])[..., 0]
    r = y[None, :] - beta @ X.T
    ll = -0.5 * k * np.log(2 * np.pi) - 0.5 * np.log(s).sum(1) - 0.5 * (w * r * r).sum(1)
    if reml:
        ll += (0.5 * p * np.log(2 * np.pi) + 0.5 * np.linalg.slogdet(X.T @ X)[1]
               - 0.5 * np.linalg.slogdet(XtWX)[1])
    return ll


def _grid_best(y, v, X, reml, n=2001):
    top = 10 * (v.max() + np.sum((y - y.mean()) ** 2))
    grid = np.concatenate([[0.0], np.geomspace(v.min() * 1e-5, top, n)])
    ll = _ll(y, v, X, grid, reml)
    return grid[np.argmax(ll)], ll.max()


# ---------------------------------------------------------------- the case
def test_gibson_reml_global_maximum_as_metafor():
    # metafor: rma(yi, vi, method = "REML") = 25.8016 (restricted logLik -9.9592);
    # the lower interior maximum at 0.5412 has logLik -10.0525
    res = ma.pool(G4["yi"], G4["vi"], method="REML")
    ref = G4["REML"]
    assert res.tau2 == pytest.approx(ref["tau2"], rel=1e-6)
    assert res.estimate == pytest.approx(ref["estimate"], rel=1e-6)
    assert res.se == pytest.approx(ref["se"], rel=1e-6)
    assert res.se_tau2 == pytest.approx(ref["se_tau2"], rel=1e-6)
    y, v, X = np.array(G4["yi"]), np.array(G4["vi"]), np.ones((4, 1))
    assert _ll(y, v, X, res.tau2, True)[0] == pytest.approx(ref["loglik"], abs=1e-9)
    assert _ll(y, v, X, ref["tau2_local"], True)[0] == pytest.approx(ref["loglik_local"],
                                                                      abs=1e-9)


def test_gibson_ml_boundary_as_metafor():
    res = ma.pool(G4["yi"], G4["vi"], method="ML")
    assert res.tau2 == pytest.approx(0.0, abs=1e-10)
    assert res.estimate == pytest.approx(G4["ML"]["estimate"], rel=1e-8)


def test_gibson_in_batches_and_masks():
    # the same answer from pool_many (NaN-padded rows), a masked batch (as
    # leave-one-out, cumulative and GOSH use) and a meta-regression design
    y, v = np.array(G4["yi"]), np.array(G4["vi"])
    t = G4["REML"]["tau2"]
    Y = np.vstack([y, np.append(y[:3], np.nan)])
    V = np.vstack([v, np.append(v[:3], np.nan)])
    b = ma.pool_many(Y, V, method="REML")
    assert b.tau2[0] == pytest.approx(t, rel=1e-6)
    full = engine.fit(y, v, mask=np.array([[True] * 4, [True, True, True, False]]),
                      method="REML", outputs="core")
    assert full["tau2"][0] == pytest.approx(t, rel=1e-6)
    assert full["tau2"][1] == pytest.approx(b.tau2[1], rel=1e-9)
    cum = ma.cumulative(ma.pool(y, v, method="REML"))
    assert cum["tau2"].iloc[-1] == pytest.approx(t, rel=1e-6)
    d = make_design(np.ones((4, 1)), 4)
    tt, ok = tau2_lik(Chunk(d, y[:, None], v[:, None]), True)
    assert ok[0] and tt[0] == pytest.approx(t, rel=1e-6)


# ---------------------------------------------------------------- property tests
@st.composite
def bimodal(draw):
    """Precise studies around one value plus imprecise ones far away: likelihoods
    with a boundary or interior maximum at small τ² and another at large τ²."""
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    k1 = draw(st.integers(1, 5))
    k2 = draw(st.integers(1, 3))
    v1 = np.exp(rng.uniform(np.log(1e-3), np.log(1.0), k1))
    v2 = np.exp(rng.uniform(np.log(1.0), np.log(1e3), k2))
    t1 = draw(st.sampled_from([0.0, 0.01, 0.3]))
    t2 = draw(st.sampled_from([1.0, 30.0, 1e3]))
    y1 = rng.normal(0.0, np.sqrt(v1 + t1))
    y2 = rng.normal(draw(st.floats(-30, 30)), np.sqrt(v2 + t2))
    y = np.concatenate([y1, y2])
    v = np.concatenate([v1, v2])
    if y.size < 3:
        y = np.append(y, rng.normal(0, 1))
        v = np.append(v, rng.uniform(0.01, 1))
    order = rng.permutation(y.size)
    return y[order], v[order]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=bimodal(), reml=st.booleans())
def test_intercept_only_beats_dense_grid(data, reml):
    y, v = data
    out = engine.fit(y, v, method="REML" if reml else "ML", qprofile=False, outputs="core")
    assert out["converged"][0]
    X = np.ones((y.size, 1))
    _, best = _grid_best(y, v, X, reml)
    mine = _ll(y, v, X, out["tau2"][0], reml)[0]
    assert mine >= best - 1e-9 * max(1.0, abs(best))


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=bimodal(), reml=st.booleans(), seed=st.integers(0, 2**31))
def test_design_beats_dense_grid(data, reml, seed):
    y, v = data
    k = y.size
    if k < 4:
        y, v = np.append(y, 0.3), np.append(v, 0.05)
        k += 1
    x = np.random.default_rng(seed).normal(size=k)
    X = np.column_stack([np.ones(k), x])
    d = make_design(X, k)
    t, ok = tau2_lik(Chunk(d, y[:, None], v[:, None]), reml)
    assert ok[0]
    _, best = _grid_best(y, v, X, reml)
    mine = _ll(y, v, X, t[0], reml)[0]
    assert mine >= best - 1e-9 * max(1.0, abs(best))


def test_random_batch_with_masks_beats_dense_grid():
    # one masked batch (random subsets of 10 studies with very unequal vi): every
    # row is at least as good as the dense grid of its own subset
    rng = np.random.default_rng(3)
    k, B = 10, 80
    v = np.exp(rng.uniform(np.log(1e-3), np.log(1e3), k))
    y = rng.normal(0, np.sqrt(v + 5.0))
    mask = rng.random((B, k)) < 0.6
    mask[:, :2] = True
    for reml in (True, False):
        out = engine.fit(y, v, mask=mask, method="REML" if reml else "ML", outputs="core")
        for i in range(B):
            yy, vv = y[mask[i]], v[mask[i]]
            X = np.ones((yy.size, 1))
            _, best = _grid_best(yy, vv, X, reml)
            mine = _ll(yy, vv, X, out["tau2"][i], reml)[0]
            assert mine >= best - 1e-9 * max(1.0, abs(best)), (i, reml)
