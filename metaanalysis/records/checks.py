"""Consistency checks on study records (``metaanalysis check``).

Each check returns :class:`~metaanalysis.errors.Problem` objects; errors are
values that cannot be true (and stop the run), warnings are values that need a
stated assumption before they can be used (printed and kept).

Checks, per outcome record:

* counts: events <= total; events, total and n no larger than the study's (or
  arm's) number of patients, or lesions for lesion-level outcomes;
* percent within 0-100 and equal to events/total after rounding to the reported
  number of decimals; a percent with a total but no count, or with no
  denominator at all, is a warning listing the counts or denominators
  consistent with it;
* order statistics: min <= q1 <= median <= q3 <= max; a mean inside
  [min, max] and inside its CI; SD and SE > 0;
* integer scales (:data:`INTEGER_SCALES`, e.g. a 0-10 VAS): values inside the
  scale, min/max whole numbers, a median a multiple of 0.5, and the GRIM test
  for means (Brown NJL, Heathers JAJ. The GRIM test: a simple technique
  detects numerous anomalies in the reporting of results in psychology.
  Soc Psychol Personal Sci 2017;8(4):363-369, doi 10.1177/1948550616673876);
* a "median ± SD" (neither a mean nor a five-number summary) is a warning.
"""

from __future__ import annotations

import functools
import itertools
import sys
from itertools import pairwise
from pathlib import Path

import numpy as np

from metaanalysis.errors import InputError, Problem, StudyFileError
from metaanalysis.records.studies import (
    MAX_COUNT,
    MAX_DECIMALS,
    OutcomeRecord,
    Study,
    StudySet,
    read_studies,
)

#: how far below n the GRIM check looks for sample sizes consistent with a mean
GRIM_SCAN = 10000

#: outcomes measured on an integer scale: name -> (lowest, highest) score
INTEGER_SCALES: dict[str, tuple[int, int]] = {
    "pain_vas": (0, 10),
    "pain_nrs": (0, 10),
}


# ---------------------------------------------------------------- arithmetic

def _scaled(value: float, decimals: int) -> int:
    """The reported number as an integer count of its last decimal (30.30 -> 3030)."""
    return round(float(value) * 10 ** decimals)


def percent_matches(events: int, total: int, percent: float, decimals: int) -> bool:
    """True when ``100 * events / total`` rounds to ``percent`` at ``decimals`` decimals.

    Exact integer arithmetic; a value exactly half-way between two reported
    values matches both (authors round halves either way).

    Examples
    --------
    >>> percent_matches(42, 140, 30, 0), percent_matches(1, 91, 1.1, 1)
    (True, True)
    >>> percent_matches(10, 30, 33.00, 2)
    False
    """
    if total <= 0:
        return False
    p = _scaled(percent, decimals)
    # |100 e 10^d / t - p| <= 1/2  <=>  |200 e 10^d - 2 p t| <= t
    return abs(200 * events * 10 ** decimals - 2 * p * total) <= total


def matching_counts(percent: float, decimals: int, total: int) -> list[int]:
    """Event counts ``e`` in 0..total with ``100 e / total`` rounding to ``percent``.

    Examples
    --------
    >>> matching_counts(7.14, 2, 28)
    [2]
    >>> matching_counts(33.00, 2, 30)
    []
    """
    if total <= 0:
        return []
    centre = round(percent * total / 100)
    return [e for e in range(max(0, centre - 2), min(total, centre + 2) + 1)
            if percent_matches(e, total, percent, decimals)]


@functools.lru_cache(maxsize=64)
def candidate_array(percent: float, decimals: int, upper: int,
                    events: int | None = None) -> np.ndarray:
    """:func:`candidate_denominators` as a read-only int64 array (cached)."""
    out = _candidates(float(percent), int(decimals), int(upper),
                      None if events is None else int(events))
    out.flags.writeable = False
    return out


