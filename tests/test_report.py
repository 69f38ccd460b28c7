"""``metaanalysis report`` end to end on the shipped studies, and the table writers.

The report is built once per session (``shipped_report`` in conftest.py) and
these tests only read it; the tests that run the report again use two shipped
studies and a one-outcome plan.  Byte-identical output with two figure processes
(``--jobs 2``) is checked on the small review of tests/test_submission_report.py.
"""

import hashlib
import json
import re
from pathlib import Path

import pandas as pd
import pytest

from metaanalysis.cli import main
from metaanalysis.errors import PlanError
from metaanalysis.report.run import run_report
from metaanalysis.report.tables import display_results, latex_escape, to_latex, to_markdown

ROOT = Path(__file__).resolve().parents[1]
STUDIES = ROOT / "studies"
FORMATS = ("svg",)  # the PDF/PNG writers are save_figure's (tested there); keeps this file fast
SMALL = ("outcomes:\n  - {name: deaths, measure: PLO, unit: patients, modalities: [MWA]}\n")
# one study (Khan 2018): no fit, no figure


@pytest.fixture(scope="module")
def report(shipped_report):
    return shipped_report


@pytest.fixture(scope="module")
def md(report):
    return (report[0] / "report.md").read_text()


def test_every_output_exists(report):
    out, files = report
    for name in ("report.md", "provenance.json", "plan.yaml", "selection.csv",
                 "results.csv", "results.md", "results.tex", "subgroups.csv", "subgroups.md",
                 "sensitivity.csv", "sensitivity.md", "sensitivity.tex"):
        assert (out / name) in files and (out / name).stat().st_size > 0
    for stem in ("forest/cement_leakage__all__lesions", "forest/local_control__all__mixed",
                 "forest/complications_major__all__patients",
                 "forest/cement_leakage_rr__all__mixed",
                 "forest/pain_vas__about_1_month__patients",
                 "forest/morphine_mg_day__about_1_month__patients",
                 "timecourse/pain_vas__patients", "timecourse/morphine_mg_day__patients"):
        assert (out / f"{stem}.svg").exists(), stem
    # change and absolute values: one figure of two panels, no separate absolute figure
    assert not (out / "timecourse" / "pain_vas_absolute__patients.svg").exists()
    # no analysis reaches k = 10 (funnel_min_k): no funnel plots
    assert not (out / "funnel").exists()
    # the forest plots are vector graphics with text
    assert "<svg" in (out / "forest" / "local_control__all__mixed.svg").read_text()[:500]
    assert not any(p.name.startswith(".") for p in out.parent.iterdir())  # no temp folder left


def test_report_answers_the_review_questions(md):
    # local control pooled, with its forest plot
    assert re.search(r"- Local tumour control: 9\d\.\d% \(95% CI 9\d\.\d–9\d\.\d%; 95% PI", md)
    assert "[forest](forest/local_control__all__mixed.svg)" in md
    # absolute pain beside change at each window, with the relative reduction
    assert "| Pain: window | k | absolute (95% CI) | k | change from baseline (95% CI) |" in md
    for w in ("about 1 day", "about 1 week", "about 1 month", "about 3 months", "about 6 months"):
        assert re.search(rf"\| {w} \| \d \| [\d.]+ \([-\d.]+ to [\d.]+\) \| \d \| [\d.]+ ", md), w
    assert "Pain, absolute, at about 1 month: 2.04" in md and "Relative reduction" in md
    # comparative: leakage as a risk ratio of two studies, local progression one study
    assert "Cement leakage, ablation + cement vs cement alone: 0." in md
    assert "Local progression, ablation + cement vs cement alone: one study (Liu 2023)" in md
    # modality subgroups with the test
    assert "Subgroups by modality" in md and "test for subgroup differences Q(1)" in md


def test_methods_say_what_ran(md):
    assert "abstract-level" in md  # data source
    assert "fitted by maximum likelihood" in md and "Wald (z) CI" in md  # the GLMM
    assert "t distribution with k − 1 df" in md  # Knapp–Hartung
    assert "τ ~ half-normal(scale=0.5), flat prior on μ" in md  # the prior where Bayesian
    assert "Attrition, the same rule for every study" in md
    assert "no analysis reaches k ≥ 10" in md and "Sterne" in md  # reporting bias
    assert "Representatives: pain_vas: khan-motaghi → Motaghi 2022, tengzhou → Wang 2022" in md
    assert "Chen 2022 is a probable member of group tengzhou" in md
    # 12 records; the two RFA single-arm series enter only the modality subgroups
    assert re.search(r"from 10 studies that enter at least one main analysis .* of 12 study "
                     r"records", md)
    assert "Only in the subgroup analyses by modality: Levy 2020, Wallace 2015." in md


