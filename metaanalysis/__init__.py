"""metaanalysis — pooling study-level outcomes, agreeing with R metafor.

>>> import metaanalysis as ma
>>> res = ma.pool([0.1, 0.3, 0.35], [0.01, 0.02, 0.015], method="REML")
>>> round(res.estimate, 4)
0.2333

Public names are imported lazily (PEP 562) so ``import metaanalysis`` stays
fast and never imports matplotlib.
"""

from __future__ import annotations

import importlib

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
    "PerformanceWarning": "errors",
    # study records
    "load_studies": "records.studies",
    "StudySet": "records.studies",
    "parse_timepoint": "records.timepoints",
    "check_studies": "records.checks",
    # effect sizes and conversions
    "effect_sizes": "effects.effect_sizes",
    "estimate_mean_sd": "effects.conversions",
    "study_data": "effects.study_data",
    "StudyData": "effects.study_data",
    # pooling
    "pool": "models.pooling",
    "pool_many": "models.pooling",
    "PoolResult": "results.pool_result",
    "BatchResult": "results.pool_result",
    "pool_glmm": "models.proportions",
    "proportion_ci": "models.proportions",
    "pool_proportions": "models.proportions",
    "proportion_notes": "models.proportions",
    "pool_bayes": "models.bayes",
    "BayesResult": "models.bayes",
    "prior_sensitivity": "models.bayes",
    # bias, sensitivity, structure
    "egger_test": "models.bias",
    "peese": "models.bias",
    "begg_test": "models.bias",
    "trim_and_fill": "models.bias",
    "fail_safe_n": "models.bias",
    "leave_one_out": "models.sensitivity",
    "cumulative": "models.sensitivity",
    "influence": "models.sensitivity",
    "baujat_coordinates": "models.sensitivity",
    "gosh": "models.gosh",
    "GoshResult": "models.gosh",
    "GoshSummary": "models.gosh",
    "meta_regression": "models.regression",
    "subgroups": "models.subgroups",
    # multilevel / multivariate models (metafor rma.mv)
    "pool_mv": "models.multilevel",
    "MVResult": "models.mv_result",
    "vcalc": "models.vcalc",
    # figures (matplotlib imported only when one is used)
    "forest": "plots.forest",
    "funnel": "plots.funnel",
    "baujat": "plots.diagnostics",
    "radial": "plots.diagnostics",
    "gosh_plot": "plots.diagnostics",
    "influence_plot": "plots.diagnostics",
    "timecourse": "plots.timecourse",
    "timecourse_panels": "plots.timecourse_panels",
    "posterior_plot": "plots.bayes",
    "save_figure": "plots.output",
    "use_style": "plots.output",
    "forest_spec": "plots.forest",
    "LayoutWarning": "plots.layout",
    "layout_problems": "plots.inspect",
    # past one machine: Dask, GOSH summaries, simulation studies
    "DaskBatchResult": "models.distributed",
    "simulate": "models.simulation",
    # submission package: Table 1, PRISMA 2020, risk of bias, GRADE
    "study_table": "review.study_table",
    "prisma_counts": "review.prisma",
    "rob_table": "review.rob",
    "rob_ratings": "review.rob",
    "summary_of_findings": "review.grade",
    "GradeSettings": "review.grade",
    "prisma_flow": "plots.prisma",
    "rob_traffic_light": "plots.rob",
    "rob_summary": "plots.rob",
    # the main job
    "load_plan": "report.plan",
    # shipped example data (for runnable examples)
    "example_path": "examples",
    "run_report": "report.run",
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
