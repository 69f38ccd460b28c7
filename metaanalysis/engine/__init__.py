"""The numerical engine: batch τ² estimators, fits and Q-profile intervals on (B, k) arrays.

``from metaanalysis import engine; engine.fit(yi, vi, ...)`` is the one entry point
for every model above this layer (see :mod:`metaanalysis.engine.batch`).
"""

from metaanalysis.engine.batch import CORE_KEYS, KEYS, METHODS, TESTS, check_level, fit

__all__ = ["CORE_KEYS", "KEYS", "METHODS", "TESTS", "check_level", "fit"]
