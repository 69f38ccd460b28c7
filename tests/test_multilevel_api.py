"""pool_mv: input errors, convergence warning, display and invariances.

(Numbers against metafor are in tests/test_multilevel.py.)
"""

import functools
import warnings

import numpy as np
import pandas as pd
import pytest

import metaanalysis as ma
from metaanalysis.models import mv_fit


@pytest.fixture(scope="module")
def pain():
    """A small repeated-measures data set: 8 studies, 2-4 of 4 time points."""
    rng = np.random.default_rng(7)
    rows = []
    for s in range(8):
        u = rng.normal(0, 0.7)
        times = sorted(rng.choice([1, 7, 30, 180], size=rng.integers(2, 5), replace=False))
        for t in times:
            rows.append({"study": f"s{s}", "time": int(t), "vi": rng.uniform(0.05, 0.2),
                         "yi": 3 + 0.3 * np.log(t) + u + rng.normal(0, 0.3)})
    return pd.DataFrame(rows)


def fit(d, **kw):
    kw.setdefault("study", "study")
    return ma.pool_mv(d, **kw)


@pytest.mark.parametrize("kw, match", [
    ({"struct": "XX", "time": "time"}, "struct: got 'XX'"),
    ({"method": "DL"}, "method: got 'DL'"),
    ({"test": "knha"}, "test: got 'knha'"),
    ({"rho": 0.5, "phi": 0.5, "time": "time"}, "not both"),
    ({"phi": 0.8}, "phi: .*needs time"),
    ({"rho": 1.5}, "rho: got 1.5"),
    ({"struct": "CAR", "time": "label"}, "time: struct='CAR' needs numeric time"),
    ({"time": "one"}, "time: has a single level"),
    ({"mods": pd.DataFrame({"x": np.ones(27)})}, "mods: got 27 rows"),
])
def test_bad_arguments_name_the_argument(pain, kw, match):
    d = pain.assign(label=pain["time"].map({1: "a", 7: "b", 30: "c", 180: "d"}), one=1)
    with pytest.raises(ma.InputError, match=match):
        fit(d, **kw)


def test_un_needs_as_many_studies_as_time_points():
    d = pd.DataFrame({"study": ["a"] * 3 + ["b"] * 3, "time": [1, 2, 3] * 2,
                      "yi": [1.0, 1.2, 1.4, 0.8, 1.1, 1.5], "vi": [0.1] * 6})
    with pytest.raises(ma.InputError, match="struct='UN': 3 time points need at least 3 studies"):
        fit(d, time="time", struct="UN")


def test_un_pair_never_observed_together_is_an_error():
    d = pd.DataFrame({"study": list("aabbcc"), "time": [1, 2, 2, 3, 1, 2],
                      "yi": [1.0, 1.2, 1.4, 0.8, 1.1, 1.5], "vi": [0.1] * 6})
    with pytest.raises(ma.InputError, match=r"time points \[\(1, 3\)\] never occur in the same study"):
        fit(d, time="time", struct="UN")


def test_correlation_needs_a_study_with_two_time_points():
    d = pd.DataFrame({"study": list("abcd"), "time": [1, 2, 1, 2], "yi": [1, 2, 1.5, 2.2],
                      "vi": [0.1] * 4})
    with pytest.raises(ma.InputError, match="no study has estimates at two different"):
        fit(d, time="time", struct="CS")


def test_non_positive_definite_sampling_covariance(pain):
    d = pain.copy()
    d.loc[1, "time"] = d.loc[0, "time"]  # two estimates of s0 at the same time
    same = d[d.study == "s0"]
    assert same["time"].iloc[0] == same["time"].iloc[1]
    with pytest.raises(ma.InputError, match=r"phi=1.*not positive definite"):
        fit(d, time="time", phi=1.0)
    with pytest.raises(ma.InputError, match=r"rho=1.*not positive definite"):
        fit(d.assign(vi=0.1), rho=1.0)


def test_given_v_is_checked(pain):
    k = len(pain)
    V = np.diag(pain["vi"].to_numpy())
    V[0, k - 1] = V[k - 1, 0] = 0.01  # first and last rows belong to different studies
    with pytest.raises(ma.InputError, match="V: couples rows 0 and"):
        fit(pain, V=V)
    V = np.diag(pain["vi"].to_numpy())
    V[0, 1] = V[1, 0] = 1.0  # |cov| > sd·sd in study s0
    with pytest.raises(ma.InputError, match="V: the block of study 's0'"):
        fit(pain, V=V)
    with pytest.raises(ma.InputError, match="V: got a matrix of shape"):
        fit(pain, V=np.eye(3))
    with pytest.raises(ma.InputError, match="not both"):
        fit(pain, V=np.diag(pain["vi"]), rho=0.5)


