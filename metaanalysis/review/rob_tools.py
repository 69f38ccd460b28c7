"""Risk-of-bias tools: their domains, allowed judgements and overall rules.

Each tool is a frozen :class:`Tool`: its domains (key, short label ``D1`` ...,
full text as the tool words it), the judgements a domain may take and the
common level each maps to, and the rule giving the study's overall judgement.

Common levels (used for colours, weighting and the "high risk" rule):
``low``, ``some concerns``, ``high``, ``critical``, ``no information`` and
``not applicable``.  A study is *at high risk* when its overall level is
``high`` or ``critical``.

=================  =======================================  ==============================
tool               judgements per domain                    overall
=================  =======================================  ==============================
``minors``         0, 1, 2 (Slim 2003)                      total score bands (below)
``jbi_case_series`` yes, no, unclear, not applicable        share of "yes" (below)
``robins_i``       low, moderate, serious, critical,        worst domain (Sterne 2016)
                   no information
``nos``            stars (0-1; comparability 0-2)           AHRQ thresholds
``rob2``           low, some concerns, high                 Sterne 2019 algorithm
=================  =======================================  ==============================

MINORS and JBI give no overall judgement of their own; the bands used here are
the conventions most reviews state: MINORS total ≤ 50% of the maximum (≤ 8 of
16 for non-comparative studies) *high*, ≤ 75% (9-12 of 16) *some concerns*,
above *low*; JBI "yes" on ≥ 70% of the applicable items *low*, 50-69% *some
concerns*, < 50% *high*.  A record may state its own overall judgement with a
reason (see :mod:`metaanalysis.review.rob`).

Examples
--------
>>> TOOLS["rob2"].domain_keys
('randomisation', 'deviations', 'missing_data', 'measurement', 'reporting')
>>> TOOLS["robins_i"].overall({"confounding": "serious", "selection": "low"})
'high'
"""

from __future__ import annotations

import numbers
from collections.abc import Callable, Mapping
from dataclasses import dataclass

LEVELS = ("low", "some concerns", "high", "critical", "no information", "not applicable")
#: levels at which a study counts as "at high risk of bias"
HIGH_RISK = ("high", "critical")
_SEVERITY = {"low": 0, "some concerns": 1, "no information": 1, "high": 2, "critical": 3}


@dataclass(frozen=True)
class Domain:
    """One domain (item) of a tool: ``key`` in the records, ``text`` as the tool words it."""

    key: str
    text: str
    comparative_only: bool = False


@dataclass(frozen=True)
class Tool:
    """A risk-of-bias tool: domains, judgements and the overall rule."""

    name: str
    label: str
    reference: str
    domains: tuple[Domain, ...]
    judgements: Mapping  # allowed judgement (as written in the records) -> level
    overall_rule: Callable  # (tool, {domain key: judgement}, comparative) -> level
    rule_text: str
    level_names: Mapping  # level -> how the tool names it (legend text)

    @property
    def domain_keys(self) -> tuple[str, ...]:
        return tuple(d.key for d in self.domains)

    def domains_for(self, comparative: bool) -> tuple[Domain, ...]:
        """The domains that apply to a comparative or a single-arm study."""
        return tuple(d for d in self.domains if comparative or not d.comparative_only)

    def level(self, judgement) -> str:
        """Common level of one allowed judgement (KeyError if not allowed)."""
        return self.judgements[normalise(judgement)]

    def overall(self, ratings: Mapping, comparative: bool = False) -> str:
        """Overall level from ``{domain key: judgement}`` by the tool's rule."""
        return self.overall_rule(self, {k: normalise(v) for k, v in ratings.items()},
                                 comparative)


def normalise(judgement):
    """Judgements compare case- and spacing-insensitively; numbers stay numbers.

    >>> normalise("Some  Concerns"), normalise(2), normalise(True)
    ('some concerns', 2, 'yes')
    """
    if isinstance(judgement, bool):  # YAML reads a bare yes/no as a boolean
        return "yes" if judgement else "no"
    if isinstance(judgement, numbers.Real):
        x = float(judgement)
        return int(x) if x.is_integer() else x
    return " ".join(str(judgement).lower().replace("_", " ").split())


