"""Invariants of the pooling engine (STYLE.md), checked with hypothesis.

τ² ≥ 0, 0 ≤ I² < 100, the order of studies does not matter, shifting every yi
by c shifts the estimate by c and leaves τ² unchanged, and τ² = 0 gives the
common-effect answer.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from metaanalysis import engine

METHODS = engine.METHODS[1:]
SETTINGS = settings(max_examples=50, deadline=None)


@st.composite
def studies(draw):
    k = draw(st.integers(2, 12))
    y = draw(st.lists(st.floats(-5, 5, allow_nan=False), min_size=k, max_size=k))
    v = draw(st.lists(st.floats(1e-4, 10, allow_nan=False), min_size=k, max_size=k))
    return np.array(y), np.array(v)


def _fit(y, v, method, **kw):
    out = engine.fit(y[None], v[None], method=method, **kw)
    return {key: val[0] for key, val in out.items()}


@SETTINGS
@given(data=studies(), method=st.sampled_from(METHODS))
def test_tau2_and_i2_ranges(data, method):
    y, v = data
    r = _fit(y, v, method)
    assert r["converged"]
    assert r["tau2"] >= 0
    assert 0 <= r["i2"] < 100
    assert 0 <= r["tau2_ci_lb"] <= r["tau2_ci_ub"]
    assert 0 <= r["i2_ci_lb"] <= r["i2_ci_ub"] < 100
    assert r["h2"] >= 1


@SETTINGS
@given(data=studies(), method=st.sampled_from(engine.METHODS), seed=st.integers(0, 2**32 - 1))
def test_permutation_invariance(data, method, seed):
    y, v = data
    perm = np.random.default_rng(seed).permutation(len(y))
    a = _fit(y, v, method, test="knha")
    b = _fit(y[perm], v[perm], method, test="knha")
    for key in ("estimate", "se", "tau2", "i2", "q", "tau2_ci_ub"):
        assert b[key] == pytest.approx(a[key], rel=1e-7, abs=1e-10, nan_ok=True), key


@SETTINGS
@given(data=studies(), method=st.sampled_from(engine.METHODS), c=st.floats(-50, 50))
def test_shift_equivariance(data, method, c):
    y, v = data
    a = _fit(y, v, method)
    b = _fit(y + c, v, method)
    assert b["estimate"] == pytest.approx(a["estimate"] + c, rel=1e-7, abs=1e-7)
    assert b["tau2"] == pytest.approx(a["tau2"], rel=1e-6, abs=1e-9)
    assert b["se"] == pytest.approx(a["se"], rel=1e-6, abs=1e-9)


@SETTINGS
@given(data=studies(), method=st.sampled_from(METHODS))
def test_tau2_zero_gives_common_effect(data, method):
    y, v = data
    ee = _fit(y, v, "EE")
    fixed = _fit(y, v, method, tau2=np.array([0.0]))
    for key in ("estimate", "se", "ci_lb", "ci_ub", "p"):
        assert fixed[key] == pytest.approx(ee[key], rel=1e-12, abs=1e-300), key
    r = _fit(y, v, method)
    if r["tau2"] == 0:
        assert r["estimate"] == pytest.approx(ee["estimate"], rel=1e-12, abs=1e-12)
