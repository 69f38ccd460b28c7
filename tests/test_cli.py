"""The command line: ``metaanalysis check`` and ``metaanalysis report`` (first version)."""

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from metaanalysis.cli import main
from metaanalysis.errors import StudyFileError
from metaanalysis.report.run import run_report

ROOT = Path(__file__).resolve().parents[1]
STUDIES = ROOT / "studies"
DATA = Path(__file__).resolve().parent / "data"
BAD = DATA / "bad_studies"
BAD_CASES = sorted(p.name for p in BAD.iterdir() if p.is_dir())


def _hashes(folder: Path) -> dict:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


def _metafor(name):
    return json.loads((DATA / "metafor" / f"{name}.json").read_text())


# ------------------------------------------------------------- check

def test_check_ok(capsys):
    assert main(["check", str(STUDIES)]) == 0
    out, err = capsys.readouterr()
    assert "12 studies" in out and "no errors" in out
    lines = err.strip().splitlines()
    assert all(line.endswith("[warning]") for line in lines)
    assert any("chen2022/outcomes[13].percent" in line and "58, 77, 96, 97, 115, 116, 134, 135"
               in line for line in lines)


def test_bad_case_fixtures_exist():
    assert BAD_CASES == ["bad_time", "binary", "broken_yaml", "duplicate_id", "impossible",
                         "missing_id", "wrong_types"]


@pytest.mark.parametrize("case", BAD_CASES)
def test_check_bad_input_exit_2(case, capsys):
    before = _hashes(BAD / case)
    assert main(["check", str(BAD / case)]) == 2
    out, err = capsys.readouterr()
    assert "Traceback" not in err and out == ""
    lines = err.strip().splitlines()
    assert lines
    for line in lines:
        file, _where, message = line.split(": ", 2)
        assert file.startswith(str(BAD / case)) and file.endswith(".yaml")
        assert message
    assert _hashes(BAD / case) == before


def test_check_wrong_types_lines(capsys):
    main(["check", str(BAD / "wrong_types")])
    err = capsys.readouterr().err
    f = BAD / "wrong_types" / "ninety.yaml"
    assert f"{f}: ninety/outcomes[0].n: got 'ninety'; expected a whole number (a count)" in err
    assert f"{f}: ninety/outcomes[1].unit: got 'vertebrae'; expected one of patients, lesions" \
        in err


