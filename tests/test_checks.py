"""Consistency checks (metaanalysis.records.checks)."""

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

import metaanalysis as ma
from metaanalysis.errors import StudyFileError
from metaanalysis.records.checks import (
    candidate_denominators,
    check_studies,
    compact,
    grim_consistent,
    matching_counts,
    percent_matches,
)

ROOT = Path(__file__).resolve().parents[1]
BAD = Path(__file__).resolve().parent / "data" / "bad_studies"


# ------------------------------------------------------------- arithmetic

def test_candidate_denominators_for_94_8():
    # ../shared/domain/thermal-ablation-studies.md: "94.8%" of at most 140 vertebrae
    assert candidate_denominators(94.8, 1, 140) == [58, 77, 96, 97, 115, 116, 134, 135]


def test_candidate_denominators_with_events():
    # 10 events = 30.30% (wu2021): only 33 of the denominators up to 40
    assert candidate_denominators(30.30, 2, 40, events=10) == [33]


@pytest.mark.parametrize("events, total, percent, decimals", [
    (42, 140, 30, 0), (32, 115, 27.8, 1), (37, 85, 43.5, 1), (10, 33, 30.30, 2),
    (1, 91, 1.1, 1), (2, 28, 7.14, 2), (12, 30, 40.00, 2),  # the domain file's agreements
])
def test_reported_percentages_agree(events, total, percent, decimals):
    assert percent_matches(events, total, percent, decimals)


def test_percent_mismatch_and_half_way():
    assert not percent_matches(10, 30, 33.00, 2)  # liu2023: 10/30 = 33.33%
    assert matching_counts(33.00, 2, 30) == []
    assert matching_counts(7.14, 2, 28) == [2]
    # 1/8 = 12.5% exactly: rounds to 12 or 13 depending on convention; both accepted
    assert percent_matches(1, 8, 12, 0) and percent_matches(1, 8, 13, 0)


def test_grim():
    # Brown & Heathers 2017: with n = 28 integer answers, 5.19 is impossible (145/28 = 5.18,
    # 146/28 = 5.21), 5.18 is possible
    assert not grim_consistent(5.19, 2, 28)
    assert grim_consistent(5.18, 2, 28)
    # zhang2024: 1.71 is not a mean of 67 integer scores (114/67 = 1.70, 115/67 = 1.72)
    assert not grim_consistent(1.71, 2, 67)
    assert grim_consistent(6.85, 2, 67)
    # uninformative once n >= 10^decimals
    assert grim_consistent(1.71, 2, 100)


@given(st.integers(1, 99), st.data())
def test_grim_accepts_every_true_mean(n, data):
    s = data.draw(st.integers(0, 10 * n))
    assert grim_consistent(round(s / n, 2), 2, n)


@given(st.integers(1, 300), st.data())
def test_true_percent_always_matches(total, data):
    e = data.draw(st.integers(0, total))
    for d in (0, 1, 2):
        assert percent_matches(e, total, round(100 * e / total, d), d)
        assert total in candidate_denominators(round(100 * e / total, d), d, total)


def test_compact():
    assert compact([1, 2, 3, 4, 9]) == "1-4, 9"
    assert compact([96, 97, 115]) == "96, 97, 115"


# ------------------------------------------------------------- on the shipped studies

@pytest.fixture(scope="module")
def problems():
    return check_studies(ROOT / "studies")


def test_shipped_studies_have_no_errors(problems):
    assert [str(p) for p in problems if p.severity == "error"] == []


def test_chen_percent_warning_lists_denominators(problems):
    (p,) = [p for p in problems if p.record == "chen2022" and p.field.endswith(".percent")]
    assert p.severity == "warning"
    assert "58, 77, 96, 97, 115, 116, 134, 135" in p.message
    assert "up to 140 (lesions)" in p.message
    assert str(p).startswith(str(ROOT / "studies" / "chen2022.yaml") + ": chen2022/outcomes[")


def test_khan_median_sd_warning(problems):
    msgs = [p.message for p in problems if p.record == "khan2018" and p.field == "outcomes[0].sd"]
    assert msgs and "median ± SD" in msgs[0]


def test_liu_33_percent_warning(problems):
    (p,) = [p for p in problems if p.record == "liu2023"]
    assert p.severity == "warning" and "33.00% of 30 matches no whole count" in p.message


def test_zhang_grim_with_assumed_n_is_a_warning(problems):
    (p,) = [p for p in problems if p.record == "zhang2024"]
    assert p.severity == "warning" and "GRIM" in p.message and "1.71" in p.message
    assert "66, 65, 63" in p.message


def test_check_on_loaded_set_matches_path(problems):
    s = ma.load_studies(ROOT / "studies")
    assert sorted(map(str, check_studies(s))) == sorted(map(str, problems))
    assert sorted(map(str, s.warnings)) == sorted(map(str, problems))


# ------------------------------------------------------------- impossible values

def test_impossible_values_each_reported():
    probs = check_studies(BAD / "impossible")
    got = {(p.field, p.message.split(": ", 1)[1]) for p in probs}
    expected = {
        ("outcomes[0].events", "events 30 > total 25; expected events <= total"),
        ("outcomes[0].events", "events 30 > 25 lesions in the study; expected at most 25"),
        ("outcomes[1].percent", "percent 20.0 does not match events/total = 3/20 = 15.000%"),
        ("outcomes[2].median", "min 7 > median 6; expected min <= q1 <= median <= q3 <= max"),
        ("outcomes[2].max", "median 6 > max 5; expected min <= q1 <= median <= q3 <= max"),
        ("outcomes[3].n", "n 30 > 20 patients in the study; expected at most 20"),
        ("outcomes[3].sd", "sd 0; expected a value > 0"),
        ("outcomes[4].mean", ("GRIM: mean 2.47 is not a possible mean of 20 integer scores "
                              "(Brown & Heathers 2017)")),
    }
    assert got == expected
    assert all(p.severity == "error" and p.record == "impossible2020" for p in probs)
    with pytest.raises(StudyFileError) as err:
        ma.load_studies(BAD / "impossible")
    assert len(err.value.problems) == 8


def test_scale_and_duplicate_record(tmp_path):
    (tmp_path / "x.yaml").write_text(
        "id: x\ncitation: X 2020\ndoi: 10.1/x\nsource: abstract\npatients: 10\noutcomes:\n"
        "  - {outcome: pain_vas, time: 1 week, unit: patients, n: 10, mean: 11.0, sd: 1.0}\n"
        "  - {outcome: pain_vas, time: 7 days, unit: patients, n: 10, median: 3.25, q1: 2,"
        " q3: 4}\n")
    msgs = [p.message for p in check_studies(tmp_path)]
    assert any("mean 11 is outside the 0-10 scale" in m for m in msgs)
    assert any("recorded twice" in m for m in msgs)
    assert any("expected a multiple of 0.5" in m for m in msgs)
