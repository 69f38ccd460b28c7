"""One input path for every model function: effect sizes in, a frozen :class:`StudyData` out.

:func:`study_data` turns what a user passes to ``pool``, ``pool_bayes``,
``meta_regression``, ``subgroups`` and the other model functions — the
DataFrame returned by :func:`~metaanalysis.effects.effect_sizes.effect_sizes`,
or arrays with optional ``labels``, ``measure``, ``ni`` and ``unit`` — into one
checked, immutable object.  Every check lives here, so every function rejects
bad input with the same :class:`~metaanalysis.errors.InputError` message naming
the argument, the index (and study label) and the value:

* numbers only: strings (even ``"0.5"``), booleans, complex numbers, dates and
  object arrays holding anything but real numbers are refused (:func:`as_numbers`);
* ``yi`` finite with ``|yi| <= YI_MAX`` (1e30) and ``vi`` finite with
  ``VI_MIN <= vi <= VI_MAX`` (1e-60 to 1e60): beyond these, sums of squares and
  the likelihood iterations overflow or underflow double precision and would
  return NaN or garbage (rescale the data instead: ``yi / c``, ``vi / c²``);
* one label, ``ni`` and variance per effect size.

:func:`check_batch` does the same for the ``(batch, k)`` arrays of
``pool_many``, where NaN in both ``yi`` and ``vi`` marks an absent study, and
applies its ``nan_policy``.  :func:`overflow_error` is what a model function
raises when its numbers still come out non-finite.

Examples
--------
>>> d = study_data([0.1, 0.3], [0.01, 0.02], labels=["A", "B"], measure="MD")
>>> d.k, d.labels, d.yi.flags.writeable
(2, ('A', 'B'), False)
>>> study_data([0.1, "0.3"], [0.01, 0.02])
Traceback (most recent call last):
...
metaanalysis.errors.InputError: yi: got the string '0.3' at index 1; expected numbers
>>> study_data([0.1, 1e154], [0.01, 0.02])
Traceback (most recent call last):
...
metaanalysis.errors.InputError: yi: got 1e+154 at index 1 (study 2); expected finite numbers with |yi| <= 1e+30 (larger values overflow double precision; rescale yi by c and vi by c²)
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass
from decimal import Decimal

import numpy as np
import pandas as pd

from metaanalysis.errors import InputError
from metaanalysis.frozen import FrameField, freeze_arrays, readonly

__all__ = [
    "LABEL_COLUMNS", "NAN_POLICIES", "VI_MAX", "VI_MIN", "YI_MAX", "BatchData", "StudyData",
    "as_numbers", "check_batch", "check_effects", "check_labels", "overflow_error", "study_data",
]  # fmt: skip

#: columns of an effect-size DataFrame that give the study labels, in order of preference
LABEL_COLUMNS = ("study", "label", "id")
#: largest |yi| accepted
YI_MAX = 1e30
#: smallest and largest vi accepted
VI_MIN, VI_MAX = 1e-60, 1e60
#: what :func:`check_batch` may do with unusable studies
NAN_POLICIES = ("raise", "omit")


# --------------------------------------------------------------------------- numbers


def _where(index) -> str:
    """'index 3' for 1-D positions, 'row 2, column 5' for 2-D ones."""
    index = tuple(int(i) for i in np.atleast_1d(index))
    if len(index) == 1:
        return f"index {index[0]}"
    if len(index) == 2:
        return f"row {index[0]}, column {index[1]}"
    return f"index {index}"


def _describe(value) -> str:
    if isinstance(value, (str, np.str_)):
        return f"the string {str(value)!r}"
    if isinstance(value, (bytes, np.bytes_)):
        return f"the bytes {bytes(value)!r}"
    if isinstance(value, (bool, np.bool_)):
        return f"the boolean {bool(value)}"
    return f"{value!r} ({type(value).__name__})"


def _is_number(value) -> bool:
    """A real number (or a missing value, read as NaN); not a bool or a string."""
    if value is None or value is pd.NA:
        return True
    if isinstance(value, (bool, np.bool_)):
        return False
    return isinstance(value, (numbers.Real, Decimal))


_FLOAT_TYPES = frozenset({float, int, np.float64, np.float32, np.int64, np.int32})


def _object_to_float(a: np.ndarray, name: str) -> np.ndarray:
    if a.size and {type(e) for e in a.flat} <= _FLOAT_TYPES:  # the common case, fast
        return a.astype(float)
    for index, value in np.ndenumerate(a):
        if not _is_number(value):
            where = f" at {_where(index)}" if a.ndim else ""
            raise InputError(f"{name}: got {_describe(value)}{where}; expected numbers")
    out = np.empty(a.shape, dtype=float)
    for index, value in np.ndenumerate(a):
        out[index] = np.nan if value is None or value is pd.NA else float(value)
    return out


def as_numbers(x, name: str, *, ndim: int | None = 1) -> np.ndarray:
    """Read ``x`` as a new float64 array (``ndim`` dimensions; a scalar counts as 1-D).

    Integers and floats (NumPy, pandas, Python) are accepted; pandas' missing
    values become NaN.  Strings, booleans, complex numbers, dates and object
    arrays holding anything else raise :class:`InputError` naming ``name``, the
    index and the value.  The array returned is the caller's own (a copy).

    Examples
    --------
    >>> as_numbers(pd.Series([1, None], dtype="Int64"), "ni").tolist()
    [1.0, nan]
    >>> as_numbers([True, False], "yi")
    Traceback (most recent call last):
    ...
    metaanalysis.errors.InputError: yi: got the boolean True at index 0; expected numbers
    """
    if isinstance(x, (str, bytes)):
        raise InputError(f"{name}: got {_describe(x)}; expected numbers")
    if isinstance(x, pd.DataFrame):
        x = x.to_numpy()
    elif isinstance(x, (pd.Series, pd.Index)):
        dtype = x.dtype
        if pd.api.types.is_bool_dtype(dtype):
            x = x.to_numpy(dtype=object)
        elif pd.api.types.is_numeric_dtype(dtype) and not isinstance(dtype, pd.CategoricalDtype):
            x = x.to_numpy(dtype=float, na_value=np.nan)
        else:
            x = x.to_numpy(dtype=object)
    if not isinstance(x, np.ndarray):
        # lists, tuples, scalars: look at each element as given, so that a True or a
        # "0.5" among numbers is found (NumPy would quietly make them 1.0 and 0.5)
        try:
            x = np.asarray(x, dtype=object)
        except (TypeError, ValueError) as exc:
            raise InputError(f"{name}: could not be read as an array of numbers ({exc})") from None
    a = x
    kind = a.dtype.kind
    if kind in "fiu":
        out = np.array(a, dtype=float)
    elif kind == "O":
        out = _object_to_float(a, name)
    else:
        # booleans, text, complex numbers, dates: name the first element
        if a.size == 0:
            raise InputError(f"{name}: got an array of dtype {a.dtype}; expected numbers")
        first = (0,) * a.ndim
        at = f" at {_where(first)}" if a.ndim else ""
        raise InputError(f"{name}: got {_describe(a[first])}{at}; expected numbers")
    if ndim is not None:
        if out.ndim == 0 and ndim == 1:
            out = out[None]
        if out.ndim != ndim:
            want = "one value per study" if ndim == 1 else f"a {ndim}-D array"
            raise InputError(f"{name}: got an array of shape {out.shape}; expected {want}")
    return out


# --------------------------------------------------------------------------- ranges


def _study(index: int, labels) -> str:
    return f"study {labels[index]!r}" if labels is not None else f"study {index + 1}"


def _bad_yi(y: np.ndarray) -> np.ndarray:
    return ~(np.abs(y) <= YI_MAX)  # True for NaN and inf too


def _bad_vi(v: np.ndarray) -> np.ndarray:
    return ~((v >= VI_MIN) & (v <= VI_MAX))


def _expected(name: str, value: float) -> str:
    if name == "yi":
        if np.isfinite(value):
            return (f"expected finite numbers with |yi| <= {YI_MAX:g} (larger values overflow "
                    "double precision; rescale yi by c and vi by c²)")
        return "expected finite numbers"
    if not np.isfinite(value):
        return "expected finite sampling variances > 0"
    if value <= 0:
        return "expected sampling variances > 0"
    return (f"expected sampling variances between {VI_MIN:g} and {VI_MAX:g} (beyond these, "
            "weights overflow double precision; rescale yi by c and vi by c²)")


def check_effects(yi: np.ndarray, vi: np.ndarray, labels=None) -> None:
    """Raise :class:`InputError` for the first unusable ``yi`` or ``vi`` (1-D arrays)."""
    for name, a, bad in (("yi", yi, _bad_yi), ("vi", vi, _bad_vi)):
        b = bad(a)
        if np.count_nonzero(b):
            idx = np.flatnonzero(b)
            i = int(idx[0])
            more = f" (and {idx.size - 1} more)" if idx.size > 1 else ""
            raise InputError(f"{name}: got {float(a[i])!r} at index {i} ({_study(i, labels)})"
                             f"{more}; {_expected(name, float(a[i]))}")


def overflow_error(yi, vi, what: str = "the pooled estimate") -> InputError:
    """The error a model function raises when finite, in-range input still gives a
    non-finite ``what``: it names the most extreme ``yi`` and ``vi`` (argument, index,
    value).  The usual cause is variances spanning more than about 15 orders of
    magnitude in one analysis (the typical within-study variance then cancels to 0).

    Examples
    --------
    >>> print(overflow_error([0.1, 2.0], [1e-40, 1e10], "h2"))
    yi, vi: h2 is not finite in double precision for these values (largest |yi|: 2.0 at index 1; vi from 1e-40 at index 0 to 10000000000.0 at index 1); expected effect sizes and variances whose scales differ by less than about 1e15 within one analysis (rescale or drop the extreme studies)
    """
    y = np.asarray(yi, dtype=float)
    v = np.asarray(vi, dtype=float)
    ok = np.isfinite(y) & np.isfinite(v)
    iy = np.unravel_index(int(np.argmax(np.where(ok, np.abs(y), -np.inf))), y.shape)
    lo = np.unravel_index(int(np.argmin(np.where(ok, v, np.inf))), v.shape)
    hi = np.unravel_index(int(np.argmax(np.where(ok, v, -np.inf))), v.shape)
    return InputError(
        f"yi, vi: {what} is not finite in double precision for these values (largest |yi|: "
        f"{float(y[iy])!r} at {_where(iy)}; vi from {float(v[lo])!r} at {_where(lo)} to "
        f"{float(v[hi])!r} at {_where(hi)}); expected effect sizes and variances whose scales "
        "differ by less than about 1e15 within one analysis (rescale or drop the extreme studies)"
    )


# --------------------------------------------------------------------------- StudyData


@dataclass(frozen=True, eq=False, repr=False)
class StudyData:
    """Checked, immutable effect sizes of k studies (from :func:`study_data`).

    Attributes
    ----------
    yi, vi : ndarray, shape (k,)
        Effect sizes and sampling variances (read-only float arrays).
    labels : tuple of str
        One label per study.
    measure : str or None
        Effect-size measure code (``"RR"``, ``"PLO"``, ...).
    ni : ndarray or None
        Per-study sample sizes (read-only; NaN where unknown).
    unit : str or None
        Unit of analysis (``"patients"``, ``"lesions"``).
    frame : DataFrame or None
        The ``effect_sizes`` DataFrame the data came from (a copy on every access).
    """

    yi: np.ndarray
    vi: np.ndarray
    labels: tuple
    measure: str | None = None
    ni: np.ndarray | None = None
    unit: str | None = None
    frame: pd.DataFrame | None = FrameField()

    def __post_init__(self):
        freeze_arrays(self)

    @property
    def k(self) -> int:
        """Number of studies."""
        return int(self.yi.size)

    def take(self, mask) -> StudyData:
        """The studies selected by the boolean ``mask`` (or integer positions), as a new object.

        >>> d = study_data([0.1, 0.2, 0.3], [0.01, 0.01, 0.02], labels=list("abc"))
        >>> d.take([True, False, True]).labels
        ('a', 'c')
        """
        idx = np.asarray(mask)
        if idx.dtype == bool:
            idx = np.flatnonzero(idx)
        frame = FrameField.peek(self, "frame")
        sub = None
        if frame is not None:
            sub = frame.iloc[idx].reset_index(drop=True)
            sub.attrs = dict(frame.attrs)
        return StudyData(
            yi=readonly(self.yi[idx], owned=True), vi=readonly(self.vi[idx], owned=True),
            labels=tuple(self.labels[i] for i in idx), measure=self.measure,
            ni=None if self.ni is None else readonly(self.ni[idx], owned=True), unit=self.unit,
            frame=sub,
        )  # fmt: skip

    def __repr__(self) -> str:
        extra = "".join(f", {n}={getattr(self, n)!r}" for n in ("measure", "unit")
                        if getattr(self, n) is not None)
        return f"StudyData(k={self.k}{extra})"


def check_labels(labels, k: int) -> tuple:
    """``labels`` as a tuple of k strings (default ``Study 1``, ...); InputError otherwise."""
    if labels is None:
        return tuple(f"Study {i}" for i in range(1, k + 1))
    if isinstance(labels, (str, bytes)):
        raise InputError(f"labels: got the string {labels!r}; expected one label per study")
    try:
        out = tuple(str(x) for x in labels)
    except TypeError:
        raise InputError(f"labels: got {labels!r}; expected a sequence of labels") from None
    if len(out) != k:
        raise InputError(f"labels: got {len(out)} labels for {k} studies; expected one per study")
    return out


def _text(value, name: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise InputError(f"{name}: got {value!r}; expected a string or None")
    return value


def study_data(yi, vi=None, *, labels=None, measure: str | None = None, ni=None,
               unit: str | None = None) -> StudyData:
    """Check and normalise the study data of a model function.

    Parameters
    ----------
    yi : array_like, DataFrame or StudyData
        Effect sizes; or the DataFrame from ``effect_sizes`` (then ``vi``, the
        measure (``df.attrs["measure"]``), ``ni`` and the labels (column
        ``study``, ``label`` or ``id``) come from it, unless given here); or a
        :class:`StudyData`, returned as it is when nothing else is given.
    vi : array_like
        Sampling variances (> 0); ``None`` when ``yi`` is a DataFrame.
    labels : sequence, optional
        One label per study (default ``"Study 1"``, ...).
    measure, unit : str, optional
        Measure code and unit of analysis.
    ni : array_like, optional
        Per-study sample sizes (> 0, NaN where unknown).

    Returns
    -------
    StudyData

    Raises
    ------
    InputError
        For every problem, naming the argument, the index and the value.

    Examples
    --------
    >>> import metaanalysis as ma
    >>> es = ma.effect_sizes("PLO", events=[4, 9], total=[40, 60])
    >>> d = study_data(es, labels=["A", "B"])
    >>> d.measure, d.labels, d.ni.tolist()
    ('PLO', ('A', 'B'), [40.0, 60.0])
    """
    if isinstance(yi, StudyData):
        if vi is None and labels is None and measure is None and ni is None and unit is None:
            return yi
        raise InputError("vi, labels, measure, ni, unit: got values with a StudyData as yi; "
                         "expected them inside the StudyData")
    frame = None
    if isinstance(yi, pd.DataFrame):
        frame = yi
        for col in ("yi", "vi"):
            if col not in frame.columns:
                raise InputError(f"yi: the DataFrame has no column {col!r}; expected the "
                                 "output of effect_sizes()")
        if vi is not None:
            raise InputError("vi: got a value although yi is a DataFrame; expected vi=None "
                             "(taken from the 'vi' column)")
        vi = frame["vi"]
        if measure is None:
            measure = frame.attrs.get("measure")
        if ni is None and "ni" in frame.columns:
            ni = frame["ni"]
        if labels is None:
            for col in LABEL_COLUMNS:
                if col in frame.columns:
                    labels = frame[col]
                    break
        yi = frame["yi"]
    if vi is None:
        raise InputError("vi: missing; expected the sampling variances (or pass an "
                         "effect_sizes DataFrame as yi)")
    y = as_numbers(yi, "yi")
    v = as_numbers(vi, "vi")
    if y.size != v.size:
        raise InputError(f"yi, vi: lengths {y.size} and {v.size} differ; expected one variance "
                         "per effect size")
    if y.size == 0:
        raise InputError("yi: got no studies; expected at least one")
    labs = check_labels(labels, y.size)
    check_effects(y, v, labs if labels is not None else None)
    n = None
    if ni is not None:
        n = as_numbers(ni, "ni")
        if n.size != y.size:
            raise InputError(f"ni: got {n.size} sample sizes for {y.size} studies; expected "
                             "one per study")
        bad = ~(np.isnan(n) | ((n > 0) & np.isfinite(n)))
        if np.count_nonzero(bad):
            i = int(np.flatnonzero(bad)[0])
            raise InputError(f"ni: got {float(n[i])!r} at index {i} ({_study(i, labs)}); "
                             "expected sample sizes > 0 (NaN where unknown)")
        n = readonly(n, owned=True)
    return StudyData(
        yi=readonly(y, owned=True), vi=readonly(v, owned=True), labels=labs,
        measure=_text(measure, "measure"), ni=n, unit=_text(unit, "unit"), frame=frame,
    )  # fmt: skip


# --------------------------------------------------------------------------- batches


@dataclass(frozen=True, eq=False)
class BatchData:
    """Checked ``(batch, k)`` arrays of :func:`check_batch` (NaN marks an absent study)."""

    yi: np.ndarray
    vi: np.ndarray
    omitted: np.ndarray | None  # studies dropped per row (nan_policy="omit"), else None


def _all_usable(y: np.ndarray, v: np.ndarray) -> bool:
    """True when every value is in range: four reductions, no temporaries (NaN anywhere
    makes min/max NaN and the comparisons False)."""
    return bool(-YI_MAX <= y.min() and y.max() <= YI_MAX
                and VI_MIN <= v.min() and v.max() <= VI_MAX)


def check_batch(yi, vi, *, nan_policy: str = "raise") -> BatchData:
    """Check the ``(batch, k)`` arrays of ``pool_many``.

    A study with NaN in both ``yi`` and ``vi`` is absent (rows may have
    different k).  Any other unusable value — infinite, NaN in only one of the
    two, ``|yi| > YI_MAX``, ``vi`` outside ``[VI_MIN, VI_MAX]`` (so ``vi <= 0``) —
    raises :class:`InputError` naming the cells (``nan_policy="raise"``), or
    makes the study absent and is counted per row (``nan_policy="omit"``).

    Examples
    --------
    >>> b = check_batch([[0.1, np.inf], [0.2, 0.3]], [[0.01, 0.01], [0.02, 0.02]],
    ...                 nan_policy="omit")
    >>> b.omitted.tolist(), bool(np.isnan(b.yi[0, 1]))
    ([1, 0], True)
    """
    if nan_policy not in NAN_POLICIES:
        raise InputError(f"nan_policy: got {nan_policy!r}; expected 'raise' or 'omit'")
    y = as_numbers(yi, "yi", ndim=None)
    v = as_numbers(vi, "vi", ndim=None)
    if y.ndim != 2 or v.ndim != 2:
        raise InputError(f"yi, vi: got shapes {y.shape} and {v.shape}; expected 2-D arrays "
                         "(batch, k)")
    if y.shape != v.shape:
        raise InputError(f"yi, vi: shapes {y.shape} and {v.shape} differ; expected equal shapes")
    omitted = None
    if y.size and not _all_usable(y, v):
        bad = _bad_yi(y)
        bad |= _bad_vi(v)
        bad &= ~(np.isnan(y) & np.isnan(v))  # absent studies are fine
        n_bad = np.count_nonzero(bad)
        if n_bad and nan_policy == "raise":
            r, c = (int(i) for i in np.argwhere(bad)[0])
            yv, vv = float(y[r, c]), float(v[r, c])
            name, value = ("yi", yv) if not abs(yv) <= YI_MAX else ("vi", vv)
            if np.isnan(value):
                other, other_value = ("vi", vv) if name == "yi" else ("yi", yv)
                why = (f"expected a number, or NaN in both yi and vi to mark an absent study "
                       f"({other} there is {other_value!r})")
            else:
                why = _expected(name, value)
            rows = np.unique(np.nonzero(bad)[0])
            more = (f" ({n_bad} unusable cells in {rows.size} rows: "
                    f"{', '.join(map(str, rows[:10].tolist()))}{', …' if rows.size > 10 else ''})"
                    if n_bad > 1 else "")
            raise InputError(f"{name}: got {value!r} at row {r}, column {c}{more}; {why}; "
                             "nan_policy='omit' drops such studies and counts them per row")
        if n_bad:
            y[bad] = np.nan
            v[bad] = np.nan
        omitted = np.count_nonzero(bad, axis=1) if nan_policy == "omit" else None
    if nan_policy == "omit" and omitted is None:
        omitted = np.zeros(y.shape[0], dtype=np.intp)
    return BatchData(yi=readonly(y, owned=True), vi=readonly(v, owned=True),
                     omitted=None if omitted is None else readonly(omitted, owned=True))
