"""Study records: loading, the shipped example data set, StudySet.outcome."""

import dataclasses
import math
from pathlib import Path

import pytest

import metaanalysis as ma
from metaanalysis.errors import InputError, StudyFileError
from metaanalysis.records.studies import read_study_file

ROOT = Path(__file__).resolve().parents[1]
STUDIES = ROOT / "studies"
BAD = Path(__file__).resolve().parent / "data" / "bad_studies"


@pytest.fixture(scope="module")
def studies():
    return ma.load_studies(STUDIES)


# ------------------------------------------------------------- the example data set
# numbers below are from ../shared/domain/thermal-ablation-studies.md (abstract data)

IDS = ["bmcneurol2020", "chen2022", "fan2023", "jvir2014", "khan2018", "levy2020", "liu2023",
       "motaghi2022", "wallace2015", "wang2022", "wu2021", "zhang2024"]


def test_every_study_is_there(studies):
    assert studies.ids == IDS
    assert len(studies) == 12 and len(list(studies)) == 12
    for s in studies:
        assert s.source == "abstract"
        assert s.doi and s.doi.startswith("10.")
        assert s.modality in ("MWA", "RFA")
        for o in s.outcomes:
            assert o.unit in ("patients", "lesions")


def test_overlap_groups(studies):
    tz = {s.id for s in studies if s.overlap_group == "tengzhou"}
    assert tz == {"chen2022", "fan2023", "wang2022", "zhang2024"}
    assert studies["khan2018"].overlap_group == studies["motaghi2022"].overlap_group is not None
    assert studies["khan2018"].overlap_group != studies["wang2022"].overlap_group
    # Chen belongs to the Tengzhou group only probably: initials and wording, kept as evidence
    chen = studies["chen2022"]
    assert chen.overlap_membership == "probable"
    assert "Q.Y." in chen.overlap_evidence and "initials" in chen.overlap_evidence
    assert studies["wang2022"].overlap_membership == "established"
    assert studies["wu2021"].overlap_membership is None


def test_table_one_fields(studies):
    """design, period, modality, augmentation and share, scale, follow-up, attrition, source."""
    jv = studies["jvir2014"]
    assert (jv.augmented.count, jv.augmented.total, jv.augmented.fraction) == (9, 20, 0.45)
    assert str(jv.augmented) == "9 of 20 tumours"
    assert studies["chen2022"].augmented.fraction == 1.0
    assert studies["wallace2015"].augmented.fraction == 105 / 110
    assert studies["levy2020"].pain_scale.startswith("BPI")
    assert studies["khan2018"].period == "2015-01 to 2016-10"
    assert "8 of 69" in studies["khan2018"].attrition
    assert studies["liu2023"].arms["pvp"].modality == "none"
    assert studies["bmcneurol2020"].arms["rfa_cement"].modality == "RFA"
    assert studies["fan2023"].pmid == "37291501"
    assert studies["zhang2024"].country == "China"


@pytest.mark.parametrize("sid, words", [
    ("khan2018", ("myeloma", "sacral")), ("zhang2024", ("posterior-wall",)),
    ("wang2022", ("radiotherapy",)), ("wu2021", ("T1-T4",)), ("liu2023", ("NSCLC",)),
    ("motaghi2022", ("oligometastatic",)),
])
def test_population_notes(studies, sid, words):
    text = " ".join(studies[sid].population)
    for w in words:
        assert w in text


def test_assumed_units_and_definitions_carry_their_reason(studies):
    def rec(sid, name, arm=None):
        return next(o for o in studies[sid].outcomes if o.outcome == name and o.arm == arm)

    for sid, name, arm in [("liu2023", "cement_leakage", "mwa_pvp"),
                           ("liu2023", "local_progression", "pvp"),
                           ("wu2021", "cement_leakage", None), ("wu2021", "local_control", None),
                           ("khan2018", "complications_any", None),
                           ("khan2018", "ablation_time_s", None)]:
        o = rec(sid, name, arm)
        assert "unit" in o.assumed and o.assumed_reasons["unit"].strip()
    energy = rec("khan2018", "energy_kj")
    assert "definition" in energy.assumed and "median" in energy.assumed_reasons["definition"]
    assert "43.5%" in rec("wu2021", "cement_leakage").assumed_reasons["unit"]


