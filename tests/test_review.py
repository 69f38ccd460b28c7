"""Table 1, risk-of-bias ratings and tools, GRADE rules (metaanalysis.review).

Overall rules are checked against the tools' own papers: ROBINS-I (Sterne 2016,
BMJ 355:i4919, table 3), RoB 2 (Sterne 2019, BMJ 366:l4898, table 2), NOS with
the AHRQ thresholds; MINORS and JBI bands are the conventions stated in
metaanalysis.review.rob_tools.
"""

import math
import textwrap

import numpy as np
import pandas as pd
import pytest

import metaanalysis as ma
from metaanalysis.errors import InputError, StudyFileError
from metaanalysis.review.grade import GradeSettings, outcome_row, sof_display
from metaanalysis.review.rob import check_ratings, high_risk_share, rob_levels
from metaanalysis.review.rob_tools import TOOLS

MINORS8 = TOOLS["minors"].domains_for(False)


def _minors_block(scores, tool="minors"):
    lines = [f"    {d.key}: {{judgement: {s}, reason: \"from the abstract\"}}"
             for d, s in zip(MINORS8, scores)]
    return f"risk_of_bias:\n  tool: {tool}\n  domains:\n" + "\n".join(lines) + "\n"


def _study(sid, patients, rob="", extra=""):
    return textwrap.dedent(f"""\
        id: {sid}
        citation: {sid[:-4].capitalize()} et al. 2020, J Test 1:1
        doi: 10.1/{sid}
        source: abstract
        design: retrospective
        patients: {patients}
        outcomes:
          - {{outcome: pain_vas, time: pre-procedure, unit: patients, n: {patients}, mean: 7, sd: 1}}
          - {{outcome: pain_vas, time: 1 month, unit: patients, n: {patients}, mean: 2, sd: 1}}
        """) + extra + rob


@pytest.fixture
def folder(tmp_path):
    (tmp_path / "alpha2020.yaml").write_text(_study("alpha2020", 40, _minors_block(
        [2, 1, 0, 2, 0, 2, 1, 0])))  # 8 of 16: high
    (tmp_path / "beta2020.yaml").write_text(_study("beta2020", 60, _minors_block(
        [2, 2, 1, 2, 1, 2, 2, 0])))  # 12 of 16: some concerns
    (tmp_path / "gamma2020.yaml").write_text(_study("gamma2020", 100, _minors_block(
        [2, 2, 2, 2, 1, 2, 2, 0])))  # 13 of 16: low
    return tmp_path


def test_rob_table_overall_by_minors_bands(folder):
    s = ma.load_studies(folder)
    t = ma.rob_table(s)
    assert t.attrs["tool"] == "minors"
    assert list(t["Study"]) == ["Alpha 2020", "Beta 2020", "Gamma 2020"]
    assert list(t["Overall"]) == ["high", "some concerns", "low"]
    assert list(t["Weight"]) == [40.0, 60.0, 100.0]  # patients by default
    # comparative-only items do not apply to single-arm studies
    assert "control_group" not in t.columns
    long = ma.rob_ratings(s)
    assert set(long["code"]) == {f"D{i}" for i in range(1, 9)} | {"Overall"}
    assert long.loc[long["study"].eq("alpha2020") & long["domain"].eq("overall"),
                    "reason"].iloc[0].startswith("MINORS rule: total score ≤ 50%")


@pytest.mark.parametrize(("edit", "message"), [
    ("judgement: 2, reason: \"from the abstract\"}", None),
    ("judgement: good, reason: \"x\"}", "risk_of_bias/domains.aim: judgement 'good' is not "
     "allowed by MINORS; expected 0, 1, 2"),
    ("judgement: 2}", "risk_of_bias/domains.aim: reason missing; every judgement needs its "
     "justification"),
])
def test_bad_ratings_name_study_and_domain(folder, edit, message):
    f = folder / "alpha2020.yaml"
    text = f.read_text().replace("judgement: 2, reason: \"from the abstract\"}", edit, 1)
    f.write_text(text)
    problems = check_ratings(ma.load_studies(folder), "minors")
    if message is None:
        assert problems == []
        return
    assert [str(p).split(": ", 1)[1] for p in problems] == [f"alpha2020/{message}"]
    with pytest.raises(StudyFileError, match="alpha2020"):
        ma.rob_table(ma.load_studies(folder))


