"""``metaanalysis report``: the main job (first version: effect-size tables).

Loads and checks the study records, then writes one CSV per outcome, time
point and unit with the study-level effect sizes into ``OUT/effect_sizes/``
(plus ``index.csv``).  Every choice is printed:

* events/total rows: ``PR`` (raw proportion) and ``PLO`` (logit), metafor's
  escalc conventions (continuity correction 0.5 only for zero cells);
* mean/SD/n rows: ``MN``;
* median with range and/or IQR: mean and SD estimated by
  :func:`metaanalysis.conversions.estimate_mean_sd` (``method="luo-shi"``: Luo
  et al. 2018, Stat Methods Med Res 27:1785; Shi et al. 2020, Res Synth
  Methods 11:641), then ``MN``; flagged ``estimated=True`` with the method;
* "median ± SD" (khan2018): used only under the printed assumption that the
  median stands for the mean (``estimated=True``, conversion
  ``median-as-mean``);
* anything else (a percent without a denominator, no n...) is listed with
  ``included=False`` and the reason, never silently dropped.

Output is written atomically: everything goes to a temporary folder next to
``OUT`` and is moved into place only when complete, so on any error nothing is
written.
"""

from __future__ import annotations

import os
import re
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

from .studies import StudySet, load_studies

PROPORTION_MEASURES = ("PR", "PLO")
MEDIAN_AS_MEAN = "median-as-mean"
TABLE_DIR = "effect_sizes"

_STAT_COLS = ("events", "total", "percent", "mean", "sd", "median", "q1", "q3", "min", "max", "n")


def _slug(text: str) -> str:
    s = re.sub(r"[^a-z0-9.]+", "-", str(text).lower()).strip("-")
    return s or "time"


def _plan_row(row: pd.Series) -> tuple[str | None, str]:
    """Which effect size a row gives: (kind, reason-if-skipped)."""
    has = {k: not pd.isna(row[k]) for k in _STAT_COLS}
    if has["events"] and has["total"]:
        return "proportion", ""
    if has["mean"] and has["sd"] and has["n"]:
        return "mean", ""
    if has["median"] and has["n"] and ((has["min"] and has["max"]) or (has["q1"] and has["q3"])):
        return "median", ""
    if has["median"] and has["sd"] and has["n"]:
        return "median_sd", ""
    if has["percent"] and not has["total"]:
        return None, "percent without a denominator (see `metaanalysis check`)"
    if has["percent"] and has["total"] and not has["events"]:
        return None, "percent matches no whole count of the total"
    if not has["n"] and (has["mean"] or has["median"]):
        return None, "no n reported"
    return None, "no statistics usable for an effect size"


def effect_size_table(df: pd.DataFrame, *, median_conversion: str = "luo-shi") -> pd.DataFrame:
    """Study-level effect sizes for one outcome table from :meth:`StudySet.outcome`.

    Parameters
    ----------
    df : DataFrame
        Rows of one outcome (typically one time point and unit).
    median_conversion : str
        Method passed to :func:`metaanalysis.conversions.estimate_mean_sd`.

    Returns
    -------
    DataFrame
        The input columns plus ``measure, yi, vi, ni, estimated, conversion,
        included, reason``; proportion rows appear twice (PR and PLO).

    Examples
    --------
    >>> s = load_studies("studies")                                 # doctest: +SKIP
    >>> effect_size_table(s.outcome("cement_leakage"))[["study", "measure", "yi"]]  # doctest: +SKIP
    """
    from .effect_sizes import effect_sizes

    df = df.reset_index(drop=True).copy()
    kinds = [_plan_row(r) for _, r in df.iterrows()]
    df["_kind"] = [k for k, _ in kinds]
    df["reason"] = [r for _, r in kinds]
    df["estimated"] = False
    df["conversion"] = None
    parts = []
    props = df[df["_kind"] == "proportion"]
    for measure in PROPORTION_MEASURES if len(props) else ():
        parts.append(effect_sizes(measure, data=props, events="events", total="total")
                     .assign(measure=measure))
    try:
        from .conversions import estimate_mean_sd
    except ImportError:  # module not landed yet: list the rows, never guess
        med = df["_kind"] == "median"
        df.loc[med, "reason"] = "median conversion unavailable (metaanalysis.conversions)"
        df.loc[med, "_kind"] = None
    means = df[df["_kind"].isin(["mean", "median", "median_sd"])].copy()
    if len(means):
        med = means["_kind"] == "median"
        if med.any():
            sub = means[med]
            # absent statistics are NaN: the scenario (range, IQR or both) is per row
            kw = {k: sub[k].to_numpy(float) for k in ("median", "q1", "q3", "min", "max")}
            m, s = estimate_mean_sd(sub["n"].to_numpy(float), method=median_conversion, **kw)
            means.loc[med, "mean"] = np.asarray(m, float)
            means.loc[med, "sd"] = np.asarray(s, float)
            means.loc[med, "estimated"] = True
            means.loc[med, "conversion"] = median_conversion
        msd = means["_kind"] == "median_sd"
        if msd.any():
            means.loc[msd, "mean"] = means.loc[msd, "median"]
            means.loc[msd, "estimated"] = True
            means.loc[msd, "conversion"] = MEDIAN_AS_MEAN
        parts.append(effect_sizes("MN", data=means, mean="mean", sd="sd", n="n")
                     .assign(measure="MN"))
    skipped = df[df["_kind"].isna()].assign(measure=None, yi=np.nan, vi=np.nan, ni=np.nan)
    parts.append(skipped)
    out = pd.concat([p for p in parts if len(p)], ignore_index=True) if any(
        len(p) for p in parts) else skipped
    out["included"] = out["_kind"].notna()
    out = out.drop(columns="_kind")
    front = ["study", "arm", "outcome", "time", "day_lo", "day_hi", "unit", "overlap_group",
             "measure", "yi", "vi", "ni", "estimated", "conversion", "included", "reason"]
    return out[front + [c for c in out.columns if c not in front]]