def test_complications_split_by_definition_and_grade(studies):
    major = studies.outcome("complications_major").set_index("study")
    assert major.loc["zhang2024", "grade"] == "SIR class D (major)"
    assert major.loc["chen2022", "definition"] == "grade 3 neural injury"
    assert major.loc["jvir2014", "derived"] == "events"
    anyc = studies.outcome("complications_any").set_index("study")
    assert sorted(anyc.index) == ["jvir2014", "khan2018", "levy2020"]
    assert "complications" not in studies.outcomes()


def test_new_series_quoted_numbers(studies):
    fan = studies.outcome("morphine_mg_day", timepoint="24 weeks").set_index("study")
    assert (fan.loc["fan2023", "mean"], fan.loc["fan2023", "sd"]) == (17.27, 16.82)
    lk = studies.outcome("cement_leakage").set_index(["study", "arm"], drop=False)
    assert lk.loc[("fan2023", None), ["events", "total"]].tolist() == [25, 63]
    bmc = lk.loc["bmcneurol2020"].set_index("arm")
    assert bmc.loc["rfa_cement", ["events", "total"]].tolist() == [3, 47]
    assert bmc.loc["cement", ["events", "total"]].tolist() == [16, 78]
    nrs = studies.outcome("pain_nrs").set_index("time")
    assert nrs.loc["pre-procedure", ["mean", "sd"]].tolist() == [8.0, 1.9]
    bpi = studies.outcome("pain_bpi_worst").set_index("time")
    assert bpi.loc["6 months", ["mean", "sd", "n"]].tolist() == [3.5, 3.2, 22]
    assert studies["levy2020"].modality == studies["wallace2015"].modality == "RFA"


def test_p_only_findings_recorded(studies):
    odi = studies.outcome("odi").set_index("study")
    assert odi["p"].to_dict() == {"chen2022": "< .01", "wang2022": "< .05", "wu2021": "< 0.05",
                                  "zhang2024": "< .001"}
    mor = studies.outcome("morphine_mg_day", timepoint="follow-up")
    assert mor.study.tolist() == ["wang2022"] and mor["p"].iloc[0] == "< .05"
    ts = studies.outcome("technical_success")
    assert (ts["events"] == ts["total"]).all() and len(ts) == 6


def test_anchor_sizes(studies):
    chen, khan = studies["chen2022"], studies["khan2018"]
    assert (chen.patients, chen.lesions) == (91, 140)
    assert (khan.patients, khan.lesions) == (69, 102)


def test_chen_vas_and_morphine(studies):
    vas = studies.outcome("pain_vas")
    chen = vas[vas.study == "chen2022"]
    assert chen["time"].tolist() == ["pre-procedure", "3 days", "1 week", "1 month",
                                     "3 months", "6 months"]
    assert chen["median"].tolist() == [6, 5, 4, 3, 3, 3]
    assert chen["min"].tolist() == [4, 3, 2, 1, 1, 1]
    assert chen["max"].tolist() == [10, 8, 7, 6, 6, 8]
    assert chen["mean"].isna().all()
    mor = studies.outcome("morphine_mg_day", timepoint="3 months")
    row = mor[mor.study == "chen2022"].iloc[0]
    assert (row["mean"], row["sd"], row["min"], row["max"]) == (21.70, 10.0, 0, 42)


def test_chen_local_control_has_no_denominator(studies):
    lc = studies.outcome("local_control", timepoint="within 6 months")
    row = lc[lc.study == "chen2022"].iloc[0]
    assert row["percent"] == 94.8 and math.isnan(row["total"]) and math.isnan(row["events"])
    assert row["unit"] == "lesions"


def test_khan_median_sd_kept_as_reported(studies):
    """"Median visual analog scale scores were ...: 7.0 ± 1.8 ..., 2 ± 1.6 ..., 2 ± 2.1":
    all three are medians ± SD, and the 20-24 week n is the enrolled 69 like every study's."""
    vas = studies.outcome("pain_vas")
    khan = vas[vas.study == "khan2018"]
    assert khan["median"].tolist() == [7.0, 2, 2] and khan["sd"].tolist() == [1.8, 1.6, 2.1]
    assert khan["mean"].isna().all()
    assert (khan["reported_as"] == "median ± SD").all()
    assert khan["n"].tolist() == [69, 69, 69]


