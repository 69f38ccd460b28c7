"""Tests of metaanalysis.models.sensitivity: leave-one-out, cumulative, influence, GOSH.

Reference values:
* tests/data/metafor/*.json (keys leave1out_reml, cumulative_reml, influence_reml):
  R 4.2.2, metafor 3.8-1, shared reference set;
* tests/data/sensitivity_reference.json, made by tests/data/sensitivity_reference.R
  (R 4.2.2, metafor 3.8-1): influence() with dfbetas and the influential flag for
  REML, DL, EE and DL + Knapp-Hartung fits, leave1out() with every column, gosh().
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import metaanalysis as ma
from metaanalysis.errors import InputError

DATA = Path(__file__).parent / "data"
CASES = ["bcg_rr", "egger2001_or", "hine1989_rd", "molloy2014_zcor", "raudenbush1985_smd"]
RTOL, ATOL = 1e-6, 1e-8  # REML references are converged to 1e-12 in metafor


def _case(name):
    return json.loads((DATA / "metafor" / f"{name}.json").read_text())


EXTRA = json.loads((DATA / "sensitivity_reference.json").read_text())


def _labels(case):
    return [str(row.get("study", i + 1)) for i, row in enumerate(case["data"])]


def _res(case, method="REML", test="z"):
    return ma.pool(case["yi"], case["vi"], method=method, test=test, labels=_labels(case))


def _close(actual, expected, what):
    expected = np.array([np.nan if x is None else x for x in expected], dtype=float)
    np.testing.assert_allclose(np.asarray(actual, dtype=float), expected,
                               rtol=RTOL, atol=ATOL, err_msg=what)


# ---------------------------------------------------------------------------
# leave-one-out
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("name", CASES)
def test_leave_one_out_matches_metafor_leave1out(name):
    case = _case(name)
    ref = case["leave1out_reml"]  # metafor leave1out(rma(yi, vi, method="REML"))
    loo = ma.leave_one_out(_res(case))
    assert list(loo.index) == _labels(case)
    for col in ("estimate", "se", "ci_lb", "ci_ub", "tau2", "i2", "q"):
        _close(loo[col], ref[col], f"{name} leave1out {col}")


@pytest.mark.parametrize("name", ["bcg_rr", "raudenbush1985_smd"])
def test_leave_one_out_all_columns_and_knha(name):
    case = _case(name)
    # sensitivity_reference.json: leave1out() of REML (z) and DL + knha fits
    for key, method, test in (("leave1out_reml", "REML", "z"), ("leave1out_dl_knha", "DL", "knha")):
        ref = EXTRA[name][key]
        loo = ma.leave_one_out(_res(case, method, test))
        for col in ("estimate", "se", "stat", "p", "ci_lb", "ci_ub", "q", "q_p", "tau2",
                    "i2", "h2"):
            _close(loo[col], ref[col], f"{name} {key} {col}")
    assert loo.attrs["method"] == "DL" and "Knapp–Hartung, t(k − 1)" in loo.attrs["description"]


@settings(max_examples=15, deadline=None)
@given(
    data=st.lists(
        st.tuples(st.floats(-2, 2), st.floats(0.01, 1.0)), min_size=3, max_size=8),
    method=st.sampled_from(["DL", "REML", "EE"]),
)
def test_leave_one_out_row_equals_pool_without_that_study(data, method):
    yi = np.array([d[0] for d in data])
    vi = np.array([d[1] for d in data])
    loo = ma.leave_one_out(ma.pool(yi, vi, method=method))
    for i in range(len(yi)):
        keep = np.arange(len(yi)) != i
        r = ma.pool(yi[keep], vi[keep], method=method)
        row = loo.iloc[i]
        np.testing.assert_allclose(
            [row.estimate, row.se, row.tau2, row.q, row.i2],
            [r.estimate, r.se, r.tau2, r.q, r.i2], rtol=1e-9, atol=1e-12)
        assert row.tau2 >= 0 and row.i2 >= 0


def test_leave_one_out_needs_two_studies():
    res = ma.pool([0.1, 0.2], [0.01, 0.02], method="DL")
    assert ma.leave_one_out(res)["k"].tolist() == [1, 1]
    with pytest.raises(InputError, match="at least 2"):
        ma.leave_one_out(ma.pool([0.1], [0.01], method="EE"))


# ---------------------------------------------------------------------------
# cumulative
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["bcg_rr", "egger2001_or", "molloy2014_zcor",
                                  "raudenbush1985_smd"])
def test_cumulative_matches_metafor_cumul(name):
    case = _case(name)
    # metafor cumul(res, order = o) with o = the reference's `order`; metafor 3.8 treats
    # `order` as a variable to sort by, so the studies are added in order(o)
    ref = case["cumulative_reml"]
    keys = np.array(ref["order"])
    sequence = np.argsort(keys, kind="stable")
    labels = _labels(case)
    for cum in (ma.cumulative(_res(case), by=keys),
                ma.cumulative(_res(case), order=sequence)):
        assert list(cum.index) == [labels[i] for i in sequence]
        assert cum["k"].tolist() == list(range(1, len(keys) + 1))
        for col in ("estimate", "se", "ci_lb", "ci_ub", "tau2"):
            _close(cum[col], ref[col], f"{name} cumul {col}")


def test_cumulative_by_year_adds_studies_in_year_order():
    case = _case("bcg_rr")
    years = [row["year"] for row in case["data"]]
    # R: order(dat.bcg$year) = 1 2 6 3 10 9 12 5 7 11 13 4 8 (ties kept in data order)
    expected = [0, 1, 5, 2, 9, 8, 11, 4, 6, 10, 12, 3, 7]
    res = _res(case)
    by_year = ma.cumulative(res, by=years)
    assert by_year.attrs["order"] == expected
    # a non-permutation integer sequence passed as `order` is also a sort key
    assert ma.cumulative(res, order=years).attrs["order"] == expected
    # the step that adds Aronson, Ferguson & Simes and Stein (1948, 1949, 1953)
    first3 = ma.pool(np.asarray(case["yi"])[[0, 1, 5]], np.asarray(case["vi"])[[0, 1, 5]],
                     method="REML")
    assert by_year["estimate"].iloc[2] == pytest.approx(first3.estimate, rel=1e-10)
    assert by_year["estimate"].iloc[-1] == pytest.approx(res.estimate, rel=1e-10)


def test_cumulative_default_order_ends_with_full_fit():
    case = _case("hine1989_rd")
    res = _res(case)
    cum = ma.cumulative(res)
    assert list(cum.index) == _labels(case)
    assert cum["estimate"].iloc[-1] == pytest.approx(res.estimate, rel=1e-10)
    assert cum["estimate"].iloc[0] == pytest.approx(case["yi"][0], rel=1e-10)


def test_cumulative_rejects_ambiguous_or_bad_order():
    res = _res(_case("hine1989_rd"))
    with pytest.raises(InputError, match="1-based"):
        ma.cumulative(res, order=[1, 2, 3, 4, 5, 6])
    with pytest.raises(InputError, match="expected 6"):
        ma.cumulative(res, order=[0, 1, 2])
    with pytest.raises(InputError, match="not found"):
        ma.cumulative(res, by="year")  # res has no data frame
    with pytest.raises(InputError, match="not both"):
        ma.cumulative(res, order=[0, 1, 2, 3, 4, 5], by=[1, 2, 3, 4, 5, 6])


# ---------------------------------------------------------------------------
# influence
# ---------------------------------------------------------------------------

INFLUENCE_COLUMNS = ("rstudent", "dffits", "cooks", "cov_r", "tau2_del", "q_del", "hat",
                     "weight")


@pytest.mark.parametrize("name", CASES)
def test_influence_matches_metafor_influence(name):
    case = _case(name)
    ref = case["influence_reml"]  # metafor influence(rma(yi, vi, method="REML"))
    inf = ma.influence(_res(case))
    assert list(inf.index) == _labels(case)
    for col in INFLUENCE_COLUMNS:
        _close(inf[col], ref[col], f"{name} influence {col}")


@pytest.mark.parametrize("name", CASES)
@pytest.mark.parametrize("key,method,test", [
    ("influence_reml", "REML", "z"), ("influence_dl", "DL", "z"),
    ("influence_ee", "EE", "z"), ("influence_dl_knha", "DL", "knha")])
def test_influence_dfbetas_and_flags_match_metafor(name, key, method, test):
    ref = EXTRA[name][key]  # sensitivity_reference.json: influence() incl. dfbs, is.infl
    inf = ma.influence(_res(_case(name), method, test))
    for col in INFLUENCE_COLUMNS + ("dfbetas",):
        _close(inf[col], ref[col], f"{name} {key} {col}")
    assert inf["inf"].tolist() == ref["inf"]


def test_influence_flags_some_studies():
    # the reference set has influential studies under EE for bcg (3) and molloy (2)
    assert sum(EXTRA["bcg_rr"]["influence_ee"]["inf"]) == 3
    inf = ma.influence(_res(_case("bcg_rr"), "EE"))
    assert int(inf["inf"].sum()) == 3


def test_influence_needs_three_studies():
    with pytest.raises(InputError, match="at least 3"):
        ma.influence(ma.pool([0.1, 0.2], [0.01, 0.02], method="DL"))


# ---------------------------------------------------------------------------
# GOSH
# ---------------------------------------------------------------------------

def _bits(incl):
    incl = np.asarray(incl, dtype=np.int64)
    return (incl << np.arange(incl.shape[1])).sum(axis=1)


@pytest.mark.parametrize("key", ["gosh_hine_dl", "gosh_hine_ee", "gosh_bcg8_reml"])
def test_gosh_matches_metafor_gosh(key):
    ref = EXTRA[key]  # sensitivity_reference.json: metafor gosh() on all subsets
    res = ma.pool(ref["yi"], ref["vi"], method=ref["method"])
    g = ma.gosh(res)
    k = len(ref["yi"])
    assert g.exhaustive and len(g) == 2 ** k - 1 and g.incl.shape == (2 ** k - 1, k)
    # our subsets are numbered by their bits: subset s is the binary number s + 1
    assert np.array_equal(_bits(g.incl), np.arange(1, 2 ** k))
    pos = _bits(ref["incl"]) - 1  # row of each metafor subset in our result
    f = g.frame.iloc[pos]
    assert f["k"].tolist() == np.asarray(ref["incl"]).sum(axis=1).tolist()
    for col in ("estimate", "tau2", "i2", "q"):
        _close(f[col], ref[col], f"{key} {col}")
    # h2: metafor's gosh() reports Q/df in its DL/EE shortcut even when Q < df;
    # we report what the model itself gives (rma's H², at least 1 for RE models)
    h2_ref = np.array(ref["h2"], dtype=float)
    multi = f["k"].to_numpy() > 1
    if ref["method"] == "EE":
        _close(f["h2"][multi], h2_ref[multi], f"{key} h2")
    else:
        big_q = multi & (f["q"].to_numpy() > f["k"].to_numpy() - 1)
        _close(f["h2"][big_q], h2_ref[big_q], f"{key} h2")
        assert (f["h2"][multi] >= 1 - 1e-12).all()


def test_gosh_random_subsets_reproducible_and_nonempty():
    case = _case("egger2001_or")
    res = _res(case, "DL")
    g1 = ma.gosh(res, subsets=500, seed=1)
    g2 = ma.gosh(res, subsets=500, seed=1)
    assert not g1.exhaustive and len(g1) == 500
    assert np.array_equal(g1.incl, g2.incl)
    assert g1.incl.any(axis=1).all()
    assert np.array_equal(g1.frame["k"].to_numpy(), g1.incl.sum(axis=1))
    # one random subset refitted by hand through pool gives the same numbers
    s = 7
    keep = g1.incl[s]
    r = ma.pool(np.asarray(case["yi"])[keep], np.asarray(case["vi"])[keep], method="DL")
    assert g1.frame["estimate"].iloc[s] == pytest.approx(r.estimate, rel=1e-10)
    assert g1.frame["tau2"].iloc[s] == pytest.approx(r.tau2, rel=1e-10, abs=1e-14)


def test_gosh_chunking_does_not_change_results():
    res = _res(_case("hine1989_rd"), "REML")
    a = ma.gosh(res, chunk=5)
    b = ma.gosh(res)
    np.testing.assert_array_equal(a.incl, b.incl)
    np.testing.assert_allclose(a.frame.to_numpy(), b.frame.to_numpy(), rtol=1e-10, atol=1e-14)
    assert "GOSH: 63 all subsets" in b.summary()
    assert list(b.to_frame().columns[-6:]) == list(b.labels)


def test_gosh_subset_numbering_and_k():
    # documented order: row s holds the studies of the bits of s + 1; k = subset size;
    # each row equals pool() on that subset (hine1989_rd.json, metafor's dat.hine1989)
    case = _case("hine1989_rd")
    res = _res(case, "DL")
    g = ma.gosh(res, chunk=7)
    s = np.arange(1, 64)
    np.testing.assert_array_equal(g.incl, (s[:, None] >> np.arange(6)) & 1 == 1)
    np.testing.assert_array_equal(g.frame["k"], g.incl.sum(axis=1))
    row = 0b101101 - 1  # studies 1, 3, 4, 6
    y, v = np.asarray(case["yi"])[g.incl[row]], np.asarray(case["vi"])[g.incl[row]]
    r = ma.pool(y, v, method="DL")
    assert g.frame["estimate"].iloc[row] == pytest.approx(r.estimate, rel=1e-12)
    assert g.frame["q"].iloc[row] == pytest.approx(r.q, rel=1e-12)


def test_gosh_rejects_bad_arguments():
    res = _res(_case("hine1989_rd"), "DL")
    with pytest.raises(InputError, match="subsets"):
        ma.gosh(res, subsets=0)
    with pytest.raises(InputError, match="chunk"):
        ma.gosh(res, chunk=0)


def test_results_the_engine_cannot_refit_are_refused():
    res = _res(_case("hine1989_rd"), "DL").with_(method="GLMM")
    for fn in (ma.leave_one_out, ma.cumulative, ma.influence, ma.gosh):
        with pytest.raises(InputError, match="GLMM"):
            fn(res)
    with pytest.raises(InputError, match="PoolResult"):
        ma.leave_one_out([0.1, 0.2, 0.3])


def test_leave_one_out_follows_a_permutation_of_the_studies():
    case = _case("molloy2014_zcor")
    perm = np.random.default_rng(3).permutation(len(case["yi"]))
    labels = np.array(_labels(case))
    a = ma.leave_one_out(_res(case))
    b = ma.leave_one_out(ma.pool(np.asarray(case["yi"])[perm], np.asarray(case["vi"])[perm],
                                 method="REML", labels=list(labels[perm])))
    np.testing.assert_allclose(b.loc[a.index, ["estimate", "tau2", "q"]].to_numpy(),
                               a[["estimate", "tau2", "q"]].to_numpy(), rtol=1e-9)
