"""Check every number of metafor reference cases against the package, and count them.

Run with ``python benchmarks/conformance.py [DIR ...]`` (default:
``tests/data/metafor``).  Each ``*.json`` file is a case in the format of the
shared reference (see its README: ``fits``, ``egger_rma``, ``egger_lm``,
``begg``, ``trimfill_*``, ``fsn_rosenthal``, ``leave1out_reml``,
``influence_reml``, ``cumulative_reml``, ``metareg_*``, ``subgroups_*``,
proportion blocks ``PR``/``PLO``/``PAS``/``PFT`` with ``back``, ``GLMM_PLO``,
``MC``/``SMCR``), or ``tests/data/metareg_reference.json``.  Every reference
number is compared with the package's, with the tolerances of the reference
README: 1e-8 relative for closed-form quantities, 1e-6 for iterated ones
(ML, REML, EB, PM, PMM, Q-profile limits, anything after an iterated τ²),
1e-4 for the GLMM (absolute 1e-9 near 0).  Prints, per family of keys, how
many values were checked, how many failed and the largest relative
difference; keys the script does not know are listed as not checked, so
nothing is missed silently.  Exit status 1 if any value fails.
"""

from __future__ import annotations

import json
import sys
import warnings
from collections import defaultdict
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import metaanalysis as ma  # noqa: E402 -- after the sys.path line
from metaanalysis import engine  # noqa: E402

ITERATIVE = {"ML", "REML", "EB", "PM", "PMM"}
PROFILE = {"tau2_ci_lb", "tau2_ci_ub", "i2_ci_lb", "i2_ci_ub", "h2_ci_lb", "h2_ci_ub"}
SKIP = {"description", "measure", "data", "yi", "vi", "case", "generator", "note"}


class Tally:
    def __init__(self):
        self.n = defaultdict(int)
        self.bad = defaultdict(int)
        self.worst = defaultdict(float)
        self.missing: list[str] = []
        self.failures: list[str] = []

    def check(self, family, where, got, exp, tol):
        got = np.atleast_1d(np.asarray(got, dtype=float))
        if exp is None or (isinstance(exp, list) and not exp):  # metafor: not defined
            exp = np.nan
        exp = np.atleast_1d(np.asarray([np.nan if e is None else e for e in
                                        np.atleast_1d(np.asarray(exp, dtype=object))],
                                       dtype=float))
        if got.shape != exp.shape:
            self.n[family] += exp.size
            self.bad[family] += exp.size
            self.failures.append(f"{where}: shape {got.shape} vs {exp.shape}")
            return
        for g, e in zip(got, exp):
            self.n[family] += 1
            if np.isnan(e):
                ok, d = bool(np.isnan(g)), 0.0 if np.isnan(g) else np.inf
            else:
                d = abs(g - e) / max(abs(e), 1e-300) if abs(e) > 1e-3 * tol else abs(g - e)
                ok = bool(abs(g - e) <= tol * abs(e) + tol * 1e-3)
            if np.isfinite(d):
                self.worst[family] = max(self.worst[family], d)
            if not ok:
                self.bad[family] += 1
                self.failures.append(f"{where}: got {g!r}, metafor {e!r}")


def _tol(method, key=""):
    return 1e-6 if method in ITERATIVE or key in PROFILE else 1e-8


def check_fits(t, case, yi, vi, fits, family="fits", measure=None, ni=None):
    for f in fits:
        m, test = f["method"], f["test"]
        res = ma.pool(yi, vi, method=m, test=test, measure=measure, ni=ni)
        for key, exp in f.items():
            if key in ("method", "test"):
                continue
            where = f"{case} {family} {m}/{test} {key}"
            if key == "back":
                back = res.back_transform()
                for bk, be in exp.items():
                    t.check(f"{family}.back", f"{where}.{bk}", back[bk].iloc[0], be, _tol(m, bk))
                continue
            if not hasattr(res, key):
                t.missing.append(where)
                continue
            t.check(family, where, getattr(res, key), exp, _tol(m, key))


