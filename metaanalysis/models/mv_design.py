"""Design matrices and time levels of multilevel models.

:func:`code_design` turns ``mods`` into a design matrix the way R's model
formulas do for ``rma.mv``: numeric columns as they are, text / boolean /
categorical columns dummy coded with the first level as reference (the first
category of a pandas ``Categorical``, otherwise the first in sorted order),
and with ``intercept=False`` the first categorical column coded with one
column per level (``~ factor(time) - 1``, the cell-means model).  The coding
is returned so predictions code new moderator values identically.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from metaanalysis.errors import InputError

__all__ = ["Coding", "code_design", "time_levels"]


@dataclass(frozen=True)
class Coding:
    """How ``mods`` were coded: ``columns`` of the input, each with its levels
    (``None`` for numeric), whether the first factor is fully coded, and the
    names of the design columns."""

    columns: tuple
    levels: tuple
    intercept: bool
    full_first: bool
    names: tuple


def _frame(mods, k: int | None) -> pd.DataFrame:
    if isinstance(mods, pd.DataFrame):
        frame = mods.reset_index(drop=True)
    elif isinstance(mods, pd.Series):
        frame = mods.reset_index(drop=True).to_frame(
            name=mods.name if mods.name is not None else "mod")
    elif isinstance(mods, Mapping):
        frame = pd.DataFrame({str(n): (c if isinstance(c, pd.Categorical) else np.asarray(c))
                              for n, c in mods.items()})
    else:
        arr = np.asarray(mods, dtype=float)
        if arr.ndim == 1:
            frame = pd.DataFrame({"mod": arr})
        elif arr.ndim == 2:
            frame = pd.DataFrame(arr, columns=[f"mod{j + 1}" for j in range(arr.shape[1])])
        else:
            raise InputError(f"mods: got an array of shape {arr.shape}; expected 1-D or 2-D")
    if k is not None and len(frame) != k:
        raise InputError(f"mods: got {len(frame)} rows for {k} estimates")
    return frame


def _is_factor(col: pd.Series) -> bool:
    return (isinstance(col.dtype, pd.CategoricalDtype) or col.dtype == object
            or pd.api.types.is_bool_dtype(col) or pd.api.types.is_string_dtype(col))


def _levels(col: pd.Series) -> tuple:
    if isinstance(col.dtype, pd.CategoricalDtype):
        levels = [lv for lv in col.cat.categories if (col == lv).any()]
    else:
        levels = sorted(pd.unique(col))
    return tuple(lv.item() if isinstance(lv, np.generic) else lv for lv in levels)


def _columns(frame: pd.DataFrame, coding: Coding) -> dict:
    cols: dict[str, np.ndarray] = {}
    k = len(frame)
    if coding.intercept:
        cols["intrcpt"] = np.ones(k)
    for j, (name, levels) in enumerate(zip(coding.columns, coding.levels)):
        col = frame[name]
        if levels is None:
            cols[str(name)] = col.to_numpy(dtype=float)
            continue
        unknown = set(pd.unique(col)) - set(levels)
        if unknown:
            raise InputError(f"mods column {name!r}: values {sorted(map(str, unknown))} are not "
                             f"among the levels of the fitted model {list(levels)}")
        first = 0 if (j == 0 and coding.full_first) else 1
        for lv in levels[first:]:
            cols[f"{name}[{lv}]"] = (col == lv).to_numpy(dtype=float)
    return cols


def code_design(mods, k: int, intercept: bool = True) -> tuple[pd.DataFrame, Coding]:
    """Design matrix of ``mods`` and its :class:`Coding`.

    Examples
    --------
    >>> X, c = code_design(pd.DataFrame({"t": pd.Categorical([1, 2, 3, 1])}), 4, intercept=False)
    >>> list(X.columns)
    ['t[1]', 't[2]', 't[3]']
    """
    if mods is None:
        if not intercept:
            raise InputError("intercept=False without mods leaves no fixed effects")
        coding = Coding((), (), True, False, ("intrcpt",))
        return pd.DataFrame({"intrcpt": np.ones(k)}), coding
    frame = _frame(mods, k)
    if frame.shape[1] == 0:
        raise InputError("mods: has no columns")
    levels = []
    for name in frame.columns:
        col = frame[name]
        if col.isna().any():
            raise InputError(f"mods column {name!r}: rows {np.flatnonzero(col.isna())[:5].tolist()} "
                             "are missing")
        if _is_factor(col):
            lv = _levels(col)
            if len(lv) < 2:
                raise InputError(f"mods column {name!r}: a single level {list(lv)!r}; a "
                                 "categorical moderator needs at least two")
            levels.append(lv)
        else:
            levels.append(None)
    full_first = not intercept and levels[0] is not None
    proto = Coding(tuple(frame.columns), tuple(levels), intercept, full_first, ())
    cols = _columns(frame, proto)
    coding = Coding(proto.columns, proto.levels, intercept, full_first, tuple(cols))
    return pd.DataFrame(cols), coding


def apply_coding(coding: Coding, newmods) -> np.ndarray:
    """Design rows for new moderator values coded as the fitted model.

    ``newmods`` is a DataFrame/dict with the columns of ``mods``, or an array
    of design values without the intercept column (metafor's ``newmods``).
    """
    p = len(coding.names)
    if isinstance(newmods, (pd.DataFrame, Mapping, pd.Series)):
        frame = _frame(newmods, None)
        missing = [c for c in coding.columns if c not in frame.columns]
        if missing:
            raise InputError(f"newmods: columns {missing} of mods are missing")
        return pd.DataFrame(_columns(frame, coding)).to_numpy(dtype=float)
    arr = np.asarray(newmods, dtype=float)
    width = p - 1 if coding.intercept else p
    if arr.ndim == 0 or (arr.ndim == 1 and width == 1):
        arr = arr.reshape(-1, 1)
    arr = np.atleast_2d(arr)
    if arr.shape[1] != width:
        raise InputError(f"newmods: got {arr.shape[1]} columns; the model has {width} "
                         f"moderator columns {list(coding.names[1:] if coding.intercept else coding.names)}")
    if coding.intercept:
        arr = np.column_stack([np.ones(arr.shape[0]), arr])
    return arr


def time_levels(time: pd.Series, numeric: bool = False):
    """Sorted levels of the inner variable, their numeric values (or ``None``)
    and the level code of every row.

    Numeric times sort numerically; a pandas ``Categorical`` keeps its
    category order; text sorts alphabetically.  ``numeric=True`` (CAR)
    requires numeric times.

    Examples
    --------
    >>> time_levels(pd.Series([30, 1, 7, 30]))[0]
    (1, 7, 30)
    """
    if isinstance(time.dtype, pd.CategoricalDtype):
        levels = tuple(lv for lv in time.cat.categories if (time == lv).any())
    else:
        levels = tuple(sorted(pd.unique(time)))
    levels = tuple(lv.item() if isinstance(lv, np.generic) else lv for lv in levels)
    values = None
    try:
        values = np.array([float(lv) for lv in levels])
    except (TypeError, ValueError):
        if numeric:
            raise InputError("time: struct='CAR' needs numeric time values (the correlation is "
                             "rho^|Δtime|)") from None
    lookup = {lv: j for j, lv in enumerate(levels)}
    codes = np.array([lookup[t] for t in time], dtype=int)
    return levels, values, codes
