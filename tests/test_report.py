"""``metaanalysis report`` end to end on the shipped studies, and the table writers."""

import hashlib
import json
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


def _digest(folder: Path) -> dict:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    out = tmp_path_factory.mktemp("rep") / "figures"
    files = run_report(STUDIES, out=out, quiet=True, formats=FORMATS)
    return out, files


def test_every_output_exists(report):
    out, files = report
    for name in ("report.md", "provenance.json", "plan.yaml", "selection.csv",
                 "results.csv", "results.md", "results.tex",
                 "sensitivity.csv", "sensitivity.md", "sensitivity.tex"):
        assert (out / name) in files and (out / name).stat().st_size > 0
    for stem in ("forest/cement_leakage__all__lesions", "forest/complications_major__all__patients",
                 "forest/pain_vas__about_1_month__patients",
                 "forest/morphine_mg_day__about_1_month__patients",
                 "funnel/pain_vas__about_1_month__patients",  # k = 5 >= funnel_min_k
                 "timecourse/pain_vas__patients", "timecourse/morphine_mg_day__patients"):
        assert (out / f"{stem}.svg").exists(), stem
    # k = 3 < funnel_min_k = 5: no funnel for leakage
    assert not (out / "funnel" / "cement_leakage__all__lesions.svg").exists()
    assert not any(p.name.startswith(".") for p in out.parent.iterdir())  # no temp folder left


def test_report_md_mentions_every_outcome_with_assumptions(report):
    out, _ = report
    text = (out / "report.md").read_text()
    from metaanalysis import load_studies

    for name in load_studies(STUDIES).outcomes():
        assert name in text, name
    assert "Pooled cement leakage was 29.2% (95% CI 24.2–34.7%; 3 studies, 288 lesions" in text
    assert "Local tumour control (lesions): not pooled" in text
    assert "candidate denominators ≤ 140: 58, 77, 96, 97, 115, 116, 134, 135" in text
    assert "half-normal(scale=0.5)" in text  # the Bayesian prior is printed (k = 2)
    assert "Knapp–Hartung" in text and "pre-post r = 0.5" in text
    assert "median_sd: exclude" in text  # how khan2018's "median ± SD" was handled
    assert "technical_success: reported as 100%" in text


def test_results_table_content(report):
    out, _ = report
    tab = pd.read_csv(out / "results.csv")
    leak = tab[tab.outcome == "cement_leakage"].iloc[0]
    # GLMM on chen 42/140, wang 32/115, wu 10/33: τ² = 0, so the ML estimate is the pooled rate 84/288
    assert leak["estimate"] == pytest.approx(84 / 288, rel=1e-5)
    assert (leak["k"], leak["n"], leak["unit"]) == (3, 288, "lesions")
    assert leak["ci_lb"] < leak["estimate"] < leak["ci_ub"]
    pain = tab[(tab.outcome == "pain_vas") & (tab.window == "about_1_month")].iloc[0]
    assert pain["k"] == 5 and pain["model"] == "REML + Knapp–Hartung (MC)"
    assert set(tab.columns) >= {"estimate", "ci_lb", "ci_ub", "pi_lb", "pi_ub", "tau2", "i2", "k", "n",
                                "unit", "model"}
    md = (out / "results.md").read_text()
    assert "| cement_leakage | any | lesions | 3 | 288 | 29.2% | 24.2% to 34.7% |" in md
    tex = (out / "results.tex").read_text()
    assert r"\toprule" in tex and r"29.2\%" in tex and r"I$^{2}$" in tex


def test_sensitivity_table_content(report):
    out, _ = report
    sens = pd.read_csv(out / "sensitivity.csv")
    leak = sens[sens.outcome == "cement_leakage"].set_index("analysis")
    assert {"model: logit two-step", "model: Freeman–Tukey two-step", "model: Bayesian (logit)",
            "overlap: all studies of each group", "leave out Chen 2022"} <= set(leak.index)
    # display label in the analysis name, the study id kept in its own column
    assert leak.loc["leave out Chen 2022", "left_out"] == "chen2022"
    # all five leakage studies: 436 vertebrae
    assert leak.loc["overlap: all studies of each group", "n"] == 436
    pain = sens[(sens.outcome == "pain_vas") & (sens.window == "about_1_month")]["analysis"]
    assert {"r = 0.3", "r = 0.7", "'median ± SD' used as mean ± SD"} <= set(pain)
    # flagged rows: mean/SD from medians (†), the "median ± SD" read as a mean (‡)
    pain_rows = sens[(sens.outcome == "pain_vas") & (sens.window == "about_1_month")].set_index("analysis")
    assert pain_rows.loc["r = 0.3", "flags"].startswith("† Chen 2022, Motaghi 2022;")
    assert "‡ Khan 2018" in pain_rows.loc["'median ± SD' used as mean ± SD", "flags"]
    assert "‡" not in pain_rows.loc["r = 0.3", "flags"]


def test_display_labels_and_markers_in_report(report):
    out, _ = report
    md = (out / "report.md").read_text()
    # labels from the citation field, with markers, and the legend of the markers
    assert "Chen 2022 †§, JVIR 2014 §, Motaghi 2022 †§, Wang 2022 §, Wu 2021 §" in md
    assert "† mean and SD estimated from the median and range/IQR (Luo 2018; Shi 2020)" in md
    res = pd.read_csv(out / "results.csv", keep_default_na=False)
    leak = res[res.outcome == "cement_leakage"].iloc[0]
    assert leak["studies"] == "chen2022, wang2022, wu2021"  # ids kept in the CSV
    assert leak["study_labels"] == "Chen 2022, Wang 2022, Wu 2021 §‖"
    sens_md = (out / "sensitivity.md").read_text()
    assert "Estimated/assumed data" in sens_md and "leave out Chen 2022" in sens_md


def test_provenance_records_plan_version_and_checksums(report):
    out, _ = report
    prov = json.loads((out / "provenance.json").read_text())
    assert prov["version"] and prov["plan"] == "plan.yaml"
    plan_file = STUDIES / "plan.yaml"
    assert prov["inputs"]["plan.yaml"] == hashlib.sha256(plan_file.read_bytes()).hexdigest()
    assert prov["inputs"]["chen2022.yaml"] == hashlib.sha256(
        (STUDIES / "chen2022.yaml").read_bytes()).hexdigest()
    assert (out / "plan.yaml").read_text() == plan_file.read_text()


def test_second_run_is_byte_identical(report, tmp_path):
    out, _ = report
    again = tmp_path / "again"
    run_report(STUDIES, out=again, quiet=True, formats=FORMATS)
    assert _digest(again) == _digest(out)


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


def test_progress_lines_and_quiet(tmp_path, capsys):
    plan = tmp_path / "plan" / "p.yaml"  # its own folder: --out may not be inside it
    plan.parent.mkdir()
    plan.write_text("outcomes:\n  - {name: complications_major, measure: PLO, model: GLMM, "
                    "unit: patients}\n")
    run_report(STUDIES, out=tmp_path / "o", plan=plan, formats=FORMATS)
    err = capsys.readouterr().err
    assert "complications_major any time (patients): k = 4, GLMM" in err  # no modality rule: RFA too
    run_report(STUDIES, out=tmp_path / "o", plan=plan, formats=FORMATS, quiet=True)
    assert capsys.readouterr().err == ""


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
