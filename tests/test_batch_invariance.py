"""Every row of an engine batch gets the same bits whatever the other rows (issue 17).

The claim tested: ``engine.fit`` on any subset of rows, in any order, alone
(a batch of one), two at a time, or cut into chunks of any size, returns for
each row exactly (``np.array_equal``, NaN equal to NaN) what the whole batch
returns for it — for all 11 τ² methods, the z, knha and adhoc tests, with
and without Q-profile intervals, and for meta-regression with a shared
design and one design per row.  This is what makes chunked, threaded and
distributed runs identical to one in-process call (tests/test_distributed.py).

The batch holds the cases where a batch-dependent shortcut would show:
absent studies (rows of different k, including k = 1 and k = 0), vᵢ spanning
orders of magnitude, rows whose likelihood has two maxima (the example of
:mod:`metaanalysis.engine.likelihood`), equal effects (τ² = 0) and Q beyond
600 (the χ² tail off its closed form).
"""

import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from metaanalysis import engine

K = 8
CONFIGS = (("z", False), ("knha", True), ("adhoc", True))


def _batch():
    rng = np.random.default_rng(2017)
    B = 100
    v = rng.uniform(0.01, 0.5, (B, K)) * rng.choice([1.0, 1.0, 40.0], (B, 1)) ** rng.random((B, K))
    y = rng.normal(0.2, np.sqrt(v + rng.choice([0.0, 0.03, 0.3], (B, 1))))
    two = np.array([[0.26, -0.90, 0.52, -15.08], [0.040, 0.489, 1.985, 20.87]])  # two maxima
    for j, s in enumerate((0.5, 1.0, 2.0, 3.0)):
        y[j, :4], v[j, :4] = two[0] * np.sqrt(s), two[1] * s
        y[j, 4:] = v[j, 4:] = np.nan
    y[4] = 0.3  # equal effects
    y[5] = np.linspace(-30, 30, K)  # Q far beyond 600
    v[5] = 0.01
    absent = rng.random((B, K)) < 0.15
    absent[6, 1:] = True  # k = 1
    absent[7] = True  # k = 0
    absent[:4] = False
    y[absent] = v[absent] = np.nan
    return y, v


Y, V = _batch()
XS = np.column_stack([np.ones(K), np.random.default_rng(1).normal(size=(K, 2))])
XR = np.concatenate([np.ones((len(Y), K, 1)), np.random.default_rng(2).normal(size=(len(Y), K, 1))],
                    axis=2)
_CACHE: dict = {}


def _fit(rows, X=None, **kw):
    Xr = X[rows] if X is not None and X.ndim == 3 else X
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return engine.fit(Y[rows], V[rows], X=Xr, **kw)


def _whole(X=None, **kw):
    key = (None if X is None else X.ndim,) + tuple(sorted(kw.items()))
    if key not in _CACHE:
        _CACHE[key] = _fit(np.arange(len(Y)), X, **kw)
    return _CACHE[key]


def _assert_rows(whole, part, rows):
    for key, val in part.items():
        np.testing.assert_array_equal(val, whole[key][rows], err_msg=key, strict=True)


@pytest.mark.parametrize("method", engine.METHODS)
def test_every_row_is_independent_of_its_batch(method):
    rng = np.random.default_rng(engine.METHODS.index(method))
    B = len(Y)
    for test, qprofile in CONFIGS:
        kw = dict(method=method, test=test, qprofile=qprofile)
        whole = _whole(**kw)
        for rows in (rng.permutation(B), np.array([0]), np.array([5]), np.array([6, 3])):
            _assert_rows(whole, _fit(rows, **kw), rows)
        # chunks of 7 rows: the last one holds a single row
        rows = np.arange(36)
        _assert_rows(whole, _fit(rows, chunk_size=7, **kw), rows)


@pytest.mark.parametrize("X", [XS, XR], ids=["shared design", "design per row"])
@pytest.mark.parametrize("method", ["DL", "REML", "PM"])
def test_meta_regression_rows_are_independent_of_their_batch(method, X):
    rng = np.random.default_rng(3)
    ok = np.flatnonzero(np.sum(np.isfinite(Y), 1) >= 4)  # rows the design identifies
    for test, qprofile in CONFIGS[:2]:
        kw = dict(method=method, test=test, qprofile=qprofile)
        whole = _fit(ok, X, **kw)
        for pos in (rng.permutation(ok.size), np.array([0]), np.array([7, 2])):
            _assert_rows(whole, _fit(ok[pos], X, **kw), pos)


