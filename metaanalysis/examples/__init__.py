"""Example data shipped with the package, for the documentation's runnable examples.

``studies/`` holds four study records — snapshots of the project's ``studies/``
folder (chen2022, khan2018, wang2022, wu2021: microwave ablation with vertebral
augmentation for spinal metastases) — and a small analysis plan (``plan.yaml``:
pain reduction at about one month, cement leakage).  It is installed with the
package, so the examples run from a checkout and from an installed copy alike.

Examples
--------
>>> import metaanalysis as ma
>>> studies = ma.load_studies(ma.example_path())
>>> sorted(s.id for s in studies)
['chen2022', 'khan2018', 'wang2022', 'wu2021']
"""

from __future__ import annotations

from pathlib import Path

from metaanalysis.errors import InputError

__all__ = ["example_path"]

_HERE = Path(__file__).resolve().parent


def example_path(name: str = "studies") -> str:
    """Path of a file or folder of the shipped example data.

    Parameters
    ----------
    name : str
        ``"studies"`` (the folder of study records) or a path inside it, such as
        ``"studies/plan.yaml"``.

    Examples
    --------
    >>> from pathlib import Path
    >>> Path(example_path("studies/plan.yaml")).name
    'plan.yaml'
    """
    path = (_HERE / name).resolve()
    if _HERE not in path.parents or not path.exists():
        raise InputError(f"name: got {name!r}; expected 'studies' or a file in it, such as "
                         "'studies/plan.yaml'")
    return str(path)