def test_wu_leakage_unit_note(studies):
    lk = studies.outcome("cement_leakage")
    row = lk[lk.study == "wu2021"].iloc[0]
    assert (row["events"], row["total"], row["percent"], row["unit"]) == (10, 33, 30.30, "lesions")
    assert row["assumed"] == "unit,total"
    rec = next(o for o in studies["wu2021"].outcomes if o.outcome == "cement_leakage")
    assert rec.decimals["percent"] == 2  # "30.30" keeps its two decimals


def test_liu_two_arms(studies):
    lk = studies.outcome("cement_leakage")
    liu = lk[lk.study == "liu2023"].set_index("arm")
    assert liu.loc["mwa_pvp", ["events", "total"]].tolist() == [2, 28]
    assert liu.loc["pvp", ["events", "total"]].tolist() == [12, 30]
    assert liu.loc["mwa_pvp", "patients"] == 28 and liu.loc["pvp", "patients"] == 30
    assert liu.loc["pvp", "derived"] == "events"


def test_frozen_records(studies):
    s = studies["chen2022"]
    with pytest.raises(dataclasses.FrozenInstanceError):
        s.patients = 3
    with pytest.raises(TypeError):
        s.outcomes[0].stats["n"] = 3


def test_outcomes_listing(studies):
    names = studies.outcomes()
    for name in ("pain_vas", "morphine_mg_day", "local_control", "cement_leakage",
                 "complications_major", "complications_any", "technical_success", "deaths"):
        assert name in names
    assert names == sorted(names)


# ------------------------------------------------------------- timepoint selection

def test_outcome_columns(studies):
    df = studies.outcome("cement_leakage")
    for col in ("study", "citation", "doi", "source", "overlap_group", "outcome", "time",
                "day_lo", "day_hi", "unit", "n", "events", "total", "percent", "mean", "sd",
                "se", "ci_lb", "ci_ub", "median", "q1", "q3", "min", "max", "note"):
        assert col in df.columns
    assert len(df) == 9  # chen, fan, wang, zhang, wu + two liu and two bmcneurol2020 arms


def test_select_by_string_number_window(studies):
    base = studies.outcome("pain_vas", timepoint="baseline")
    assert sorted(base.study) == ["chen2022", "fan2023", "jvir2014", "khan2018", "motaghi2022",
                                  "wang2022", "wu2021", "zhang2024"]
    one_month = studies.outcome("pain_vas", timepoint="1 month")
    assert sorted(one_month.study) == ["chen2022", "jvir2014", "wang2022"]
    # 21 days: only Khan's 2-4 weeks window contains it
    assert studies.outcome("pain_vas", timepoint=21).study.tolist() == ["khan2018"]
    # about one month: 3-6 weeks
    win = studies.outcome("pain_vas", timepoint=(21, 42))
    assert sorted(win.study) == ["chen2022", "fan2023", "jvir2014", "khan2018", "motaghi2022",
                                 "wang2022", "wu2021", "zhang2024"]
    # "day 7" and "1 week" are the same window
    assert sorted(studies.outcome("pain_vas", timepoint="1 week").study) == [
        "chen2022", "fan2023", "jvir2014", "wu2021", "zhang2024"]
    # numeric windows never return baseline rows
    assert "baseline" not in set(studies.outcome("pain_vas", timepoint=(0, 1)).time_kind)


def test_follow_up_rows_only_by_name(studies):
    lc = studies.outcome("local_control", timepoint="follow-up")
    assert lc.study.tolist() == ["wu2021"]
    assert studies.outcome("local_control", timepoint="within 6 months").study.tolist() == [
        "chen2022"]
    assert "wu2021" not in set(studies.outcome("local_control", timepoint=(0, 1e6)).study)


def test_bad_selection(studies):
    with pytest.raises(InputError, match="no_such_outcome"):
        studies.outcome("no_such_outcome")
    with pytest.raises(InputError, match="timepoint"):
        studies.outcome("pain_vas", timepoint=(10, 5))


def test_repr_html(studies):
    h = studies._repr_html_()
    assert "<table>" in h and "chen2022" in h and "Khan et al. 2018" in h
    assert "12 studies" in repr(studies)


# ------------------------------------------------------------- loading rules

def test_plan_files_are_skipped(tmp_path):
    (tmp_path / "plan.yaml").write_text("defaults: {method: REML}\n")
    (tmp_path / "plan_sensitivity.yml").write_text("windows: {}\n")
    (tmp_path / "chen2022.yaml").write_text((STUDIES / "chen2022.yaml").read_text())
    s = ma.load_studies(tmp_path)
    assert s.ids == ["chen2022"]


