"""Selecting the records of one analysis: the plan's rules applied to a set of studies.

:func:`select` applies study exclusions, arm choice, modality, unit of analysis,
time window, statistics rules (counts, percents, median conversions) and overlap
groups in the order documented in ``docs/plan.md``, recording one reason for
every record it leaves out, and returns a :class:`Selection`.
:func:`representatives` picks, once per outcome, the one study that stands for
each overlap group in every analysis of that outcome.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from dataclasses import dataclass

import pandas as pd

from metaanalysis.effects.transforms import PROPORTION_MEASURES as PROPORTIONS
from metaanalysis.records.studies import StudySet
from metaanalysis.report.plan import COMPARATIVE, COMPARATIVE_COUNTS, OutcomePlan, Plan
from metaanalysis.report.study_labels import FLAG_MARKS, display_labels

#: what a mean-type outcome is pooled as: the change from baseline (MC), the
#: absolute value at a follow-up window (MN) or the absolute value at baseline (MN)
KINDS = ("change", "absolute", "baseline")


def _stats(o) -> dict:
    return {k: float(v) for k, v in o.stats.items()}


def _has(st, *keys) -> bool:
    return all(k in st and not math.isnan(st[k]) for k in keys)


def _window_distance(tp, lo, hi) -> float:
    return abs(tp.days - (lo + hi) / 2)


def _left_out(study: str, o, reason: str) -> dict:
    """One row of ``Selection.excluded``: record ``o`` of ``study`` and why it is left out."""
    return {"study": study, "time": o.time, "arm": o.arm, "reason": reason}


def assumed_events(percent: float, decimals: int, total: int) -> int:
    """The event count taken for ``percent`` of an assumed denominator ``total``: the
    largest count consistent with the percent, else the nearest whole count.

    Examples
    --------
    >>> assumed_events(94.8, 1, 135), assumed_events(94.8, 1, 140), assumed_events(33.0, 2, 30)
    (128, 133, 10)
    """
    from metaanalysis.records.checks import matching_counts

    e = matching_counts(percent, decimals, int(total))
    return int(e[-1]) if e else round(percent * total / 100)


def is_median_sd(st: dict) -> bool:
    """A "median ± SD": a median and an SD with no mean (as ``metaanalysis check`` reads it)."""
    return _has(st, "median", "sd") and not _has(st, "mean")


@dataclass(frozen=True)
class Selection:
    """Records used and left out for one analysis (outcome × window × unit)."""

    included: pd.DataFrame
    excluded: pd.DataFrame  # study, time, arm, reason
    notes: tuple[str, ...]
    pending_denominators: tuple = ()  # (study, time, percent, decimals, upper, candidates)

    def subset(self, keep) -> Selection:
        """The same selection with only the included rows where ``keep`` is True."""
        inc = self.included[list(keep)].reset_index(drop=True)
        return dataclasses.replace(self, included=inc)

    @property
    def signature(self) -> tuple:
        """What the included data are (study, time, n, flags, assumption): equal
        signatures give the same pooled result."""
        inc = self.included
        return tuple(zip(inc["study"], inc["time"], inc["ni"], inc["flags"], inc["assumption"]))


@functools.lru_cache(maxsize=4096)
def _converted(n, median, method, q1, q3, lo, hi) -> tuple[float, float]:
    from metaanalysis.effects.conversions import estimate_mean_sd

    kw = {k: v for k, v in (("q1", q1), ("q3", q3), ("min", lo), ("max", hi)) if v is not None}
    m, s = estimate_mean_sd(n, median=median, method=method, **kw)
    return float(m), float(s)


def _mean_sd(st, n, plan: Plan, study, time, notes):
    """(mean, sd, how) for one record, or (None, None, reason)."""
    if is_median_sd(st):
        if plan.median_sd == "as_mean":
            notes.append(f"{study} ({time}): 'median ± SD' used as mean ± SD (assumption)")
            return st["median"], st["sd"], "median-as-mean"
        return None, None, f"{time}: reported as 'median ± SD', not a mean (plan: median_sd: exclude)"
    if _has(st, "mean", "sd"):
        return st["mean"], st["sd"], "reported"
    if _has(st, "median") and (_has(st, "min", "max") or _has(st, "q1", "q3")):
        kw = {k: st.get(k) for k in ("q1", "q3", "min", "max") if _has(st, k)}
        m, s = _converted(n, st["median"], plan.median_conversion, kw.get("q1"), kw.get("q3"),
                          kw.get("min"), kw.get("max"))
        notes.append(f"{study} ({time}): mean and SD estimated from the median and "
                     f"{'/'.join(sorted(kw))} ({plan.median_conversion})")
        return float(m), float(s), plan.median_conversion
    return None, None, f"{time}: no mean ± SD or median with range/IQR"


def overlap_group_of(study, plan: Plan) -> str | None:
    """The overlap group a study counts in under ``plan``: its ``overlap_group``,
    unless its membership is only probable and the plan keeps probable members
    separate (``probable_overlap: separate``)."""
    if study.overlap_membership == "probable" and plan.probable_overlap != "apply":
        return None
    return study.overlap_group


def modality_of(study, arm: str | None) -> str | None:
    """The ablation modality of a study (of ``arm`` when the arm names one)."""
    a = study.arms.get(arm) if arm else None
    return a.modality if a is not None and a.modality else study.modality


def units_of(studies: StudySet, op: OutcomePlan) -> list[str]:
    """Units an outcome is analysed in: the plan's, ``mixed`` (one analysis across
    units), or every unit reported (``any``: one analysis per unit)."""
    if op.unit != "any":
        return [op.unit]
    found = sorted({o.unit for _, o in studies.records() if o.outcome in op.all_records})
    return found or ["patients"]


def _base_filter(studies: StudySet, plan: Plan, op: OutcomePlan, unit: str,
                 modalities=None):
    """Records of the outcome left after exclusions, arms, modality and unit; plus the reasons."""
    excl = dict(plan.exclusions)
    arms = {s: (a, r) for s, a, r in plan.arms}
    mods = (modalities if modalities is not None else
            op.modalities if op.modalities is not None else plan.modalities)
    comparative = op.measure in COMPARATIVE
    keep, out = [], []
    for s, o in studies.records():
        if o.outcome not in op.all_records:
            continue
        why = None
        wanted = {arms[s.id][0], plan.controls.get(s.id)} if (comparative and s.id in arms) \
            else {arms[s.id][0]} if s.id in arms else set()
        if s.id in excl:
            why = f"excluded by the plan: {excl[s.id]}"
        elif comparative and (o.arm is None or s.id not in plan.controls):
            why = "not a comparison of an ablation arm with a control arm (plan: arms, control)"
        elif o.arm is not None and o.arm not in wanted:
            why = (f"arm {o.arm}: not the arm pooled ({arms[s.id][0]}: {arms[s.id][1]})"
                   if s.id in arms else f"arm {o.arm} of a multi-arm study; the plan names no arm "
                   "to pool (plan: arms)")
        elif mods and modality_of(s, arms[s.id][0] if s.id in arms else o.arm) not in mods:
            m = modality_of(s, arms[s.id][0] if s.id in arms else o.arm)
            why = (f"modality {m or 'not recorded'}; the main analyses pool "
                   f"{', '.join(mods)} (plan: modalities)")
        elif unit != "mixed" and o.unit != unit:
            why = f"unit {o.unit}; this analysis pools {unit}"
        if why:
            out.append(_left_out(s.id, o, why))
        else:
            keep.append((s, o))
    return keep, out


def _study_size(s) -> int:
    return s.patients or s.lesions or 0


def representatives(studies: StudySet, plan: Plan, op: OutcomePlan,
                    modalities=None) -> dict[str, str]:
    """``{overlap group: study id}``: the one study that stands for each group in
    every analysis of ``op`` (every window, unit and kind).

    The rule (stated in the report): among the group's members with data usable
    for this outcome under the plan's rules in at least one analysis, the study
    with the most patients (else lesions); ties by id.  With ``overlap: all``
    every member is pooled and the mapping is empty.
    """
    if plan.overlap == "all":
        return {}
    return {g: ids[0] for g, ids in usable_members(studies, plan, op, modalities).items()}


def usable_members(studies: StudySet, plan: Plan, op: OutcomePlan,
                   modalities=None) -> dict[str, list[str]]:
    """``{overlap group: [study ids]}``: members with data usable for ``op`` in at least
    one analysis under the plan's rules, the preferred representative first (most
    patients, else lesions; ties by id)."""
    key = (op, _rules(plan), None if modalities is None else tuple(modalities))
    hit = _REPS.get(key)
    if hit is not None and hit[0] is studies:
        return {g: list(v) for g, v in hit[1].items()}
    free = dataclasses.replace(plan, overlap="all")
    usable: set[str] = set()
    kinds = ("change", "absolute", "baseline") if op.measure == "MC" else (None,)
    for unit in units_of(studies, op):
        for window in (op.windows or (None,)):
            for kind in kinds:
                if kind == "baseline" and window != (op.windows or (None,))[0]:
                    continue
                sel = select(studies, free, op, window, unit, reps={}, kind=kind,
                             modalities=modalities)
                usable |= set(sel.included["study"])
    groups: dict[str, list] = {}
    for s in studies:
        g = overlap_group_of(s, plan)
        if g and s.id in usable:
            groups.setdefault(g, []).append(s)
    out = {g: [s.id for s in sorted(members, key=lambda s: (-_study_size(s), s.id))]
           for g, members in sorted(groups.items())}
    if len(_REPS) > 512:
        _REPS.clear()
    _REPS[key] = (studies, out)
    return {g: list(v) for g, v in out.items()}


_REPS: dict = {}


def _rules(plan: Plan) -> tuple:
    """The plan settings a selection depends on (a hashable key for caches)."""
    return (plan.overlap, plan.probable_overlap, plan.median_sd, plan.median_conversion,
            plan.percent_without_denominator, plan.percent_without_count, plan.modalities,
            plan.exclusions, plan.arms, tuple(sorted(plan.controls.items())),
            tuple(sorted(plan.windows.items())))


def _apply_overlap(inc: list[dict], out: list[dict], plan: Plan, reps: dict, labels: dict,
                   notes: list[str]) -> list[dict]:
    groups: dict[str, list[dict]] = {}
    for r in inc:
        if r.get("overlap_group"):
            groups.setdefault(r["overlap_group"], []).append(r)
    drop = set()
    for g, members in sorted(groups.items()):
        ids = ", ".join(labels.get(m["study"], m["study"]) for m in members)
        if plan.overlap == "all" or g not in reps:
            if len(members) > 1:
                notes.append(f"overlap group {g} ({ids}): all pooled; patients may be counted twice")
            continue
        rep = reps[g]
        for m in members:
            if m["study"] != rep:
                drop.add(m["study"])
                out.append({"study": m["study"], "time": m["time"], "arm": m["arm"],
                            "reason": f"overlap group {g}: {labels.get(rep, rep)} stands for the "
                                      "group in every analysis of this outcome (the largest "
                                      "study with usable data)"})
    return [r for r in inc if r["study"] not in drop]


def _proportion_row(row, flags, st, chosen, s, unit, plan, assumed, pending, out, sid,
                    complement: bool, suffix: str = "") -> bool:
    """Events and total of one record into ``row`` (keys ``events``/``total`` + suffix);
    False when the record cannot be used (the reason appended to ``out``)."""
    from metaanalysis.records.checks import candidate_denominators, compact, matching_counts

    ev, tot = f"events{suffix}", f"total{suffix}"
    dec = chosen.decimals.get("percent", 0)
    what = []
    if _has(st, "events", "total"):
        e, t = st["events"], st["total"]
        if "events" in chosen.derived:
            why = chosen.derived_reasons.get("events")
            arm = f" ({chosen.arm})" if chosen.arm and suffix else ""
            what.append(f"events derived{arm}: {why}" if why else
                        f"events derived from the percent{arm}")
    elif _has(st, "percent", "total"):
        t = st["total"]
        cnt = matching_counts(st["percent"], dec, int(t))
        if len(cnt) == 1:
            e = float(cnt[0])
            what.append(f"events {cnt[0]} derived from {st['percent']:g}%")
        elif not cnt and plan.percent_without_count == "nearest":
            e = float(round(st["percent"] * t / 100))
            what.append(f"{st['percent']:g}% of {t:g} matches no whole count; the nearest, "
                        f"{e:g}/{t:g}, assumed")
            flags.add("¶")
        else:
            out.append(_left_out(sid, chosen, f"{st['percent']:g}% of {st['total']:g} "
                                 f"matches {'no whole count' if not cnt else 'several counts'}"
                                 + (" (plan: percent_without_count: exclude)" if not cnt else "")))
            return False
    elif _has(st, "percent"):
        upper = s.size(chosen.unit, chosen.arm)
        cands = candidate_denominators(st["percent"], dec, upper) if upper else []
        key = (sid, chosen.time)
        if key in assumed:
            t = float(assumed[key])
            e = float(assumed_events(st["percent"], dec, int(t)))
            what.append(f"assumed denominator {t:g} ({st['percent']:g}% → {e:g}/{t:g})")
            flags.add("¶")
        elif plan.percent_without_denominator == "treated" and upper:
            pending.append((sid, chosen.time, st["percent"], dec, upper, tuple(cands)))
            t = float(upper)
            e = float(assumed_events(st["percent"], dec, int(t)))
            what.append(f"{st['percent']:g}% with no denominator: the {t:g} {chosen.unit} "
                        f"treated assumed as denominator ({e:g}/{t:g}, "
                        f"{100 * e / t:.1f}%; plan: percent_without_denominator: treated)")
            flags.add("¶")
        else:
            pending.append((sid, chosen.time, st["percent"], dec, upper, tuple(cands)))
            out.append(_left_out(sid, chosen, f"{st['percent']:g}% with no denominator "
                                 "(plan: percent_without_denominator: "
                                 f"{plan.percent_without_denominator}); candidate "
                                 f"denominators ≤ {upper}: {compact(cands) or 'none'}"))
            return False
    else:
        out.append(_left_out(sid, chosen, f"{chosen.time}: no events/total or percent"))
        return False
    if complement:
        e = t - e
        what.append(f"complement of {chosen.outcome} ({t - e:g}/{t:g})")
    row.update({ev: float(e), tot: float(t)})
    if what:
        parts = [x for x in (row.get("assumption") or "").split("; ") + what if x]
        row["assumption"] = "; ".join(dict.fromkeys(parts))
    return True


def _pick(records, lohi, kind, window):
    """The record used from one study's records of the outcome, and the others of the window."""
    if kind == "baseline":
        base = [o for o in records if o.timepoint.kind == "baseline"]
        return (base[0], []) if base else (None, [])
    follow = [o for o in records if o.timepoint.kind != "baseline"]
    if lohi is not None:
        inwin = [o for o in follow if o.timepoint.kind == "follow-up" and o.timepoint.defined
                 and o.timepoint.overlaps(*lohi)]
        if not inwin:
            return None, []
        inwin.sort(key=lambda o: (_window_distance(o.timepoint, *lohi), o.time))
        return inwin[0], [(o, f"{o.time}: another record of this study ({inwin[0].time}) is "
                              f"nearer the middle of {window}") for o in inwin[1:]]
    usable = [o for o in follow if o.stats]
    if not usable:
        return None, []
    usable.sort(key=lambda o: (o.timepoint.defined,
                               o.timepoint.day_hi if o.timepoint.defined else 0))
    chosen = usable[-1]
    return chosen, [(o, f"{o.time}: the latest time point ({chosen.time}) is used")
                    for o in usable[:-1]]