def test_every_sentence_has_tau_and_pi(md):
    sentences = [line for line in md.splitlines()
                 if line.startswith("- ") and ("(95% CI" in line or "(95% CrI" in line)
                 and "one study" not in line]
    assert len(sentences) >= 20
    for s in sentences:
        assert "τ = " in s and "95% PI" in s, s
    assert "beyond the scale's bounds (-10 to 10)" in md


def test_sensitivity_rows_give_ci_and_k(md):
    block = md.split("- Pain reduction at about 1 month:")[1].split("\n- ")[0]
    rows = [line for line in block.splitlines() if line.startswith("  - ")]
    assert rows and all(re.search(r"\((CI|CrI) [-\d.]+ to [-\d.]+\); k = \d", r) or
                        "not estimated" in r for r in rows)
    assert any("in: Khan 2018; out: Motaghi 2022" in r for r in rows)
    assert not re.search(r"estimates from [-\d.]+%? to", md)  # no range of point estimates


def test_results_table_content(report):
    out, _ = report
    tab = pd.read_csv(out / "results.csv")
    leak = tab[tab.outcome == "cement_leakage"].iloc[0]
    # GLMM on chen 42/140, wang 32/115, wu 10/33: τ² = 0, so the ML estimate is 84/288
    assert leak["estimate"] == pytest.approx(84 / 288, rel=1e-5)
    assert (leak["k"], leak["n"], leak["unit"]) == (3, 288, "lesions")
    pain = tab[(tab.outcome == "pain_vas") & (tab.window == "about_1_month")]
    assert set(pain["quantity"]) == {"change from baseline", "absolute value"}
    assert set(tab.columns) >= {"estimate", "ci_lb", "ci_ub", "pi_lb", "pi_ub", "tau2", "tau",
                                "i2", "k", "n", "unit", "model", "pi_outside_scale",
                                "relative_reduction_pct"}
    one = tab[tab.outcome == "local_progression_rr"].iloc[0]
    assert one["k"] == 1 and one["ci_lb"] < one["estimate"] < one["ci_ub"]  # k = 1: shown
    md = (out / "results.md").read_text()
    assert "| cement_leakage | any | lesions | 3 | 288 | 29.2% | 24.2% to 34.7% |" in md
    assert "(beyond scale)" in md
    tex = (out / "results.tex").read_text()
    assert r"\toprule" in tex and r"29.2\%" in tex and r"I$^{2}$" in tex


def test_sensitivity_table_content(report):
    out, _ = report
    sens = pd.read_csv(out / "sensitivity.csv", keep_default_na=False)
    leak = sens[sens.outcome == "cement_leakage"].set_index("analysis")
    assert {"model: logit two-step", "model: Freeman–Tukey two-step", "model: Bayesian (logit)",
            "overlap: all studies of each group", "leave out Chen 2022"} <= set(leak.index)
    assert leak.loc["leave out Chen 2022", "left_out"] == "chen2022"
    assert leak.loc["overlap: all studies of each group", "n"] == 436  # 140+63+115+33+85
    assert {"kind", "changed", "studies_in", "studies_out"} <= set(sens.columns)
    assert (sens["changed"] != "").all()
    pain = sens[(sens.outcome == "pain_vas") & (sens.window == "about_1_month")
                & (sens.quantity == "change from baseline")].set_index("analysis")
    assert {"r = 0.3", "r = 0.7", "'median ± SD' used as mean ± SD"} <= set(pain.index)
    assert pain.loc["r = 0.3", "flags"].startswith("† Chen 2022, Motaghi 2022;")
    assert "‡ Khan 2018" in pain.loc["'median ± SD' used as mean ± SD", "flags"]


def test_display_labels_and_markers_in_report(report, md):
    out, _ = report
    assert "Chen 2022 †§, JVIR 2014 §, Motaghi 2022 †§, Wang 2022 §, Wu 2021 §" in md
    assert "† mean and SD estimated from the median and range/IQR (Luo 2018; Shi 2020)" in md
    assert "‖ unit or definition not stated, assumed" in md
    res = pd.read_csv(out / "results.csv", keep_default_na=False)
    leak = res[res.outcome == "cement_leakage"].iloc[0]
    assert leak["studies"] == "chen2022, wang2022, wu2021"  # ids kept in the CSV
    assert leak["study_labels"] == "Chen 2022, Wang 2022, Wu 2021 §‖"


def test_provenance_records_plan_version_and_checksums(report):
    out, _ = report
    prov = json.loads((out / "provenance.json").read_text())
    assert prov["version"] and prov["plan"] == "plan.yaml"
    plan_file = STUDIES / "plan.yaml"
    assert prov["inputs"]["plan.yaml"] == hashlib.sha256(plan_file.read_bytes()).hexdigest()
    assert (out / "plan.yaml").read_text() == plan_file.read_text()


