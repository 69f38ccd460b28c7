"""Declarative schemas for YAML input: keys, types, defaults and references.

A schema is a tree of small specs: :class:`Record` (a mapping with a fixed table
of keys), :class:`ListOf`, :class:`MapOf`, :class:`Text`, :class:`Name`,
:class:`Choice`, :class:`Number`, :class:`Integer`, :class:`Boolean`,
:class:`Ref` (a name defined elsewhere in the same file) and :class:`OneKey`
(``{halfnormal: 0.5}``).  :func:`validate` walks a value against a schema,
fills in defaults and returns plain Python values; every problem becomes a
:class:`~metaanalysis.errors.Problem` ``FILE: record/field: message`` naming the
value and what was expected.  Unknown keys are errors with the nearest valid
key suggested (``exclusion: unknown key; did you mean exclusions?``); ``true``
is the only truth value (``"no"`` is text, not False).

Examples
--------
>>> schema = Record({"method": Choice(("REML", "DL"), default="REML"),
...                  "level": Number(lo=0, hi=1, lo_open=True, hi_open=True, default=0.95)})
>>> value, problems = validate(schema, {"methd": "DL"}, "plan.yaml", record="defaults")
>>> [str(p) for p in problems]
['plan.yaml: defaults/methd: unknown key; did you mean method?']
>>> validate(schema, {"level": 0.9}, "plan.yaml")[0]
{'method': 'REML', 'level': 0.9}
"""

from __future__ import annotations

import difflib
import math
import unicodedata
from collections.abc import Callable, Mapping

from metaanalysis.errors import Problem

#: longest text value (characters) anywhere in a study record or plan
MAX_TEXT = 5000
#: longest name (window, study set, arm, id, outcome)
MAX_NAME = 64
#: most entries in one list or mapping
MAX_ITEMS = 10000

MISSING = object()
INVALID = object()


def show(value, limit: int = 60) -> str:
    """``repr(value)`` cut to ``limit`` characters (control characters escaped)."""
    text = repr(value)
    return text if len(text) <= limit else text[:limit - 3] + "..."


def suggest(key, valid) -> str:
    """``"; did you mean X?"`` for the valid name nearest ``key``, else the list of names."""
    names = [str(v) for v in valid]
    near = difflib.get_close_matches(str(key)[:MAX_NAME], names, n=1, cutoff=0.6)
    if near:
        return f"; did you mean {near[0]}?"
    if len(names) <= 30:
        return "; expected one of " + ", ".join(names) if names else "; none is defined"
    return ""


def is_number(v) -> bool:
    """True for int and float values (not bool)."""
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def has_control_characters(text: str) -> bool:
    """True when ``text`` holds a control character (newline, NUL, escape...)."""
    return any(unicodedata.category(ch) in ("Cc", "Cs") for ch in text)


class Checker:
    """Collects problems while validating one file; knows the names it defines."""

    def __init__(self, file: str):
        self.file = file
        self.problems: list[Problem] = []
        self.defined: dict[str, dict] = {}

    def error(self, record: str, fld: str, message: str, severity: str = "error") -> None:
        self.problems.append(Problem(self.file, record, fld, message, severity))


class Spec:
    """Base of every spec: a default, whether the key is required, a help text."""

    expected = "a value"

    def __init__(self, *, default=MISSING, required: bool = False, doc: str = "",
                 expect: str = ""):
        self.default = default
        self.required = required
        self.doc = doc
        self.expect = expect  # overrides what messages say is expected

    def check(self, value, ck: Checker, record: str, fld: str):
        """The validated value, or :data:`INVALID` after recording a problem."""
        return value

    def bad(self, value, ck: Checker, record: str, fld: str, why: str = ""):
        ck.error(record, fld, f"got {show(value)}; expected {self.expect or why or self.expected}")
        return INVALID