def _score_bands(tool: Tool, r: Mapping, comparative: bool) -> str:
    domains = tool.domains_for(comparative)
    total = sum(int(r[d.key]) for d in domains)
    top = 2 * len(domains)
    if total <= 0.5 * top:
        return "high"
    return "some concerns" if total <= 0.75 * top else "low"


def _share_yes(tool: Tool, r: Mapping, comparative: bool) -> str:
    used = [v for v in r.values() if v != "not applicable"]
    if not used:
        return "no information"
    share = sum(v == "yes" for v in used) / len(used)
    if share >= 0.7:
        return "low"
    return "some concerns" if share >= 0.5 else "high"


def _robins_i(tool: Tool, r: Mapping, comparative: bool) -> str:
    levels = [tool.judgements[v] for v in r.values()]
    if "critical" in levels:
        return "critical"
    if "high" in levels:
        return "high"
    if "no information" in levels:
        return "no information"
    return "some concerns" if "some concerns" in levels else "low"


def _rob2(tool: Tool, r: Mapping, comparative: bool) -> str:
    levels = [tool.judgements[v] for v in r.values()]
    if "high" in levels:
        return "high"
    return "some concerns" if "some concerns" in levels else "low"


_NOS_DOMAINS = {"selection": ("representativeness", "non_exposed_selection", "exposure",
                              "outcome_absent_at_start"),
                "comparability": ("comparability",),
                "outcome": ("outcome_assessment", "follow_up_length", "follow_up_adequacy")}


def _nos(tool: Tool, r: Mapping, comparative: bool) -> str:
    stars = {dom: sum(int(r[k]) for k in keys) for dom, keys in _NOS_DOMAINS.items()}
    if stars["selection"] <= 1 or stars["comparability"] == 0 or stars["outcome"] <= 1:
        return "high"  # AHRQ "poor"
    if stars["selection"] >= 3:
        return "low"  # AHRQ "good"
    return "some concerns"  # AHRQ "fair"


_MINORS = (
    Domain("aim", "A clearly stated aim"),
    Domain("consecutive", "Inclusion of consecutive patients"),
    Domain("prospective", "Prospective collection of data"),
    Domain("endpoints", "Endpoints appropriate to the aim of the study"),
    Domain("unbiased_assessment", "Unbiased assessment of the study endpoint"),
    Domain("follow_up_period", "Follow-up period appropriate to the aim of the study"),
    Domain("loss_to_follow_up", "Loss to follow-up less than 5%"),
    Domain("study_size", "Prospective calculation of the study size"),
    Domain("control_group", "An adequate control group", True),
    Domain("contemporary_groups", "Contemporary groups", True),
    Domain("baseline_equivalence", "Baseline equivalence of groups", True),
    Domain("statistics", "Adequate statistical analyses", True),
)
_JBI = (
    Domain("inclusion_criteria", "Clear criteria for inclusion"),
    Domain("condition_measured", "Condition measured in a standard, reliable way"),
    Domain("condition_identified", "Valid methods used to identify the condition"),
    Domain("consecutive", "Consecutive inclusion of participants"),
    Domain("complete_inclusion", "Complete inclusion of participants"),
    Domain("demographics", "Clear reporting of participants' demographics"),
    Domain("clinical_information", "Clear reporting of participants' clinical information"),
    Domain("outcomes_reported", "Outcomes or follow-up results clearly reported"),
    Domain("site_demographics", "Clear reporting of the site(s)/clinic(s) demographics"),
    Domain("statistics", "Appropriate statistical analysis"),
)
_ROBINS_I = (
    Domain("confounding", "Bias due to confounding"),
    Domain("selection", "Bias in selection of participants into the study"),
    Domain("classification", "Bias in classification of interventions"),
    Domain("deviations", "Bias due to deviations from intended interventions"),
    Domain("missing_data", "Bias due to missing data"),
    Domain("measurement", "Bias in measurement of outcomes"),
    Domain("reporting", "Bias in selection of the reported result"),
)
_NOS = (
    Domain("representativeness", "Representativeness of the exposed cohort"),
    Domain("non_exposed_selection", "Selection of the non-exposed cohort"),
    Domain("exposure", "Ascertainment of exposure"),
    Domain("outcome_absent_at_start", "Outcome of interest not present at start of study"),
    Domain("comparability", "Comparability of cohorts (design or analysis)"),
    Domain("outcome_assessment", "Assessment of outcome"),
    Domain("follow_up_length", "Follow-up long enough for outcomes to occur"),
    Domain("follow_up_adequacy", "Adequacy of follow-up of cohorts"),
)
_ROB2 = (
    Domain("randomisation", "Bias arising from the randomisation process"),
    Domain("deviations", "Bias due to deviations from intended interventions"),
    Domain("missing_data", "Bias due to missing outcome data"),
    Domain("measurement", "Bias in measurement of the outcome"),
    Domain("reporting", "Bias in selection of the reported result"),
)