def test_missing_unknown_domains_and_wrong_tool(folder):
    f = folder / "beta2020.yaml"
    text = f.read_text()
    text = text.replace("    study_size:", "    sample_size:")
    f.write_text(text)
    msgs = [str(p) for p in check_ratings(ma.load_studies(folder), "minors")]
    assert any("beta2020/risk_of_bias/domains.sample_size: unknown domain of MINORS" in m
               for m in msgs)
    assert any("beta2020/risk_of_bias/domains.study_size: missing" in m for m in msgs)
    msgs = [str(p) for p in check_ratings(ma.load_studies(folder), "rob2")]
    assert sum("risk_of_bias/tool: got 'minors'; the plan names rob2" in m for m in msgs) == 3
    msgs = [str(p) for p in check_ratings(ma.load_studies(folder), None, require=True)]
    assert len(msgs) == 2  # the two remaining errors; every study is rated


def test_comparative_items_for_multi_arm_studies(tmp_path):
    arms = ("arms:\n  a: {patients: 20}\n  b: {patients: 20}\n")
    block = _minors_block([2] * 8)
    (tmp_path / "two2020.yaml").write_text(_study("two2020", 40, block, arms))
    msgs = [str(p) for p in check_ratings(ma.load_studies(tmp_path))]
    assert any("two2020/risk_of_bias/domains.control_group: missing" in m for m in msgs)


def test_overall_rules_of_each_tool():
    rob2 = TOOLS["rob2"]
    assert rob2.overall(dict.fromkeys(rob2.domain_keys, "low")) == "low"
    assert rob2.overall({**dict.fromkeys(rob2.domain_keys, "low"),
                         "reporting": "Some concerns"}) == "some concerns"
    assert rob2.overall({**dict.fromkeys(rob2.domain_keys, "some concerns"),
                         "deviations": "high"}) == "high"
    ri = TOOLS["robins_i"]
    base = dict.fromkeys(ri.domain_keys, "low")
    assert ri.overall({**base, "confounding": "moderate"}) == "some concerns"
    assert ri.overall({**base, "missing_data": "no information"}) == "no information"
    assert ri.overall({**base, "missing_data": "no information",
                       "confounding": "serious"}) == "high"
    assert ri.overall({**base, "confounding": "critical", "selection": "serious"}) == "critical"
    jbi = TOOLS["jbi_case_series"]
    ans = dict.fromkeys(jbi.domain_keys, "yes")
    assert jbi.overall(ans) == "low"
    assert jbi.overall({**ans, **dict.fromkeys(jbi.domain_keys[:4], "no")}) == "some concerns"
    assert jbi.overall({**ans, **dict.fromkeys(jbi.domain_keys[:5], "unclear")}) == \
        "some concerns"  # 5 of 10 yes
    assert jbi.overall({**ans, **dict.fromkeys(jbi.domain_keys[:6], "no")}) == "high"
    # not applicable items leave the denominator: 7 yes of 9 applicable = 78%
    assert jbi.overall({**ans, "statistics": "not applicable",
                        **dict.fromkeys(jbi.domain_keys[:2], "no")}) == "low"
    nos = TOOLS["nos"]
    stars = dict(zip(nos.domain_keys, [1, 1, 1, 0, 2, 1, 1, 0]))
    assert nos.overall(stars) == "low"  # 3 selection, 2 comparability, 2 outcome: good
    assert nos.overall({**stars, "exposure": 0}) == "some concerns"  # 2 selection: fair
    assert nos.overall({**stars, "comparability": 0}) == "high"  # poor


