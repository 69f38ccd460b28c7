"""`metaanalysis report` writes the submission package; bad counts and ratings exit 2.

A small self-contained review (four single-arm series rated with MINORS, one
at high risk; PRISMA counts that add up) is reported once per session and its
files are read back: Table 1, the PRISMA diagram (vector), risk-of-bias figures,
the sensitivity analysis without high-risk studies, the summary of findings in
CSV/Markdown/LaTeX/Word, tables.docx, report.md.  The LaTeX tables compile when
pdflatex is installed (the test skips otherwise) and always pass a syntax check.
A second run with two figure processes (``--jobs 2``) writes the same bytes.
"""

import hashlib
import re
import shutil
import subprocess
import textwrap
import zipfile

import pandas as pd
import pytest

from metaanalysis.cli import main
from metaanalysis.report.run import run_report
from metaanalysis.review.rob_tools import TOOLS

DOMAINS = [d.key for d in TOOLS["minors"].domains_for(False)]
SERIES = {  # id: (patients, leakage events, lesions, VAS pre, VAS 1 month, MINORS scores)
    "alpha2019": (40, 12, 50, 7.1, 2.2, [2, 2, 0, 2, 1, 2, 2, 0]),  # 11: some concerns
    "beta2020": (60, 20, 75, 6.8, 1.9, [2, 1, 0, 2, 0, 1, 1, 0]),  # 7: high
    "gamma2021": (35, 8, 40, 7.4, 2.5, [2, 2, 2, 2, 1, 2, 2, 0]),  # 13: low
    "delta2022": (80, 30, 100, 6.5, 1.6, [2, 2, 0, 2, 1, 2, 2, 0]),  # 11: some concerns
}
PRISMA = """\
prisma:
  illustrative: true
  databases: {MEDLINE: 120, Embase: 90}
  duplicates_removed: 70
  records_screened: 140
  records_excluded: 120
  reports_sought: 20
  reports_not_retrieved: 1
  reports_assessed: 19
  reports_excluded: {No ablation: 9, Review: 5}
  studies_included: 4
  reports_included: 5
"""
PLAN = """\
title: Test review
windows:
  about_1_month: [21, 42]
outcomes:
  - name: cement_leakage
    label: Cement leakage
    measure: PLO
    model: GLMM
    unit: lesions
  - name: pain_vas
    label: Pain reduction (VAS)
    measure: MC
    unit: patients
    windows: [about_1_month]
risk_of_bias:
  tool: minors
  note: Ratings made up for this test.
grade:
  outcomes:
    pain_vas: {imprecision_ci_width: 2.0, imprecision_reason: "twice a 1-point MID"}
  overrides:
    - {outcome: cement_leakage, domain: indirectness, judgement: serious, reason: "test"}
"""


def _write(folder, prisma=PRISMA, plan=PLAN, scores=None):
    folder.mkdir(parents=True, exist_ok=True)
    for sid, (n, ev, les, pre, post, sc) in SERIES.items():
        sc = (scores or {}).get(sid, sc)
        doms = "\n".join(f"    {d}: {{judgement: {s}, reason: \"abstract says so\"}}"
                         for d, s in zip(DOMAINS, sc))
        (folder / f"{sid}.yaml").write_text(textwrap.dedent(f"""\
            id: {sid}
            citation: {sid[:-4].capitalize()} et al. {sid[-4:]}, J Test 1:1
            doi: 10.1/{sid}
            source: abstract
            design: retrospective
            intervention: microwave ablation + vertebroplasty
            patients: {n}
            lesions: {les}
            outcomes:
              - {{outcome: pain_vas, time: pre-procedure, unit: patients, n: {n}, mean: {pre}, sd: 1.5}}
              - {{outcome: pain_vas, time: 1 month, unit: patients, n: {n}, mean: {post}, sd: 1.2}}
              - {{outcome: cement_leakage, time: procedure, unit: lesions, events: {ev}, total: {les}}}
            risk_of_bias:
              tool: minors
              domains:
            """) + doms + "\n")
    (folder / "plan.yaml").write_text(plan + prisma)
    return folder


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    base = tmp_path_factory.mktemp("review")
    studies = _write(base / "studies")
    out = base / "out"
    run_report(studies, out=out, formats=("pdf", "svg"), quiet=True)
    return out


def test_table1_and_prisma(report):
    t1 = pd.read_csv(report / "study_table.csv")
    assert list(t1["Study"]) == ["Alpha 2019", "Beta 2020", "Delta 2022", "Gamma 2021"]
    assert set(t1["Modality"]) == {"MWA"} and set(t1["Design"]) == {"retrospective"}
    md = (report / "report.md").read_text()
    assert "## Study selection (PRISMA 2020)" in md
    assert "Records identified from databases and registers: 210 (MEDLINE 120, Embase 90)" in md
    assert "Studies included in the review: 4 (5 reports)." in md
    assert "**Illustrative counts**" in md
    assert md.index("## Included studies") < md.index("## Results")
    pdf = (report / "prisma" / "prisma_flow.pdf").read_bytes()
    assert pdf.startswith(b"%PDF") and b"/Subtype /Image" not in pdf
    assert "<image" not in (report / "prisma" / "prisma_flow.svg").read_text()
    prisma = pd.read_csv(report / "prisma.csv")
    assert prisma.loc[prisma["box"] == "Records screened", "n"].item() == 140


