"""metaanalysis — pooling study-level outcomes, agreeing with R metafor.

>>> import metaanalysis as ma
>>> res = ma.pool([0.1, 0.3, 0.35], [0.01, 0.02, 0.015], method="REML")
>>> round(res.estimate, 4)  # doctest: +SKIP

Public names are imported lazily (PEP 562) so ``import metaanalysis`` stays
fast and never imports matplotlib.
"""

from __future__ import annotations

import importlib
import sys as _sys
import types as _types

__version__ = "0.1.0"

# public name -> module that defines it
_EXPORTS = {
    # errors
    "MetaAnalysisError": "errors",
    "InputError": "errors",
    "StudyFileError": "errors",
    "PlanError": "errors",
    "ConvergenceWarning": "errors",
    "StatisticalWarning": "errors",
    # study records
    "load_studies": "studies",
    "StudySet": "studies",
    "parse_timepoint": "timepoints",
    "check_studies": "checks",
    # effect sizes and conversions
    "effect_sizes": "effect_sizes",
    "estimate_mean_sd": "conversions",
    # pooling
    "pool": "pooling",
    "pool_many": "pooling",
    "PoolResult": "results",
    "BatchResult": "results",
    "pool_glmm": "proportions",
    "proportion_ci": "proportions",
    "pool_proportions": "proportions",
    "proportion_notes": "proportions",
    "pool_bayes": "bayes",
    "BayesResult": "bayes",
    "prior_sensitivity": "bayes",
    # bias, sensitivity, structure
    "egger_test": "bias",
    "peese": "bias",
    "begg_test": "bias",
    "trim_and_fill": "bias",
    "fail_safe_n": "bias",
    "leave_one_out": "sensitivity",
    "cumulative": "sensitivity",
    "influence": "sensitivity",
    "gosh": "sensitivity",
    "meta_regression": "regression",
    "subgroups": "subgroup_analysis",
    # figures (matplotlib imported only when one is used)
    "forest": "plots.forest",
    "funnel": "plots.funnel",
    "baujat": "plots.diagnostics",
    "radial": "plots.diagnostics",
    "gosh_plot": "plots.diagnostics",
    "influence_plot": "plots.diagnostics",
    "timecourse": "plots.timecourse",
    "posterior_plot": "plots.bayes",
    "save_figure": "plots.output",
    "use_style": "plots.output",
    # the main job
    "load_plan": "plan",
    "run_report": "report",
}

__all__ = [*_EXPORTS, "__version__"]  # noqa: PLE0604 -- keys of _EXPORTS are str


def __getattr__(name: str):
    try:
        module = _EXPORTS[name]
    except KeyError:
        raise AttributeError(f"module 'metaanalysis' has no attribute {name!r}") from None
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


def __dir__():
    return __all__


class _Package(_types.ModuleType):
    """Keep a public function from being shadowed by its same-named submodule.

    Importing ``metaanalysis.effect_sizes`` makes Python set the package attribute
    ``effect_sizes`` to the submodule; this keeps it the public function instead.
    ``from metaanalysis.effect_sizes import ...`` is unaffected.
    """

    def __setattr__(self, name, value):
        if isinstance(value, _types.ModuleType) and _EXPORTS.get(name) == name:
            value = getattr(value, name)
        super().__setattr__(name, value)


_sys.modules[__name__].__class__ = _Package
