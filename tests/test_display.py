"""The result protocol (issue 12): one printer behind summary(), repr, _repr_html_ and
to_frame for every result; one name per method; exact p-value text; immutable results."""

from __future__ import annotations

import dataclasses
import html
import json
import re
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

import metaanalysis as ma
from metaanalysis import engine
from metaanalysis.formatting import METHOD_NAMES, TEST_NAMES, inference_text, method_text, p_text

DATA = Path(__file__).parent / "data" / "metafor"
BCG = json.loads((DATA / "bcg_rr.json").read_text())


def _results():
    y, v = np.array(BCG["yi"]), np.array(BCG["vi"])
    rng = np.random.default_rng(4)
    return {
        "pool_knha": ma.pool(y, v, method="REML", test="knha", measure="RR"),
        "pool_ee": ma.pool(y, v, method="EE"),
        "pool_k1": ma.pool(y[:1], v[:1], test="adhoc"),
        "glmm": ma.pool_glmm([42, 32, 37, 10], [140, 115, 85, 33], unit="lesions"),
        "batch": ma.pool_many(rng.normal(size=(12, 5)), np.full((12, 5), 0.1), test="knha"),
        "bayes": ma.pool_bayes([-4.50, -3.51], [1.011, 0.515], measure="PLO",
                               tau_prior=stats.halfnorm(scale=0.5), labels=["A <1>", "B"]),
    }


def _model_results():
    y, v = np.array(BCG["yi"]), np.array(BCG["vi"])
    res = ma.pool(y, v, method="DL", measure="RR")
    groups = ["a"] * 5 + ["b"] * 4 + ["c"] * 4
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # k < 10 cautions
        return {
            "egger_rma": ma.egger_test(res),
            "egger_lm": ma.egger_test(res, model="lm"),
            "begg": ma.begg_test(res),
            "trimfill": ma.trim_and_fill(res),
            "subgroups": ma.subgroups(y, v, groups, method="DL"),
            "subgroups_common": ma.subgroups(y, v, groups, tau2="common", test="knha"),
            "gosh": ma.gosh(ma.pool(y[:6], v[:6], method="DL")),
            "fsn": ma.fail_safe_n(res),
            "fsn_orwin": ma.fail_safe_n(res, method="orwin"),
            "fsn_rosenberg": ma.fail_safe_n(res, method="rosenberg"),
            "metareg": ma.meta_regression(y, v, np.arange(13.0), test="knha"),
            "metareg_batch": ma.pool_many(np.tile(y, (3, 1)), np.tile(v, (3, 1)),
                                          mods=np.arange(13.0)),
        }


RESULTS = {**_results(), **_model_results()}


@pytest.mark.parametrize("name", sorted(RESULTS))
def test_one_printer_behind_every_display(name):
    res = RESULTS[name]
    d = res._display()
    text = res.summary()
    assert repr(res) == str(res) == text == d.text()
    page = res._repr_html_()
    assert page.startswith('<div class="metaanalysis-result">')
    # the notebook shows every method choice and every line that print() shows
    for label, value in d.methods:
        assert html.escape(label) in page and html.escape(value) in page
        assert f"  {label}: {value}" in text
    for block in d.body:
        for _label, value in getattr(block, "items", ()):
            assert html.escape(value) in page and value in text
    for note in d.notes:
        assert html.escape(note) in page
    assert res.to_frame().attrs["description"] == d.headline()


@pytest.mark.parametrize("name", sorted(RESULTS))
def test_no_p_equals_less_than(name):
    text = RESULTS[name].summary()
    assert "= <" not in text and "= —" not in text.replace("SE —", "")


def test_method_and_test_have_one_name_each():
    y, v = BCG["yi"], BCG["vi"]
    for method in engine.METHODS:
        text = ma.pool(y, v, method=method).summary()
        if method == "EE":
            assert "inverse variance" in text
        else:
            assert f"τ² estimator: {method_text(method)}" in text
    for test in engine.TESTS:
        text = ma.pool(y, v, test=test).summary()
        assert f"CI and tests: {inference_text(test, None if test == 'z' else 12)}" in text
    assert set(TEST_NAMES) == set(engine.TESTS) and set(engine.METHODS) <= set(METHOD_NAMES)
    assert inference_text("adhoc", 3).count("Knapp–Hartung") == 1


def test_p_text():
    assert p_text(0.0123) == "p = 0.0123" and p_text(1e-12) == "p < 0.0001"
    assert p_text(0.5, name="P") == "P = 0.5000"


def test_t_df_estimator_and_natural_line_always_printed():
    text = RESULTS["pool_knha"].summary()
    assert "t(12) = -3.95" in text and "CI and tests: Knapp–Hartung, t(12)" in text
    assert "95% prediction interval: [-1.9960, 0.5670] (t(12))" in text
    assert "Risk ratio: 0.4894" in text and "Risk ratio" in RESULTS["pool_knha"]._repr_html_()
    k1 = RESULTS["pool_k1"].summary()
    assert "CI and tests: Wald-type, normal (test='adhoc' needs k ≥ 2)" in k1
    glmm = RESULTS["glmm"]
    assert "Proportion: 0.3263" in glmm.summary() and "Proportion" in glmm._repr_html_()
    assert "Measure: PLO; unit: lesions" in glmm.summary()
    bayes = RESULTS["bayes"]
    assert "Prior on τ: half-normal(scale=0.5)" in bayes.summary()
    assert "Proportion: median 0.0205" in bayes.summary() and "A &lt;1&gt;" in bayes._repr_html_()