def check_case(t, path):
    d = json.loads(path.read_text())
    case = path.stem
    if "cases" in d:  # metareg_reference.json
        for c in d["cases"]:
            X = np.array(c["X"])
            for f in c["fits"]:
                out = engine.fit(c["yi"], c["vi"], X=X, method=f["method"], test=f["test"])
                where = f"{case} {c['name']} {f['method']}/{f['test']}"
                tol = _tol(f["method"])
                for key, ek in (("coef", "beta"), ("coef_se", "se"), ("coef_stat", "stat"),
                                ("coef_p", "pval"), ("coef_ci_lb", "ci_lb"),
                                ("coef_ci_ub", "ci_ub"), ("tau2", "tau2"), ("se_tau2", "se_tau2"),
                                ("q", "qe"), ("q_p", "qe_p"), ("qm", "qm"), ("qm_p", "qm_p"),
                                ("i2", "i2"), ("h2", "h2")) + tuple((k, k) for k in PROFILE):
                    if ek in f:
                        t.check("metareg", f"{where} {ek}", out[key][0], f[ek],
                                1e-6 if key in PROFILE else tol)
                t.check("metareg", f"{where} vb", out["vcov"][0].ravel(order="F"), f["vb"], tol)
                Xn = np.column_stack([np.ones(len(c["newmods"])), np.array(c["newmods"])])
                pr = engine.predict(out["coef"], out["vcov"], out["tau2"], Xn, test=f["test"],
                                    df=out["df"])
                for key, exp in f["pred"].items():
                    if f["method"] == "EE" and key.startswith("pi"):
                        continue
                    t.check("metareg.predict", f"{where} pred.{key}", pr[key][0], exp, tol)
        return
    data = pd.DataFrame(d["data"]) if "data" in d else None
    yi, vi = d.get("yi"), d.get("vi")
    for key, blk in d.items():
        if key in SKIP:
            continue
        if key == "fits":
            check_fits(t, case, yi, vi, blk, measure=d.get("measure"))
        elif key in ("PR", "PLO", "PAS", "PFT", "MC", "SMCR") and isinstance(blk, dict):
            ni = data["ni"].to_numpy(float) if data is not None and "ni" in data else None
            check_fits(t, case, blk["yi"], blk["vi"], blk["fits"], f"fits.{key}", key, ni)
        elif key == "GLMM_PLO":
            res = ma.pool_glmm(data["xi"], data["ni"])
            back = res.back_transform()
            for k2, e in blk.items():
                if k2 == "model":
                    continue
                if k2 == "back":
                    for bk, be in e.items():
                        t.check("glmm", f"{case} GLMM back.{bk}", back[bk].iloc[0], be, 1e-4)
                else:
                    t.check("glmm", f"{case} GLMM {k2}", getattr(res, k2), e, 1e-4)
        elif key in ("egger_rma", "egger_lm"):
            res = ma.pool(yi, vi, method="REML")
            eg = ma.egger_test(res, model=key[6:])
            for k2, e in blk.items():
                if k2 != "model":
                    t.check("egger", f"{case} {key} {k2}", getattr(eg, k2), e, 1e-6)
        elif key == "begg":
            out = ma.begg_test(ma.pool(yi, vi, method="REML"))
            for k2, e in blk.items():
                t.check("begg", f"{case} begg {k2}", getattr(out, k2), e, 1e-8)
        elif key.startswith("trimfill_"):
            m = "EE" if key.endswith("ee") else "DL"
            tf = ma.trim_and_fill(ma.pool(yi, vi, method=m), estimator=blk.get("estimator", "L0"))
            for k2, e in blk.items():
                if k2 == "estimator":
                    continue
                if k2 == "side":
                    t.n["trimfill"] += 1
                    if tf.side != e:
                        t.bad["trimfill"] += 1
                        t.failures.append(f"{case} {key} side: {tf.side} vs {e}")
                    continue
                got = tf.k0 if k2 == "k0" else getattr(tf.pooled, k2)
                t.check("trimfill", f"{case} {key} {k2}", got, e, _tol(m))
        elif key.startswith("fsn_"):
            t.check("fsn", f"{case} {key}", int(ma.fail_safe_n(ma.pool(yi, vi), key[4:])), blk, 0)
        elif key in ("leave1out_reml", "influence_reml", "cumulative_reml"):
            res = ma.pool(yi, vi, method="REML")
            if key == "leave1out_reml":
                frame = ma.leave_one_out(res)
            elif key == "influence_reml":
                frame = ma.influence(res)
            else:
                frame = ma.cumulative(res, by=blk["order"])
            for k2, e in blk.items():
                if k2 == "order":
                    continue
                if k2 not in frame:
                    t.missing.append(f"{case} {key} {k2}")
                    continue
                t.check(key.split("_")[0], f"{case} {key} {k2}", frame[k2].to_numpy(float), e,
                        1e-6)
        elif key.startswith("metareg_"):
            mods = data[blk["mods"][1:]]
            for test, sub in (("z", blk), ("knha", blk.get("knha", {}))):
                res = ma.meta_regression(yi, vi, mods, method="REML", test=test)
                for k2, e in sub.items():
                    if k2 in ("mods", "knha"):
                        continue
                    name = {"beta": "estimate", "f": "qm", "f_p": "qm_p"}.get(k2, k2)
                    got = res.coef[name] if name in res.coef else getattr(res, name)
                    t.check("metareg", f"{case} {key} {test} {k2}", got, e, 1e-6)
        elif key.startswith("subgroups_"):
            col = key[len("subgroups_"):]
            sg = ma.subgroups(yi, vi, data[col], method="REML")
            for g, vals in blk["groups"].items():
                for k2, e in vals.items():
                    t.check("subgroups", f"{case} {key} {g} {k2}", getattr(sg.groups[g], k2), e,
                            1e-6)
            for k2 in ("q_between", "q_between_df", "q_between_p"):
                t.check("subgroups", f"{case} {key} {k2}", getattr(sg, k2), blk[k2], 1e-6)
        else:
            t.missing.append(f"{case} {key}")


def main(argv=None) -> int:
    dirs = [Path(a) for a in (argv if argv is not None else sys.argv[1:])] or \
        [ROOT / "tests" / "data" / "metafor"]
    t = Tally()
    files = [p for d in dirs for p in ([d] if d.is_file() else sorted(d.glob("*.json")))]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for path in files:
            check_case(t, path)
    total = sum(t.n.values())
    bad = sum(t.bad.values())
    print(f"{len(files)} reference files, {total} values checked, {bad} outside tolerance")
    for fam in sorted(t.n):
        print(f"  {fam:<18} {t.n[fam]:>7} values  {t.bad[fam]:>4} bad  "
              f"max rel. difference {t.worst[fam]:.1e}")
    if t.missing:
        print(f"not checked ({len(t.missing)}): " + "; ".join(t.missing[:20]))
    for f in t.failures[:30]:
        print("  FAIL", f)
    return 1 if bad or t.missing else 0


if __name__ == "__main__":
    raise SystemExit(main())