@settings(max_examples=25, deadline=None)
@given(config=st.sampled_from([(m, t, q) for m in ("REML", "ML", "PM", "PMM", "EB")
                               for t, q in CONFIGS]),
       rows=st.lists(st.integers(0, len(Y) - 1), min_size=1, max_size=12, unique=True))
def test_any_subset_in_any_order_gives_the_same_bits(config, rows):
    method, test, qprofile = config
    kw = dict(method=method, test=test, qprofile=qprofile)
    rows = np.array(rows)
    _assert_rows(_whole(**kw), _fit(rows, **kw), rows)


def test_float_row_terms_equal_the_array_terms():
    # The few-row solvers evaluate the likelihood and Q(τ²) terms of a row on Python
    # floats (likelihood.terms_row, wls.q_terms_row): they must be the array code's bits
    # (rows with absent studies: y = 0, v = inf), at τ² = 0 and beyond.
    from metaanalysis.engine.likelihood import _terms1, terms_row
    from metaanalysis.engine.wls import q_terms, q_terms_row

    present = np.isfinite(Y) & np.isfinite(V)
    y = np.ascontiguousarray(np.where(present, Y, 0.0).T)
    v = np.ascontiguousarray(np.where(present, V, np.inf).T)
    ok = present.sum(1) >= 2
    y, v = y.compress(ok, 1), v.compress(ok, 1)  # C order, as the engine's chunks
    with np.errstate(all="ignore"):
        for t in (0.0, 0.013, 0.7, 55.0):
            tt = np.full(y.shape[1], t)
            for reml in (True, False):
                arr = np.array(_terms1(y, v, tt.copy(), reml, 3, False))
                rows = np.array([terms_row(y[:, j].tolist(), v[:, j].tolist(), t, reml, 3)
                                 for j in range(y.shape[1])]).T
                np.testing.assert_array_equal(rows, arr)
            arr = np.array(q_terms(engine.design.Intercept(), y, v, tt, 2))
            rows = np.array([q_terms_row(y[:, j].tolist(), v[:, j].tolist(), t)
                             for j in range(y.shape[1])]).T
            np.testing.assert_array_equal(rows, arr)


def test_few_row_setups_on_floats_equal_the_array_code():
    # A batch of a few rows without moderators sets up the REML search
    # (likelihood._zero_few) and the Q-profile roots (qprofile._tau2_ci_few) on
    # Python floats: the same bits as the array code, including limits beyond the cap.
    from metaanalysis.engine import likelihood, qprofile
    from metaanalysis.engine.design import Intercept
    from metaanalysis.engine.wls import Chunk, q_terms

    rng = np.random.default_rng(11)
    checked = 0
    for _ in range(150):
        k, n = int(rng.integers(1, 30)), int(rng.integers(1, 4))
        v = rng.uniform(0.001, 2, (k, n)) * rng.choice([1, 100.0]) ** rng.random((k, n))
        y = rng.normal(0, rng.choice([0.1, 1, 30, 300]), (k, n))
        t = rng.choice([0.05, 1.0, 20.0, 500.0], n) * rng.random(n)
        few, arr = Chunk(Intercept(), y.copy(), v.copy()), Chunk(Intercept(), y.copy(), v.copy())
        with np.errstate(all="ignore"):
            got = likelihood._zero_few(few, True)
            if got is not None:
                a2, b1, a3, b2 = likelihood._zero_terms(arr, True)
                hi = likelihood.score_bound_hi(arr.rss_ols, arr.vmin, arr.vmax, arr.k - 1.0)
                st = (arr.q0 - (arr.k - 1.0)) / arr.trp0
                st = np.where((st >= 0) & (st < hi), st, 0.0)
                for x, ref in zip(got, (a2, b1, a3, b2, hi, st)):
                    np.testing.assert_array_equal(x, ref)
                checked += 1
            qh = q_terms(Intercept(), y, v, t)[0]
            got = qprofile._tau2_ci_few(few, t, 0.95, qh)
            if got is not None:
                arr2 = Chunk(Intercept(), y.copy(), v.copy())
                arr2._c["q0"] = arr.q0
                ref = qprofile.tau2_ci(arr2, t, 0.95)  # q_hat None: the array code
                for x, r in zip(got, ref):
                    np.testing.assert_array_equal(x, r)
                checked += 1
    assert checked > 150