class Text(Spec):
    """Text (not a number or true/false), at most ``max_len`` characters."""

    expected = "text"

    def __init__(self, *, max_len: int = MAX_TEXT, nonempty: bool = False, **kw):
        super().__init__(**kw)
        self.max_len = max_len
        self.nonempty = nonempty

    def check(self, value, ck, record, fld):
        if not isinstance(value, str):
            return self.bad(value, ck, record, fld, "text (put numbers and true/false in quotes)")
        if len(value) > self.max_len:
            return self.bad(value, ck, record, fld, f"text of at most {self.max_len} characters "
                            f"(got {len(value)})")
        if self.nonempty and not value.strip():
            return self.bad(value, ck, record, fld, "non-empty text")
        return value


class Name(Text):
    """A name used as a key elsewhere: stripped, 1..64 characters, no control characters.

    ``pattern`` (a compiled regular expression) and ``pattern_text`` (how it is
    described in messages) restrict it further, e.g. to lower-case identifiers.
    """

    def __init__(self, *, max_len: int = MAX_NAME, pattern=None, pattern_text: str = "", **kw):
        super().__init__(max_len=max_len, **kw)
        self.pattern, self.pattern_text = pattern, pattern_text

    @property
    def expected(self):
        return self.pattern_text or (f"a name of 1 to {self.max_len} characters without "
                                     "control characters (newline, NUL, tab)")

    def check(self, value, ck, record, fld):
        if not isinstance(value, str):
            return self.bad(value, ck, record, fld, f"{self.expected} (text)")
        v = value.strip()
        if (not v or len(v) > self.max_len or has_control_characters(v) or set(v) <= {"."}
                or (self.pattern is not None and not self.pattern.fullmatch(v))):
            return self.bad(value, ck, record, fld)
        return v


class Choice(Spec):
    """One of a fixed set of values."""

    def __init__(self, values, **kw):
        super().__init__(**kw)
        self.values = tuple(values)

    @property
    def expected(self):
        return "one of " + ", ".join(map(str, self.values))

    def check(self, value, ck, record, fld):
        try:
            ok = value in self.values
        except TypeError:
            ok = False
        if not ok or isinstance(value, bool):
            near = suggest(value, self.values) if isinstance(value, str) else ""
            if near.startswith("; did you mean"):
                ck.error(record, fld, f"got {show(value)}; expected {self.expected}{near}")
                return INVALID
            return self.bad(value, ck, record, fld)
        return value


class Number(Spec):
    """A finite number inside ``[lo, hi]`` (``lo_open``/``hi_open`` exclude the bound)."""

    def __init__(self, *, lo=None, hi=None, lo_open=False, hi_open=False, **kw):
        super().__init__(**kw)
        self.lo, self.hi, self.lo_open, self.hi_open = lo, hi, lo_open, hi_open

    @property
    def expected(self):
        if self.lo is None and self.hi is None:
            return "a number"
        lo = "-inf" if self.lo is None else f"{self.lo:g}"
        hi = "inf" if self.hi is None else f"{self.hi:g}"
        return (f"a number in {'(' if self.lo_open else '['}{lo}, {hi}"
                f"{')' if self.hi_open else ']'}")

    def check(self, value, ck, record, fld):
        if not is_number(value):
            return self.bad(value, ck, record, fld)
        try:
            x = float(value)
        except OverflowError:
            return self.bad(value, ck, record, fld)
        if not math.isfinite(x):
            return self.bad(value, ck, record, fld)
        if self.lo is not None and (x < self.lo or (self.lo_open and x == self.lo)):
            return self.bad(value, ck, record, fld)
        if self.hi is not None and (x > self.hi or (self.hi_open and x == self.hi)):
            return self.bad(value, ck, record, fld)
        return x


class Integer(Number):
    """A whole number inside ``[lo, hi]``."""

    @property
    def expected(self):
        return super().expected.replace("a number", "a whole number")

    def check(self, value, ck, record, fld):
        x = super().check(value, ck, record, fld)
        if x is INVALID:
            return x
        if not float(x).is_integer():
            return self.bad(value, ck, record, fld)
        return int(x)