def test_risk_of_bias_outputs_and_sensitivity(report):
    rob = pd.read_csv(report / "risk_of_bias.csv")
    overall = rob[rob["domain"] == "overall"].set_index("study")["level"]
    assert overall.to_dict() == {"alpha2019": "some concerns", "beta2020": "high",
                                 "delta2022": "some concerns", "gamma2021": "low"}
    assert (rob["reason"] != "").all()
    for kind in ("traffic_light", "summary"):
        assert (report / "risk_of_bias" / f"minors__{kind}.svg").stat().st_size > 1000
    sens = pd.read_csv(report / "sensitivity.csv")
    rows = sens[sens["analysis"].str.startswith("without studies at high risk of bias")]
    assert set(rows["outcome"]) == {"cement_leakage", "pain_vas"}
    assert (rows["k"] == 3).all() and (rows["left_out"] == "beta2020").all()
    assert "(left out: Beta 2020)" in rows["analysis"].iloc[0]
    # the forest plots carry the overall judgement of each study in a column (Beta 2020: high)
    svg = (report / "forest" / "cement_leakage__all__lesions.svg").read_text()
    assert svg.count('id="rob-high') == 1 and svg.count('id="rob-some') == 2
    md = (report / "report.md").read_text()
    assert "Ratings made up for this test." in md
    assert "at high risk: Beta 2020" in md


def test_summary_of_findings_in_every_format(report):
    sof = pd.read_csv(report / "summary_of_findings.csv").set_index("outcome")
    pain = sof.loc["pain_vas"]
    # Beta 2020 (60 of 215 patients) carries about 28% of the weight: below the 50% rule
    assert pain["risk_of_bias"] == "not serious"
    assert pain["risk_of_bias_reason"].startswith("2")
    assert "twice a 1-point MID" in pain["imprecision_reason"]
    leak = sof.loc["cement_leakage"]
    assert leak["indirectness"] == "serious"
    assert leak["indirectness_reason"].startswith("test (plan override")
    assert leak["publication_bias"] == "not assessable"
    md = (report / "summary_of_findings.md").read_text()
    assert "⊕" in md and "Publication bias: k = 4 < 10" in md
    tex = (report / "summary_of_findings.tex").read_text()
    assert tex.isascii() and r"\begin{tabularx}{\linewidth}" in tex and r"$\oplus$" in tex
    with zipfile.ZipFile(report / "summary_of_findings.docx") as z:
        assert "Summary of findings" in z.read("word/document.xml").decode()


def test_tables_docx(report):
    docx = pytest.importorskip("docx")
    doc = docx.Document(str(report / "tables.docx"))
    assert len(doc.tables) == 5  # studies, results, sensitivity, SoF, risk of bias
    assert len(doc.sections) == 5  # one table per section
    captions = [p.text for p in doc.paragraphs if p.text.startswith("Table ")]
    assert captions[:4] == ["Table 1. Characteristics of the included studies",
                            "Table 2. Pooled outcomes", "Table 3. Sensitivity analyses",
                            "Table 4. Summary of findings (GRADE)"]
    assert doc.tables[0].rows[1].cells[0].text.startswith("Alpha 2019")
    # header row repeats on every page
    assert b"tblHeader" in zipfile.ZipFile(report / "tables.docx").read("word/document.xml")


def _digest(folder) -> dict:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def test_outputs_are_reproducible_with_two_figure_processes(report, tmp_path):
    # a second run from a fresh copy of the input, its figures drawn by two processes
    # (--jobs 2): every file has the same bytes as the first run's (one process)
    again = tmp_path / "again"
    studies = _write(tmp_path / "studies")
    run_report(studies, out=again, formats=("pdf", "svg"), quiet=True, jobs=2)
    first, second = _digest(report), _digest(again)
    assert len([f for f in first if f.endswith(".svg") and "/" in f]) >= 4  # figures to share
    for name in ("tables.docx", "summary_of_findings.docx", "summary_of_findings.tex",
                 "study_table.csv", "prisma/prisma_flow.svg",
                 "risk_of_bias/minors__traffic_light.svg"):
        assert (again / name).read_bytes() == (report / name).read_bytes(), name
    assert second == first


_BEGIN = re.compile(r"\\begin\{([a-z*]+)\}")
_END = re.compile(r"\\end\{([a-z*]+)\}")


