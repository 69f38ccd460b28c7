"""Python-API input (issue 11): every bad value is an InputError naming the argument, the
index and the value; nothing returns a silent NaN; one normaliser (effects.study_data)
behind pool, pool_bayes, pool_glmm and effect_sizes; pool_many's nan_policy."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

import metaanalysis as ma
from metaanalysis.effects.study_data import (
    StudyData,
    as_numbers,
    check_batch,
    overflow_error,
    study_data,
)
from metaanalysis.errors import InputError

Y = [0.1, 0.3, 0.35, -0.2]
V = [0.01, 0.02, 0.015, 0.03]
PRIOR = stats.halfnorm(scale=0.5)


def _pool(yi, vi):
    return ma.pool(yi, vi)


def _bayes(yi, vi):
    return ma.pool_bayes(yi, vi, tau_prior=PRIOR)


def _sensitivity(yi, vi):
    return ma.prior_sensitivity(yi, vi, {"hn": PRIOR})


def _many(yi, vi):
    return ma.pool_many(np.asarray(yi, dtype=object)[None, :], np.asarray(vi, dtype=object)[None, :])


ONE_D = [_pool, _bayes, _sensitivity]


# --------------------------------------------------------------------------- non-numbers


@pytest.mark.parametrize("fit", ONE_D + [_many])
@pytest.mark.parametrize("yi,match", [
    ([0.1, "0.3", 0.35, -0.2], r"yi: got the string '0.3' at (index 1|row 0, column 1); expected numbers"),
    ([0.1, "abc", 0.35, -0.2], r"yi: got the string 'abc' at (index 1|row 0, column 1)"),
    ([0.1, True, 0.35, -0.2], r"yi: got the boolean True at (index 1|row 0, column 1)"),
    ([0.1, 1j, 0.35, -0.2], r"yi: got 1j \(complex\) at (index 1|row 0, column 1)"),
    ([0.1, [0.3], 0.35, -0.2], r"yi: got \[0.3\] \(list\) at (index 1|row 0, column 1)"),
])
def test_non_numbers_raise_input_error_naming_index_and_value(fit, yi, match):
    with pytest.raises(InputError, match=match):
        fit(yi, V)


@pytest.mark.parametrize("fit", ONE_D)
def test_strings_and_object_arrays(fit):
    with pytest.raises(InputError, match=r"yi: got the string 'abc'; expected numbers"):
        fit("abc", V)
    with pytest.raises(InputError, match=r"vi: got the string '0.02' at index 0"):
        fit(Y, np.array(["0.02", "0.01", "0.01", "0.01"]))
    with pytest.raises(InputError, match=r"yi: got the boolean True at index 0"):
        fit(np.array([True, False, True, True]), V)
    # an object array of numbers is fine; None in it is a missing value, reported as NaN
    assert fit(np.array(Y, dtype=object), V) is not None
    with pytest.raises(InputError, match=r"yi: got nan at index 2 \(study 3\); expected finite"):
        fit(np.array([0.1, 0.3, None, -0.2], dtype=object), V)


def test_pandas_inputs_and_missing_values():
    res = ma.pool(pd.Series(Y), pd.Series(V, dtype="Float64"))
    assert res.k == 4
    with pytest.raises(InputError, match=r"vi: got nan at index 1"):
        ma.pool(Y, pd.Series([0.01, None, 0.01, 0.01], dtype="Float64"))
    with pytest.raises(InputError, match=r"yi: got the boolean True at index 0"):
        ma.pool(pd.Series([True, False, True, True]), V)
    with pytest.raises(InputError, match=r"yi: got the string 'a' at index 0"):
        ma.pool(pd.Series(["a", "b", "c", "d"], dtype="string"), V)


def test_ragged_and_wrong_shapes():
    with pytest.raises(InputError, match=r"yi: got \[0.1, 0.2\] \(list\) at index 0; expected numbers"):
        ma.pool([[0.1, 0.2], [0.3]], [0.1, 0.1])
    with pytest.raises(InputError, match=r"yi: got an array of shape \(2, 2\); expected one value"):
        ma.pool([[0.1, 0.2], [0.3, 0.4]], [0.1, 0.1])
    with pytest.raises(InputError, match="labels: got the string 'ab'; expected one label per study"):
        ma.pool([0.1, 0.2], [0.1, 0.1], labels="ab")
    with pytest.raises(InputError, match="measure: got 3; expected a string or None"):
        ma.pool([0.1, 0.2], [0.1, 0.1], measure=3)


# --------------------------------------------------------------------------- ranges


@pytest.mark.parametrize("fit", ONE_D)
@pytest.mark.parametrize("which,value,match", [
    ("yi", np.nan, r"yi: got nan at index 1 \(study 2\); expected finite numbers"),
    ("yi", np.inf, r"yi: got inf at index 1 \(study 2\); expected finite numbers"),
    ("yi", 1e154, r"yi: got 1e\+154 at index 1 \(study 2\); expected finite numbers with \|yi\| <= 1e\+30"),
    ("vi", 5e-324, r"vi: got 5e-324 at index 1 \(study 2\); expected sampling variances between 1e-60 and 1e\+60"),
    ("vi", 1e300, r"vi: got 1e\+300 at index 1 .*between 1e-60 and 1e\+60"),
    ("vi", 0.0, r"vi: got 0.0 at index 1 \(study 2\); expected sampling variances > 0"),
    ("vi", -0.01, r"vi: got -0.01 at index 1 .*> 0"),
    ("vi", -np.inf, r"vi: got -inf at index 1 .*expected finite sampling variances > 0"),
])
def test_non_finite_and_out_of_range_values(fit, which, value, match):
    y, v = list(Y), list(V)
    (y if which == "yi" else v)[1] = value
    with pytest.raises(InputError, match=match):
        fit(y, v)


def test_error_names_the_study_label():
    with pytest.raises(InputError, match=r"yi: got inf at index 1 \(study 'B'\)"):
        ma.pool([0.1, np.inf], [0.1, 0.1], labels=["A", "B"])


def test_overflow_inside_the_computation_is_reported_not_returned():
    # every value is in range, but the variances span 61 orders of magnitude: the typical
    # within-study variance cancels to 0 and H² (and SE of τ²) would come out NaN
    y, v = [1.5e28, 1.5e28, -1.5e28], [8e-47, 6e14, 1.0]
    for method in ("DL", "REML"):
        with pytest.raises(InputError, match=r"yi, vi: .*h2.* is not finite .*largest \|yi\|: "
                                             r"1.5e\+28 at index 0; vi from 8e-47 at index 0"):
            ma.pool(y, v, method=method)
    with pytest.raises(InputError, match=r"(i2|h2) of row 0 is not finite"):
        ma.pool_many([y], [v], method="DL")


def test_every_reported_number_of_an_ordinary_fit_is_finite():
    # the check behind "never a silent NaN" must not fire on ordinary data
    rng = np.random.default_rng(5)
    for k in (2, 3, 10):
        y, v = rng.normal(size=k), rng.uniform(0.01, 1, size=k)
        for method in ma.pool.__globals__["engine"].METHODS:
            res = ma.pool(y, v, method=method, test="knha")
            assert math.isfinite(res.h2) and math.isfinite(res.q_p)


def test_overflow_error_names_extremes():
    err = overflow_error(np.array([[0.1, np.nan], [5.0, 0.2]]), np.array([[1e-9, np.nan], [2.0, 3.0]]), "q")
    assert "largest |yi|: 5.0 at row 1, column 0" in str(err)
    assert "vi from 1e-09 at row 0, column 0 to 3.0 at row 1, column 1" in str(err)


# --------------------------------------------------------------------------- GLMM and effect sizes


@pytest.mark.parametrize("events,total,match", [
    ([1, "2"], [10, 10], r"events: got the string '2' at index 1; expected numbers"),
    ([1, 2], [10, True], r"total: got the boolean True at index 1"),
    ([1, np.inf], [10, 10], r"events: got inf at index 1; expected finite counts"),
    ([1, 2.5], [10, 10], r"events: got 2.5 at index 1; expected non-negative whole numbers"),
    ([1, 2], [10, 1e20], r"total: got 1e\+20 at index 1; expected counts up to 9.0072e\+15"),
    ([1, 12], [10, 10], r"events: got 12 at index 1 with total 10; expected 0 <= events <= total"),
    ([1, 2], [10, 0], r"total: got 0.0 at index 1; expected every total to be at least 1"),
])
def test_glmm_counts(events, total, match):
    with pytest.raises(InputError, match=match):
        ma.pool_glmm(events, total)


def test_glmm_labels_checked_like_pool():
    with pytest.raises(InputError, match="labels: got the string 'ab'"):
        ma.pool_glmm([1, 2], [10, 10], labels="ab")


def test_effect_sizes_reject_text_and_booleans():
    with pytest.raises(InputError, match=r"effect_sizes: events: got the string '3' at index 1"):
        ma.effect_sizes("PLO", events=[1, "3"], total=[10, 10])
    with pytest.raises(InputError, match=r"effect_sizes: total: got the boolean True at index 0"):
        ma.effect_sizes("PLO", events=[1, 3], total=[True, True])
    frame = pd.DataFrame({"x": [1, 3], "n": np.array([10, 10], dtype=object)})
    assert ma.effect_sizes("PLO", data=frame, events="x", total="n")["yi"].notna().all()


# --------------------------------------------------------------------------- pool_many


def test_pool_many_absent_studies_are_nan_in_both():
    b = ma.pool_many([[0.1, 0.3, np.nan], [0.2, 0.4, 0.1]], [[0.01, 0.02, np.nan], [0.01] * 3])
    assert b.k.tolist() == [2, 3] and b.omitted is None


@pytest.mark.parametrize("cell_y,cell_v,match", [
    (np.inf, 0.02, r"yi: got inf at row 1, column 2; expected finite numbers"),
    (np.nan, 0.02, r"yi: got nan at row 1, column 2; expected a number, or NaN in both yi and "
                   r"vi to mark an absent study \(vi there is 0.02\)"),
    (0.3, np.nan, r"vi: got nan at row 1, column 2; expected a number, or NaN in both .*"
                  r"\(yi there is 0.3\)"),
    (0.3, -np.inf, r"vi: got -inf at row 1, column 2; expected finite sampling variances > 0"),
    (0.3, 0.0, r"vi: got 0.0 at row 1, column 2; expected sampling variances > 0"),
    (1e154, 0.02, r"yi: got 1e\+154 at row 1, column 2; expected finite numbers with \|yi\|"),
    (0.3, 5e-324, r"vi: got 5e-324 at row 1, column 2; expected sampling variances between"),
])
def test_pool_many_raises_naming_row_and_column(cell_y, cell_v, match):
    y = np.full((3, 4), 0.2)
    v = np.full((3, 4), 0.02)
    y[1, 2], v[1, 2] = cell_y, cell_v
    with pytest.raises(InputError, match=match + ".*nan_policy='omit' drops such studies"):
        ma.pool_many(y, v)


def test_pool_many_error_lists_the_rows():
    y = np.full((30, 3), 0.2)
    y[[4, 7, 19], 1] = np.inf
    with pytest.raises(InputError, match=r"row 4, column 1 \(3 unusable cells in 3 rows: 4, 7, 19\)"):
        ma.pool_many(y, np.full((30, 3), 0.02))


def test_pool_many_nan_policy_omit_counts_per_row():
    rng = np.random.default_rng(3)
    y = rng.normal(size=(4, 5))
    v = rng.uniform(0.01, 0.1, size=(4, 5))
    y[0, 1] = np.inf          # omitted
    v[2, 3] = np.nan          # half NaN: omitted
    y[2, 4] = v[2, 4] = np.nan  # absent: not counted
    v[3, :] = -1.0            # every study of row 3 omitted
    b = ma.pool_many(y, v, method="DL", nan_policy="omit")
    assert b.omitted.tolist() == [1, 0, 1, 5]
    assert b.k.tolist() == [4, 5, 3, 0]
    one = ma.pool(np.delete(y[0], 1), np.delete(v[0], 1), method="DL")
    assert b.estimate[0] == pytest.approx(one.estimate, rel=1e-12)
    assert "Omitted (nan_policy='omit'): 7 studies with unusable values in 3 of 4 rows" in b.summary()
    assert "Rows with no study: 1 (their results are NaN)" in b.summary()
    with pytest.raises(InputError, match="nan_policy: got 'propagate'; expected 'raise' or 'omit'"):
        ma.pool_many(y, v, nan_policy="propagate")


def test_check_batch_leaves_the_callers_arrays_alone():
    y = np.array([[0.1, np.inf]])
    v = np.array([[0.01, 0.02]])
    b = check_batch(y, v, nan_policy="omit")
    assert np.isinf(y[0, 1]) and np.isnan(b.yi[0, 1]) and not b.yi.flags.writeable


# --------------------------------------------------------------------------- the normaliser


def test_study_data_is_frozen_and_owns_its_arrays():
    y = np.array(Y)
    d = study_data(y, V, labels=list("abcd"), measure="MD", ni=[10, 20, np.nan, 30], unit="patients")
    y[0] = 99.0
    assert d.yi[0] == 0.1 and not d.yi.flags.writeable and not d.ni.flags.writeable
    with pytest.raises(ValueError):
        d.vi[0] = 1.0
    with pytest.raises(AttributeError):
        d.measure = "SMD"
    assert repr(d) == "StudyData(k=4, measure='MD', unit='patients')"
    assert study_data(d) is d and ma.pool(d).labels == ("a", "b", "c", "d")
    with pytest.raises(InputError, match="expected them inside the StudyData"):
        study_data(d, V)
    with pytest.raises(InputError, match=r"ni: got -3.0 at index 1 \(study 'b'\)"):
        study_data(Y, V, labels=list("abcd"), ni=[1, -3, 1, 1])


def test_study_data_from_effect_sizes_frame_and_take():
    es = ma.effect_sizes("PLO", events=[4, 9, 5], total=[40, 60, 50])
    es["study"] = ["A", "B", "C"]
    d = study_data(es)
    assert (d.measure, d.labels, d.ni.tolist()) == ("PLO", ("A", "B", "C"), [40.0, 60.0, 50.0])
    es.loc[0, "yi"] = 5.0  # later changes to the caller's frame do not reach the data
    assert d.frame.loc[0, "yi"] != 5.0
    sub = d.take([False, True, True])
    assert sub.labels == ("B", "C") and sub.frame["study"].tolist() == ["B", "C"]
    assert sub.frame.attrs["measure"] == "PLO"


def test_as_numbers_accepts_numbers_only():
    assert as_numbers(3, "x").tolist() == [3.0]
    assert as_numbers(np.array([1, 2], dtype=np.int8), "x").dtype == np.float64
    assert as_numbers([1, None], "x", ndim=None)[1] != as_numbers([1, None], "x", ndim=None)[1]  # NaN
    with pytest.raises(InputError, match=r"x: got the string 'a' at row 0, column 1"):
        as_numbers([[1, "a"]], "x", ndim=2)
    with pytest.raises(InputError, match=r"x: got np.datetime64\('2020-01-01'\) \(datetime64\) at index 0"):
        as_numbers(np.array(["2020-01-01"], dtype="datetime64[D]"), "x")


def test_same_message_for_every_entry_point():
    # one normaliser: pool and pool_bayes word a bad value identically
    msgs = []
    for fit in (_pool, _bayes):
        with pytest.raises(InputError) as err:
            fit([0.1, np.inf, 0.2], [0.1, 0.1, 0.1])
        msgs.append(str(err.value))
    assert msgs[0] == msgs[1] == "yi: got inf at index 1 (study 2); expected finite numbers"
    assert isinstance(study_data([0.1], [0.1]), StudyData)


def test_pool_many_dask_path_checks_numpy_input_the_same_way():
    pytest.importorskip("dask")
    y = np.full((3, 4), 0.2)
    y[2, 1] = np.inf
    with pytest.raises(InputError, match=r"yi: got inf at row 2, column 1"):
        ma.pool_many(y, np.full((3, 4), 0.02), chunks=2, scheduler="sync")
    with pytest.raises(InputError, match="nan_policy: 'omit' is not available on the Dask path"):
        ma.pool_many(y, np.full((3, 4), 0.02), chunks=2, scheduler="sync", nan_policy="omit")


@pytest.mark.parametrize("yi,vi,match", [
    ([0.1, "0.3", 0.2, 0.4], V, r"yi: got the string '0.3' at index 1; expected numbers"),
    ([0.1, np.inf, 0.2, 0.4], V, r"yi: got inf at index 1 \(study 2\); expected finite"),
    (Y, [0.01, 0.0, 0.01, 0.01], r"vi: got 0.0 at index 1 \(study 2\); expected sampling variances > 0"),
    ([0.1, 1e154, 0.2, 0.4], V, r"yi: got 1e\+154 at index 1"),
])
def test_meta_regression_and_subgroups_read_through_the_normaliser(yi, vi, match):
    with pytest.raises(InputError, match=match):
        ma.meta_regression(yi, vi, [1.0, 2.0, 3.0, 4.0])
    with pytest.raises(InputError, match=match):
        ma.subgroups(yi, vi, ["a", "a", "b", "b"])
