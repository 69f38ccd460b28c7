"""Time points as reported -> windows of days (metaanalysis.records.timepoints)."""

import math

import pytest

from metaanalysis.errors import InputError
from metaanalysis.records.timepoints import DAYS_PER_MONTH, parse_timepoint

# expected windows follow the module's definitions: week = 7 d, month = 365.25/12 d, h = 1/24 d
CASES = {
    "3 days": (3, 3, "follow-up"),
    "1 week": (7, 7, "follow-up"),
    "2-4 weeks": (14, 28, "follow-up"),
    "20-24 weeks": (140, 168, "follow-up"),
    "20 – 24 weeks": (140, 168, "follow-up"),
    "6 months": (6 * 30.4375, 6 * 30.4375, "follow-up"),
    "24 h": (1, 1, "follow-up"),
    "day 0": (0, 0, "follow-up"),
    "day 7": (7, 7, "follow-up"),
    "12 weeks": (84, 84, "follow-up"),
    "1 year": (365.25, 365.25, "follow-up"),
    "2 to 4 weeks": (14, 28, "follow-up"),
    "baseline": (0, 0, "baseline"),
    "pre": (0, 0, "baseline"),
    "Pre-procedure": (0, 0, "baseline"),
    "procedure": (0, 0, "procedure"),
    "within 6 months": (0, 182.625, "follow-up"),
}


@pytest.mark.parametrize("text", sorted(CASES))
def test_parse(text):
    lo, hi, kind = CASES[text]
    tp = parse_timepoint(text)
    assert tp.day_lo == pytest.approx(lo) and tp.day_hi == pytest.approx(hi)
    assert tp.kind == kind
    assert tp.label == text.strip()


def test_month_length():
    assert DAYS_PER_MONTH == 30.4375
    assert parse_timepoint("1 month").day_lo == 30.4375


def test_follow_up_has_no_window():
    tp = parse_timepoint("follow-up")
    assert math.isnan(tp.day_lo) and math.isnan(tp.day_hi)
    assert not tp.defined
    assert not tp.overlaps(0, 1e9)


def test_overlaps():
    tp = parse_timepoint("2-4 weeks")
    assert tp.overlaps(21, 42) and tp.overlaps(28, 28) and not tp.overlaps(29, 60)
    assert tp.days == 21


@pytest.mark.parametrize("bad", ["soonish", "3 fortnights", "", "weeks", "day x"])
def test_unparseable_names_text(bad):
    with pytest.raises(InputError, match="cannot parse"):
        parse_timepoint(bad)


def test_reversed_range_and_non_text():
    with pytest.raises(InputError, match="before it starts"):
        parse_timepoint("4-2 weeks")
    with pytest.raises(InputError, match="expected text"):
        parse_timepoint(3)
