"""Exceptions and warnings raised by metaanalysis.

Every input problem is a subclass of :class:`MetaAnalysisError`, so callers can
catch one class.  Messages name the argument (or file/record/field), the bad
value and what was expected.
"""

from __future__ import annotations

from dataclasses import dataclass


class MetaAnalysisError(Exception):
    """Base class of every error this package raises on purpose."""


class InputError(MetaAnalysisError, ValueError):
    """An argument has a value the method cannot use (wrong length, NaN, unknown name...)."""


class ConvergenceError(MetaAnalysisError, RuntimeError):
    """An iterative method failed in a way that leaves no defined answer."""


@dataclass(frozen=True)
class Problem:
    """One problem found in a study file: ``FILE: record/field: message``."""

    file: str
    record: str
    field: str
    message: str
    severity: str = "error"  # "error" or "warning"

    def __str__(self) -> str:
        where = "/".join(p for p in (self.record, self.field) if p) or "-"
        return one_line(f"{self.file}: {where}: {self.message}")


def one_line(text: str) -> str:
    """``text`` with control characters (newline, NUL, escape...) shown as escapes, so a
    problem is always exactly one line whatever names a hostile file holds.

    Examples
    --------
    >>> one_line("a\\nb\\x00c")
    'a\\\\nb\\\\x00c'
    """
    if text.isprintable():
        return text
    return "".join(ch if ch.isprintable() or ch == " " else repr(ch)[1:-1] for ch in text)


class StudyFileError(MetaAnalysisError):
    """One or more study files are malformed or hold impossible values.

    ``problems`` lists every :class:`Problem`; ``str(err)`` is one line per problem.
    """

    def __init__(self, problems):
        self.problems = list(problems)
        super().__init__("\n".join(str(p) for p in self.problems))


class PlanError(StudyFileError):
    """The analysis plan is malformed."""


class ConvergenceWarning(UserWarning):
    """An iterative estimator did not reach its tolerance for some rows."""


class StatisticalWarning(UserWarning):
    """The method ran, but its answer means little here (e.g. Egger's test with k < 10)."""


class PerformanceWarning(UserWarning):
    """The call works, but its settings make it slow or memory-hungry (e.g. Dask block sizes)."""
