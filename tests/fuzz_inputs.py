"""Mutation fuzzing of study folders, plans and output targets (not collected by pytest).

Each case copies a seed folder (the shipped studies and plan, or a tiny
three-study folder with a one-outcome plan), applies one to three random
mutations (values, keys, lines, bytes, YAML aliases and nesting, files that are
not regular files, hostile names, output targets), then runs
``metaanalysis check`` and ``metaanalysis report`` in-process and classifies
the result:

* ``ok-0`` / ``ok-2``: exit 0, or exit 2 with every stderr line a problem line
  (``FILE: record/field: message`` or ``metaanalysis: ...``);
* ``BAD-*``: anything else: exit 1 (internal error), an exception escaping
  ``main``, a traceback on stderr, more than ``--timeout`` seconds, a file
  written outside ``--out`` (or its temporary sibling), or an input changed.

Usage::

    python tests/fuzz_inputs.py --cases 300 --seed 1             # check + plan + report
    python tests/fuzz_inputs.py --cases 300 --report-every 0      # check and plan only

It prints one line per bad case and a summary table.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import io
import os
import random
import re
import shutil
import signal
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))

HOSTILE_VALUES = [
    "-1", "0", "1", "2.5", "1e308", "1.0e+400", "-1.0e+400", "9" * 400, "0." + "3" * 400,
    ".nan", ".inf", "'text'", "[1, 2]", "{a: 1}", "null", "~", "yes", "no", '"no"', "''",
    '"../../../../ESCAPED"', '"/etc/passwd"', '"CON"', '"a\\nb"', '"a\\u0000b"', '"über"',
    "x" * 300, "100.00000001", "1000000000", "0x7fffffff", "1_000", "1:30", "2022-01-01",
    "!!python/object/apply:os.system [echo]", "!!binary aGVsbG8=", "*nope", "&a 1",
    "[" * 60 + "]" * 60, "{a: " * 40 + "1" + "}" * 40, '"' + "\u202e" + 'evil"',
]
HOSTILE_KEYS = ["? [a, b]", "<<", "1", "null", "'../x'", '"a\\nb"', "x" * 300, "évent"]
BILLION_LAUGHS = ('a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n'
                  'b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]\nc: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]\n'
                  'd: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]\ne: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]\n')
_SCALAR = re.compile(r"(?<=: )([^\s,{}\[\]#][^,{}\[\]#\n]*)")
_KEY = re.compile(r"(^\s*-?\s*|[{,]\s*)([A-Za-z_][A-Za-z0-9_]*)(?=:)", re.M)


def _typo(rng, word: str) -> str:
    i = rng.randrange(len(word))
    return rng.choice([word[:i] + word[i + 1:], word[:i] + rng.choice("aeiosx_") + word[i:],
                       word + "s", word[:-1]]) or "x"


def mutate_text(rng, text: str) -> tuple[str, str]:
    """One random mutation of a YAML text; returns (new text, name of the mutation)."""
    lines = text.splitlines(keepends=True)
    kind = rng.choice(["value", "value", "value", "key-typo", "key-hostile", "line-drop",
                       "line-dup", "truncate", "bytes", "laughs", "deep", "indent", "number"])
    if kind == "value":
        spots = list(_SCALAR.finditer(text))
        if spots:
            m = rng.choice(spots)
            return text[:m.start()] + rng.choice(HOSTILE_VALUES) + text[m.end():], kind
    if kind == "number":
        spots = list(re.finditer(r"(?<![\w.])\d+(\.\d+)?(?![\w.])", text))
        if spots:
            m = rng.choice(spots)
            new = rng.choice([m.group() + "0" * rng.randint(1, 12), "-" + m.group(),
                              m.group() + "." + "9" * rng.randint(1, 20), "0", "1000001"])
            return text[:m.start()] + new + text[m.end():], kind
    if kind == "key-typo":
        spots = list(_KEY.finditer(text))
        if spots:
            m = rng.choice(spots)
            return text[:m.start(2)] + _typo(rng, m.group(2)) + text[m.end(2):], kind
    if kind == "key-hostile":
        spots = list(_KEY.finditer(text))
        if spots:
            m = rng.choice(spots)
            return text[:m.start(2)] + rng.choice(HOSTILE_KEYS) + text[m.end(2):], kind
    if kind == "line-drop" and lines:
        del lines[rng.randrange(len(lines))]
        return "".join(lines), kind
    if kind == "line-dup" and lines:
        i = rng.randrange(len(lines))
        lines.insert(i, lines[i])
        return "".join(lines), kind
    if kind == "truncate":
        return text[:rng.randrange(len(text) + 1)], kind
    if kind == "bytes":
        i = rng.randrange(len(text) + 1)
        return text[:i] + rng.choice(["\x00", "\ufeff", "\udcff", "\t", "\r", "\x1b[2J",
                                      "\u2028", "%", "@", "`", "|", ">"]) + text[i:], kind
    if kind == "laughs":
        return BILLION_LAUGHS + text, kind
    if kind == "deep":
        n = rng.choice([40, 500, 5000, 50000])
        return "x: " + "[" * n + "]" * n + "\n" + text, kind
    if kind == "indent" and lines:
        i = rng.randrange(len(lines))
        lines[i] = rng.choice(["  ", " ", "\t", ""]) + lines[i].lstrip()
        return "".join(lines), kind
    return text + "\nnote: added\n", "append"


def mutate_folder(rng, folder: Path) -> list[str]:
    """Mutate study files or the plan of ``folder`` in place; return what was done."""
    done = []
    files = sorted(folder.glob("*.yaml"))
    for _ in range(rng.choice([1, 1, 2, 3])):
        target = rng.choice(files)
        if not target.exists() or not target.is_file():
            continue
        r = rng.random()
        if r < 0.06:
            target.unlink()
            kind = rng.choice(["dir", "fifo", "broken-link", "dev-link", "big"])
            if kind == "dir":
                target.mkdir()
            elif kind == "fifo" and hasattr(os, "mkfifo"):
                os.mkfifo(target)
            elif kind == "broken-link":
                target.symlink_to(folder / "nowhere")
            elif kind == "dev-link":
                target.symlink_to("/dev/zero")
            else:
                target.write_text("note: |\n" + ("  " + "x" * 98 + "\n") * 11000)
            done.append(f"{target.name}:{kind}")
            continue
        new, kind = mutate_text(rng, target.read_text(encoding="utf-8", errors="surrogateescape"))
        target.write_bytes(new.encode("utf-8", "surrogateescape"))
        done.append(f"{target.name}:{kind}")
    return done


def _hashes(folder: Path) -> dict:
    out = {}
    for p in sorted(folder.rglob("*")):
        if p.is_symlink() or not p.exists():
            out[str(p)] = "link"
        elif p.is_file():
            out[str(p)] = hashlib.sha256(p.read_bytes()).hexdigest()
        elif p.is_dir():
            out[str(p)] = "dir"
        else:
            out[str(p)] = "special"
    return out


class _Timeout(BaseException):  # not an Exception: the command line must not catch it
    pass


def _alarm(signum, frame):
    raise _Timeout


def run_cli(argv, timeout: float) -> tuple[str, int | None, str, float]:
    """``main(argv)`` in-process: (status, exit code, stderr, seconds)."""
    from metaanalysis.cli import main

    err, out = io.StringIO(), io.StringIO()
    old = signal.signal(signal.SIGALRM, _alarm)
    signal.setitimer(signal.ITIMER_REAL, timeout)
    t0 = time.perf_counter()
    try:
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(out):
            rc = main(argv)
        status = "done"
    except _Timeout:
        rc, status = None, "timeout"
    except BaseException as exc:  # noqa: BLE001 - an escaping exception is the finding
        rc, status = None, f"raised {type(exc).__name__}: {str(exc)[:200]}"
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)
    return status, rc, err.getvalue(), time.perf_counter() - t0


def classify(status, rc, err, case: Path, argv) -> str:
    if status != "done":
        return "BAD-" + status.split(":")[0].replace(" ", "-")
    if "Traceback" in err:
        return "BAD-traceback"
    if rc == 2:
        lines = [ln for ln in err.splitlines() if ln and not ln.endswith("[warning]")]
        problem = re.compile(r"^(\S.*?): (.+?): .+$|^metaanalysis: .+$")
        if not lines or not all(problem.match(ln) for ln in lines):
            return "BAD-unclear-exit-2"
        return "ok-2"
    if rc == 0:
        return "ok-0"
    return f"BAD-exit-{rc}"


def seed_folder(kind: str, dest: Path) -> Path:
    studies = dest / "studies"
    if kind == "shipped":
        shutil.copytree(ROOT / "studies", studies)
    else:
        from hostile_cases import LEAK_PLAN, leak, pain, study, write_studies

        write_studies(studies, [study(sid, [leak(3 + i, 40), pain("baseline", 7.0 + i / 10),
                                            pain("1 month", 3.0 + i / 5)])
                                for i, sid in enumerate(["a2020", "b2021", "c2022"])])
        (studies / "plan.yaml").write_text(
            LEAK_PLAN.replace("defaults: {funnel_min_k: 10}",
                              "defaults: {funnel_min_k: 10, few_studies: pool}\n"
                              "windows: {about_1_month: [21, 42]}")
            + "  - {name: pain_vas, measure: MC, windows: [about_1_month]}\n")
    return studies


def out_target(rng, case: Path, studies: Path) -> Path:
    r = rng.random()
    if r < 0.85:
        return case / "out"
    kind = rng.choice(["studies", "inside", "parent", "file", "foreign", "link"])
    if kind == "studies":
        return studies
    if kind == "inside":
        return studies / "figures"
    if kind == "parent":
        return case
    if kind == "file":
        (case / "afile").write_text("mine")
        return case / "afile"
    if kind == "foreign":
        (case / "foreign").mkdir()
        (case / "foreign" / "mine.txt").write_text("mine")
        return case / "foreign"
    (case / "link").symlink_to(studies)
    return case / "link"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cases", type=int, default=200)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--timeout", type=float, default=45.0)
    ap.add_argument("--report-every", type=int, default=4,
                    help="run `report` on every Nth case (0: never); reports use the tiny seed")
    args = ap.parse_args(argv)
    os.environ.setdefault("MPLBACKEND", "Agg")
    import metaanalysis.report.run as run

    run.FIGURE_FORMATS = ("svg",)  # the figure writers are not what is fuzzed here
    rng = random.Random(args.seed)
    tally, bad, slowest = Counter(), [], (0.0, "")
    with tempfile.TemporaryDirectory(prefix="fuzz-") as tmp:
        for i in range(args.cases):
            case = Path(tmp) / f"c{i}"
            case.mkdir()
            do_report = args.report_every and i % args.report_every == 0
            studies = seed_folder("tiny" if do_report else rng.choice(["shipped", "tiny"]), case)
            what = mutate_folder(rng, studies)
            out = out_target(rng, case, studies) if do_report else case / "out"
            before = _hashes(studies)
            commands = [["check", str(studies)]]
            if do_report:
                commands.append(["report", str(studies), "--out", str(out), "--quiet"])
            for cmd in commands:
                status, rc, err, secs = run_cli(cmd, args.timeout)
                verdict = classify(status, rc, err, case, cmd)
                if _hashes(studies) != before:
                    verdict = "BAD-input-changed"
                stray = [p for p in case.iterdir() if p not in (studies, out)
                         and p.name not in ("afile", "foreign", "link")]
                if stray:
                    verdict = "BAD-wrote-outside-out"
                tally[(cmd[0], verdict)] += 1
                if secs > slowest[0]:
                    slowest = (secs, f"{cmd[0]} {what}")
                if verdict.startswith("BAD"):
                    first = (err.strip().splitlines() or [status])[-1][:300]
                    bad.append(f"case {i} {cmd[0]} {verdict}: {what} -> {first}")
                    print(bad[-1], flush=True)
            shutil.rmtree(case, ignore_errors=True)
    print(f"\n{args.cases} cases, seed {args.seed}; slowest: {slowest[0]:.1f} s ({slowest[1]})")
    for (cmd, verdict), n in sorted(tally.items()):
        print(f"  {cmd:7s} {verdict:24s} {n}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