def test_bad_plan_exits_2_and_writes_nothing(tmp_path, capsys):
    bad = tmp_path / "plan.yaml"
    bad.write_text("defaults: {method: FOO}\noutcomes: []\n")
    out = tmp_path / "figures"
    assert main(["report", str(STUDIES), "--plan", str(bad), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "defaults/method: got 'FOO'; expected one of" in err and "Traceback" not in err
    assert not out.exists() and sorted(p.name for p in tmp_path.iterdir()) == ["plan.yaml"]
    with pytest.raises(PlanError):
        run_report(STUDIES, out=out, plan=bad, quiet=True)


def test_progress_lines_and_quiet(tmp_path, capsys, copy_shipped):
    plan = tmp_path / "plan" / "p.yaml"  # its own folder: --out may not be inside it
    plan.parent.mkdir()
    plan.write_text(SMALL)
    # two shipped studies (the deaths of one, Khan 2018), without risk-of-bias ratings
    studies = copy_shipped(tmp_path / "studies", ("khan2018", "wu2021"))
    run_report(studies, out=tmp_path / "o", plan=plan, formats=FORMATS)
    err = capsys.readouterr().err
    # not a terminal: one line per step
    assert "analyses 1/1: deaths any time (patients): not pooled (one study (Khan 2018)" in err
    run_report(studies, out=tmp_path / "o", plan=plan, formats=FORMATS, quiet=True)
    assert capsys.readouterr().err == ""


def test_progress_bar_on_a_terminal():
    import io

    from metaanalysis.report.progress import Progress

    class Tty(io.StringIO):
        def isatty(self):
            return True

    out = Tty()
    p = Progress(stream=out)
    p.start("figures", 4)
    for i in range(4):
        p.step(f"f{i}")
    p.done()
    text = out.getvalue()
    assert "\r" in text and "[##############################] 4/4" in text
    assert text.count("\n") == 1  # one line, redrawn in place


def test_table_writers():
    df = pd.DataFrame({"a|b": ["x|y"], "I²": ["5%"], "c": ["τ_1 & $"]})
    md = to_markdown(df).splitlines()
    assert md == ["| a\\|b | I² | c |", "|---|---|---|", "| x\\|y | 5% | τ_1 & $ |"]
    assert latex_escape("τ_1 & $ 5%") == r"$\tau$\_1 \& \$ 5\%"
    tex = to_latex(df, caption="Results", label="tab:r").splitlines()
    assert r"a\textbar{}b & I$^{2}$ & c \\" in tex and r"\caption{Results}" in tex
    # as wide as the text: two short columns and one wrapping X column
    assert any(line.startswith(r"\begin{tabularx}{\linewidth}{ll>{\raggedright")
               and line.endswith("X}") for line in tex)
    row = {"outcome": "pain", "window": "m1", "days": "21-42", "unit": "patients", "k": 5,
           "n": 241, "measure": "MC", "model": "REML", "estimate": 4.824, "ci_lb": 3.442,
           "ci_ub": 6.206, "pi_lb": 1.49, "pi_ub": 8.16, "tau2": 1.19, "i2": 95.8, "note": ""}
    d = display_results(pd.DataFrame([row])).iloc[0]
    assert (d["Estimate"], d["95% CI"], d["I²"], d["Window"]) == ("4.82", "3.44 to 6.21", "95.8%",
                                                                 "m1 (21-42 d)")


def test_forked_runs_every_task_once_and_raises_a_task_error(tmp_path):
    from metaanalysis.report.parallel import Forked

    def write(name):
        (tmp_path / name).write_text(name)

    seen = []
    with Forked(2, on_done=seen.append) as pool:
        pool.limit = 1  # one child while the parent "computes"
        pool.submit("a", lambda: write("a"))
        pool.submit("b", lambda: write("b"))
        pool.poll()
        pool.submit("c", lambda: write("c"))
        pool.drain()  # the rest shared by two children
        with pytest.raises(RuntimeError, match="after drain"):
            pool.submit("d", lambda: write("d"))
        pool.join()
    assert sorted(seen) == ["a", "b", "c"] and pool.submitted == 3
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a", "b", "c"]

    def boom():
        raise ValueError("figure failed: bad input")

    pool = Forked(2)
    pool.submit("x", boom)
    with pytest.raises(ValueError, match="bad input"):
        pool.join()
    serial = Forked(1)
    with pytest.raises(ValueError, match="bad input"):
        serial.submit("x", boom)  # jobs=1: run at once, in this process