class Boolean(Spec):
    """``true`` or ``false`` (YAML booleans only: the text "no" is an error)."""

    expected = "true or false (without quotes)"

    def check(self, value, ck, record, fld):
        if not isinstance(value, bool):
            return self.bad(value, ck, record, fld)
        return value


class Ref(Name):
    """A name defined in another section of the same file (e.g. a window)."""

    def __init__(self, section: str, **kw):
        super().__init__(**kw)
        self.section = section

    def check(self, value, ck, record, fld):
        v = super().check(value, ck, record, fld)
        if v is INVALID:
            return v
        names = ck.defined.get(self.section)
        if names is not None and v not in names:
            ck.error(record, fld, f"{show(v)} is not defined under '{self.section}'"
                     + suggest(v, names))
            return INVALID
        return v


class ListOf(Spec):
    """A list of items of one spec (returned as a tuple)."""

    def __init__(self, item: Spec, *, min_len: int = 0, max_len: int = MAX_ITEMS,
                 unique: bool = False, **kw):
        super().__init__(**kw)
        self.item, self.min_len, self.max_len, self.unique = item, min_len, max_len, unique

    @property
    def expected(self):
        return (f"a list of {self.item.expected}"
                + (f" (at least {self.min_len})" if self.min_len else ""))

    def check(self, value, ck, record, fld):
        if not isinstance(value, list):
            return self.bad(value, ck, record, fld, f"a list [...] of {self.item.expected}")
        if len(value) < self.min_len:
            return self.bad(value, ck, record, fld, f"a list of at least {self.min_len} "
                            f"{self.item.expected} (got {len(value)})")
        if len(value) > self.max_len:
            return self.bad(value, ck, record, fld, f"a list of at most {self.max_len} "
                            f"entries (got {len(value)})")
        out, ok = [], True
        for i, item in enumerate(value):
            v = _item(self.item, item, ck, record, f"{fld}[{i}]", i)
            ok = ok and v is not INVALID
            out.append(v)
        if not ok:
            return INVALID
        if self.unique:
            seen = set()
            for i, v in enumerate(out):
                key = v if isinstance(v, (str, int, float, tuple)) else id(v)
                if key in seen:
                    ck.error(record, f"{fld}[{i}]", f"{show(v)} is listed twice"
                             + (f"; expected {self.expect}" if self.expect else ""))
                    return INVALID
                seen.add(key)
        return tuple(out)


class MapOf(Spec):
    """A mapping ``{name: value}`` with names checked by ``key`` (returned as a dict).

    ``define`` names the section, so :class:`Ref` specs elsewhere can refer to its keys.
    """

    def __init__(self, value: Spec, *, key: Spec | None = None, define: str | None = None,
                 min_len: int = 0, max_len: int = MAX_ITEMS, **kw):
        super().__init__(**kw)
        self.value, self.key, self.define = value, key or Name(), define
        self.min_len, self.max_len = min_len, max_len

    @property
    def expected(self):
        return f"a mapping {{name: {self.value.expected}}}"

    def check(self, value, ck, record, fld):
        if not isinstance(value, dict):
            return self.bad(value, ck, record, fld)
        if len(value) < self.min_len or len(value) > self.max_len:
            return self.bad(value, ck, record, fld, f"a mapping of {self.min_len} to "
                            f"{self.max_len} entries (got {len(value)})")
        rec = "/".join(x for x in (record, fld) if x)
        out, ok, firsts = {}, True, {}
        for k, v in value.items():
            name = self.key.check(k, ck, rec, show(k) if not isinstance(k, str) else k.strip()
                                  or show(k))
            if name is INVALID:
                ok = False
                continue
            if name in out:
                ck.error(rec, name, f"defined twice ({show(firsts[name])} and {show(k)})")
                ok = False
                continue
            firsts[name] = k
            out[name] = self.value.check(v, ck, rec, name)
            ok = ok and out[name] is not INVALID
        if self.define:
            ck.defined[self.define] = dict(out)  # bad values still define their names
        return out if ok else INVALID