def _candidates(percent: float, decimals: int, upper: int, events: int | None) -> np.ndarray:
    p = _scaled(percent, decimals)
    a = 200 * 10 ** decimals  # |100 e 10^d / t - p| <= 1/2  <=>  t (2p - 1) <= a e <= t (2p + 1)
    if upper < 1 or p < 0 or 2 * p > a:
        return np.zeros(0, dtype=np.int64)
    if events is not None:
        e = int(events)
        lo = max(1, e, -(-a * e // (2 * p + 1)))
        hi = upper if 2 * p - 1 <= 0 else min(upper, a * e // (2 * p - 1))
        return np.arange(lo, hi + 1, dtype=np.int64)
    out = []
    for start in range(1, upper + 1, _CHUNK):  # exact int64 arithmetic: 2p + 1 <= 2e8, t <= 1e7
        t = np.arange(start, min(upper, start + _CHUNK - 1) + 1, dtype=np.int64)
        e_lo = np.maximum(-((-(2 * p - 1) * t) // a), 0)
        e_hi = np.minimum(((2 * p + 1) * t) // a, t)
        out.append(t[e_lo <= e_hi])
    return np.concatenate(out)


_CHUNK = 1 << 20


def candidate_denominators(percent: float, decimals: int, upper: int,
                           events: int | None = None) -> list[int]:
    """Denominators ``t <= upper`` for which some count (or ``events``) gives ``percent``.

    Computed in closed form: with ``events`` the denominators form one interval;
    without, every ``t`` is tested at once in exact integer arithmetic (vectorised),
    so the work is bounded by ``upper`` (at most :data:`~metaanalysis.records.studies.MAX_COUNT`).

    Parameters
    ----------
    percent : float
        The reported percentage.
    decimals : int
        Decimals it was reported with (94.8 -> 1).
    upper : int
        Largest possible denominator (patients or lesions treated).
    events : int, optional
        The reported count, when there is one.

    Examples
    --------
    >>> candidate_denominators(94.8, 1, 140)
    [58, 77, 96, 97, 115, 116, 134, 135]
    >>> candidate_denominators(30.30, 2, 40, events=10)
    [33]
    """
    if decimals > MAX_DECIMALS or upper > MAX_COUNT:
        raise InputError(f"candidate_denominators: got {decimals} decimals and upper = "
                         f"{upper}; expected at most {MAX_DECIMALS} decimals and upper <= "
                         f"{MAX_COUNT}")
    return candidate_array(percent, decimals, upper, events).tolist()


def grim_consistent(mean: float, decimals: int, n: int, items: int = 1) -> bool:
    """GRIM test: can a mean of ``n`` integer scores be ``mean`` at ``decimals`` decimals?

    Brown & Heathers (2017): the sum of ``n`` integer answers (times ``items``
    items) is an integer ``S``, so the mean must be ``S / (n * items)`` for
    some integer ``S``, rounded to the reported decimals.  Only informative
    when ``n * items < 10 ** decimals``.

    Examples
    --------
    >>> grim_consistent(6.85, 2, 67), grim_consistent(5.19, 2, 28)
    (True, False)
    """
    m = n * items
    if m <= 0:
        return False
    scaled = _scaled(mean, decimals)
    # need integer S with |S 10^d / m - scaled| <= 1/2  <=>  |2 S 10^d - 2 scaled m| <= m
    centre = round(scaled * m / 10 ** decimals)
    return any(abs(2 * s * 10 ** decimals - 2 * scaled * m) <= m
               for s in range(centre - 1, centre + 2))


def grim_alternatives(mean: float, decimals: int, n: int, how_many: int = 3,
                      scan: int = GRIM_SCAN) -> list[int]:
    """The largest ``m < n`` (at most ``how_many``, looking at most ``scan`` below ``n``)
    for which ``mean`` passes the GRIM test.

    Examples
    --------
    >>> grim_alternatives(1.71, 2, 67)
    [66, 65, 63]
    """
    found = (m for m in range(n - 1, max(0, n - 1 - scan), -1)
             if grim_consistent(mean, decimals, m))
    return list(itertools.islice(found, how_many))


def compact(values, limit: int = 40) -> str:
    """``[1, 2, 3, 4, 9]`` -> ``"1-4, 9"`` (runs of three or more become ranges).

    At most ``limit`` parts are shown; the rest is counted (``"..., and 120 more"``).

    Examples
    --------
    >>> compact([1, 2, 3, 4, 9])
    '1-4, 9'
    >>> compact(range(0, 100, 2), limit=3)
    '0, 2, 4, ... and 47 more (50 in all)'
    """
    v = np.asarray(values if isinstance(values, np.ndarray) else list(values), dtype=np.int64)
    if not len(v):
        return ""
    breaks = np.flatnonzero(np.diff(v) != 1) + 1
    starts = np.concatenate(([0], breaks))
    ends = np.concatenate((breaks, [len(v)])) - 1
    parts, shown = [], 0
    for i, j in zip(starts.tolist(), ends.tolist()):
        if len(parts) >= limit:
            break
        if j - i >= 2:
            parts.append(f"{v[i]}-{v[j]}")
            shown = j + 1
        else:
            for x in range(i, j + 1):
                if len(parts) >= limit:
                    break
                parts.append(str(v[x]))
                shown = x + 1
    if shown < len(v):
        parts.append(f"... and {len(v) - shown} more ({len(v)} in all)")
    return ", ".join(parts)


def _fmt(x: float, decimals: int) -> str:
    return f"{x:.{decimals}f}"


# ---------------------------------------------------------------- checks

def _record_problems(s: Study, o: OutcomeRecord) -> list[Problem]:
    out: list[Problem] = []
    st, dec = o.stats, o.decimals

    def add(key, message, severity="error"):
        fld = f"{o.where}.{key}" if key else o.where
        out.append(Problem(s.file, s.id, fld, f"{o.label}: {message}", severity))

    ev, tot, pc, n = st.get("events"), st.get("total"), st.get("percent"), st.get("n")
    size = s.size(o.unit, o.arm)
    whose = f"arm {o.arm}" if o.arm else "the study"

    # counts against each other and against the study size
    if ev is not None and tot is not None and ev > tot:
        add("events", f"events {ev} > total {tot}; expected events <= total")
    if tot is not None and tot == 0:
        add("total", "total is 0; expected at least 1")
    for key in ("n", "total", "events"):
        v = st.get(key)
        if v is not None and size is not None and v > size:
            add(key, f"{key} {v} > {size} {o.unit} in {whose}; expected at most {size}")

    # percent
    if pc is not None:
        d = dec.get("percent", 0)
        if not 0 <= pc <= 100:
            add("percent", f"percent {_fmt(pc, d)} is outside 0-100")
        elif ev is not None and tot is not None:
            if tot > 0 and ev <= tot and not percent_matches(ev, tot, pc, d):
                add("percent", f"percent {_fmt(pc, d)} does not match events/total = "
                    f"{ev}/{tot} = {_fmt(100 * ev / tot, d + 2)}%")
        elif tot is not None and tot > 0:
            counts = matching_counts(pc, d, tot)
            if not counts:
                near = round(pc * tot / 100)
                add("percent", f"{_fmt(pc, d)}% of {tot} matches no whole count "
                    f"(nearest {near}/{tot} = {_fmt(100 * near / tot, d)}%); "
                    "pooling it needs a stated assumption", "warning")
        else:
            bound = size if size is not None else max(1000, int(ev or 0))
            cands = candidate_array(pc, d, bound, events=ev)
            basis = f"{o.unit}" + (f" in arm {o.arm}" if o.arm else "")
            what = f"{ev} events = {_fmt(pc, d)}%" if ev is not None else f"{_fmt(pc, d)}%"
            add("percent", f"{what} with no denominator; denominators up to {bound} ({basis}) "
                f"consistent with it: {compact(cands) or 'none'}; pooling it needs a stated "
                "assumption (and a sensitivity analysis over these)", "warning")

    # order statistics
    order = [k for k in ("min", "q1", "median", "q3", "max") if k in st]
    for a, b in pairwise(order):
        if st[a] > st[b]:
            add(b, f"{a} {st[a]:g} > {b} {st[b]:g}; expected min <= q1 <= median <= q3 <= max")
    if "mean" in st:
        if "min" in st and st["mean"] < st["min"] or "max" in st and st["mean"] > st["max"]:
            add("mean", f"mean {st['mean']:g} is outside the range "
                f"{st.get('min', '-')}-{st.get('max', '-')}")
        if "ci_lb" in st and st["mean"] < st["ci_lb"] or "ci_ub" in st and st["mean"] > st["ci_ub"]:
            add("mean", f"mean {st['mean']:g} is outside its CI")
    if "ci_lb" in st and "ci_ub" in st and st["ci_lb"] > st["ci_ub"]:
        add("ci_ub", f"ci_lb {st['ci_lb']:g} > ci_ub {st['ci_ub']:g}")
    for key in ("sd", "se"):
        if key in st and st[key] <= 0:
            add(key, f"{key} {st[key]:g}; expected a value > 0")
    location = [k for k in ("mean", "median", "q1", "q3", "min", "max") if k in st]
    if location and n is None:
        add("n", "no n given for a mean or median; effect sizes need the number analysed",
            "warning")
    if "median" in st and "sd" in st and "mean" not in st:
        add("sd", f"reported as {o.reported_as or 'median ± SD'}: neither a mean nor a "
            "five-number summary; usable only under a stated assumption", "warning")

    # integer scales
    scale = INTEGER_SCALES.get(o.outcome)
    if scale is not None:
        lo, hi = scale
        for k in location:
            if not lo <= st[k] <= hi:
                add(k, f"{k} {st[k]:g} is outside the {lo}-{hi} scale")
        for k in ("min", "max"):
            if k in st and not float(st[k]).is_integer():
                add(k, f"{k} {st[k]:g} of a {lo}-{hi} integer scale; expected a whole number")
        if "median" in st and not float(2 * st["median"]).is_integer():
            add("median", f"median {st['median']:g} of integer scores; expected a multiple of 0.5")
        if "mean" in st and n is not None and n > 0:
            d = dec.get("mean", 0)
            if not grim_consistent(st["mean"], d, n):
                ok = grim_alternatives(st["mean"], d, n)
                assumed = "n" in o.assumed
                msg = (f"GRIM: mean {_fmt(st['mean'], d)} is not a possible mean of {n} "
                       f"integer scores (Brown & Heathers 2017)")
                if assumed:
                    msg += (f"; n at this time point is assumed, and the largest n below it "
                            f"consistent with the mean are {', '.join(map(str, ok))}"
                            if ok else f"; n at this time point is assumed, and no n from "
                            f"{max(1, n - GRIM_SCAN)} to {n - 1} is consistent with the mean")
                add("mean", msg, "warning" if assumed else "error")
    return out


def consistency_problems(studyset: StudySet) -> list[Problem]:
    """Consistency problems (errors and warnings) of an already loaded :class:`StudySet`."""
    out: list[Problem] = []
    for s in studyset:
        seen = {}
        for o in s.outcomes:
            tp = o.timepoint
            key = (o.outcome, tp.kind, repr(tp.day_lo), repr(tp.day_hi), o.arm)
            if key in seen:
                out.append(Problem(s.file, s.id, o.where, f"{o.label}: recorded twice (also "
                                   f"outcomes[{seen[key]}]); expected one record per outcome, "
                                   "time point and arm"))
            seen[key] = o.index
            out.extend(_record_problems(s, o))
    return out


def check_studies(studyset_or_path: StudySet | str | Path = "studies") -> list[Problem]:
    """Every problem (errors and warnings) in a study folder or :class:`StudySet`.

    Parameters
    ----------
    studyset_or_path : StudySet, str or Path
        Loaded studies, or a folder (or file) to read.  Structural problems of
        the files (broken YAML, wrong types...) are included when reading.

    Returns
    -------
    list of Problem
        ``severity`` is ``"error"`` (cannot be true) or ``"warning"``.

    Examples
    --------
    >>> import metaanalysis as ma
    >>> [str(p) for p in ma.check_studies(ma.example_path()) if p.severity == "error"]
    []
    """
    if isinstance(studyset_or_path, StudySet):
        found = consistency_problems(studyset_or_path)
        return [w for w in studyset_or_path.warnings if w not in found] + found
    return _read_and_check(studyset_or_path)[1]


def _read_and_check(path: str | Path) -> tuple[list[Study], list[Problem]]:
    """Read a folder (or file) of studies; return them and every problem found."""
    studies, problems = read_studies(path)
    return studies, problems + consistency_problems(StudySet(studies, (), str(path)))


def format_problem(p: Problem) -> str:
    """One output line: ``FILE: record/field: message`` (warnings marked as such)."""
    return str(p) if p.severity == "error" else f"{p} [warning]"


def run_check_command(studies_dir: str | Path = "studies") -> int:
    """``metaanalysis check``: print warnings, raise on errors, summarise on stdout.

    Raises
    ------
    StudyFileError
        With every error (the command line turns it into exit status 2).
    """
    studies, problems = _read_and_check(studies_dir)
    warnings = [p for p in problems if p.severity != "error"]
    errors = [p for p in problems if p.severity == "error"]
    for p in warnings:
        print(format_problem(p), file=sys.stderr)
    if errors:
        raise StudyFileError(errors)
    n_rec = sum(len(s.outcomes) for s in studies)
    print(f"{studies_dir}: {len(studies)} studies, {n_rec} outcome records: "
          f"no errors, {len(warnings)} warnings")
    return 0
