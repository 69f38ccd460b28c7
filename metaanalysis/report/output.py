"""Writing the report's output folder: safe file names, all-or-nothing replacement.

Every file of ``metaanalysis report`` (and of anything else that writes into its
output folder) is written through :func:`write_output` and the
:class:`OutputTree` it hands to the builder:

* **No path from input to the file system.** A name taken from the input
  (outcome, window, unit, study id, arm, time point) becomes part of a path only
  as :func:`slug` of it: lower-case ASCII letters, digits, ``_``, ``-`` and ``.``
  (:data:`SLUG_CHARACTERS`), at most :data:`MAX_SLUG` characters, never a
  separator, never a leading dot, never a reserved device name (``CON``,
  ``NUL``, ``COM1``...).  Two different names that would give the same file
  are an error naming both (:class:`OutputNameError`), and every path is
  checked to resolve inside the folder being built.
* **All or nothing.** The output is built in a sibling temporary folder
  (``.NAME.metaanalysis-tmp-PID-...``) and swapped into place as a whole: one
  atomic exchange of the two folders where the system has it (Linux
  ``renameat2``), else two renames; the previous output is removed only after
  the swap.  A run killed at any instant leaves the complete old output or the
  complete new one; the next run removes what killed runs left behind (and puts
  back an old output a kill left set aside between the two renames).
* **Never over the input, never over the user's files.** ``--out`` may not be
  the studies folder or the plan's folder, lie inside one, or contain one; an
  existing folder is replaced only if it is empty or a previous output (it
  holds :data:`MANIFEST`, or a legacy ``provenance.json``) with no files the
  report did not write.
* Files are 0644 and folders 0755 (less what the umask removes); the bytes do
  not depend on how the paths were spelled.

Examples
--------
>>> slug("../../ESCAPED"), slug("CON"), slug("Über 1 Monat"), slug("a/b\\x00c")
('escaped', '_con', 'uber-1-monat', 'a-b-c')
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import hashlib
import json
import os
import re
import secrets
import shutil
import signal
import tempfile
import unicodedata
from collections.abc import Callable
from pathlib import Path

from metaanalysis.errors import MetaAnalysisError

#: characters a slug is made of
SLUG_CHARACTERS = "abcdefghijklmnopqrstuvwxyz0123456789_-."
#: longest slug (longer names keep 55 characters and a hash of the whole name)
MAX_SLUG = 64
#: device names Windows reserves, with or without an extension
RESERVED_NAMES = frozenset({"con", "prn", "aux", "nul", "conin$", "conout$"}
                           | {f"com{i}" for i in "123456789¹²³"}
                           | {f"lpt{i}" for i in "123456789¹²³"})
#: the hidden file listing what a report wrote (marks a folder as a report's output)
MANIFEST = ".metaanalysis-output"
#: files of a previous output that are not the report's but are carried over
KEPT_FILES = (".gitkeep", ".gitignore")
#: files a file browser leaves in folders it shows: replaced with the old output
IGNORED_FILES = (".DS_Store", "Thumbs.db", "desktop.ini")
_TMP = ".metaanalysis-tmp-"
_OLD = ".metaanalysis-old-"


class OutputError(MetaAnalysisError):
    """The output folder cannot be written as asked (exit status 2)."""


class OutputNameError(OutputError):
    """Two different names from the input would be written to the same file."""


# ---------------------------------------------------------------- names

def slug(text) -> str:
    """A file-name-safe form of ``text``.

    Unicode is folded to ASCII where it has an ASCII form (``Ü`` -> ``u``),
    letters are lower-cased, every run of other characters becomes one ``-``,
    leading and trailing ``-``, ``_`` and ``.`` are removed; a name that is
    empty then becomes ``x-`` and a hash, a name longer than :data:`MAX_SLUG`
    keeps 55 characters and a hash, and a reserved device name gets a leading
    ``_``.

    Examples
    --------
    >>> slug("pain_vas"), slug("About 1 month"), slug("2-4 weeks")
    ('pain_vas', 'about-1-month', '2-4-weeks')
    >>> slug("東京"), len(slug("a" * 300))
    ('x-130016b2', 64)
    """
    raw = str(text)
    ascii_ = unicodedata.normalize("NFKD", raw).encode("ascii", "ignore").decode("ascii")
    s = re.sub(r"[^a-z0-9_.-]+", "-", ascii_.lower())
    s = re.sub(r"-{2,}", "-", s).strip("-_.")
    s = re.sub(r"\.{2,}", ".", s)
    digest = hashlib.sha256(raw.encode("utf-8", "surrogatepass")).hexdigest()[:8]
    if not s:
        return f"x-{digest}"
    if len(s) > MAX_SLUG:
        s = f"{s[:MAX_SLUG - 9].rstrip('-_.')}-{digest}"
    if s.split(".")[0] in RESERVED_NAMES:
        s = "_" + s
    return s


class OutputTree:
    """The folder a report is built in: every path under it is made here and checked.

    ``path("forest", outcome, window, unit, suffix=".csv")`` gives
    ``ROOT/forest/slug(outcome)__slug(window)__slug(unit).csv``: the folder is a
    fixed name, every other part comes from the input and is slugged.  Two
    different name tuples that give the same path raise :class:`OutputNameError`
    naming both.  ``write_text``/``write_bytes`` take a path from :meth:`path`
    or a fixed relative name (``"report.md"``) and never overwrite.
    """

    def __init__(self, root: str | Path):
        self.root = Path(root).resolve()
        self._owners: dict[str, tuple] = {}

    def stem(self, *names) -> str:
        """``slug(a)__slug(b)__...``: a file stem from names taken from the input."""
        return "__".join(slug(n) for n in names)

    def path(self, folder: str, *names, suffix: str = "") -> Path:
        """``ROOT/folder/STEM+suffix`` (``folder`` a fixed name such as ``"forest"``, ``""``
        for the root), registered so that different names never share a file."""
        stem = self.stem(*names)
        rel = f"{folder}/{stem}{suffix}" if folder else f"{stem}{suffix}"
        key = rel.casefold()  # case-insensitive file systems
        owner = (folder, *map(str, names), suffix)
        if key in self._owners and self._owners[key] != owner:
            a, b = self._owners[key], owner
            raise OutputNameError(
                f"two different names give the same output file {rel}: "
                f"{' / '.join(map(repr, a[1:-1]))} and {' / '.join(map(repr, b[1:-1]))}; "
                "rename one of them (file names keep only letters, digits, _ - .)")
        self._owners[key] = owner
        return self.inside(rel)

    def inside(self, rel: str | Path) -> Path:
        """``ROOT/rel`` after checking that it resolves inside ROOT (no ``..``, no links out)."""
        rel = Path(rel)
        if rel.is_absolute() or any(p in ("..", "") for p in rel.parts) or "\x00" in str(rel):
            raise OutputError(f"refusing to write {str(rel)!r}: not a plain relative path")
        target = self.root / rel
        real = target.parent.resolve() / target.name
        if real != target or not real.is_relative_to(self.root):
            raise OutputError(f"refusing to write {rel}: it resolves outside the output folder")
        return target

    def write_text(self, rel: str | Path, text: str) -> Path:
        """Write ``text`` (UTF-8, ``\\n`` line ends) to ``ROOT/rel``; folders are made."""
        return self.write_bytes(rel, text.encode("utf-8"))

    def write_bytes(self, rel: str | Path, data: bytes) -> Path:
        """Write ``data`` to ``ROOT/rel``; folders are made."""
        target = rel if isinstance(rel, Path) and rel.is_absolute() else self.inside(rel)
        if not target.is_relative_to(self.root):
            raise OutputError(f"refusing to write {target}: outside the output folder")
        target.parent.mkdir(parents=True, exist_ok=True)
        with open(target, "xb") as fh:
            fh.write(data)
        return target

    def files(self) -> list[Path]:
        """Every file written so far, relative to the root, sorted."""
        return sorted(p.relative_to(self.root) for p in self.root.rglob("*")
                      if p.is_file() and p.name != MANIFEST)


# ---------------------------------------------------------------- where --out may be

def _real(path: str | Path) -> Path:
    return Path(os.path.abspath(Path(path).expanduser())).resolve()


def _related(a: Path, b: Path) -> str | None:
    if a == b:
        return "is"
    if a.is_relative_to(b):
        return "is inside"
    if b.is_relative_to(a):
        return "contains"
    return None


def check_out(out: str | Path, protected: dict[str, str | Path]) -> Path:
    """The resolved output folder, after refusing places it must not be.

    ``protected`` maps a description (``"the studies folder"``) to a folder the
    output may not be, lie in, or contain.

    Raises
    ------
    OutputError
        ``--out`` equal to, inside or containing a protected folder, or an
        existing file.
    """
    real = _real(out)
    for what, folder in protected.items():
        if folder is None:
            continue
        rel = _related(real, _real(folder))
        if rel:
            raise OutputError(f"--out {out}: the output folder {rel} {what} ({folder}); "
                              "choose a folder outside it, e.g. --out figures")
    if real.exists() and not real.is_dir():
        raise OutputError(f"--out {out}: exists and is not a folder; expected a folder to "
                          "write the report into")
    foreign = _foreign(real)
    if foreign:
        shown = ", ".join(foreign[:5]) + (f" and {len(foreign) - 5} more" if len(foreign) > 5
                                          else "")
        raise OutputError(f"--out {out}: the folder holds files the report did not write "
                          f"({shown}); the output folder is replaced as a whole, so choose a "
                          "new or empty folder, or move those files")
    return real


def _listing(folder: Path) -> list[str]:
    out = []
    for dirpath, dirnames, filenames in os.walk(folder):
        for name in filenames + [d for d in dirnames if os.path.islink(os.path.join(dirpath, d))]:
            out.append(os.path.relpath(os.path.join(dirpath, name), folder).replace(os.sep, "/"))
    return sorted(out)


def _previous_files(real: Path) -> set[str] | None:
    """Files a previous report wrote into ``real`` (None: not a report's output)."""
    manifest = real / MANIFEST
    if manifest.is_file() and not manifest.is_symlink():
        lines = manifest.read_text(encoding="utf-8", errors="replace").splitlines()
        return set(lines[1:]) | {MANIFEST}
    prov = real / "provenance.json"
    if prov.is_file() and not prov.is_symlink():  # outputs written before the manifest
        with contextlib.suppress(OSError, ValueError, AttributeError):
            if json.loads(prov.read_text(encoding="utf-8")).get("package") == "metaanalysis":
                return set(_listing(real))
    return None


def _foreign(real: Path) -> list[str]:
    """Entries of an existing ``real`` that are not a previous report's (refused)."""
    if not real.exists():
        return []
    entries = _listing(real) + [d for d in os.listdir(real) if os.path.isdir(real / d)
                                and not os.listdir(real / d)]
    entries = [e for e in entries if e not in KEPT_FILES
               and e.rsplit("/", 1)[-1] not in IGNORED_FILES]
    mine = _previous_files(real)
    if mine is None:
        return entries
    return [e for e in entries if e not in mine and not os.path.isdir(real / e)]


# ---------------------------------------------------------------- swapping

def _umask() -> int:
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)  # read it by setting it, then put it back
    os.umask(mask)
    return mask