TOOLS: dict[str, Tool] = {
    "minors": Tool(
        "minors", "MINORS", "Slim et al. 2003, ANZ J Surg 73:712-716", _MINORS,
        {0: "high", 1: "some concerns", 2: "low"}, _score_bands,
        "total score ≤ 50% of the maximum (≤ 8 of 16 for non-comparative studies): high; "
        "≤ 75% (9-12 of 16): some concerns; above: low",
        {"low": "2: reported and adequate", "some concerns": "1: reported but inadequate",
         "high": "0: not reported"}),
    "jbi_case_series": Tool(
        "jbi_case_series", "JBI checklist for case series",
        "Munn et al. 2020, JBI Evid Synth 18:2127-2133", _JBI,
        {"yes": "low", "no": "high", "unclear": "no information",
         "not applicable": "not applicable"}, _share_yes,
        "'yes' on ≥ 70% of the applicable items: low; 50-69%: some concerns; < 50%: high",
        {"low": "Yes", "high": "No", "no information": "Unclear",
         "not applicable": "Not applicable"}),
    "robins_i": Tool(
        "robins_i", "ROBINS-I", "Sterne et al. 2016, BMJ 355:i4919", _ROBINS_I,
        {"low": "low", "moderate": "some concerns", "serious": "high", "critical": "critical",
         "no information": "no information"}, _robins_i,
        "the most severe domain judgement (critical > serious > no information > moderate > low)",
        {"low": "Low", "some concerns": "Moderate", "high": "Serious", "critical": "Critical",
         "no information": "No information"}),
    "nos": Tool(
        "nos", "Newcastle-Ottawa Scale (cohort)", "Wells et al., ohri.ca/programs/"
        "clinical_epidemiology/oxford.asp", _NOS,
        {0: "high", 1: "low", 2: "low"}, _nos,
        "AHRQ thresholds: good (low) = 3-4 selection, 1-2 comparability and 2-3 outcome stars; "
        "fair (some concerns) = 2 selection stars; poor (high) = 0-1 selection, 0 comparability "
        "or 0-1 outcome stars",
        {"low": "Star awarded", "high": "No star"}),
    "rob2": Tool(
        "rob2", "RoB 2", "Sterne et al. 2019, BMJ 366:l4898", _ROB2,
        {"low": "low", "some concerns": "some concerns", "high": "high"}, _rob2,
        "high if any domain is high; some concerns if any domain has some concerns; else low",
        {"low": "Low", "some concerns": "Some concerns", "high": "High"}),
}


def allowed_text(tool: Tool, domain: str | None = None) -> str:
    """The allowed judgements of ``tool`` (for one ``domain``) as text, for messages."""
    if tool.name == "nos":
        return "0, 1 or 2 stars" if domain == "comparability" else "0 or 1 star"
    return ", ".join(str(j) for j in tool.judgements)


def allowed(tool: Tool, domain: str, judgement) -> bool:
    """Whether ``judgement`` is allowed for ``domain`` of ``tool``."""
    j = normalise(judgement)
    if tool.name == "nos" and j == 2 and domain != "comparability":
        return False
    return j in tool.judgements


def severity(level: str) -> int:
    """Order of levels for "worst of": low 0, some concerns/no information 1, high 2, critical 3."""
    return _SEVERITY.get(level, -1)