def test_bad_values(pain):
    with pytest.raises(ma.InputError, match="yi: got nan at index 2"):
        fit(pain.assign(yi=pain["yi"].where(pain.index != 2)))
    with pytest.raises(ma.InputError, match="vi: got -.* at index 0.*expected sampling variances > 0"):
        fit(pain.assign(vi=-pain["vi"]))
    with pytest.raises(ma.InputError, match="yi: got the string '0.5' at index 1"):
        ma.pool_mv([0.1, "0.5", 0.3], [0.1] * 3, study=["a", "a", "b"])
    with pytest.raises(ma.InputError, match="every study has one estimate"):
        ma.pool_mv([1.0, 2.0, 1.5], [0.1, 0.1, 0.1], study=["a", "b", "c"])


def test_convergence_warning_reports_the_state(pain, monkeypatch):
    monkeypatch.setattr(mv_fit, "maximise", functools.partial(mv_fit.maximise, max_iter=1))
    with pytest.warns(ma.ConvergenceWarning, match=r"did not converge after 1 iterations.*tau2"):
        res = fit(pain, time="time", struct="HCS", phi=0.8)
    assert not res.converged
    assert "did not converge" in res.summary()


def test_summary_states_every_method_choice(pain):
    res = fit(pain, time="time", struct="HAR", phi=0.8,
              mods=pd.DataFrame({"time": pd.Categorical(pain["time"])}), intercept=False)
    text = res.summary()
    assert "struct HAR: heteroscedastic AR(1)" in text
    assert "phi^|Δtime| within study, phi = 0.80" in text
    assert "REML (restricted log-likelihood incl. ½·log|X'X|, as metafor)" in text
    assert "z for coefficients" in text
    assert "tau2[180]" in text and "time[30]" in text
    rob = res.robust()
    assert "cluster-robust CR2" in rob.summary() and "Satterthwaite" in rob.summary()
    assert "<table" in res._repr_html_() and res.summary() in repr(res)
    assert "F(" in rob.summary() and "Satterthwaite" in rob.to_frame().attrs["description"]
    frame = res.to_frame()
    assert list(frame.columns[:6]) == ["estimate", "se", "stat", "p", "ci_lb", "ci_ub"]
    assert frame.attrs["struct"] == "HAR" and frame.attrs["method"] == "REML"
    three = fit(pain)
    assert "three-level" in three.summary() and three.tau2.size == 0


def test_result_is_immutable(pain):
    res = fit(pain)
    with pytest.raises(AttributeError):
        res.k = 3
    with pytest.raises(ValueError):
        res.yi[0] = 1.0
    coef = res.coef
    coef.iloc[0, 0] = 99.0  # a copy
    assert res.coef.iloc[0, 0] != 99.0


def test_shift_and_row_order_invariance(pain):
    mods = pd.DataFrame({"lt": np.log(pain["time"])})
    base = fit(pain, time="time", struct="CAR", phi=0.8, mods=mods)
    shifted = fit(pain.assign(yi=pain["yi"] + 2.5), time="time", struct="CAR", phi=0.8, mods=mods)
    np.testing.assert_allclose(shifted.coef["estimate"]["intrcpt"],
                               base.coef["estimate"]["intrcpt"] + 2.5, atol=1e-7)
    np.testing.assert_allclose(shifted.tau2, base.tau2, rtol=1e-6)
    perm = np.random.default_rng(3).permutation(len(pain))
    d2 = pain.iloc[perm].reset_index(drop=True)
    mixed = fit(d2, time="time", struct="CAR", phi=0.8, mods=pd.DataFrame({"lt": np.log(d2["time"])}))
    np.testing.assert_allclose(mixed.coef["estimate"], base.coef["estimate"], atol=1e-7)
    np.testing.assert_allclose(mixed.loglik, base.loglik, atol=1e-8)


def test_predict_contrast_and_levels(pain):
    mods = pd.DataFrame({"time": pd.Categorical(pain["time"])})
    res = fit(pain, time="time", struct="HCS", phi=0.8, mods=mods, intercept=False)
    out = res.predict(newmods=pd.DataFrame({"time": [1, 180]}), tau2_levels=[1, 180])
    np.testing.assert_allclose(out["pred"], res.coef["estimate"][["time[1]", "time[180]"]])
    assert (out["pi_lb"] < out["ci_lb"]).all() and list(out["tau2_level"]) == [1, 180]
    assert res.predict(newmods=np.eye(4)[:2])["pi_lb"].isna().all()  # no τ² level: no PI
    c = res.contrast({"time[180]": 1, "time[30]": -1}).iloc[0]
    b = res.coef["estimate"]
    assert c["estimate"] == pytest.approx(b["time[180]"] - b["time[30]"])
    with pytest.raises(ma.InputError, match="tau2_levels: 5 is not a level"):
        res.predict(newmods=np.eye(4)[:1], tau2_levels=5)
    with pytest.raises(ma.InputError, match="contrast: 'time\\[2\\]' is not a coefficient"):
        res.contrast({"time[2]": 1})
    with pytest.raises(ma.InputError, match="fall in several clusters"):
        res.robust(cluster=np.arange(len(pain)))
    intercept_only = fit(pain, time="time", struct="HCS", phi=0.8)
    assert len(intercept_only.predict()) == 4  # one pooled mean per time point's τ²


def test_no_warnings_on_regular_fit(pain):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        res = fit(pain, time="time", struct="AR", rho=0.5)
    assert res.converged and res.rho.size == 1