def _set_modes(root: Path) -> None:
    mask = _umask()
    dmode, fmode = 0o777 & ~mask, 0o666 & ~mask
    for dirpath, _, filenames in os.walk(root):
        os.chmod(dirpath, dmode)
        for name in filenames:
            p = os.path.join(dirpath, name)
            if not os.path.islink(p):
                os.chmod(p, fmode)


_RENAME_EXCHANGE = 2
_AT_FDCWD = -100


def _exchange(a: Path, b: Path) -> bool:
    """Atomically swap two paths (Linux renameat2); False where unsupported."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        fn = libc.renameat2
    except (OSError, AttributeError):
        return False
    fn.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    rc = fn(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE)
    if rc == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.ENOSYS, errno.EINVAL, errno.ENOTSUP, errno.EOPNOTSUPP):
        return False
    raise OSError(err, os.strerror(err), str(b))


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True
    return True


def _leftovers(real: Path) -> None:
    """Remove what killed runs left next to ``real``; restore an old output set aside."""
    parent = real.parent
    if not parent.is_dir():
        return
    prefix = f".{real.name}"
    for entry in sorted(parent.iterdir()):
        name = entry.name
        for kind in (_TMP, _OLD):
            if not name.startswith(prefix + kind):
                continue
            try:
                pid = int(name[len(prefix + kind):].split("-")[0])
            except ValueError:
                continue
            if _alive(pid) or entry.is_symlink() or not entry.is_dir():
                continue
            if kind == _OLD and not real.exists():
                os.rename(entry, real)  # killed between the two renames: put the old one back
            else:
                shutil.rmtree(entry, ignore_errors=True)


#: test hooks (environment): SIGKILL this process at a point of the swap ("built",
#: "set-aside", "swapped"); use two renames even where an atomic exchange exists
_KILL_AT = "METAANALYSIS_TEST_KILL_AT"
_NO_EXCHANGE = "METAANALYSIS_TEST_NO_EXCHANGE"


def _test_point(name: str) -> None:
    if os.environ.get(_KILL_AT) == name:
        os.kill(os.getpid(), getattr(signal, "SIGKILL", signal.SIGTERM))


def write_output(out: str | Path, build: Callable[[OutputTree], None], *,
                 protected: dict | None = None) -> list[Path]:
    """Build the output in a sibling temporary folder and swap it into place as a whole.

    Parameters
    ----------
    out : str or Path
        The output folder (``--out``).
    build : callable
        ``build(tree)`` writes every file through ``tree`` (an :class:`OutputTree`
        rooted at the temporary folder).
    protected : dict, optional
        ``{description: folder}`` the output may not be, lie in or contain (the
        studies folder, the plan's folder).

    Returns
    -------
    list of Path
        The files written, relative to ``out``, sorted.

    Raises
    ------
    OutputError
        ``out`` is not allowed, or is a folder holding files the report did not write.
    """
    real = _real(out)
    if real.parent.is_dir():
        _leftovers(real)
    real = check_out(out, protected or {})
    real.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{real.name}{_TMP}{os.getpid()}-", dir=real.parent))
    try:
        tree = OutputTree(tmp)
        build(tree)
        written = tree.files()
        if real.exists():
            for keep in KEPT_FILES:
                src = real / keep
                if src.is_file() and not src.is_symlink() and not (tmp / keep).exists():
                    shutil.copyfile(src, tmp / keep)
        (tmp / MANIFEST).write_text("metaanalysis report output; files:\n" + "".join(
            f"{p.as_posix()}\n" for p in written), encoding="utf-8")
        _set_modes(tmp)
        _test_point("built")
        if not real.exists():
            os.rename(tmp, real)
        elif os.environ.get(_NO_EXCHANGE) or not _exchange(tmp, real):  # two renames
            old = real.parent / f".{real.name}{_OLD}{os.getpid()}-{secrets.token_hex(4)}"
            os.rename(real, old)  # a kill from here to the next line: the next run restores
            _test_point("set-aside")
            os.rename(tmp, real)
            tmp = old
        _test_point("swapped")
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return written
