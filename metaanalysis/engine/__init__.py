"""The numerical engine: batch τ² estimators, fits, meta-regression and Q-profile
intervals on (B, k) arrays.

``from metaanalysis import engine; engine.fit(yi, vi, X=None, ...)`` is the one
entry point for every model above this layer (see :mod:`metaanalysis.engine.batch`);
:func:`predict` evaluates a fitted model at new moderator values.
"""

from metaanalysis.engine.batch import (
    CORE_KEYS,
    KEYS,
    METHODS,
    REG_CORE_KEYS,
    REG_KEYS,
    TESTS,
    check_level,
    fit,
)
from metaanalysis.engine.inference import predict

__all__ = ["CORE_KEYS", "KEYS", "METHODS", "REG_CORE_KEYS", "REG_KEYS", "TESTS", "check_level",
           "fit", "predict"]
