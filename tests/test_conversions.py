"""Tests for metaanalysis.effects.conversions (median/range/IQR -> mean, SD)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from metaanalysis.effects.conversions import METHODS, describe_method, estimate_mean_sd, eta, xi
from metaanalysis.errors import InputError


def test_luo_mean_s1_matches_metablue_example():
    # metaBLUE 1.0.0 documentation, Luo.mean(X = c(1, 4, 10), n = 30, type = "S1"): muhat = 4.356748
    mean, _ = estimate_mean_sd(30, min=1, median=4, max=10)
    assert mean == pytest.approx(4.356748, abs=5e-7)


def test_wan_sd_s1_matches_metablue_example():
    # metaBLUE 1.0.0 documentation, Wan.std(X = c(1, 4, 10), n = 30, type = "S1"): sigmahat = 2.205578
    for method in ("wan", "luo-shi"):  # both use Wan's range estimator for S1
        _, sd = estimate_mean_sd(30, min=1, median=4, max=10, method=method)
        assert sd == pytest.approx(2.205578, abs=5e-7)
    # Wan et al. 2014, S1 mean (a + 2m + b)/4
    assert estimate_mean_sd(30, min=1, median=4, max=10, method="wan")[0] == 4.75


@pytest.mark.parametrize(
    "n,table",  # Wan et al. 2014, BMC Med Res Methodol 14:135, Table 1 (exact expected range)
    [(10, 3.078), (15, 3.472), (20, 3.735), (25, 3.931), (30, 4.086), (40, 4.322), (50, 4.498)],
)
def test_xi_closed_form_close_to_wan_table1(n, table):
    # Wan's closed form is within 0.5 % of their Table 1 for n >= 10
    assert float(xi(n)) == pytest.approx(table, rel=5e-3)


def test_eta_tends_to_normal_iqr():
    # eta(n) -> 2 * Phi^-1(0.75) = 1.34898 (IQR of the standard normal), Wan et al. 2014 eq. (16)
    assert float(eta(1e7)) == pytest.approx(2 * stats.norm.ppf(0.75), rel=1e-6)


def test_luo_s2_and_s3_weights():
    # Luo et al. 2018: S2 weight 0.7 + 0.39/n on the mid-quartile; S3 weights
    # 2.2/(2.2 + n^0.75) on the mid-range and 0.7 - 0.72/n^0.55 on the mid-quartile.
    n = 50
    mean2, _ = estimate_mean_sd(n, q1=2, median=3, q3=6)
    w = 0.7 + 0.39 / n
    assert mean2 == pytest.approx(w * 4 + (1 - w) * 3, rel=1e-14)
    mean3, _ = estimate_mean_sd(n, min=0, q1=2, median=3, q3=6, max=20)
    wa, wq = 2.2 / (2.2 + n**0.75), 0.7 - 0.72 / n**0.55
    assert mean3 == pytest.approx(wa * 10 + wq * 4 + (1 - wa - wq) * 3, rel=1e-14)


def test_shi_s3_sd_weights_and_limits():
    # Shi et al. 2020: SD = w (b-a)/xi(n) + (1-w)(q3-q1)/eta(n), w = 1/(1 + 0.07 n^0.6)
    n = 100
    _, sd = estimate_mean_sd(n, min=1, q1=4, median=5, q3=6, max=11)
    w = 1 / (1 + 0.07 * n**0.6)
    assert sd == pytest.approx(w * 10 / float(xi(n)) + (1 - w) * 2 / float(eta(n)), rel=1e-14)
    # data exactly at normal quantiles with SD 1: both pieces give ~1
    nbig = 10_000
    q = stats.norm.ppf([0.25, 0.75])
    r = float(xi(nbig)) / 2
    _, sd = estimate_mean_sd(nbig, min=-r, q1=q[0], median=0, q3=q[1], max=r)
    assert sd == pytest.approx(1.0, rel=1e-3)


def test_wan_s2_s3():
    n = 41
    m2, s2 = estimate_mean_sd(n, q1=2, median=3, q3=7, method="wan")
    assert m2 == pytest.approx(4.0) and s2 == pytest.approx(5 / float(eta(n)))
    m3, s3 = estimate_mean_sd(n, min=0, q1=2, median=3, q3=7, max=16, method="wan")
    assert m3 == pytest.approx((0 + 4 + 6 + 14 + 16) / 8)
    assert s3 == pytest.approx(16 / (2 * float(xi(n))) + 5 / (2 * float(eta(n))))


def test_hozo_constant_sample_and_mean_formula():
    # Hozo et al. 2005: all values equal -> SD 0, mean the value
    mean, sd = estimate_mean_sd(20, min=3, median=3, max=3, method="hozo")
    assert mean == 3 and sd == 0
    # mean (a + 2m + b)/4 + (a - 2m + b)/(4n)
    mean, sd = estimate_mean_sd(10, min=5, median=8, max=12, method="hozo")
    assert mean == pytest.approx((5 + 16 + 12) / 4 + (5 - 16 + 12) / 40)
    assert 0 < sd < (12 - 5) / 2  # an SD cannot exceed half the range (n even)


def test_arrays_with_mixed_scenarios():
    n = np.array([30, 50, 100, 40])
    med = np.array([4, 3, 5, np.nan])
    mn = np.array([1, np.nan, 1, np.nan])
    mx = np.array([10, np.nan, 11, np.nan])
    lo = np.array([np.nan, 2, 4, np.nan])
    hi = np.array([np.nan, 6, 6, np.nan])
    mean, sd = estimate_mean_sd(n, median=med, min=mn, max=mx, q1=lo, q3=hi)
    assert mean.shape == (4,) and np.isnan(mean[3]) and np.isnan(sd[3])
    assert mean[0] == pytest.approx(estimate_mean_sd(30, median=4, min=1, max=10)[0])
    assert sd[1] == pytest.approx(estimate_mean_sd(50, median=3, q1=2, q3=6)[1])
    assert sd[2] == pytest.approx(estimate_mean_sd(100, median=5, min=1, q1=4, q3=6, max=11)[1])


@pytest.mark.parametrize(
    "kwargs,pattern",
    [
        (
            {"n": 20, "median": 5, "min": 1},
            r"got median, min; expected the median with min and max \(S1\)",
        ),
        ({"n": 20, "median": 5}, r"got median; expected the median with min and max"),
        ({"n": 20, "min": 1, "max": 9}, r"median is missing"),
        (
            {"n": 20, "median": 5, "q1": 2, "q3": 7, "method": "hozo"},
            r"method 'hozo' uses the median with min and max only",
        ),
        ({"n": 20, "median": 5, "min": 6, "max": 9}, r"min = 6 and median = 5 are out of order"),
        ({"n": 20, "median": 5, "q1": 2, "q3": 4}, r"median = 5 and q3 = 4 are out of order"),
        ({"n": 1, "median": 5, "min": 1, "max": 9}, r"n = 1; expected a sample size >= 2"),
        (
            {"n": 20, "median": 5, "min": 1, "max": 9, "method": "bland"},
            r"method = 'bland'; expected one of luo-shi, wan, hozo",
        ),
        ({"n": [20, 30], "median": [5, 5, 5], "min": 1, "max": 9}, r"shapes that do not match"),
    ],
)
def test_input_errors(kwargs, pattern):
    with pytest.raises(InputError, match=pattern):
        estimate_mean_sd(**kwargs)


def test_describe_method_cites_papers():
    assert "Luo et al. 2018" in describe_method(
        "luo-shi"
    ) and "Shi et al. 2020" in describe_method("luo-shi")
    assert "Wan et al. 2014" in describe_method("wan")
    assert "Hozo et al. 2005" in describe_method("hozo")
    with pytest.raises(InputError, match="expected one of"):
        describe_method("nope")


@settings(max_examples=80, deadline=None)
@given(
    n=st.integers(2, 2000),
    med=st.floats(-100, 100),
    half_iqr=st.floats(0.01, 10),
    extra=st.floats(0.0, 20),
    method=st.sampled_from(METHODS),
)
def test_symmetric_summaries_give_mean_equal_median(n, med, half_iqr, extra, method):
    lo, hi = med - half_iqr, med + half_iqr
    a, b = lo - extra, hi + extra
    mean, sd = estimate_mean_sd(n, min=a, median=med, max=b, method=method)
    assert mean == pytest.approx(med, abs=1e-9 * (1 + abs(med)))
    assert sd >= 0
    if method != "hozo":
        for kw in ({"q1": lo, "q3": hi}, {"q1": lo, "q3": hi, "min": a, "max": b}):
            mean, sd = estimate_mean_sd(n, median=med, method=method, **kw)
            assert mean == pytest.approx(med, abs=1e-9 * (1 + abs(med)))
            assert sd > 0


@settings(max_examples=50, deadline=None)
@given(
    n=st.integers(2, 500),
    shift=st.floats(-50, 50),
    scale=st.floats(0.1, 10),
    method=st.sampled_from(METHODS),
)
def test_location_scale_equivariance(n, shift, scale, method):
    base = {"min": 0.0, "median": 2.0, "max": 9.0}
    m0, s0 = estimate_mean_sd(n, method=method, **base)
    m1, s1 = estimate_mean_sd(n, method=method, **{k: shift + scale * v for k, v in base.items()})
    assert m1 == pytest.approx(shift + scale * m0, rel=1e-9, abs=1e-9)
    assert s1 == pytest.approx(scale * s0, rel=1e-9)
