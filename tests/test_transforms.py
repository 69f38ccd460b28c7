"""Back-transformations against metafor's ``back`` blocks.

Reference values: tests/data/metafor/{pritz1997_proportions,mwa_cement_leakage,
mwa_complications_k2}.json (R 4.2.2, metafor 3.8-1; PFT via ``transf.ipft.hm``).
The inputs are the fitted values stored in the same files, so these tests do not
depend on the engine.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from metaanalysis.effects.transforms import harmonic_mean, ipft, natural_label, pft, to_natural
from metaanalysis.errors import InputError

DATA = Path(__file__).parent / "data" / "metafor"
CASES = ("pritz1997_proportions", "mwa_cement_leakage", "mwa_complications_k2")
KEYS = ("estimate", "ci_lb", "ci_ub", "pi_lb", "pi_ub")


def _back_cases():
    for case in CASES:
        ref = json.loads((DATA / f"{case}.json").read_text())
        ni = [row["ni"] for row in ref["data"]]
        for measure in ("PR", "PLO", "PAS", "PFT"):
            for fit in ref[measure]["fits"]:
                for key in KEYS:
                    if fit[key] == [] or fit[key] is None:
                        continue
                    yield pytest.param(
                        measure,
                        ni,
                        fit[key],
                        fit["back"][key],
                        id=f"{case}-{measure}-{fit['method']}-{key}",
                    )


@pytest.mark.parametrize("measure, ni, value, expected", list(_back_cases()))
def test_back_blocks_match_metafor(measure, ni, value, expected):
    # metafor predict(fit, transf = ...) values stored under "back" in the JSON file
    got = float(to_natural(measure, [value], ni=ni)[0])
    assert got == pytest.approx(expected, abs=1e-8, rel=1e-8)


def test_ee_has_no_prediction_interval_in_reference():
    # guards the loop above: EE fits carry [] for the PI and we must skip, not compare
    ref = json.loads((DATA / "pritz1997_proportions.json").read_text())
    ee = next(f for f in ref["PLO"]["fits"] if f["method"] == "EE")
    assert ee["back"]["pi_lb"] == []


def test_pft_roundtrip_and_clamp():
    # Miller (1978): the inversion is exact for a single study of the same n
    p = np.array([0.0, 0.01, 0.3, 0.5, 0.97, 1.0])
    assert np.allclose(ipft(pft(p, 40), 40), p, atol=1e-12)
    # below pft(0, n) -> 0, above pft(1, n) -> 1 (transformation range)
    assert ipft(-0.1, 40) == 0.0
    assert ipft(np.pi / 2, 40) == 1.0
    # the double arcsine of 0/10: (0 + asin(sqrt(1/11)))/2
    assert float(pft(0.0, 10)) == pytest.approx(0.5 * math.asin(math.sqrt(1 / 11)), rel=1e-14)


def test_pft_uses_harmonic_mean():
    # harmonic mean of 10 and 40 is 16 (2 / (1/10 + 1/40))
    assert harmonic_mean([10, 40]) == pytest.approx(16.0)
    x = float(pft(0.2, 16))
    assert float(to_natural("PFT", [x], ni=[10, 40])[0]) == pytest.approx(0.2, abs=1e-12)


def test_pft_needs_ni():
    with pytest.raises(InputError, match="ni"):
        to_natural("PFT", [0.5])


@pytest.mark.parametrize(
    "measure, x, expected",
    [
        ("PLO", 0.0, 0.5),
        ("PLO", math.log(3.0), 0.75),  # odds 3 -> 3/4
        ("PAS", math.pi / 4, 0.5),  # sin(pi/4)^2
        ("PAS", 2.0, 1.0),  # clamped at pi/2
        ("PAS", -0.2, 0.0),  # clamped at 0
        ("OR", math.log(2.0), 2.0),
        ("RR", 0.0, 1.0),
        ("ROM", math.log(0.5), 0.5),
        ("MNLN", math.log(7.0), 7.0),
        ("ZCOR", math.atanh(0.3), 0.3),
        ("PR", 1.05, 1.05),  # identity, not clamped (as metafor)
        ("SMD", -0.4, -0.4),
        (None, 2.5, 2.5),
    ],
)
def test_simple_transforms(measure, x, expected):
    assert float(to_natural(measure, [x])[0]) == pytest.approx(expected, rel=1e-12, abs=1e-15)


def test_nan_passes_through():
    out = to_natural("PFT", [np.nan, 0.5], ni=[20, 30])
    assert np.isnan(out[0]) and 0 < out[1] < 1


def test_labels():
    assert natural_label("PLO") == "Proportion"
    assert natural_label("RR") == "Risk ratio"
    assert natural_label("ZCOR") == "Correlation"
    assert natural_label(None) == "Estimate"
