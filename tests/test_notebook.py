"""notebooks/walkthrough.ipynb runs from top to bottom and shows the expected results."""

from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = ROOT / "notebooks" / "walkthrough.ipynb"


def _text(cell) -> str:
    out = []
    for o in cell.get("outputs", []):
        if o.output_type == "stream":
            out.append(o.text)
        elif "data" in o:
            out.append(o.data.get("text/plain", ""))
            out.append(o.data.get("text/html", ""))
    return "\n".join(out)


@pytest.fixture(scope="module")
def executed():
    nb = nbformat.read(NOTEBOOK, as_version=4)
    # The kernel inherits the environment: a non-interactive MPLBACKEND (CI often sets Agg)
    # would stop figures from showing inline, as it would for a user with that setting.
    with pytest.MonkeyPatch.context() as mp:
        mp.delenv("MPLBACKEND", raising=False)
        nbclient.NotebookClient(nb, timeout=120, kernel_name="python3",
                                resources={"metadata": {"path": str(NOTEBOOK.parent)}}).execute()
    return nb


def test_notebook_runs_without_errors(executed):
    errors = [o for c in executed.cells if c.cell_type == "code"
              for o in c.get("outputs", []) if o.output_type == "error"]
    assert errors == []


def test_notebook_shows_results_tables_and_figures(executed):
    text = "\n".join(_text(c) for c in executed.cells if c.cell_type == "code")
    # the same sentences as report.md (GLMM on 42/140, 32/115, 10/33; τ² = 0 gives 84/288 = 29.2%)
    assert "Cement leakage: 29.2% (95% CI 24.2–34.7%; 95% PI" in text
    assert "Pain reduction at about 1 month: 4.82" in text
    assert "Local tumour control: 95.8%" in text
    assert "<table" in text  # HTML result tables
    images = sum("image/png" in o.get("data", {}) for c in executed.cells
                 for o in c.get("outputs", []))
    assert images >= 3  # two forest plots and a funnel plot, inline
    # the k = 2 comparison table has all four models
    for name in ("GLMM", "logit, REML + KH", "Freeman–Tukey, REML + KH", "Bayesian"):
        assert name in text


def test_committed_notebook_has_outputs():
    nb = nbformat.read(NOTEBOOK, as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert all(c.get("execution_count") for c in code)
    assert sum(bool(c.get("outputs")) for c in code) == len(code)


def test_notebook_shows_the_submission_package(executed):
    cells = executed.cells
    start = next(i for i, c in enumerate(cells) if "From results to a submission" in c.source)
    part = [c for c in cells[start:] if c.cell_type == "code"]
    text = "\n".join(_text(c) for c in part)
    assert "Chen 2022" in text and "9 of 20 tumours" in text  # Table 1
    assert "not found by a database search" in text  # the PRISMA block says how it was made
    assert "chen2022/risk_of_bias/domains.prospective: judgement 'high' is not allowed by " \
           "MINORS" in text
    assert "without studies at high risk of bias" in text
    assert "⊕" in text and "VERY LOW" in text  # GRADE certainty
    images = sum("image/png" in o.get("data", {}) for c in part for o in c.get("outputs", []))
    assert images == 3  # PRISMA flow diagram, traffic light, summary bars