def effect_size_tables(studies: StudySet, *, median_conversion: str = "luo-shi"):
    """One effect-size table per (outcome, time point, unit).

    Returns
    -------
    list of (outcome, time_label, unit, DataFrame)
    """
    tables = []
    for name in studies.outcomes():
        df = studies.outcome(name)
        keys = pd.Series([f"{k}|{lo!r}|{hi!r}|{u}" for k, lo, hi, u in zip(
            df["time_kind"], df["day_lo"], df["day_hi"], df["unit"])], index=df.index)
        for key in dict.fromkeys(keys):
            part = df[keys == key]
            tables.append((name, part["time"].iloc[0], part["unit"].iloc[0],
                           effect_size_table(part, median_conversion=median_conversion)))
    return tables


def _say(quiet: bool, text: str) -> None:
    if not quiet:
        print(text, file=sys.stderr)


def _write_atomically(out: Path, build) -> None:
    """Call ``build(tmpdir)`` and move what it wrote into ``out`` only if it succeeds."""
    out = Path(out)
    parent = out.resolve().parent
    parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}-tmp-", dir=parent))
    try:
        build(tmp)
        if not out.exists():
            os.replace(tmp, out)
            return
        for entry in sorted(tmp.iterdir()):
            target = out / entry.name
            if target.is_dir() and not target.is_symlink():
                old = Path(tempfile.mkdtemp(prefix=f".{entry.name}-old-", dir=out))
                os.replace(target, old / entry.name)
                os.replace(entry, target)
                shutil.rmtree(old, ignore_errors=True)
            else:
                os.replace(entry, target)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def run_report(studies="studies", out="figures", *, plan=None, quiet: bool = False,
               median_conversion: str = "luo-shi") -> list[Path]:
    """Load and check the studies, write the effect-size tables; return the files written.

    Parameters
    ----------
    studies : str, Path or StudySet
        Folder of study records (or loaded studies).
    out : str or Path
        Output folder; tables go to ``OUT/effect_sizes/``.
    plan : str or Path, optional
        Analysis plan (not applied by this first version).
    quiet : bool
        No progress or warning lines on stderr.

    Raises
    ------
    StudyFileError
        When a study file is malformed or holds impossible values; nothing is
        written then.

    Examples
    --------
    >>> import metaanalysis as ma
    >>> files = ma.run_report("studies", out="figures", quiet=True)  # doctest: +SKIP
    """
    from .checks import format_problem

    sset = studies if isinstance(studies, StudySet) else load_studies(studies)
    for w in sset.warnings:
        _say(quiet, format_problem(w))
    _say(quiet, f"{len(sset)} studies: {', '.join(sset.ids)}")
    _say(quiet, "effect sizes: events/total -> PR and PLO (metafor escalc, 0.5 added to zero "
         "cells); mean/SD/n -> MN")
    _say(quiet, f"median with range/IQR -> mean and SD by {median_conversion} "
         "(Luo 2018 mean, Shi 2020 SD), rows flagged estimated=True")
    _say(quiet, "assumption: a 'median ± SD' is used with the median as the mean "
         f"(conversion={MEDIAN_AS_MEAN}, estimated=True)")
    if plan is not None:
        _say(quiet, f"analysis plan {plan}: not applied by this version (effect-size tables only)")
    tables = effect_size_tables(sset, median_conversion=median_conversion)
    written: list[str] = []

    def build(tmp: Path) -> None:
        d = tmp / TABLE_DIR
        d.mkdir()
        index, used = [], set()
        for name, time, unit, df in tables:
            stem = f"{name}__{_slug(time)}__{unit}"
            while stem in used:
                stem += "_"
            used.add(stem)
            df.to_csv(d / f"{stem}.csv", index=False)
            written.append(f"{TABLE_DIR}/{stem}.csv")
            index.append({"outcome": name, "time": time, "unit": unit,
                          "file": f"{stem}.csv", "rows": len(df),
                          "studies_included": df.loc[df["included"], "study"].nunique(),
                          "estimated": bool(df["estimated"].any())})
        pd.DataFrame(index).to_csv(d / "index.csv", index=False)
        written.append(f"{TABLE_DIR}/index.csv")

    _write_atomically(Path(out), build)
    _say(quiet, f"wrote {len(written) - 1} effect-size tables to {Path(out) / TABLE_DIR}")
    return [Path(out) / w for w in written]


def run_report_command(studies_dir="studies", plan=None, out="figures", quiet=False) -> int:
    """``metaanalysis report``: exit status 0; errors propagate as exceptions to the CLI."""
    run_report(studies_dir, out=out, plan=plan, quiet=quiet)
    return 0