class OneKey(Spec):
    """A mapping with exactly one key among ``choices``: ``{halfnormal: 0.5}``."""

    def __init__(self, choices: Mapping[str, Spec], **kw):
        super().__init__(**kw)
        self.choices = dict(choices)

    @property
    def expected(self):
        return " or ".join(f"{{{k}: {s.expected}}}" for k, s in self.choices.items())

    def check(self, value, ck, record, fld):
        if not isinstance(value, dict) or len(value) != 1:
            return self.bad(value, ck, record, fld)
        (k, v), = value.items()
        if k not in self.choices:
            ck.error(record, fld, f"{show(k)} is not one of {', '.join(self.choices)}"
                     + suggest(k, self.choices))
            return INVALID
        x = self.choices[k].check(v, ck, record, f"{fld}.{k}")
        return INVALID if x is INVALID else (k, x)


class Record(Spec):
    """A mapping with a fixed table of keys (``fields``: name -> spec).

    ``label(value, index)`` names the record in problems (``outcomes/pain_vas``);
    ``check_all(values, ck, record)`` runs checks across fields after every field
    passed.  An absent optional key gets its spec's default (None without one).
    """

    expected = "a mapping"

    def __init__(self, fields: Mapping[str, Spec], *, label: Callable | None = None,
                 check_all: Callable | None = None, **kw):
        kw.setdefault("default", MISSING)
        super().__init__(**kw)
        self.fields = fields
        self.label = label
        self.check_all = check_all

    def check(self, value, ck, record, fld):
        rec = "/".join(x for x in (record, fld) if x)
        if not isinstance(value, dict):
            return self.bad(value, ck, record, fld, "a mapping with keys "
                            + ", ".join(self.fields))
        n_before = len(ck.problems)
        for k in value:
            if k not in self.fields:
                name = k.strip() if isinstance(k, str) else show(k)
                hint = suggest(name, self.fields)
                if hint.startswith("; expected"):
                    hint = "; expected one of " + ", ".join(self.fields)
                ck.error(rec, name or show(k), "unknown key" + hint)
        out = {}
        for k, spec in self.fields.items():
            v = value.get(k)
            if v is None:
                if spec.required:
                    ck.error(rec, k, f"missing; expected {spec.expected}")
                    out[k] = INVALID
                    continue
                v = spec.default
                if v is MISSING:
                    out[k] = None
                    continue
                if not isinstance(spec, (Record, MapOf)):
                    out[k] = v
                    continue
            out[k] = spec.check(v, ck, rec, k)
        if len(ck.problems) > n_before:
            return INVALID
        if self.check_all is not None:
            self.check_all(out, ck, rec)
            if len(ck.problems) > n_before:
                return INVALID
        return out


def _item(spec: Spec, value, ck: Checker, record: str, fld: str, index: int):
    """Check one list item; a :class:`Record` item is named by its label."""
    if isinstance(spec, Record) and spec.label is not None and isinstance(value, dict):
        try:
            name = spec.label(value, index)
        except Exception:  # noqa: BLE001 - a label must never hide the real problem
            name = None
        if name:
            return spec.check(value, ck, name, "")
    return spec.check(value, ck, record, fld)


def validate(schema: Spec, value, file: str, *, record: str = "", ck: Checker | None = None):
    """Validate ``value`` against ``schema``; return ``(values, problems)``.

    ``values`` is :data:`INVALID` when there are problems.
    """
    ck = ck or Checker(str(file))
    out = schema.check(value, ck, record, "")
    return (INVALID if ck.problems else out), ck.problems


def describe(schema: Record, indent: str = "") -> list[str]:
    """One line per key of a record schema (name, expected value, default, help text)."""
    lines = []
    for k, spec in schema.fields.items():
        default = "" if spec.default is MISSING or isinstance(spec, Record) else \
            f" (default {spec.default!r})"
        req = " (required)" if spec.required else ""
        lines.append(f"{indent}{k}: {spec.expected}{req}{default}"
                     + (f" -- {spec.doc}" if spec.doc else ""))
    return lines
