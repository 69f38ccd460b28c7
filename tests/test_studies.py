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

def test_every_study_is_there(studies):
    assert studies.ids == ["chen2022", "jvir2014", "khan2018", "liu2023", "motaghi2022",
                           "wang2022", "wu2021", "zhang2024"]
    assert len(studies) == 8 and len(list(studies)) == 8
    for s in studies:
        assert s.source == "abstract"
        assert s.doi and s.doi.startswith("10.")
        for o in s.outcomes:
            assert o.unit in ("patients", "lesions")


def test_overlap_groups(studies):
    assert studies["wang2022"].overlap_group == studies["zhang2024"].overlap_group is not None
    assert studies["khan2018"].overlap_group == studies["motaghi2022"].overlap_group is not None
    assert studies["khan2018"].overlap_group != studies["wang2022"].overlap_group
    assert studies["chen2022"].overlap_group is None


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
    lc = studies.outcome("local_control", timepoint="6 months")
    row = lc[lc.study == "chen2022"].iloc[0]
    assert row["percent"] == 94.8 and math.isnan(row["total"]) and math.isnan(row["events"])
    assert row["unit"] == "lesions"


def test_khan_median_sd_kept_as_reported(studies):
    vas = studies.outcome("pain_vas", timepoint="baseline")
    row = vas[vas.study == "khan2018"].iloc[0]
    assert row["median"] == 7.0 and row["sd"] == 1.8 and math.isnan(row["mean"])
    assert row["reported_as"] == "median ± SD"


def test_wu_leakage_unit_note(studies):
    lk = studies.outcome("cement_leakage")
    row = lk[lk.study == "wu2021"].iloc[0]
    assert (row["events"], row["total"], row["percent"], row["unit"]) == (10, 33, 30.30, "lesions")
    assert "patients" in row["note"]
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
                 "complications", "technical_success", "deaths"):
        assert name in names
    assert names == sorted(names)


# ------------------------------------------------------------- timepoint selection

def test_outcome_columns(studies):
    df = studies.outcome("cement_leakage")
    for col in ("study", "citation", "doi", "source", "overlap_group", "outcome", "time",
                "day_lo", "day_hi", "unit", "n", "events", "total", "percent", "mean", "sd",
                "se", "ci_lb", "ci_ub", "median", "q1", "q3", "min", "max", "note"):
        assert col in df.columns
    assert len(df) == 6  # chen, wang, zhang, wu + two liu arms


def test_select_by_string_number_window(studies):
    base = studies.outcome("pain_vas", timepoint="baseline")
    assert sorted(base.study) == ["chen2022", "jvir2014", "khan2018", "motaghi2022",
                                  "wang2022", "wu2021", "zhang2024"]
    one_month = studies.outcome("pain_vas", timepoint="1 month")
    assert sorted(one_month.study) == ["chen2022", "jvir2014", "wang2022"]
    # 21 days: only Khan's 2-4 weeks window contains it
    assert studies.outcome("pain_vas", timepoint=21).study.tolist() == ["khan2018"]
    # about one month: 3-6 weeks
    win = studies.outcome("pain_vas", timepoint=(21, 42))
    assert sorted(win.study) == ["chen2022", "jvir2014", "khan2018", "motaghi2022",
                                 "wang2022", "wu2021", "zhang2024"]
    # "day 7" and "1 week" are the same window
    assert sorted(studies.outcome("pain_vas", timepoint="1 week").study) == [
        "chen2022", "jvir2014", "wu2021", "zhang2024"]
    # numeric windows never return baseline rows
    assert "baseline" not in set(studies.outcome("pain_vas", timepoint=(0, 1)).time_kind)


def test_follow_up_rows_only_by_name(studies):
    lc = studies.outcome("local_control", timepoint="follow-up")
    assert lc.study.tolist() == ["wu2021"]
    assert "wu2021" not in set(studies.outcome("local_control", timepoint=(0, 1e6)).study)


def test_bad_selection(studies):
    with pytest.raises(InputError, match="no_such_outcome"):
        studies.outcome("no_such_outcome")
    with pytest.raises(InputError, match="timepoint"):
        studies.outcome("pain_vas", timepoint=(10, 5))


def test_repr_html(studies):
    h = studies._repr_html_()
    assert "<table>" in h and "chen2022" in h and "Khan et al. 2018" in h
    assert "8 studies" in repr(studies)


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
