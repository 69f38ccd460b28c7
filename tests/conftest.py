"""Fixtures shared by the test modules.

* every pyplot figure a test opens is closed after it (only when pyplot is
  in use, so tests of the numerical layers do not import matplotlib);
* the MWA cement-leakage series of the metafor reference values
  (tests/data/metafor/mwa_cement_leakage.json) as the reference dict and its
  logit-proportion effect sizes;
* ``dask_client``: one in-process Dask LocalCluster (2 workers) for the Dask tests;
* the shipped example, built once per session: ``shipped_studies``,
  ``shipped_plan``, ``shipped_results`` (:func:`run_plan`) and
  ``shipped_report`` (``metaanalysis report`` into a temporary folder, SVG
  figures only) -- the report is the slowest thing the tests build, so every
  test that reads it shares this one.
"""

import json
import sys
from pathlib import Path

import pandas as pd
import pytest

METAFOR = Path(__file__).parent / "data" / "metafor"
ROOT = Path(__file__).resolve().parents[1]
STUDIES = ROOT / "studies"


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt = sys.modules.get("matplotlib.pyplot")
    if plt is not None:
        plt.close("all")


@pytest.fixture(scope="session")
def cement_data():
    """``(reference dict, PLO effect sizes)`` of the cement-leakage series."""
    import metaanalysis as ma

    d = json.loads((METAFOR / "mwa_cement_leakage.json").read_text())
    es = ma.effect_sizes("PLO", data=pd.DataFrame(d["data"]), events="xi", total="ni")
    return d, es


@pytest.fixture(scope="session")
def dask_client():
    """One in-process ``LocalCluster`` (2 workers, 1 thread each) for the whole session."""
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=False,
                                  dashboard_address=":0") as cluster:
        with distributed.Client(cluster) as client:
            yield client


@pytest.fixture(scope="session")
def shipped_studies():
    import metaanalysis as ma

    return ma.load_studies(STUDIES)


@pytest.fixture(scope="session")
def shipped_plan():
    from metaanalysis.report.plan import load_plan

    return load_plan(STUDIES / "plan.yaml")


@pytest.fixture(scope="session")
def shipped_results(shipped_studies, shipped_plan):
    """``run_plan`` on the shipped studies and plan (with sensitivity and subgroups)."""
    from metaanalysis.report.analysis import run_plan

    return run_plan(shipped_studies, shipped_plan)


@pytest.fixture(scope="session")
def shipped_report(tmp_path_factory):
    """``(out folder, files written)`` of ``metaanalysis report`` on the shipped studies."""
    from metaanalysis.report.run import run_report

    out = tmp_path_factory.mktemp("shipped") / "figures"
    files = run_report(STUDIES, out=out, quiet=True, formats=("svg",))
    return out, files
