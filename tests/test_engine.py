"""Conformance of engine.fit with R metafor.

Reference values: every ``fits`` entry of tests/data/metafor/*.json (top-level
cases and the PR/PLO/PAS/PFT and MC/SMCR blocks), produced with R 4.2.2 and
metafor 3.8-1 with tolerances tightened to 1e-12 (see the ``generator`` key).
Tolerances: 1e-8 relative for closed-form quantities, 1e-6 for iterative
estimators and Q-profile limits (absolute near 0).
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pytest

from metaanalysis import engine
from metaanalysis.errors import InputError

DATA = Path(__file__).parent / "data" / "metafor"
ITERATIVE = {"ML", "REML", "EB", "PM", "PMM"}
KEYS = ("estimate", "se", "stat", "p", "ci_lb", "ci_ub", "pi_lb", "pi_ub", "tau2", "se_tau2",
        "i2", "h2", "q", "q_p", "q_df", "tau2_ci_lb", "tau2_ci_ub", "i2_ci_lb", "i2_ci_ub")  # fmt: skip
PROFILE = {"tau2_ci_lb", "tau2_ci_ub", "i2_ci_lb", "i2_ci_ub"}


def _cases():
    for path in sorted(DATA.glob("*.json")):
        ref = json.loads(path.read_text())
        blocks = [(path.stem, ref)] if "fits" in ref else []
        blocks += [
            (f"{path.stem}:{k}", b) for k, b in ref.items() if isinstance(b, dict) and "fits" in b
        ]
        for name, block in blocks:
            for f in block["fits"]:
                yield pytest.param(
                    block["yi"], block["vi"], f, id=f"{name}-{f['method']}-{f['test']}"
                )


ALL = list(_cases())


def _expected(val):
    return np.nan if val is None or val == [] else float(val)


@pytest.mark.parametrize("yi, vi, ref", ALL)
def test_fit_matches_metafor(yi, vi, ref):
    out = engine.fit(np.array([yi]), np.array([vi]), method=ref["method"], test=ref["test"])
    assert out["k"][0] == ref["k"]
    assert out["converged"][0]
    for key in KEYS:
        exp = _expected(ref.get(key))
        got = out[key][0]
        if np.isnan(exp):
            assert np.isnan(got), (key, got)
            continue
        tol = 1e-6 if (ref["method"] in ITERATIVE or key in PROFILE) else 1e-8
        # p-values and anything derived from an iterated τ² inherit its tolerance
        assert got == pytest.approx(exp, rel=tol, abs=tol * 1e-3), key


def test_every_reference_fit_is_collected():
    # 7 top-level cases x 21 (method, test), MC + SMCR blocks x 21,
    # 3 proportion cases x 4 measures x 3 methods
    assert len(ALL) == 7 * 21 + 2 * 21 + 3 * 4 * 3


def test_batch_with_absent_studies_equals_separate_fits():
    # rows of different k in one (B, k) call give the same numbers as separate calls
    ref = json.loads((DATA / "bcg_rr.json").read_text())
    y, v = np.array(ref["yi"]), np.array(ref["vi"])
    Y = np.vstack([y, np.where(np.arange(13) % 2 == 0, y, np.nan), np.full(13, np.nan)])
    V = np.vstack([v, v, v])
    out = engine.fit(Y, V, method="PM", test="knha")
    sub = engine.fit(y[::2], v[::2], method="PM", test="knha")
    assert out["k"].tolist() == [13, 7, 0]
    for key in ("estimate", "se", "tau2", "tau2_ci_lb", "tau2_ci_ub", "q_p"):
        assert out[key][1] == pytest.approx(sub[key][0], rel=1e-12), key
    assert np.isnan(out["estimate"][2]) and np.isnan(out["se"][2])


def test_engine_input_errors():
    with pytest.raises(InputError, match="expected one of EE, DL"):
        engine.fit([[0.1, 0.2]], [[0.1, 0.1]], method="dl")
    with pytest.raises(InputError, match=r"vi: got -0.1 \(row 0, study 1\)"):
        engine.fit([[0.1, 0.2]], [[0.1, -0.1]])
    with pytest.raises(InputError, match="shapes"):
        engine.fit([[0.1, 0.2]], [[0.1, 0.1, 0.1]])
    with pytest.raises(InputError, match="tau2"):
        engine.fit([[0.1, 0.2]], [[0.1, 0.1]], tau2=[-1.0])


def test_no_warnings_for_regular_input():
    ref = json.loads((DATA / "hine1989_rd.json").read_text())  # τ² = 0 boundary case
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for method in engine.METHODS:
            engine.fit([ref["yi"]], [ref["vi"]], method=method)


@pytest.mark.parametrize("method", engine.METHODS)
@pytest.mark.parametrize("test", engine.TESTS)
def test_core_outputs_with_mask_equal_the_full_fit(method, test):
    # outputs="core" + mask= (the GOSH path) must give bit-for-bit the numbers of
    # the full NaN-marked fit, which test_fit_matches_metafor checks against
    # metafor; data: bcg_rr.json (metafor's dat.bcg), subsets of 1..13 studies
    ref = json.loads((DATA / "bcg_rr.json").read_text())
    y, v = np.array(ref["yi"]), np.array(ref["vi"])
    rng = np.random.default_rng(5)
    mask = rng.random((200, y.size)) < 0.5
    mask[0] = True
    mask[1] = np.arange(y.size) == 3  # one study
    mask[2] = False  # no study
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        full = engine.fit(np.where(mask, y, np.nan), np.where(mask, v, np.nan), method=method,
                          test=test, qprofile=False)
        core = engine.fit(y, v, mask=mask, method=method, test=test, outputs="core")
    assert sorted(core) == sorted(engine.CORE_KEYS)
    for key in engine.CORE_KEYS:
        assert np.array_equal(core[key], full[key], equal_nan=True), key
    assert core["k"].tolist()[:3] == [13, 1, 0]


def test_engine_dl_is_tau2_dl():
    # one DL implementation: the engine's closed form (from its own sums) equals
    # tau2.tau2_dl exactly; and τ̂² = 0.3088 of metafor rma(method="DL") on dat.bcg
    from metaanalysis.engine.tau2 import tau2_dl

    ref = json.loads((DATA / "bcg_rr.json").read_text())
    y, v = np.array(ref["yi"]), np.array(ref["vi"])
    mask = np.random.default_rng(2).random((50, y.size)) < 0.6
    Y, V = np.where(mask, y, np.nan), np.where(mask, v, np.nan)
    out = engine.fit(Y, V, method="DL", outputs="core")
    t, _ = tau2_dl(Y, V, mask)
    t = np.where(mask.sum(axis=1) < 1, np.nan, t)  # no study: nothing defined
    assert np.array_equal(out["tau2"], t, equal_nan=True)
    assert (out["tau2"][mask.sum(axis=1) == 1] == 0).all()  # one study: 0, as metafor
    dl = next(f for f in ref["fits"] if f["method"] == "DL" and f["test"] == "z")
    assert engine.fit(y, v, mask=np.ones((1, y.size), bool), method="DL",
                      outputs="core")["tau2"][0] == pytest.approx(dl["tau2"], rel=1e-10)


def test_mask_and_outputs_input_errors():
    y, v = [0.1, 0.2, 0.3], [0.01, 0.02, 0.03]
    with pytest.raises(InputError, match="outputs: got 'light'"):
        engine.fit([y], [v], outputs="light")
    with pytest.raises(InputError, match="mask: got an array of dtype int"):
        engine.fit(y, v, mask=[[1, 0, 1]])
    with pytest.raises(InputError, match=r"yi: got shape \(2,\) with a mask; expected \(3,\)"):
        engine.fit(y[:2], v, mask=[[True, False, True]])
    with pytest.raises(InputError, match="yi: got .*nan.*expected finite"):
        engine.fit([0.1, np.nan, 0.3], v, mask=[[True, False, True]])
    with pytest.raises(InputError, match=r"vi: got -0.02 \(study 1\)"):
        engine.fit(y, [0.01, -0.02, 0.03], mask=[[True, False, True]])
