"""Tiny study folders and plans for the hostile-input tests (tests/test_hostile*.py).

Every case is built in a temporary folder, so the tests never touch the shipped
studies; the folders are a few studies with one or two outcomes, so a report on
them takes a second or two.
"""

from __future__ import annotations

from pathlib import Path

import yaml


def study(sid: str, outcomes: list[dict], *, patients: int = 40, lesions: int = 50,
          **extra) -> dict:
    """A valid study record (as a dict) with the given outcome records."""
    name = sid.rstrip("0123456789").capitalize() or "Anon"
    return {"id": sid, "citation": f"{name} et al. 2020, J Test 1:1",
            "doi": f"10.0000/{sid}", "source": "abstract", "patients": patients,
            "lesions": lesions, **extra, "outcomes": outcomes}


def leak(events: int, total: int, **extra) -> dict:
    """A lesion-level proportion record (cement leakage at the procedure)."""
    return {"outcome": "leak", "time": "procedure", "unit": "lesions", "events": events,
            "total": total, **extra}


def pain(time: str, mean: float, sd: float = 1.5, n: int = 40) -> dict:
    """A patient-level mean record of a 0-10 pain score."""
    return {"outcome": "pain_vas", "time": time, "unit": "patients", "n": n, "mean": mean,
            "sd": sd}


def write_studies(folder: Path, studies: list[dict]) -> Path:
    """Write one YAML file per study (``ID.yaml``) into ``folder``; return the folder."""
    folder.mkdir(parents=True, exist_ok=True)
    for s in studies:
        (folder / f"{s['id']}.yaml").write_text(yaml.safe_dump(s, sort_keys=False),
                                                encoding="utf-8")
    return folder


def three_leak_studies(folder: Path, counts=((5, 40), (8, 50), (3, 30))) -> Path:
    """Three studies reporting cement leakage (events/total per lesion)."""
    return write_studies(folder, [study(f"s{i}20{10 + i}", [leak(e, t)])
                                  for i, (e, t) in enumerate(counts, 1)])


LEAK_PLAN = """\
defaults: {funnel_min_k: 10}
outcomes:
  - {name: leak, label: Cement leakage, measure: PLO, unit: lesions}
"""
