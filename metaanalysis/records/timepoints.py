"""Time points as reported ("3 days", "2-4 weeks", "baseline") parsed to days.

A reported time point is kept as text in the study record and parsed here to a
window ``[day_lo, day_hi]`` in days after the procedure, so analyses can select
rows by window.  Months are 30.4375 days (365.25 / 12), years 365.25 days,
hours 1/24 day.

Grammar (case-insensitive; an en dash or "to" may separate a range)::

    baseline | pre | pre-procedure | preoperative   -> day 0, kind "baseline"
    procedure | intraprocedural | periprocedural    -> day 0, kind "procedure"
    follow-up | last follow-up                      -> undefined window (NaN, NaN)
    day N | day N-M                                 -> N .. M
    N UNIT | N-M UNIT                               -> N .. M in days
    within N UNIT                                   -> 0 .. N
    UNIT: h, hr, hour(s), d, day(s), w, wk, week(s), mo, month(s), y, yr, year(s)
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from metaanalysis.errors import InputError

DAYS_PER_MONTH = 365.25 / 12  # 30.4375
DAYS_PER_YEAR = 365.25

_UNITS = {
    "h": 1 / 24, "hr": 1 / 24, "hrs": 1 / 24, "hour": 1 / 24, "hours": 1 / 24,
    "d": 1.0, "day": 1.0, "days": 1.0,
    "w": 7.0, "wk": 7.0, "wks": 7.0, "week": 7.0, "weeks": 7.0,
    "mo": DAYS_PER_MONTH, "mos": DAYS_PER_MONTH, "month": DAYS_PER_MONTH,
    "months": DAYS_PER_MONTH,
    "y": DAYS_PER_YEAR, "yr": DAYS_PER_YEAR, "yrs": DAYS_PER_YEAR, "year": DAYS_PER_YEAR,
    "years": DAYS_PER_YEAR,
}
_BASELINE = {
    "baseline", "pre", "pre-procedure", "preprocedure", "pre-procedural", "preprocedural",
    "pre-operative", "preoperative", "pre-op", "preop", "pre-treatment", "pretreatment",
    "before", "before treatment", "before procedure",
}
_PROCEDURE = {
    "procedure", "intraprocedural", "intra-procedural", "periprocedural", "peri-procedural",
    "during procedure", "procedural",
}
_FOLLOW_UP = {"follow-up", "follow up", "followup", "last follow-up", "at follow-up",
              "on follow-up", "on follow-up imaging"}

_NUM = r"(\d+(?:\.\d+)?)"
_RANGE_RE = re.compile(rf"^{_NUM}(?:\s*-\s*{_NUM})?\s*([a-z]+)$")
_DAY_RE = re.compile(rf"^day\s*{_NUM}(?:\s*-\s*{_NUM})?$")
_WITHIN_RE = re.compile(rf"^within\s+{_NUM}\s*([a-z]+)$")

KINDS = ("baseline", "procedure", "follow-up")


@dataclass(frozen=True)
class TimePoint:
    """A parsed time point.

    Attributes
    ----------
    label : str
        The text as reported (stripped).
    day_lo, day_hi : float
        Window in days after the procedure; both NaN when the source gives no
        window ("follow-up").
    kind : str
        ``"baseline"`` (before the procedure, day 0), ``"procedure"`` (the
        procedure itself, day 0) or ``"follow-up"``.
    """

    label: str
    day_lo: float
    day_hi: float
    kind: str = "follow-up"

    @property
    def defined(self) -> bool:
        """True when the window is known (not a bare "follow-up")."""
        return not (math.isnan(self.day_lo) or math.isnan(self.day_hi))

    @property
    def days(self) -> float:
        """Midpoint of the window in days (NaN when undefined)."""
        return (self.day_lo + self.day_hi) / 2

    def overlaps(self, lo: float, hi: float) -> bool:
        """True when the window shares at least one day with ``[lo, hi]``."""
        return self.defined and self.day_lo <= hi and self.day_hi >= lo


def _normalise(text: str) -> str:
    t = text.strip().lower()
    t = t.replace("\u2013", "-").replace("\u2014", "-").replace("\u2212", "-")
    t = re.sub(r"\s+to\s+", "-", t)
    t = re.sub(r"\s+", " ", t)
    return t


def parse_timepoint(text: str) -> TimePoint:
    """Parse a time point written as reported into a window of days.

    Parameters
    ----------
    text : str
        For example ``"3 days"``, ``"2-4 weeks"``, ``"6 months"``, ``"24 h"``,
        ``"day 7"``, ``"baseline"``, ``"procedure"``, ``"within 6 months"``,
        ``"follow-up"``.

    Returns
    -------
    TimePoint

    Raises
    ------
    InputError
        When the text does not follow the grammar in this module's docstring.

    Examples
    --------
    >>> parse_timepoint("2-4 weeks")
    TimePoint(label='2-4 weeks', day_lo=14.0, day_hi=28.0, kind='follow-up')
    >>> parse_timepoint("6 months").day_lo
    182.625
    >>> parse_timepoint("pre-procedure").kind
    'baseline'
    """
    if not isinstance(text, str):
        raise InputError(
            f"time point: got {text!r} ({type(text).__name__}); expected text such as "
            "'3 days', '2-4 weeks', '6 months', 'baseline' or 'procedure'"
        )
    label = text.strip()
    t = _normalise(text)
    if t in _BASELINE:
        return TimePoint(label, 0.0, 0.0, "baseline")
    if t in _PROCEDURE:
        return TimePoint(label, 0.0, 0.0, "procedure")
    if t in _FOLLOW_UP:
        return TimePoint(label, math.nan, math.nan, "follow-up")
    m = _DAY_RE.match(t)
    if m:
        lo = float(m.group(1))
        hi = float(m.group(2)) if m.group(2) else lo
        return _checked(label, lo, hi)
    m = _WITHIN_RE.match(t)
    if m and m.group(2) in _UNITS:
        return _checked(label, 0.0, float(m.group(1)) * _UNITS[m.group(2)])
    m = _RANGE_RE.match(t)
    if m and m.group(3) in _UNITS:
        f = _UNITS[m.group(3)]
        lo = float(m.group(1)) * f
        hi = float(m.group(2)) * f if m.group(2) else lo
        return _checked(label, lo, hi)
    raise InputError(
        f"time point: cannot parse {text!r}; expected e.g. '3 days', '1 week', '2-4 weeks', "
        "'6 months', '24 h', 'day 7', 'within 6 months', 'baseline', 'procedure' or "
        "'follow-up' (units: hours, days, weeks, months, years)"
    )


#: latest day a time point may name (100 years)
MAX_DAYS = 100 * DAYS_PER_YEAR


def _checked(label: str, lo: float, hi: float) -> TimePoint:
    if not hi <= MAX_DAYS:
        raise InputError(
            f"time point: {label[:60]!r} is more than 100 years ({MAX_DAYS:g} days) after the "
            "procedure; expected a follow-up time as reported"
        )
    if hi < lo:
        raise InputError(
            f"time point: {label!r} is a range that ends ({hi:g} days) before it starts "
            f"({lo:g} days); expected low-high"
        )
    return TimePoint(label, lo, hi, "follow-up")
