"""Risk-of-bias ratings: read from the study records, validated, tabulated and weighted.

A study record carries its ratings in a ``risk_of_bias`` block (format in
``docs/submission.md``)::

    risk_of_bias:
      tool: minors
      note: the example's ratings, judged from the abstract only
      domains:
        aim: {judgement: 2, reason: "aim stated: pain relief and local control"}
        consecutive: {judgement: 0, reason: "not stated"}
        ...
      overall: {judgement: high, reason: "..."}    # optional: overrides the tool's rule

Every domain of the tool that applies to the study (comparative-only items of
MINORS only for studies with two or more arms) needs a judgement the tool
allows and a reason; :func:`check_ratings` returns one
:class:`~metaanalysis.errors.Problem` per bad entry, naming the study and the
domain, and :func:`rob_table` raises them as a
:class:`~metaanalysis.errors.StudyFileError` (exit status 2 on the command line).

The tables follow robvis (McGuinness & Higgins 2021, Res Synth Methods
12:55-61): one row per study, one column per domain, ``Overall`` and
``Weight``.

Examples
--------
>>> import pandas as pd
>>> t = pd.DataFrame({"Study": ["A", "B"], "randomisation": ["Low", "High"],
...                   "deviations": ["Low", "Some concerns"], "missing_data": ["Low", "Low"],
...                   "measurement": ["Low", "Low"], "reporting": ["Low", "Low"]})
>>> list(rob_levels(t, "rob2")["Overall"])
['low', 'high']
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from metaanalysis.errors import InputError, Problem, StudyFileError
from metaanalysis.review.rob_tools import (
    HIGH_RISK,
    LEVELS,
    TOOLS,
    Tool,
    allowed,
    allowed_text,
    normalise,
)

__all__ = ["check_ratings", "get_tool", "high_risk_share", "high_risk_studies", "rob_levels",
           "rob_ratings", "rob_table"]


def get_tool(tool) -> Tool:
    """The :class:`~metaanalysis.review.rob_tools.Tool` named ``tool`` (or ``tool`` itself).

    >>> get_tool("ROBINS-I").label
    'ROBINS-I'
    """
    if isinstance(tool, Tool):
        return tool
    key = str(tool).lower().replace("-", "_").replace(" ", "_")
    key = {"rob_2": "rob2", "robinsi": "robins_i", "jbi": "jbi_case_series",
           "newcastle_ottawa": "nos"}.get(key, key)
    if key not in TOOLS:
        raise InputError(f"tool: got {tool!r}; expected one of {', '.join(TOOLS)}")
    return TOOLS[key]


def _comparative(study) -> bool:
    return len(getattr(study, "arms", None) or {}) >= 2


def _block(study):
    return getattr(study, "risk_of_bias", None)


def check_ratings(studies, tools: Sequence[str] | str | None = None,
                  require: bool = False) -> list[Problem]:
    """Problems in the ``risk_of_bias`` blocks of ``studies`` (empty list: all valid).

    Parameters
    ----------
    studies : StudySet or iterable of Study
    tools : str or sequence of str, optional
        The tools the plan allows (``None``: any known tool).
    require : bool
        A study without ratings is a problem too.

    Returns
    -------
    list of Problem
        Each names the study file, the study and ``risk_of_bias/...`` field.
    """
    allowed_tools = None if tools is None else [get_tool(t).name for t in (
        [tools] if isinstance(tools, str) else tools)]
    out: list[Problem] = []
    for s in studies:
        def bad(fld, msg, s=s):
            out.append(Problem(getattr(s, "file", ""), s.id, f"risk_of_bias/{fld}".rstrip("/"),
                               msg))

        block = _block(s)
        if block is None:
            if require:
                bad("", "missing; the plan asks for risk-of-bias ratings of every study "
                    f"({', '.join(allowed_tools or TOOLS)})")
            continue
        if not isinstance(block, Mapping):
            bad("", f"got {block!r}; expected a mapping with tool, domains and a reason per domain")
            continue
        for key in block:
            if key not in ("tool", "note", "domains", "overall"):
                bad(str(key), "unknown key; expected tool, note, domains, overall")
        name = block.get("tool")
        try:
            tool = get_tool(name)
        except InputError:
            bad("tool", f"got {name!r}; expected one of {', '.join(allowed_tools or TOOLS)}")
            continue
        if allowed_tools is not None and tool.name not in allowed_tools:
            bad("tool", f"got {name!r}; the plan names {', '.join(allowed_tools)}")
            continue
        doms = block.get("domains")
        if not isinstance(doms, Mapping):
            bad("domains", f"got {doms!r}; expected a mapping of domain to "
                "{judgement, reason}")
            continue
        comparative = _comparative(s)
        wanted = {d.key for d in tool.domains_for(comparative)}
        known = set(tool.domain_keys)
        for key, entry in doms.items():
            where = f"domains.{key}"
            if key not in known:
                bad(where, f"unknown domain of {tool.label}; expected one of "
                    f"{', '.join(tool.domain_keys)}")
                continue
            if key not in wanted:
                bad(where, f"applies to comparative studies only ({tool.label}); this study "
                    "has fewer than two arms")
                continue
            if not isinstance(entry, Mapping) or "judgement" not in entry:
                bad(where, f"got {entry!r}; expected {{judgement: ..., reason: TEXT}}")
                continue
            j = entry["judgement"]
            if not allowed(tool, key, j):
                bad(where, f"judgement {j!r} is not allowed by {tool.label}; expected "
                    f"{allowed_text(tool, key)}")
            reason = entry.get("reason")
            if not isinstance(reason, str) or not reason.strip():
                bad(where, "reason missing; every judgement needs its justification")
            for extra in set(entry) - {"judgement", "reason"}:
                bad(f"{where}.{extra}", "unknown key; expected judgement and reason")
        for key in sorted(wanted - set(doms), key=tool.domain_keys.index):
            bad(f"domains.{key}", f"missing; {tool.label} rates every domain "
                f"({', '.join(d.key for d in tool.domains_for(comparative))})")
        ov = block.get("overall")
        if ov is not None:
            if not isinstance(ov, Mapping) or "judgement" not in ov:
                bad("overall", f"got {ov!r}; expected {{judgement: LEVEL, reason: TEXT}}")
            else:
                if _overall_level(tool, ov["judgement"]) is None:
                    bad("overall", f"judgement {ov['judgement']!r} is not allowed; expected "
                        f"one of {', '.join(LEVELS[:5])}")
                if not isinstance(ov.get("reason"), str) or not ov["reason"].strip():
                    bad("overall", "reason missing; an overall judgement that replaces the "
                        "tool's rule needs its justification")
    return out


def _overall_level(tool: Tool, judgement) -> str | None:
    j = normalise(judgement)
    if isinstance(j, str) and j in LEVELS:
        return j
    if j in tool.judgements and isinstance(j, str):
        return tool.judgements[j]
    return None


def rob_ratings(studies, tools=None, labels: Mapping | None = None) -> pd.DataFrame:
    """Long table of every rating: one row per study and domain, plus one ``overall`` row.

    Columns: ``study`` (id), ``label`` (``labels[id]``, default first author and
    year), ``tool``, ``domain`` (key), ``code``
    (``D1``...), ``domain_text``, ``judgement`` (as recorded), ``level`` (common
    level), ``reason``.  Studies without ratings are left out.

    Raises
    ------
    StudyFileError
        When any block is invalid (:func:`check_ratings`).
    """
    problems = check_ratings(studies, tools)
    if problems:
        raise StudyFileError(problems)
    if labels is None:
        from metaanalysis.records.labels import display_labels

        labels = display_labels(studies)
    labels = dict(labels)
    rows = []
    for s in studies:
        block = _block(s)
        if block is None:
            continue
        tool = get_tool(block["tool"])
        doms = block["domains"]
        lab = labels.get(s.id, s.id)
        applicable = tool.domains_for(_comparative(s))
        judgements = {}
        for i, d in enumerate(tool.domains, 1):
            if d not in applicable:
                continue
            e = doms[d.key]
            judgements[d.key] = e["judgement"]
            rows.append({"study": s.id, "label": lab, "tool": tool.name, "domain": d.key,
                         "code": f"D{i}", "domain_text": d.text, "judgement": e["judgement"],
                         "level": tool.level(e["judgement"]), "reason": e["reason"].strip()})
        ov = block.get("overall")
        if ov is not None:
            level, reason = _overall_level(tool, ov["judgement"]), ov["reason"].strip()
        else:
            level = tool.overall(judgements, _comparative(s))
            reason = f"{tool.label} rule: {tool.rule_text}"
        rows.append({"study": s.id, "label": lab, "tool": tool.name, "domain": "overall",
                     "code": "Overall", "domain_text": "Overall", "judgement": level,
                     "level": level, "reason": reason})
    return pd.DataFrame(rows, columns=["study", "label", "tool", "domain", "code", "domain_text",
                                       "judgement", "level", "reason"])


def rob_table(studies, tool=None, labels: Mapping | None = None,
              weights: Mapping | None = None) -> pd.DataFrame:
    """Wide risk-of-bias table of one tool, as robvis takes it.

    Parameters
    ----------
    studies : StudySet or iterable of Study
        Studies with ``risk_of_bias`` blocks (others are left out).
    tool : str, optional
        Which tool's ratings to tabulate; default: the tool of the first rated study.
    labels : mapping, optional
        Study id -> display label (``Study`` column); default first author and year.
    weights : mapping, optional
        Study id -> weight (``Weight`` column, e.g. patients); default: patients.

    Returns
    -------
    DataFrame
        ``Study``, ``id``, one column per domain key (judgements as recorded;
        ``NaN`` where a domain does not apply), ``Overall`` (common level) and
        ``Weight``; ``attrs["tool"]`` is the tool name.

    Examples
    --------
    >>> import metaanalysis as ma
    >>> t = ma.rob_table(ma.load_studies("studies"))   # doctest: +SKIP
    """
    long = rob_ratings(studies, labels=labels)
    if not len(long):
        raise InputError("studies: no study carries a risk_of_bias block")
    t = get_tool(tool if tool is not None else long["tool"].iloc[0])
    long = long[long["tool"] == t.name]
    ids = list(dict.fromkeys(long["study"]))
    sizes = {s.id: s.patients for s in studies}
    rows = []
    for sid in ids:
        part = long[long["study"] == sid].set_index("domain")
        row = {"Study": part["label"].iloc[0], "id": sid}
        for d in t.domains:
            row[d.key] = part.loc[d.key, "judgement"] if d.key in part.index else np.nan
        row["Overall"] = part.loc["overall", "level"]
        w = weights.get(sid) if weights is not None else sizes.get(sid)
        row["Weight"] = np.nan if w is None else float(w)
        rows.append(row)
    df = pd.DataFrame(rows)
    if df[[d.key for d in t.domains]].isna().all().any():
        df = df.drop(columns=[d.key for d in t.domains if df[d.key].isna().all()])
    df.attrs["tool"] = t.name
    return df


def rob_levels(table: pd.DataFrame, tool=None) -> pd.DataFrame:
    """The common level of every cell of a wide table (``Overall`` computed when absent).

    Domain columns are those named by the tool's domain keys; a robvis-style
    table with other column names (``D1``, ``D2``...) is read in order.  Cells
    that are empty (NaN) are ``not applicable``.

    Raises
    ------
    InputError
        A judgement the tool does not allow, naming the study and the domain.
    """
    t = get_tool(tool if tool is not None else table.attrs.get("tool", "rob2"))
    cols = domain_columns(table, t)
    out = pd.DataFrame({"Study": table["Study"].astype(str).to_numpy()})
    for col, key in cols.items():
        vals = []
        for study, v in zip(out["Study"], table[col]):
            if v is None or (isinstance(v, float) and np.isnan(v)):
                vals.append("not applicable")
                continue
            if not allowed(t, key, v):
                raise InputError(f"{study}: {col}: judgement {v!r} is not allowed by {t.label}; "
                                 f"expected {allowed_text(t, key)}")
            vals.append(t.level(v))
        out[col] = vals
    if "Overall" in table.columns:
        ov = []
        for study, v in zip(out["Study"], table["Overall"]):
            lv = _overall_level(t, v)
            if lv is None:
                raise InputError(f"{study}: Overall: judgement {v!r} is not allowed; expected "
                                 f"one of {', '.join(LEVELS[:5])}")
            ov.append(lv)
        out["Overall"] = ov
    else:
        ov = []
        for _, r in table.iterrows():
            present = {key: r[col] for col, key in cols.items()
                       if not (isinstance(r[col], float) and np.isnan(r[col]))}
            comparative = any(d.comparative_only and d.key in present for d in t.domains)
            ov.append(t.overall(present, comparative))
        out["Overall"] = ov
    if "Weight" in table.columns:
        out["Weight"] = table["Weight"].to_numpy(float)
    out.attrs["tool"] = t.name
    return out


def domain_columns(table: pd.DataFrame, tool) -> dict:
    """``{column: domain key}`` of the domain columns of a wide table."""
    t = get_tool(tool)
    skip = {"Study", "id", "Overall", "Weight"}
    named = [c for c in table.columns if c in t.domain_keys]
    if named:
        return {c: c for c in named}
    others = [c for c in table.columns if c not in skip]
    if len(others) > len(t.domains):
        raise InputError(f"table: {len(others)} domain columns ({', '.join(map(str, others))}); "
                         f"{t.label} has {len(t.domains)} domains")
    return dict(zip(others, t.domain_keys))


def high_risk_studies(table: pd.DataFrame, tool=None) -> list[str]:
    """Studies (``id`` column, else ``Study``) whose overall level is high or critical."""
    lv = rob_levels(table, tool)
    who = table["id"] if "id" in table.columns else table["Study"]
    return [str(s) for s, o in zip(who, lv["Overall"]) if o in HIGH_RISK]


def high_risk_share(studies: Sequence[str], weights, overall: Mapping) -> tuple[float, float]:
    """Share of the weight from studies at high risk, and the share without ratings.

    Parameters
    ----------
    studies : sequence of str
        Study ids (or labels) of one analysis.
    weights : sequence of float
        Their weights (any scale; NaN counts as 0).
    overall : mapping
        Study -> overall level (from :func:`rob_levels`/:func:`rob_ratings`).

    Examples
    --------
    >>> high_risk_share(["a", "b", "c"], [50, 30, 20], {"a": "high", "b": "low"})
    (0.5, 0.2)
    """
    w = np.nan_to_num(np.asarray(weights, float))
    total = w.sum()
    if total <= 0:
        return float("nan"), float("nan")
    high = sum(wi for s, wi in zip(studies, w) if overall.get(s) in HIGH_RISK)
    missing = sum(wi for s, wi in zip(studies, w) if s not in overall)
    return float(high / total), float(missing / total)