@pytest.mark.parametrize("case, field, text", [
    ("broken_yaml", "", "broken YAML at line"),
    ("binary", "", "not a text file"),
    ("missing_id", "id", "missing"),
    ("bad_time", "outcomes[0].time", "cannot parse 'soonish'"),
])
def test_bad_files_raise(case, field, text):
    with pytest.raises(StudyFileError) as err:
        ma.load_studies(BAD / case)
    probs = err.value.problems
    assert len(probs) == 1
    assert probs[0].field == field and text in probs[0].message
    assert probs[0].file.endswith(".yaml")


def test_wrong_types_lists_every_problem():
    with pytest.raises(StudyFileError) as err:
        ma.load_studies(BAD / "wrong_types")
    got = {(p.record, p.field): p.message for p in err.value.problems}
    assert got[("ninety", "outcomes[0].n")] == "got 'ninety'; expected a whole number (a count)"
    assert "expected a whole number" in got[("ninety", "patients")]
    assert "expected a number" in got[("ninety", "outcomes[0].sd")]
    assert "expected one of patients, lesions" in got[("ninety", "outcomes[1].unit")]
    assert "2.5" in got[("ninety", "outcomes[1].events")]
    assert len(got) == 5


def test_duplicate_id():
    with pytest.raises(StudyFileError) as err:
        ma.load_studies(BAD / "duplicate_id")
    (p,) = err.value.problems
    assert p.file.endswith("b.yaml") and p.record == "twin2020" and p.field == "id"
    assert "duplicate id 'twin2020'" in p.message and "a.yaml" in p.message


def test_missing_folder_and_empty_folder(tmp_path):
    with pytest.raises(StudyFileError, match="no such file or folder"):
        ma.load_studies(tmp_path / "nope")
    with pytest.raises(StudyFileError, match="no study files"):
        ma.load_studies(tmp_path)


def test_duplicate_yaml_key_and_top_level_list(tmp_path):
    f = tmp_path / "dup.yaml"
    f.write_text("id: a\nid: b\n")
    _, probs = read_study_file(f)
    assert "duplicate key 'id'" in probs[0].message
    g = tmp_path / "list.yaml"
    g.write_text("- 1\n- 2\n")
    _, probs = read_study_file(g)
    assert "expected a mapping" in probs[0].message


def test_unknown_key_is_an_error_with_the_nearest_key(tmp_path):
    text = (STUDIES / "jvir2014.yaml").read_text().replace("source: abstract",
                                                           "source: abstract\nsorce: x")
    (tmp_path / "j.yaml").write_text(text)
    with pytest.raises(StudyFileError) as err:
        ma.load_studies(tmp_path)
    (p,) = err.value.problems
    assert p.field == "sorce" and p.message == "unknown key; did you mean source?"


@pytest.mark.parametrize("extra, field, text", [
    ("modality: HIFU", "modality", "expected one of MWA"),
    ("augmented: {count: 21, total: 20}", "augmented", "no larger than"),
    ("augmented: some", "augmented", "expected 'all'"),
    ("population: 5", "population", "expected a list of notes"),
    ("overlap_membership: probable", "overlap_membership", "next to an overlap_group"),
    ("pmid: PMC123", "pmid", "digits"),
])
def test_new_study_fields_are_validated(tmp_path, extra, field, text):
    (tmp_path / "w.yaml").write_text(
        "id: w2020\ncitation: W et al. 2020, J\ndoi: 10.1/x\nsource: abstract\n" + extra
        + "\noutcomes:\n  - {outcome: odi, time: follow-up, unit: patients, p: '< .05'}\n")
    with pytest.raises(StudyFileError) as err:
        ma.load_studies(tmp_path)
    assert any(p.field == field and text in p.message for p in err.value.problems), \
        err.value.problems


def test_assumed_reason_must_be_text(tmp_path):
    src = (STUDIES / "jvir2014.yaml").read_text().replace(
        "day 0, unit: patients, n: 17, assumed: [n]", "day 0, unit: patients, n: 17, assumed: {n: 3}")
    (tmp_path / "j.yaml").write_text(src)
    with pytest.raises(StudyFileError, match="reason as text"):
        ma.load_studies(tmp_path)
