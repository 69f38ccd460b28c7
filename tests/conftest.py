"""Fixtures shared by the test modules.

* every pyplot figure a test opens is closed after it (only when pyplot is
  in use, so tests of the numerical layers do not import matplotlib);
* the MWA cement-leakage series of the metafor reference values
  (tests/data/metafor/mwa_cement_leakage.json) as the reference dict and its
  logit-proportion effect sizes;
* ``dask_client``: one in-process Dask LocalCluster (2 workers) per Dask test module;
* ``copy_shipped``: shipped study files copied without their risk-of-bias ratings, for
  report runs that need no risk-of-bias figures;
* the shipped example, built once per session: ``shipped_studies``,
  ``shipped_plan``, ``shipped_results`` (:func:`run_plan`) and
  ``shipped_report`` (``metaanalysis report`` into a temporary folder, SVG
  figures only) -- the report is the slowest thing the tests build, so every
  test that reads it shares this one.

Two processes (pytest-xdist, ``-n 2`` in pyproject.toml) run the suite, each test
file whole in one of them (its module fixtures are built once).  The files that
read the shipped example (``SHIPPED_FILES``) run in the same process: the
session fixtures above are built once and the report's model fits are cached in
that process (metaanalysis.report.fitting).  The slowest files start first
(``SLOW_FIRST``), so that neither process waits long for the other at the end.  After
collection the garbage collector's generations are frozen (``gc.freeze``).  The time
budget and how to measure it: docs/testing.md.
"""

import gc
import json
import os
import re
import sys
from pathlib import Path

import pytest

# One BLAS thread per process: the two xdist workers share two cores, and OpenBLAS's own
# threads spin against the other worker (tests/test_bayes.py took 9.4 s with them, 4.6 s
# without, on the loaded two-core machine).  Set before numpy is first imported (pytest
# and its plugins do not import it; the test modules do, after this file), inherited by
# the xdist workers and by every process a test starts; a value you set is kept.
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

METAFOR = Path(__file__).parent / "data" / "metafor"
ROOT = Path(__file__).resolve().parents[1]
STUDIES = ROOT / "studies"


#: test files that read the shipped studies' analyses: one xdist work unit
SHIPPED_FILES = ("tests/test_analysis.py", "tests/test_report.py", "tests/test_trajectory.py")
#: started first, the costliest first (CPU seconds per file: docs/testing.md); any other
#: file after them
SLOW_FIRST = SHIPPED_FILES + (
    "tests/test_plots_layout.py", "tests/test_notebook.py", "tests/test_distributed.py",
    "tests/test_plots_output.py", "tests/test_hostile_output.py",
    "tests/test_submission_report.py", "tests/test_cli.py", "tests/test_bayes.py",
    "tests/test_submission_plots.py", "tests/test_effect_sizes.py", "tests/test_multilevel.py",
    "tests/test_plots_baseline.py", "tests/test_plots_forest.py",
    "tests/test_metareg_reference.py", "tests/test_package.py")


def pytest_configure(config):
    # hypothesis: no per-example deadline (a loaded machine must not fail a test);
    # every property test states its own max_examples
    try:
        from hypothesis import settings
    except ImportError:  # the test extras are not installed
        return
    settings.register_profile("metaanalysis", deadline=None)
    settings.load_profile("metaanalysis")


def pytest_collection_modifyitems(config, items):
    rank = {f: i for i, f in enumerate(SLOW_FIRST)}
    items.sort(key=lambda item: rank.get(item.nodeid.split("::", 1)[0], len(rank)))


def pytest_collection_finish(session):
    # Everything alive after collection (imported modules, collected tests) stays alive
    # to the end: out of the garbage collector's full passes, which then walk only what
    # the tests make (about 1.5% of a worker's CPU saved; gc.freeze, Python >= 3.7).
    gc.collect()
    gc.freeze()


@pytest.hookimpl(optionalhook=True, tryfirst=True)
def pytest_xdist_make_scheduler(config, log):
    """``--dist loadfile`` with the ``SHIPPED_FILES`` as one work unit, in collection order."""
    if config.getvalue("dist") != "loadfile":
        return None
    from xdist.scheduler import LoadFileScheduling

    class Scheduler(LoadFileScheduling):
        def _split_scope(self, nodeid):
            scope = super()._split_scope(nodeid)
            return "the shipped example" if scope in SHIPPED_FILES else scope

    config.option.loadscopereorder = False  # keep SLOW_FIRST, not the most tests first
    return Scheduler(config, log)


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt = sys.modules.get("matplotlib.pyplot")
    if plt is not None:
        plt.close("all")


@pytest.fixture(scope="session")
def cement_data():
    """``(reference dict, PLO effect sizes)`` of the cement-leakage series."""
    import pandas as pd

    import metaanalysis as ma

    d = json.loads((METAFOR / "mwa_cement_leakage.json").read_text())
    es = ma.effect_sizes("PLO", data=pd.DataFrame(d["data"]), events="xi", total="ni")
    return d, es


@pytest.fixture(scope="module")
def dask_client():
    """One in-process ``LocalCluster`` (2 workers, 1 thread each) per test module.

    Starting and stopping one costs about 0.05 s of CPU; a running one costs about 7% of
    a core even when idle (its periodic callbacks), so it does not outlive the module's
    tests (a session-wide one ran beside every later test of its xdist worker)."""
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


def without_risk_of_bias(text: str) -> str:
    """A study file's text without its ``risk_of_bias:`` block (up to the next top-level key)."""
    return re.sub(r"(?ms)^risk_of_bias:.*?(?=^\S|\Z)", "", text)


@pytest.fixture(scope="session")
def copy_shipped():
    """``copy_shipped(folder, ids) -> folder``: shipped study files copied into ``folder``,
    without their risk-of-bias ratings.  A report on them draws no risk-of-bias figures
    (about 0.5 s of CPU per run): for the tests of the command line and the progress lines,
    which never read them (tests/test_submission_report.py tests those outputs)."""

    def copy(folder, ids) -> Path:
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        for sid in ids:
            text = without_risk_of_bias((STUDIES / f"{sid}.yaml").read_text(encoding="utf-8"))
            assert "risk_of_bias" not in text, sid
            (folder / f"{sid}.yaml").write_text(text, encoding="utf-8")
        return folder

    return copy


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
