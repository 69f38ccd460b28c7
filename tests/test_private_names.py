"""Underscore names are private to their module (issue 12, "Layers you can see"): no module
of the package imports another module's ``_name`` or reads ``obj._name`` of a package class
defined elsewhere.  Checked on the source with ``ast``, so it fails on the line that does it.

Third-party internals are outside this rule: ``report/word.py`` uses python-docx's ``_tbl``,
``_tc`` and ``_tr`` (the OOXML elements behind a table, cell and row: python-docx has no
public API for cell shading, borders and repeated header rows; its documentation points to
these attributes for that)."""

import ast
from pathlib import Path

PKG = Path(__file__).resolve().parents[1] / "metaanalysis"


def _imports_of_private_names(pkg=PKG):
    found = []
    for path in sorted(pkg.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("metaanalysis"):
                for alias in node.names:
                    if alias.name.startswith("_") and not alias.name.startswith("__"):
                        found.append(f"{path.relative_to(pkg.parent)}:{node.lineno}: "
                                     f"from {node.module} import {alias.name}")
    return found


def test_no_module_imports_another_modules_private_names():
    assert _imports_of_private_names() == []


def test_the_check_finds_a_private_import(tmp_path):
    """The checker itself can fail: a planted private import is reported."""
    pkg = tmp_path / "metaanalysis"
    pkg.mkdir()
    (pkg / "a.py").write_text("from metaanalysis.b import _hidden, public\n")
    assert _imports_of_private_names(pkg) == [
        "metaanalysis/a.py:1: from metaanalysis.b import _hidden"]