def test_batch_display():
    b = RESULTS["batch"]
    text = b.summary()
    assert text.startswith("Random-effects models: 12 meta-analyses (k = 5)")
    assert "CI and tests: Knapp–Hartung, t(k − 1) in each row" in text
    assert "τ², I², H² intervals: not computed (qprofile=False)" in text
    assert "First 10 rows:" in text and len(b.to_frame()) == 12


def test_text_table_is_aligned():
    text = RESULTS["bayes"].summary().splitlines()
    head = text.index(next(s for s in text if s.startswith("posterior")))
    rows = text[head:head + 4]
    assert len({len(r) for r in rows}) == 1  # right-aligned columns: equal widths
    assert rows[1].startswith("μ ") and rows[3].startswith("θ_new")


def test_displays_never_raise():
    res = RESULTS["pool_knha"].with_(notes=(object(),), measure="PFT", ni=None)
    assert res._repr_html_().startswith("<")
    assert isinstance(repr(res), str)


# --------------------------------------------------------------------------- immutability


def test_pool_result_is_deeply_immutable():
    es = ma.effect_sizes("PLO", events=[4, 9, 5], total=[40, 60, 50])
    res = ma.pool(es)
    with pytest.raises(dataclasses.FrozenInstanceError):
        res.estimate = 0.0
    with pytest.raises(dataclasses.FrozenInstanceError):
        res.data = None
    for name in ("yi", "vi", "weights", "ni"):
        arr = getattr(res, name)
        assert not arr.flags.writeable, name
        with pytest.raises(ValueError):
            arr[0] = 1.0
    frame = res.data
    frame.loc[0, "yi"] = 99.0
    assert res.data.loc[0, "yi"] != 99.0  # a new copy on every access
    es.loc[1, "yi"] = 77.0
    assert res.data.loc[1, "yi"] != 77.0  # the caller's frame is not the result's


def test_built_results_copy_writeable_arrays():
    y = np.array([0.2, 0.4])
    res = ma.PoolResult.from_fit({"k": 2, "estimate": 0.3}, method="EE", test="z", level=0.95,
                                 weights=np.full(2, 50.0), yi=y, vi=np.array([0.02, 0.02]),
                                 labels=("a", "b"))
    y[0] = 5.0
    assert res.yi[0] == 0.2 and not res.yi.flags.writeable


def test_batch_and_bayes_are_immutable():
    b = RESULTS["batch"]
    for name in ("estimate", "tau2", "weights", "yi", "converged", "k"):
        assert not getattr(b, name).flags.writeable, name
    bayes = RESULTS["bayes"]
    assert not bayes.yi.flags.writeable
    shrink = bayes.shrinkage
    shrink.loc[0, "mean"] = 99.0
    assert bayes.shrinkage.loc[0, "mean"] != 99.0
    assert not bayes._post.omega.flags.writeable
    assert isinstance(bayes.to_frame(), pd.DataFrame)


def test_summary_lines_have_no_raw_field_names():
    # readable labels in the displays, not attribute names such as tau2_ci_lb
    for res in RESULTS.values():
        page = res._repr_html_()
        assert not re.search(r"\b(tau2_ci_lb|i2_ci_ub|q_p|se_tau2)\b", page)


def test_model_results_name_methods_once():
    assert "τ² estimator: DL (DerSimonian–Laird)" in RESULTS["egger_rma"].summary()
    assert "Test for funnel plot asymmetry: t(11) = " in RESULTS["egger_lm"].summary()
    assert "Risk ratio (observed + filled)" in RESULTS["trimfill"].summary()
    common = RESULTS["subgroups_common"].summary()
    assert "CI and tests: Knapp–Hartung, t(10)" in common and "F(2, 10) = " in common
    assert "Q(2) = " in RESULTS["subgroups"].summary()


def test_model_results_are_immutable():
    sg = RESULTS["subgroups"]
    with pytest.raises(TypeError):
        sg.groups["z"] = None  # a read-only mapping
    tf = RESULTS["trimfill"]
    filled = tf.filled
    filled.loc[:, "yi"] = 99.0
    assert not (tf.filled["yi"] == 99.0).any()
    eg = RESULTS["egger_rma"]
    assert not eg.x.flags.writeable and not eg.yi.flags.writeable


def test_fail_safe_n_is_a_frozen_result_that_acts_as_its_number():
    fsn = RESULTS["fsn"]
    assert isinstance(fsn.n, int) and int(fsn) == fsn.n and fsn == fsn.n and fsn <= fsn.n
    assert len(range(fsn)) == fsn.n and hash(fsn) == hash(fsn.n)
    with pytest.raises(dataclasses.FrozenInstanceError):
        fsn.alpha = 0.01
    assert fsn.summary().startswith(f"Fail-safe N (Rosenthal 1979): {fsn.n}")
    assert "two-tailed alpha = 0.05" in RESULTS["fsn_rosenberg"].summary()
    assert list(fsn.to_frame()["n"]) == [fsn.n]


def test_meta_regression_display():
    text = RESULTS["metareg"].summary()
    assert "CI and tests: Knapp–Hartung, t(11)" in text and "Test of moderators: F(1, 11)" in text
    assert "coefficient" in text and "intrcpt" in text
    frame = RESULTS["metareg"].to_frame()
    frame.loc["intrcpt", "estimate"] = 99.0
    assert RESULTS["metareg"].coef.loc["intrcpt", "estimate"] != 99.0
    assert "Mixed-effects meta-regressions: 3 rows" in RESULTS["metareg_batch"].summary()
