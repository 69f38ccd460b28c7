"""A plot never refits a model or computes a test (STYLE.md): figures draw results that
the models layer computed and the caller passed in.

Two checks: no module under metaanalysis/plots/ calls a fitting or testing function
(by name, found in the syntax tree, so docstring examples do not count), and the
import-linter contract "Plots compute nothing" in pyproject.toml (run by
``lint-imports``) forbids importing the engine and the models layer at all, except
``proportion_ci`` (a per-study display interval).
"""

import ast
from pathlib import Path

import pytest

import metaanalysis as ma
from metaanalysis.errors import InputError

ROOT = Path(__file__).resolve().parents[1]
PLOTS = ROOT / "metaanalysis" / "plots"

#: functions that fit a model, refit subsets or compute a test
COMPUTING = {
    "pool", "pool_many", "pool_glmm", "pool_bayes", "pool_mv", "pool_proportions",
    "fit", "fit_masked", "leave_one_out", "cumulative", "influence", "baujat_coordinates",
    "gosh", "egger_test", "peese", "begg_test", "trim_and_fill", "fail_safe_n",
    "meta_regression", "subgroups", "prior_sensitivity", "simulate", "vcalc",
    "lstsq", "polyfit", "OLS", "WLS", "linregress", "minimize", "minimize_scalar",
}


def _called_names(tree):
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            f = node.func
            name = f.id if isinstance(f, ast.Name) else f.attr if isinstance(f, ast.Attribute) \
                else None
            if name is not None:
                yield name, node.lineno


def _imported_models(tree):
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            yield node.module, [a.name for a in node.names], node.lineno
        elif isinstance(node, ast.Import):
            for a in node.names:
                yield a.name, [], node.lineno


def test_no_plot_module_calls_a_fitting_or_testing_function():
    found = []
    modules = sorted(PLOTS.glob("*.py"))
    assert len(modules) >= 10  # the check looks at the real package
    for path in modules:
        tree = ast.parse(path.read_text(), str(path))
        found += [f"{path.name}:{line}: {name}()" for name, line in _called_names(tree)
                  if name in COMPUTING]
        for module, names, line in _imported_models(tree):
            if module.startswith(("metaanalysis.models", "metaanalysis.engine", "statsmodels")):
                if (module, names) != ("metaanalysis.models.proportions", ["proportion_ci"]):
                    found.append(f"{path.name}:{line}: imports {module} {names}")
    assert found == []


def test_the_checker_finds_a_refit(tmp_path):
    # the check above can fail: a plot that refits is reported
    src = "def f(res):\n    from metaanalysis.models.sensitivity import influence\n" \
          "    return influence(res)\n"
    tree = ast.parse(src)
    assert ("influence", 3) in set(_called_names(tree))
    assert [m for m, _, _ in _imported_models(tree)] == ["metaanalysis.models.sensitivity"]


def test_import_contract_is_declared():
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    conf = tomllib.loads((ROOT / "pyproject.toml").read_text())
    contracts = conf["tool"]["importlinter"]["contracts"]
    c = next(c for c in contracts if c["name"].startswith("Plots compute nothing"))
    assert c["type"] == "forbidden" and c["source_modules"] == ["metaanalysis.plots"]
    assert {"metaanalysis.engine", "metaanalysis.models"} <= set(c["forbidden_modules"])
    assert c.get("ignore_imports") == [
        "metaanalysis.plots.forest_spec -> metaanalysis.models.proportions"]


def test_diagnostic_plots_take_computed_results():
    res = ma.pool([0.1, 0.3, 0.35, 1.2, 0.2], [0.01, 0.02, 0.015, 0.01, 0.03])
    with pytest.raises(InputError, match=r"ma\.baujat_coordinates\(res\)"):
        ma.baujat(res)
    with pytest.raises(InputError, match=r"ma\.influence\(res\)"):
        ma.influence_plot(res)
    with pytest.raises(InputError, match="lacks column"):
        ma.baujat(ma.influence(res))