def select(studies: StudySet, plan: Plan, op: OutcomePlan, window: str | None, unit: str,
           assumed: dict | None = None, *, reps: dict | None = None, kind: str | None = None,
           modalities=None) -> Selection:
    """Apply the plan's selection rules for one outcome, window and unit.

    Parameters
    ----------
    studies : StudySet
    plan : Plan
    op : OutcomePlan
        The outcome (one of ``plan.outcomes``).
    window : str or None
        Name of a window in ``plan.windows``; None: every time point.
    unit : {"patients", "lesions", "mixed"}
    assumed : dict, optional
        ``{(study, time): denominator}`` for percents without a denominator
        (sensitivity analyses); used whatever ``percent_without_denominator``
        says.
    reps : dict, optional
        ``{overlap group: study id}`` (default: :func:`representatives`); a
        group missing from it keeps all its members.
    kind : {"change", "absolute", "baseline"}, optional
        Mean-change outcomes only: the change from baseline (default), the
        absolute value at the window, or the absolute value at baseline.
    modalities : sequence of str, optional
        Override of ``plan.modalities`` (subgroup analyses by modality).

    Returns
    -------
    Selection
        ``included`` has one row per study (``study, label, arm, time, days,
        unit, overlap_group, modality, ni, assumption, flags`` and the
        statistics the measure needs), ``excluded`` one row per record left out
        with its reason.

    Examples
    --------
    >>> import metaanalysis as ma
    >>> s = ma.load_studies(ma.example_path())
    >>> p = ma.load_plan(ma.example_path("studies/plan.yaml"))
    >>> sel = select(s, p, p.outcome("cement_leakage"), None, "lesions")
    >>> sel.included.study.tolist()
    ['chen2022', 'wang2022', 'wu2021']
    """
    assumed = assumed or {}
    labels = display_labels(studies)
    if reps is None:
        reps = representatives(studies, plan, op, modalities)
    kind = kind or ("change" if op.measure == "MC" else None)
    measure = "MN" if kind in ("absolute", "baseline") else op.measure
    recs, out = _base_filter(studies, plan, op, unit, modalities)
    notes: list[str] = []
    pending: list = []
    lohi = plan.windows[window] if window else None
    comparative = measure in COMPARATIVE
    is_prop = measure in PROPORTIONS or measure in COMPARATIVE_COUNTS
    by_study: dict[str, list] = {}
    for s, o in recs:
        by_study.setdefault(s.id, []).append((s, o))
    arms = {s: a for s, a, _ in plan.arms}
    inc: list[dict] = []
    for sid, items in by_study.items():
        s = items[0][0]
        if comparative:
            groups = {arms[sid]: [o for _, o in items if o.arm == arms[sid]],
                      plan.controls[sid]: [o for _, o in items if o.arm == plan.controls[sid]]}
        else:
            groups = {None: [o for _, o in items]}
        row = {"study": sid, "label": labels.get(sid, sid), "arm": None, "time": "", "days": math.nan,
               "unit": unit, "overlap_group": overlap_group_of(s, plan),
               "modality": modality_of(s, arms.get(sid)), "assumption": "", "flags": ""}
        flags: set[str] = set()
        ok = True
        for j, (arm, records) in enumerate(groups.items()):
            # direct records first: a complement is used only when the study has none
            direct = [o for o in records if o.outcome in op.records]
            use = direct or records
            chosen, others = _pick(use, lohi, kind, window)
            if chosen is None:
                if lohi is None and kind != "baseline" and records:
                    out.append(_left_out(sid, records[0], "no follow-up record with values"))
                ok = False  # records at other times belong to other windows: not listed
                break
            for o, why in others:
                out.append(_left_out(sid, o, why))
            st = _stats(chosen)
            tp = chosen.timepoint
            row.update(time=chosen.time, days=tp.days if tp.defined else math.nan,
                       unit=chosen.unit)
            if arm is not None and j == 0:
                row["arm"] = arm
            if {"n", "total"} & set(chosen.assumed):
                flags.add("§")
            if {"unit", "definition"} & set(chosen.assumed):
                flags.add("‖")
            if is_prop:
                suffix = ("1" if j == 0 else "2") if comparative else ""
                if not _proportion_row(row, flags, st, chosen, s, unit, plan, assumed, pending,
                                       out, sid, chosen.outcome in op.complement, suffix):
                    ok = False
                    break
                continue
            if kind in ("absolute", "baseline") or comparative:
                if not _has(st, "n"):
                    out.append(_left_out(sid, chosen, "no n reported"))
                    ok = False
                    break
                local: list[str] = []
                m, sd, how = _mean_sd(st, st["n"], plan, sid, chosen.time, local)
                if m is None:
                    out.append(_left_out(sid, chosen, how))
                    ok = False
                    break
                notes.extend(local)
                if how == "median-as-mean":
                    flags.add("‡")
                elif how != "reported":
                    flags.add("†")
                if comparative:  # two-group means (MD, SMD, ROM): one arm's mean, SD and n
                    sfx = "1" if j == 0 else "2"
                    row.update({f"mean{sfx}": m, f"sd{sfx}": sd, f"n{sfx}": st["n"]})
                    if how != "reported":
                        row["assumption"] = "; ".join(x for x in (row["assumption"], how) if x)
                    continue
                row.update(mean=m, sd=sd, n=st["n"], ni=st["n"],
                           assumption="" if how == "reported" else how)
                continue
            base = [o for o in records if o.timepoint.kind == "baseline"]
            if not base:
                out.append(_left_out(sid, chosen, "no baseline record for the change from baseline"))
                ok = False
                break
            b = base[0]
            sb = _stats(b)
            if not _has(st, "n") or not _has(sb, "n"):
                out.append(_left_out(sid, chosen, "no n reported"))
                ok = False
                break
            n = min(st["n"], sb["n"])
            local = []
            m0, s0, how0 = _mean_sd(sb, sb["n"], plan, sid, b.time, local)
            if m0 is None:
                out.append(_left_out(sid, chosen, f"baseline {how0}"))
                ok = False
                break
            m1, s1, how1 = _mean_sd(st, st["n"], plan, sid, chosen.time, local)
            if m1 is None:
                out.append(_left_out(sid, chosen, how1))
                ok = False
                break
            notes.extend(local)
            conv = sorted({h for h in (how0, how1) if h != "reported"})
            if "n" in b.assumed:
                flags.add("§")
            if {"unit", "definition"} & set(b.assumed):
                flags.add("‖")
            if "median-as-mean" in conv:
                flags.add("‡")
            if set(conv) - {"median-as-mean"}:
                flags.add("†")
            row.update(mean_pre=m0, sd_pre=s0, mean_post=m1, sd_post=s1, n=n, ni=n,
                       baseline_time=b.time, assumption="; ".join(conv))
            if st["n"] != sb["n"]:
                notes.append(f"{sid} ({chosen.time}): n = {n:g}, the smaller of the baseline "
                             f"({sb['n']:g}) and follow-up ({st['n']:g}) counts")
        if not ok:
            continue
        if is_prop:
            row["ni"] = row["total1"] + row["total2"] if comparative else row["total"]
        elif comparative:
            row["ni"] = row["n1"] + row["n2"]
        row["flags"] = "".join(m for m in FLAG_MARKS if m in flags)
        inc.append(row)
    inc = _apply_overlap(inc, out, plan, reps, labels, notes)
    cols = ["study", "label", "arm", "time", "days", "unit", "overlap_group", "modality", "ni",
            "assumption", "flags"]
    stat_cols = (["events1", "total1", "events2", "total2"] if measure in COMPARATIVE_COUNTS else
                 ["mean1", "sd1", "n1", "mean2", "sd2", "n2"] if comparative else
                 ["events", "total"] if is_prop else
                 ["mean", "sd", "n"] if measure == "MN" else
                 ["baseline_time", "mean_pre", "sd_pre", "mean_post", "sd_post", "n"])
    included = pd.DataFrame(inc, columns=cols + stat_cols).sort_values("study", kind="stable")
    excluded = pd.DataFrame(out, columns=["study", "time", "arm", "reason"])
    return Selection(included.reset_index(drop=True), excluded, tuple(dict.fromkeys(notes)),
                     tuple(pending))
