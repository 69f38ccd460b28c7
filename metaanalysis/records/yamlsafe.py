"""Reading YAML input (study records and analysis plans) with bounded work.

Every YAML file the package reads goes through :func:`read_yaml`, which

* refuses anything that is not a regular, readable file (a directory named
  ``*.yaml``, a FIFO, a device, a broken symbolic link) without blocking on it;
* refuses files larger than :data:`MAX_FILE_BYTES`, binary content (NUL bytes)
  and text that is not UTF-8;
* refuses aliases (``*name``) and merge keys (``<<``): a record is written out
  in full, so a few bytes can never expand into gigabytes ("billion laughs");
* refuses nesting deeper than :data:`MAX_DEPTH` levels, keys that are not plain
  values (``? [a, b]``), duplicate keys, more than one document, and tags other
  than the plain YAML types (``!!python/...``, ``!!binary``, ``!!set``);
* keeps the number of decimals every float was written with
  (:class:`ReportedFloat`), and leaves dates as text.

The events come from libyaml's parser when PyYAML has it (fast, and iterative:
no recursion whatever the nesting) and from PyYAML's pure-Python parser
otherwise; the values are built here, iteratively, from those events.

Every problem is a :class:`~metaanalysis.errors.Problem` naming the file (and the
line and column where YAML gives one).
"""

from __future__ import annotations

import os
import re
import stat
from pathlib import Path

import yaml

from metaanalysis.errors import Problem

#: largest YAML file read (bytes); a study record is a few kilobytes
MAX_FILE_BYTES = 512 * 1024
#: deepest nesting of mappings and lists (a study record needs 4)
MAX_DEPTH = 32
#: most digits in a number (Python refuses longer integers; no count needs 20)
MAX_NUMBER_CHARS = 60

_PLAIN_TAGS = {
    "tag:yaml.org,2002:str", "tag:yaml.org,2002:int", "tag:yaml.org,2002:float",
    "tag:yaml.org,2002:bool", "tag:yaml.org,2002:null", "tag:yaml.org,2002:seq",
    "tag:yaml.org,2002:map", "tag:yaml.org,2002:timestamp",
}

try:
    from yaml._yaml import CParser as _Parser
except ImportError:  # pragma: no cover - PyYAML built without libyaml
    _Parser = None


class ReportedFloat(float):
    """A float that remembers how many decimals it was written with (``30.30`` -> 2)."""

    decimals: int = 0


class YAMLInputError(Exception):
    """Raised while building values; carries a message and a line/column."""

    def __init__(self, message: str, mark=None):
        super().__init__(message)
        self.message = message
        self.mark = mark


def _at(mark) -> str:
    return f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""


class _Scalars(yaml.SafeLoader):
    """Only used for its scalar resolution and construction (no stream)."""

    def __init__(self):  # noqa: D107 - no stream: resolver and constructor only
        yaml.resolver.Resolver.__init__(self)
        yaml.constructor.SafeConstructor.__init__(self)


_SCALARS = _Scalars()
_INT = "tag:yaml.org,2002:int"
_FLOAT = "tag:yaml.org,2002:float"


def _scalar(event):
    """The Python value of a scalar event (plain YAML types only)."""
    tag = event.tag
    if tag is None or tag == "!":
        tag = _SCALARS.resolve(yaml.ScalarNode, event.value, event.implicit)
    if tag == "tag:yaml.org,2002:merge":
        raise YAMLInputError("merge keys (<<) are not allowed; write the values out",
                             event.start_mark)
    if tag not in _PLAIN_TAGS or tag in ("tag:yaml.org,2002:seq", "tag:yaml.org,2002:map"):
        raise YAMLInputError(f"tag {event.tag or tag} is not allowed; expected plain text, "
                             "numbers, true/false and null", event.start_mark)
    node = yaml.ScalarNode(tag, event.value, event.start_mark, event.end_mark, event.style)
    if tag == "tag:yaml.org,2002:str" or tag == "tag:yaml.org,2002:timestamp":
        return event.value  # dates stay text
    if tag in (_INT, _FLOAT) and len(event.value) > MAX_NUMBER_CHARS:
        raise YAMLInputError(f"a number written with {len(event.value)} characters; expected "
                             f"at most {MAX_NUMBER_CHARS}", event.start_mark)
    if tag == _FLOAT:
        value = ReportedFloat(_SCALARS.construct_yaml_float(node))
        text = str(event.value).replace("_", "")
        mantissa = re.split(r"[eE]", text)[0]
        value.decimals = len(mantissa.split(".", 1)[1]) if "." in mantissa else 0
        return value
    try:
        return _SCALARS.construct_object(node)
    except (ValueError, yaml.YAMLError) as err:
        raise YAMLInputError(f"cannot read {event.value!r}: {err}", event.start_mark) from None