def test_subprocess_exit_code_and_stderr():
    rel = "tests/data/bad_studies/duplicate_id"
    proc = subprocess.run([sys.executable, "-m", "metaanalysis", "check", rel], cwd=ROOT,
                          capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 2
    assert proc.stderr.splitlines() == [
        (f"{rel}/b.yaml: twin2020/id: duplicate id 'twin2020', also used in {rel}/a.yaml; "
         "ids must be unique")]
    assert "Traceback" not in proc.stderr


# ------------------------------------------------------------- report

SMALL_PLAN = """
outcomes:
  - {name: deaths, measure: PLO, unit: patients}
"""
#: the studies the effect-size table tests read (a small folder keeps the CLI tests fast)
SMALL_STUDIES = ("chen2022", "khan2018", "wang2022", "wu2021", "zhang2024")


def _small_plan(folder: Path) -> Path:
    """A plan with one outcome of one study: nothing to fit or draw; the effect-size
    tables do not depend on the plan.  It has a folder of its own: --out may not be
    inside the plan's folder."""
    p = Path(folder) / "plan" / "small_plan.yaml"
    p.parent.mkdir(exist_ok=True)
    p.write_text(SMALL_PLAN)
    return p


@pytest.fixture(scope="module")
def small(tmp_path_factory, copy_shipped):
    """``(studies folder, plan)``: five shipped studies (without their risk-of-bias
    ratings: no figure to draw) and the one-outcome plan."""
    base = tmp_path_factory.mktemp("small")
    return copy_shipped(base / "studies", SMALL_STUDIES), _small_plan(base)


@pytest.fixture(scope="module")
def two(tmp_path_factory, copy_shipped):
    """``(studies folder, plan)``: Chen 2022 (a median with range, a warning) and
    Khan 2018 (a median ± SD, the one study with deaths), without their risk-of-bias
    ratings, and the one-outcome plan, for the tests that run the whole command more
    than once."""
    base = tmp_path_factory.mktemp("two")
    return copy_shipped(base / "studies", ("chen2022", "khan2018")), _small_plan(base)


@pytest.fixture(scope="module")
def report_dir(small, tmp_path_factory):
    studies, plan = small
    out = tmp_path_factory.mktemp("rep") / "figures"
    before = _hashes(studies)
    files = run_report(studies, out=out, quiet=True, plan=plan, formats=("svg",))
    assert _hashes(studies) == before  # input untouched
    return out, files


def test_report_writes_tables(report_dir):
    out, files = report_dir
    index = pd.read_csv(out / "effect_sizes" / "index.csv")
    assert {"cement_leakage__procedure__lesions.csv", "pain_vas__pre-procedure__patients.csv",
            "local_control__within-6-months__lesions.csv"} <= set(index.file)
    assert {out / "effect_sizes" / f for f in index.file} | {out / "effect_sizes" / "index.csv"} <= set(files)
    assert all(f.exists() for f in files)
    assert not any(p.name.startswith(".") for p in out.parent.iterdir())  # no temp left


def test_report_leakage_matches_metafor(report_dir):
    out, _ = report_dir
    df = pd.read_csv(out / "effect_sizes" / "cement_leakage__procedure__lesions.csv")
    ref = _metafor("mwa_cement_leakage")  # escalc(PR/PLO) on Chen, Wang, Zhang, Wu
    order = ["chen2022", "wang2022", "zhang2024", "wu2021"]
    for measure in ("PR", "PLO"):
        got = df[df.measure == measure].set_index("study").loc[order]
        np.testing.assert_allclose(got.yi, ref[measure]["yi"], rtol=1e-10)
        np.testing.assert_allclose(got.vi, ref[measure]["vi"], rtol=1e-10)


def test_report_complications_match_metafor(report_dir):
    out, _ = report_dir
    ref = _metafor("mwa_complications_k2")  # escalc(PR/PLO) on Chen 1/91, Khan 2/69
    for i, (sid, name) in enumerate([("chen2022", "complications_major"),
                                     ("khan2018", "complications_any")]):
        df = pd.read_csv(out / "effect_sizes" / f"{name}__procedure__patients.csv")
        got = df[df.measure == "PLO"].set_index("study").loc[sid]
        assert got.yi == pytest.approx(ref["PLO"]["yi"][i], rel=1e-10)
        assert got.vi == pytest.approx(ref["PLO"]["vi"][i], rel=1e-10)


def test_report_means_and_flags(report_dir):
    out, _ = report_dir
    df = pd.read_csv(out / "effect_sizes" / "pain_vas__pre-procedure__patients.csv")
    df = df.set_index("study")
    # MN: yi = mean, vi = sd^2 / n (escalc "MN"); wang2022 6.3 ± 2.0, n = 82
    assert df.loc["wang2022", "yi"] == 6.3
    assert df.loc["wang2022", "vi"] == pytest.approx(2.0 ** 2 / 82, rel=1e-12)
    assert not df.loc["wang2022", "estimated"]
    # khan2018 "median 7.0 ± 1.8": used only as flagged median-as-mean
    assert df.loc["khan2018", "estimated"] and df.loc["khan2018", "conversion"] == "median-as-mean"
    assert df.loc["khan2018", "vi"] == pytest.approx(1.8 ** 2 / 69, rel=1e-12)


def test_report_lists_unusable_rows(report_dir):
    out, _ = report_dir
    df = pd.read_csv(out / "effect_sizes" / "local_control__within-6-months__lesions.csv")
    assert df.study.tolist() == ["chen2022"]
    assert not df.included[0] and "without a denominator" in df.reason[0]


def test_report_median_rows_converted(report_dir):
    pytest.importorskip("metaanalysis.effects.conversions")
    out, _ = report_dir
    df = pd.read_csv(out / "effect_sizes" / "pain_vas__pre-procedure__patients.csv")
    row = df.set_index("study").loc["chen2022"]
    assert row["estimated"] and row["conversion"] == "luo-shi" and row["included"]
    # the table carries exactly what estimate_mean_sd gives for chen2022 (median 6, range 4-10)
    from metaanalysis.effects.conversions import estimate_mean_sd

    m, s = estimate_mean_sd(91, median=6, min=4, max=10, method="luo-shi")
    assert row["yi"] == pytest.approx(m, rel=1e-12)
    assert row["vi"] == pytest.approx(s ** 2 / 91, rel=1e-12)


def test_report_cli_prints_choices(two, tmp_path, capsys):
    studies, plan = str(two[0]), str(two[1])
    assert main(["report", studies, "--plan", plan, "--out", str(tmp_path / "o")]) == 0
    err = capsys.readouterr().err
    assert "PR and PLO" in err and "luo-shi" in err and "median-as-mean" in err
    assert "[warning]" in err and "analyses 1/1: deaths" in err
    assert main(["report", studies, "--plan", plan, "--out", str(tmp_path / "o"), "--quiet",
                 "--jobs", "2"]) == 0
    assert capsys.readouterr().err == ""


def test_version(capsys):
    from metaanalysis import __version__

    with pytest.raises(SystemExit) as info:
        main(["--version"])
    assert info.value.code == 0
    assert capsys.readouterr().out.strip() == f"metaanalysis {__version__}"


@pytest.mark.parametrize("bad", ["0", "-1", "two"])
def test_jobs_must_be_a_positive_number(bad, capsys):
    with pytest.raises(SystemExit) as info:
        main(["report", "--jobs", bad])
    assert info.value.code == 2 and "--jobs" in capsys.readouterr().err


def test_report_rerun_replaces_the_folder_and_never_deletes_other_files(two, tmp_path):
    from metaanalysis.report.output import OutputError

    out = tmp_path / "figures"
    studies, plan = two
    run_report(studies, out=out, quiet=True, plan=plan, formats=("svg",))
    (out / "mine.txt").write_text("keep")
    with pytest.raises(OutputError, match=r"holds files the report did not write \(mine.txt\)"):
        run_report(studies, out=out, quiet=True, plan=plan, formats=("svg",))
    assert (out / "mine.txt").read_text() == "keep"
    (out / "mine.txt").unlink()
    (out / "effect_sizes" / "index.csv").write_text("changed")
    run_report(studies, out=out, quiet=True, plan=plan, formats=("svg",))
    assert (out / "effect_sizes" / "index.csv").read_text() != "changed"


@pytest.mark.parametrize("case", ["impossible", "broken_yaml", "binary"])
def test_report_bad_input_writes_nothing(case, tmp_path, capsys):
    before = _hashes(BAD / case)
    out = tmp_path / "figures"
    assert main(["report", str(BAD / case), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and str(BAD / case) in err
    assert not out.exists() and list(tmp_path.iterdir()) == []
    assert _hashes(BAD / case) == before
    with pytest.raises(StudyFileError):
        run_report(BAD / case, out=out, quiet=True)


def test_warnings_are_one_line_without_source(monkeypatch, capsys):
    """A warning raised while a command runs is one stderr line naming its category, not
    Python's two-line format with the source line of the package code."""
    import warnings

    import metaanalysis.cli as cli
    from metaanalysis.plots.layout import LayoutWarning

    def fake_run(args):
        warnings.warn("forest: left out the column(s) weight\nto fit 89 mm", LayoutWarning,
                      stacklevel=1)
        return 0

    monkeypatch.setattr(cli, "_run", fake_run)
    assert main(["check", "x"]) == 0
    err = capsys.readouterr().err
    assert err == ("metaanalysis: warning (LayoutWarning): forest: left out the column(s) "
                   "weight\\nto fit 89 mm\n")
