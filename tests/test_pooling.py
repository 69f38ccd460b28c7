"""pool / pool_many / PoolResult / BatchResult.

Reference values: tests/data/metafor/bcg_rr.json (BCG vaccine trials, metadat
dat.bcg, log risk ratios; R 4.2.2, metafor 3.8-1) and
tests/data/metafor/pritz1997_proportions.json (PLO/PFT back-transforms).
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import metaanalysis as ma
from metaanalysis import engine
from metaanalysis.errors import InputError
from metaanalysis.models.pooling import pool, pool_many
from metaanalysis.results.pool_result import SCALARS, BatchResult, PoolResult

DATA = Path(__file__).parent / "data" / "metafor"
BCG = json.loads((DATA / "bcg_rr.json").read_text())


def _ref(block, method, test="z"):
    return next(f for f in block["fits"] if f["method"] == method and f["test"] == test)


def test_pool_reml_matches_metafor_bcg():
    res = pool(BCG["yi"], BCG["vi"])
    ref = _ref(BCG, "REML")  # bcg_rr.json, rma(method="REML")
    assert isinstance(res, PoolResult)
    assert res.k == 13 and res.method == "REML" and res.test == "z"
    for key in ("estimate", "se", "p", "ci_lb", "ci_ub", "pi_lb", "pi_ub", "tau2", "i2", "h2",
                "tau2_ci_lb", "tau2_ci_ub", "i2_ci_lb", "i2_ci_ub", "q", "q_p"):  # fmt: skip
        assert getattr(res, key) == pytest.approx(ref[key], rel=1e-6), key
    assert res.weights.sum() == pytest.approx(100.0)
    assert res.df is None


def test_pool_is_immutable_and_with_copies():
    res = pool(BCG["yi"], BCG["vi"], method="DL")
    with pytest.raises(dataclasses.FrozenInstanceError):
        res.estimate = 0.0
    other = res.with_(labels=tuple("ABCDEFGHIJKLM"))
    assert other.labels[0] == "A" and res.labels[0] == "Study 1"


def test_summary_prints_every_method_choice():
    res = pool(BCG["yi"], BCG["vi"], method="REML", test="knha")
    text = res.summary()
    assert text.splitlines()[:3] == ["Random-effects model (k = 13)",
                                     "  τ² estimator: REML (restricted maximum likelihood)",
                                     "  CI and tests: Knapp–Hartung, t(12)"]
    assert "τ² = 0.3132" in text  # bcg_rr.json REML tau2 = 0.31324
    assert "I² = 92.2%" in text
    assert "Q(12) = 152.23, p < 0.0001" in text
    assert "prediction interval" in text
    assert repr(res) == text
    ee = pool(BCG["yi"], BCG["vi"], method="EE").summary()
    assert ee.splitlines()[:3] == ["Common-effect model (k = 13)",
                                   "  Weights: inverse variance (τ² = 0)",
                                   "  CI and tests: Wald-type, normal"]
    assert "prediction interval" not in ee


def test_to_frame_and_html():
    res = pool(BCG["yi"], BCG["vi"], method="DL")
    frame = res.to_frame()
    assert frame.shape[0] == 1
    assert frame["tau2"].iloc[0] == pytest.approx(_ref(BCG, "DL")["tau2"], rel=1e-8)
    html = res._repr_html_()
    assert "τ² estimator" in html and "DL (DerSimonian–Laird)" in html and "<table" in html


def test_repr_html_never_raises():
    res = pool(BCG["yi"], BCG["vi"]).with_(notes=(object(),))
    out = res._repr_html_()
    assert out.startswith("<")


def test_adhoc_uses_variance_factor_at_least_one():
    # Röver, Knapp & Friede 2015: se_adhoc = max(se_z, se_knha); checked on every case
    for path in sorted(DATA.glob("*.json")):
        ref = json.loads(path.read_text())
        if "fits" not in ref:
            continue
        for method in ("DL", "REML", "PM"):
            z, kh = _ref(ref, method, "z"), _ref(ref, method, "knha")
            res = pool(ref["yi"], ref["vi"], method=method, test="adhoc")
            assert res.se == pytest.approx(max(z["se"], kh["se"]), rel=1e-6), path.stem
            assert res.df == len(ref["yi"]) - 1


def test_dataframe_input_and_back_transform():
    ref = json.loads((DATA / "pritz1997_proportions.json").read_text())
    ni = [row["ni"] for row in ref["data"]]
    for measure in ("PLO", "PFT"):
        block = ref[measure]
        df = pd.DataFrame({"yi": block["yi"], "vi": block["vi"], "ni": ni,
                           "study": [f"s{i}" for i in range(len(ni))]})  # fmt: skip
        df.attrs["measure"] = measure
        res = pool(df, method="REML")
        assert res.measure == measure and res.labels[0] == "s0"
        assert res.data.equals(df) and res.data is not df  # the result keeps its own copy
        back = res.back_transform()
        exp = _ref(block, "REML")["back"]  # metafor predict(transf=...)
        for key in ("estimate", "ci_lb", "ci_ub", "pi_lb", "pi_ub"):
            assert back[key].iloc[0] == pytest.approx(exp[key], rel=1e-6), (measure, key)


def test_k1_defined_answer_and_note():
    res = pool([0.4], [0.04], method="REML", test="knha")
    assert res.estimate == 0.4 and res.se == pytest.approx(0.2)
    # metafor's conventions for k = 1: tau2 = 0 (no SE, no interval), I2 = 0, H2 = 1,
    # Q = 0 on 0 df with p = 1, prediction interval = confidence interval (normal)
    assert (res.tau2, res.i2, res.h2, res.q, res.q_df, res.q_p) == (0, 0, 1, 0, 0, 1)
    assert np.isnan(res.se_tau2) and np.isnan(res.tau2_ci_ub)
    assert (res.pi_lb, res.pi_ub) == (res.ci_lb, res.ci_ub)
    assert any("cannot be estimated" in n for n in res.notes)
    assert "cannot be estimated" in res.summary()


def test_k2_upper_tau2_limit_capped_with_note():
    ref = json.loads((DATA / "mwa_complications_k2.json").read_text())["PLO"]
    res = pool(ref["yi"], ref["vi"], method="REML")
    assert res.tau2_ci_ub == 100.0  # metafor: tau2.max = 100 reached
    assert any("search bound" in n for n in res.notes)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"yi": [0.1, 0.2], "vi": [0.1]}, "lengths 2 and 1"),
        ({"yi": [0.1, 0.2], "vi": [0.1, 0.0]}, r"vi: got 0.0 at index 1 \(study 2\); expected sampling variances > 0"),
        ({"yi": [0.1, 0.2], "vi": [0.1, -1.0]}, "expected sampling variances > 0"),
        ({"yi": [0.1, np.nan], "vi": [0.1, 0.1]}, r"yi: got nan at index 1 \(study 2\); expected finite numbers"),
        ({"yi": [0.1, 0.2], "vi": None}, "vi: missing"),
        (
            {"yi": [0.1, 0.2], "vi": [0.1, 0.1], "method": "FE"},
            "EE, DL, HE, HS, HSk, SJ, ML, REML, EB, PM, PMM",
        ),
        ({"yi": [0.1, 0.2], "vi": [0.1, 0.1], "test": "t"}, "z, knha, adhoc"),
        ({"yi": [0.1, 0.2], "vi": [0.1, 0.1], "level": 95}, "level: got 95"),
        (
            {"yi": [0.1, 0.2], "vi": [0.1, 0.1], "labels": ["a"]},
            "labels: got 1 labels for 2 studies",
        ),
        ({"yi": [], "vi": []}, "no studies"),
    ],
)
def test_input_errors(kwargs, match):
    yi, vi = kwargs.pop("yi"), kwargs.pop("vi")
    with pytest.raises(InputError, match=match):
        pool(yi, vi, **kwargs)


def test_pool_many_matches_pool_and_handles_nan_masks():
    y = np.array(BCG["yi"])
    v = np.array(BCG["vi"])
    Y = np.vstack([y, np.where(np.arange(13) < 5, y, np.nan)])
    V = np.vstack([v, np.where(np.arange(13) < 5, v, np.nan)])
    b = pool_many(Y, V, method="REML", test="knha", qprofile=True)
    assert isinstance(b, BatchResult) and len(b) == 2
    one = pool(y, v, method="REML", test="knha")
    five = pool(y[:5], v[:5], method="REML", test="knha")
    for key in ("estimate", "se", "tau2", "i2", "tau2_ci_ub", "q_p"):
        assert getattr(b, key)[0] == pytest.approx(getattr(one, key), rel=1e-12)
        assert getattr(b, key)[1] == pytest.approx(getattr(five, key), rel=1e-12)
    assert b.k.tolist() == [13, 5]
    assert np.isnan(b.weights[1, 5:]).all()
    frame = b.to_frame()
    assert frame.shape[0] == 2 and "tau2" in frame
    assert "qprofile" not in b.summary() or "not computed" not in b.summary()


def test_pool_many_default_skips_qprofile():
    b = pool_many(np.array([BCG["yi"]]), np.array([BCG["vi"]]))
    assert np.isnan(b.tau2_ci_lb[0]) and "not computed" in b.summary()


def test_pool_many_rejects_1d():
    with pytest.raises(InputError, match="expected 2-D arrays"):
        pool_many(BCG["yi"], BCG["vi"])


def test_public_names():
    assert ma.pool is pool and ma.pool_many is pool_many
    assert engine.METHODS == ("EE", "DL", "HE", "HS", "HSk", "SJ", "ML", "REML", "EB", "PM", "PMM")


def test_from_fit_converts_scalars_once_and_matches_pool():
    # the engine row of the BCG DL fit, rebuilt by PoolResult.from_fit, gives pool()'s answer;
    # DL estimate from metafor (tests/data/metafor/bcg_rr.json, fits[method=DL])
    y, v = np.array(BCG["yi"]), np.array(BCG["vi"])
    out = engine.fit(y[None, :], v[None, :], method="DL", qprofile=True)
    row = {key: out[key][0] for key in engine.KEYS}  # NumPy scalars
    labels = tuple(f"Study {i + 1}" for i in range(y.size))
    res = PoolResult.from_fit(
        {**row, "not_an_attribute": 1.0}, method="DL", test="z", level=0.95,
        weights=out["weights"][0], yi=y, vi=v, labels=labels,
    )  # fmt: skip
    assert type(res.k) is int and type(res.converged) is bool
    assert all(type(getattr(res, name)) is float for name in ("estimate", "tau2", "q_df", "level"))
    assert res.df is None  # normal-theory test: no t degrees of freedom
    assert res.estimate == pytest.approx(_ref(BCG, "DL")["estimate"], abs=1e-8)
    ref = pool(y, v, method="DL")
    for name in ("k", "method", "test", "level", *SCALARS, "df", "converged"):
        assert getattr(res, name) == pytest.approx(getattr(ref, name), nan_ok=True), name
    # absent statistics default to NaN; extra keyword arguments override the values
    part = PoolResult.from_fit(
        {"k": 3, "estimate": 0.1, "q": 9.0}, q=2.5, method="EE", test="z", level=0.9,
        weights=np.ones(3), yi=np.zeros(3), vi=np.ones(3), labels=("a", "b", "c"),
    )  # fmt: skip
    assert part.q == 2.5 and np.isnan(part.se_tau2) and part.converged is True


def test_pool_many_outputs_computes_only_what_is_asked():
    rng = np.random.default_rng(12)
    y = rng.normal(0.2, 0.4, (300, 9))
    v = rng.uniform(0.02, 0.3, (300, 9))
    y[3, 4:] = v[3, 4:] = np.nan
    for method in ("DL", "HE", "REML"):
        full = pool_many(y, v, method=method, test="knha")
        part = pool_many(y, v, method=method, test="knha", outputs=("tau2", "estimate", "se"))
        for key in ("tau2", "estimate", "se", "k", "converged"):  # the same bits as "all"
            np.testing.assert_array_equal(getattr(part, key), getattr(full, key))
        assert part.p is None and part.weights is None and part.i2 is None
        assert list(part.to_frame().columns) == ["k", "estimate", "se", "tau2", "converged"]
        assert "Not computed (outputs=): stat, p" in part.summary()
    with pytest.raises(InputError, match="outputs: unknown names"):
        pool_many(y, v, outputs=("tau2", "loglik"))
    with pytest.raises(InputError, match="outputs: got 'core'"):
        pool_many(y, v, outputs="core")
    with pytest.raises(InputError, match="without mods"):
        pool_many(y, v, mods=np.arange(9.0), outputs=("tau2",))