def _syntax_check(tex: str):
    assert tex.isascii()
    stack = []
    for line in tex.splitlines():
        for m in re.finditer(r"\\(begin|end)\{([a-z*]+)\}", line):
            if m.group(1) == "begin":
                stack.append(m.group(2))
            else:
                assert stack and stack.pop() == m.group(2), line
    assert not stack
    depth = 0
    for ch in re.sub(r"\\[{}]", "", tex):
        depth += {"{": 1, "}": -1}.get(ch, 0)
        assert depth >= 0
    assert depth == 0
    body = tex.split(r"\midrule", 1)[1].split(r"\bottomrule", 1)[0]
    header = tex.split(r"\toprule", 1)[1].split(r"\midrule", 1)[0]
    ncol = len(re.findall(r"(?<!\\)&", header)) + 1
    for row in body.strip().splitlines():
        assert len(re.findall(r"(?<!\\)&", row)) + 1 == ncol, row


TEX = ("study_table.tex", "summary_of_findings.tex", "results.tex", "sensitivity.tex")


@pytest.mark.parametrize("name", TEX)
def test_latex_syntax(report, name):
    _syntax_check((report / name).read_text())


@pytest.mark.skipif(shutil.which("pdflatex") is None, reason="pdflatex not installed")
def test_latex_tables_compile(report, tmp_path):
    from metaanalysis.report.latex import PREAMBLE

    body = "\n\\clearpage\n".join((report / n).read_text() for n in TEX)
    doc = ("\\documentclass[a4paper]{article}\n" + "\n".join(PREAMBLE)
           + "\n\\begin{document}\n" + body + "\n\\end{document}\n")
    (tmp_path / "t.tex").write_text(doc)
    run = subprocess.run(["pdflatex", "-interaction=nonstopmode", "-halt-on-error", "t.tex"],
                         cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stdout[-3000:]
    log = (tmp_path / "t.log").read_text(errors="replace")
    assert "Overfull \\hbox" not in log  # every table fits the text width


def test_inconsistent_prisma_count_exits_2(tmp_path, capsys):
    studies = _write(tmp_path / "s", prisma=PRISMA.replace("records_screened: 140",
                                                           "records_screened: 150"))
    assert main(["report", str(studies), "--out", str(tmp_path / "o"), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "prisma/records_screened: 150 does not add up: records identified 210 − " \
           "duplicates removed 70 = 140" in err
    assert not (tmp_path / "o").exists()
    studies = _write(tmp_path / "s2", prisma=PRISMA.replace("studies_included: 4",
                                                            "studies_included: 3"))
    assert main(["report", str(studies), "--out", str(tmp_path / "o"), "--quiet"]) == 2
    assert "prisma/studies_included: 3 does not match the study folder, which holds 4 studies" \
        in capsys.readouterr().err


def test_unknown_judgement_exits_2(tmp_path, capsys):
    studies = _write(tmp_path / "s", scores={"gamma2021": [2, 2, "high", 2, 1, 2, 2, 0]})
    assert main(["report", str(studies), "--out", str(tmp_path / "o"), "--quiet"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "Traceback" not in err[0]
    assert "gamma2021/risk_of_bias/domains.prospective: judgement 'high' is not allowed by " \
           "MINORS; expected 0, 1, 2" in err[0]


def test_note_markers_in_latex_and_word(tmp_path):
    from metaanalysis.report.latex import latex_table
    from metaanalysis.report.word import DocxTable, docx_bytes

    df = pd.DataFrame({"Outcome": ["Pain †"], "Risk of bias": ["serious aa"]})
    notes = ["aa. Risk of bias: most weight at high risk", "† estimated mean"]
    tex = latex_table(df, notes=notes)
    assert r"\item[aa] Risk of bias: most weight at high risk" in tex
    assert r"\item[\textdagger{}] estimated mean" in tex and "Pain \\textdagger{}" in tex
    raw = docx_bytes([DocxTable("Table 1. Test", df, tuple(notes))])
    assert raw == docx_bytes([DocxTable("Table 1. Test", df, tuple(notes))])  # reproducible
    xml = zipfile.ZipFile(__import__("io").BytesIO(raw)).read("word/document.xml").decode()
    # the markers are superscript runs, followed by the note text
    assert re.search(r'<w:vertAlign w:val="superscript"/></w:rPr><w:t>aa</w:t>', xml)
    assert re.search(r'<w:vertAlign w:val="superscript"/></w:rPr><w:t>†</w:t>', xml)


def test_latex_cells_break_long_dois_and_words_but_not_numbers():
    """TeX cannot break a DOI suffix or hyphenate 'oligometastatic' (its English patterns
    find no point): the cell writer allows breaks there, and leaves '3.2' whole."""
    import pandas as pd

    from metaanalysis.report.latex import latex_table

    tex = latex_table(pd.DataFrame({"Study": ["doi:10.1016/j.jvir.2014.06.007"],
                                    "Population": ["oligometastatic patients, CI 3.2"]}))
    assert r"j.\allowbreak{}jvir.\allowbreak{}2014." in tex
    assert r"oligo\-metastatic" in tex
    assert "CI 3.2" in tex