def test_rob_levels_reads_robvis_style_tables():
    t = pd.DataFrame({"Study": ["A", "B"], "D1": ["Low", "Serious"], "D2": ["Low", "Low"],
                      "D3": ["Moderate", "Low"], "D4": ["Low", "Low"], "D5": ["Low", "Low"],
                      "D6": ["Low", "Low"], "D7": ["Low", "Critical"]})
    lv = rob_levels(t, "ROBINS-I")
    assert list(lv["Overall"]) == ["some concerns", "critical"]
    assert list(lv["D1"]) == ["low", "high"]
    with pytest.raises(InputError, match="9 domain columns"):
        rob_levels(t.assign(D8="Low", D9="Low"), "robins_i")


def test_high_risk_share():
    assert high_risk_share(["a", "b"], [75, 25], {"a": "critical", "b": "low"}) == (0.75, 0.0)
    share, missing = high_risk_share(["a", "b"], [np.nan, 10], {"b": "high"})
    assert (share, missing) == (1.0, 0.0)


def test_study_table_of_the_shipped_studies():
    s = ma.load_studies("studies")
    t = ma.study_table(s)
    assert len(t) == len(s)
    row = t.set_index("id").loc["chen2022"]
    assert row["Study"] == "Chen 2022"
    assert row["DOI"] == "10.3174/ajnr.A7415"
    assert row["Patients"] == "91" and row["Lesions"].startswith("140")
    assert row["Modality"] == "MWA" and row["Pain scale"] == "VAS 0-10"
    assert row["Follow-up"] == "6 months" and row["Augmented"] == "all"
    assert row["Overlap group"] == "tengzhou (probable)"
    assert t.set_index("id").loc["jvir2014", "Augmented"] == "9 of 20 tumours"
    assert t.set_index("id").loc["wang2022", "Period"] == "NR"
    assert row["Source"] == "abstract"
    liu = t.set_index("id").loc["liu2023"]
    assert liu["Patients"] == "28 vs 30"  # per arm
    assert {"NR, not reported", "VAS, visual analogue scale", "NRS, numeric rating scale",
            "BPI, Brief Pain Inventory", "RFA, radiofrequency ablation"} <= set(t.attrs["notes"])


# ---------------------------------------------------------------- GRADE

def _row(**kw):
    base = dict(outcome="pain", k=5, n=300, measure="MC", estimate=4.8, ci_lb=4.0, ci_ub=5.6,
                pi_lb=3.0, pi_ub=6.6, tau2=0.5, i2=60.0, studies=list("abcde"),
                weights=[20.0] * 5)
    base.update(kw)
    return base


def test_grade_domains_from_the_rules():
    sof = ma.summary_of_findings([_row()], rob={"a": "high", "b": "high", "c": "high",
                                                "d": "low", "e": "low"})
    r = sof.iloc[0]
    assert r["risk_of_bias"] == "serious" and r["risk_of_bias_reason"].startswith(
        "60.0% of the weight from studies at high risk of bias (a, b, c)")
    assert r["inconsistency"] == "serious"  # I² 60% >= 50%, PI/CI = 2.25 < 3
    assert "PI 3.00 to 6.60 is 2.3 × as wide as the CI" in r["inconsistency_reason"]
    assert r["indirectness"] == "not serious"
    assert r["imprecision"] == "serious"  # n 300 < default OIS 400
    assert "optimal information size 400 (GRADE rule of thumb" in r["imprecision_reason"]
    assert r["publication_bias"] == "not assessable"
    assert r["downgrade"] == 3 and r["certainty"] == "very low"
    assert r["certainty_symbol"] == "⊕◯◯◯ VERY LOW"


