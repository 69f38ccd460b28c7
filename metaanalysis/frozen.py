"""Immutability helpers for results and study data: read-only arrays and DataFrame
attributes that hand out copies.

Results are frozen dataclasses; freezing the dataclass does not freeze the NumPy
arrays and DataFrames it holds.  :func:`readonly` makes an array read-only
(copying it first unless the package already owns it), and :class:`FrameField`
is a dataclass field for a DataFrame that stores its own copy once and returns
a fresh copy on every access, so no caller can change a result after the fact.

Examples
--------
>>> import numpy as np, pandas as pd
>>> from dataclasses import dataclass
>>> @dataclass(frozen=True)
... class Box:
...     a: np.ndarray
...     table: pd.DataFrame | None = FrameField()
...     def __post_init__(self):
...         freeze_arrays(self)
>>> box = Box(np.array([1.0, 2.0]), pd.DataFrame({"x": [1, 2]}))
>>> box.a.flags.writeable
False
>>> table = box.table
>>> table.loc[0, "x"] = 99   # changes a copy only
>>> int(box.table.loc[0, "x"])
1
"""

from __future__ import annotations

import dataclasses
import sys

import numpy as np

__all__ = ["FrameField", "copy_frame", "freeze_arrays", "readonly"]


def readonly(a: np.ndarray, *, owned: bool = False) -> np.ndarray:
    """Return ``a`` as a read-only array.

    An array that is already read-only is returned as it is.  A writeable one
    is copied first, unless ``owned=True`` says that nothing else holds it
    (arrays the package has just computed), in which case only its flag is
    cleared.
    """
    if not a.flags.writeable:
        return a
    if not owned:
        a = a.copy()
    a.flags.writeable = False
    return a


def freeze_arrays(obj) -> None:
    """Make every NumPy array held in a field of the frozen dataclass ``obj`` read-only
    (call it from ``__post_init__``); fields that hold writeable arrays get copies."""
    cls = type(obj)
    names = _FIELD_NAMES.get(cls)
    if names is None:
        names = _FIELD_NAMES[cls] = tuple(f.name for f in dataclasses.fields(cls))
    values = obj.__dict__
    for name in names:
        value = values.get(name)
        if isinstance(value, np.ndarray) and value.flags.writeable:
            object.__setattr__(obj, name, readonly(value))


_FIELD_NAMES: dict = {}  # dataclass -> its field names (fields() is slow on every result)


def copy_frame(frame):
    """An independent copy of a DataFrame: lazy under pandas' copy-on-write (pandas 3),
    deep otherwise."""
    pandas = sys.modules["pandas"]  # a DataFrame exists, so pandas is imported
    return frame.copy(deep=int(pandas.__version__.split(".")[0]) < 3)


class FrameField:
    """Dataclass field holding a DataFrame (or ``None``): copied once when set,
    copied again on every read, so the result's own frame can never change.

    Use as the default of a field: ``data: DataFrame | None = FrameField()``
    (``FrameField(required=True)`` for a field without a default).
    """

    def __init__(self, *, required: bool = False):
        self.required = required

    def __set_name__(self, owner, name):
        self.name = name
        self.private = "_frame_" + name

    def __get__(self, obj, objtype=None):
        if obj is None:  # dataclass asks for the default
            if self.required:
                raise AttributeError(self.name)
            return None
        value = obj.__dict__.get(self.private)
        return None if value is None else copy_frame(value)

    def __set__(self, obj, value):
        if self.private in obj.__dict__:
            raise dataclasses.FrozenInstanceError(f"cannot assign to field {self.name!r}")
        obj.__dict__[self.private] = None if value is None else copy_frame(value)

    @staticmethod
    def peek(obj, name: str):
        """The stored frame itself, without a copy (for the result's own display code)."""
        return obj.__dict__.get("_frame_" + name)