class _Builder:
    """Values from a stream of events, iteratively (no recursion, bounded depth)."""

    def __init__(self):
        self.stack: list = []  # [container, pending key or _NO_KEY, start mark]
        self.docs: list = []

    _NO_KEY = object()

    def add(self, value, event) -> None:
        if not self.stack:
            self.docs.append(value)
            return
        top = self.stack[-1]
        box = top[0]
        if isinstance(box, list):
            box.append(value)
        elif top[1] is _Builder._NO_KEY:
            if isinstance(value, (dict, list)):
                raise YAMLInputError("a key must be a plain value (text or a number), not a "
                                     "list or mapping", event.start_mark)
            if value in box:
                raise YAMLInputError(f"duplicate key {value!r}", event.start_mark)
            top[1] = value
        else:
            box[top[1]] = value
            top[1] = _Builder._NO_KEY

    def feed(self, event) -> None:
        if isinstance(event, yaml.AliasEvent):
            raise YAMLInputError(f"alias *{event.anchor} is not allowed; write the value out in "
                                 "full (anchors and aliases are refused so that a small file "
                                 "cannot expand into a huge one)", event.start_mark)
        if isinstance(event, (yaml.SequenceStartEvent, yaml.MappingStartEvent)):
            if event.tag not in (None, "!", "tag:yaml.org,2002:seq", "tag:yaml.org,2002:map"):
                raise YAMLInputError(f"tag {event.tag} is not allowed; expected plain lists and "
                                     "mappings", event.start_mark)
            if len(self.stack) >= MAX_DEPTH:
                raise YAMLInputError(f"nested deeper than {MAX_DEPTH} levels", event.start_mark)
            box = [] if isinstance(event, yaml.SequenceStartEvent) else {}
            self.stack.append([box, _Builder._NO_KEY, event])
        elif isinstance(event, (yaml.SequenceEndEvent, yaml.MappingEndEvent)):
            box, _, start = self.stack.pop()
            self.add(box, start)
        elif isinstance(event, yaml.ScalarEvent):
            self.add(_scalar(event), event)
        elif isinstance(event, yaml.DocumentStartEvent) and self.docs:
            raise YAMLInputError("more than one YAML document (---); expected one",
                                 event.start_mark)


def parse_yaml(text: str):
    r"""Values of a YAML text under the limits of this module.

    Raises
    ------
    YAMLInputError
        For anything this module refuses (aliases, depth, tags, keys...).
    yaml.YAMLError
        For text that is not YAML.

    Examples
    --------
    >>> parse_yaml("a: [1, 2.50]")["a"][1].decimals
    2
    >>> parse_yaml("a: &x 1\nb: *x")
    Traceback (most recent call last):
    ...
    metaanalysis.records.yamlsafe.YAMLInputError: alias *x is not allowed; ...
    """
    builder = _Builder()
    if _Parser is not None:
        parser = _Parser(text)
        try:
            while True:
                event = parser.get_event()
                if event is None or isinstance(event, yaml.StreamEndEvent):
                    break
                builder.feed(event)
        finally:
            parser.dispose()
    else:  # pragma: no cover - PyYAML without libyaml
        for event in yaml.parse(text, Loader=yaml.SafeLoader):
            builder.feed(event)
    return builder.docs[0] if builder.docs else None


def read_bytes_limited(path: str | Path, limit: int = MAX_FILE_BYTES) -> tuple[bytes | None, str]:
    """The bytes of a regular file, or ``(None, reason)``; never blocks on a FIFO or device."""
    path = Path(path)
    try:
        st = path.stat()
    except FileNotFoundError:
        if path.is_symlink():
            return None, "a symbolic link to a file that does not exist"
        return None, "no such file"
    except OSError as err:
        return None, f"cannot read: {err.strerror or err}"
    if stat.S_ISDIR(st.st_mode):
        return None, "a folder, not a file"
    if not stat.S_ISREG(st.st_mode):
        return None, "not a regular file (a FIFO, socket or device)"
    if st.st_size > limit:
        return None, f"{st.st_size} bytes; YAML input is limited to {limit} bytes"
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0)
    try:
        fd = os.open(path, flags)
    except OSError as err:
        return None, f"cannot read: {err.strerror or err}"
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):  # swapped since the first look
            return None, "not a regular file"
        chunks, size = [], 0
        while size <= limit:
            chunk = os.read(fd, min(65536, limit + 1 - size))
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
    except OSError as err:
        return None, f"cannot read: {err.strerror or err}"
    finally:
        os.close(fd)
    data = b"".join(chunks)
    if len(data) > limit:
        return None, f"more than {limit} bytes; YAML input is limited to {limit} bytes"
    return data, ""


def read_yaml(path: str | Path, what: str = "a YAML study record") -> tuple[object, list[Problem]]:
    """Read one YAML file under the limits of this module.

    Returns
    -------
    (value, problems)
        ``value`` is None when ``problems`` is not empty.

    Examples
    --------
    >>> value, problems = read_yaml("no/such/file.yaml")
    >>> value, [str(p) for p in problems]
    (None, ['no/such/file.yaml: -: no such file'])
    """
    file = str(path)

    def fail(message):
        return None, [Problem(file, "", "", message)]

    data, why = read_bytes_limited(path)
    if data is None:
        return fail(why)
    if b"\x00" in data:
        return fail(f"not a text file (contains NUL bytes); expected {what}")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as err:
        return fail(f"not UTF-8 text (byte {err.start}); expected {what}")
    text = text.removeprefix("\ufeff")
    try:
        return parse_yaml(text), []
    except YAMLInputError as err:
        return fail(f"{err.message}{_at(err.mark)}")
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        msg = getattr(err, "problem", None) or (str(err).splitlines() or ["not YAML"])[0]
        return fail(f"broken YAML{_at(mark)}: {msg}")
    except RecursionError:  # pragma: no cover - the builder does not recurse
        return fail(f"nested too deeply; expected at most {MAX_DEPTH} levels")