def test_grade_thresholds_overrides_and_start():
    s = GradeSettings(design="randomised",
                      imprecision={"pain": {"ci_width": 1.0}},
                      indirectness={"pain": ("serious", "population includes myeloma")},
                      overrides={("pain", "inconsistency"): ("not serious", "all PI above MID")})
    r = ma.summary_of_findings([_row(i2=80.0, pi_lb=1.0, pi_ub=8.6)], settings=s).iloc[0]
    assert r["inconsistency"] == "not serious"
    assert r["inconsistency_reason"] == ("all PI above MID (plan override; rule: very serious)")
    assert r["indirectness"] == "serious" and "myeloma" in r["indirectness_reason"]
    # CI width 1.6 > 1.0 but < 2.0: serious
    assert r["imprecision"] == "serious"
    assert r["imprecision_reason"].startswith("CI width 1.6 > 1.0 (plan threshold)")
    assert r["risk_of_bias"] == "not serious"  # no ratings given: said so
    assert "no risk-of-bias ratings" in r["risk_of_bias_reason"]
    assert r["certainty"] == "low"  # high - 2
    with pytest.raises(InputError, match="reason missing"):
        GradeSettings(overrides={("pain", "imprecision"): ("serious", " ")})
    with pytest.raises(InputError, match="judgement 'bad'"):
        GradeSettings(overrides={("pain", "imprecision"): ("bad", "x")})


def test_grade_publication_bias_and_proportions():
    row = _row(k=12, measure="PLO", estimate=0.3, ci_lb=0.25, ci_ub=0.36, pi_lb=0.2,
               pi_ub=0.42, i2=30.0, studies=list("abcdefghijkl"), weights=[1.0] * 12,
               egger_p=0.04, n=900)
    r = ma.summary_of_findings([row], settings=GradeSettings(
        imprecision={"pain": {"ci_width": 10}})).iloc[0]
    assert r["publication_bias"] == "strongly suspected"
    assert r["absolute"] == "30.0% (25.0% to 36.0%)"
    assert r["imprecision"] == "serious"  # 11 percentage points > 10
    assert r["inconsistency"] == "not serious"


def test_grade_from_results_and_relative_effects():
    res = ma.pool([0.1, 0.3, 0.2], [0.02, 0.03, 0.02], labels=["a", "b", "c"])
    row = outcome_row(res, outcome="x", n=120)
    assert row["weights"] == pytest.approx(list(res.weights))
    glmm = ma.pool_glmm([42, 32, 37], [140, 115, 85], labels=["a", "b", "c"])
    row = outcome_row(glmm, outcome="leakage")
    w = 1 / (np.asarray(glmm.vi) + glmm.tau2)
    assert row["weights"] == pytest.approx(list(100 * w / w.sum()))
    assert row["n"] == 340 and row["estimate"] == pytest.approx(1 / (1 + math.exp(
        -glmm.estimate)))
    rr = _row(measure="RR", estimate=0.25, ci_lb=0.08, ci_ub=0.77, control_risk=0.3)
    r = ma.summary_of_findings([rr]).iloc[0]
    assert r["relative"] == "RR 0.25 (0.08 to 0.77)"
    # 0.3 * (0.25 - 1) = -0.225 -> 225 fewer per 1000
    assert r["absolute"].startswith("−225 per 1000 (−276 to −69)")


def test_sof_display_footnotes():
    sof = ma.summary_of_findings([_row()], rob={"a": "high", "b": "high", "c": "high"})
    disp = sof_display(sof)
    notes = disp.attrs["notes"]
    assert disp.loc[0, "Risk of bias"] == "serious a"
    assert notes[0].startswith("a. Risk of bias: 60.0% of the weight")
    assert disp.loc[0, "Certainty"] == "⊕◯◯◯ VERY LOW"
    assert "Relative effect (CI)" not in disp.columns


def test_summary_of_findings_with_nothing_pooled():
    sof = ma.summary_of_findings([])
    assert len(sof) == 0 and "certainty" in sof.columns and "risk_of_bias_reason" in sof.columns
    disp = sof_display(sof)
    assert len(disp) == 0 and "Certainty" in disp.columns and disp.attrs["notes"] == []
