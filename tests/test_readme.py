"""The README's Python examples run, and print what the README shows."""

from pathlib import Path

import matplotlib

matplotlib.use("Agg")

ROOT = Path(__file__).resolve().parents[1]


def _blocks(lang):
    """Fenced blocks of the README whose opening fence names ``lang`` ("" = no language)."""
    blocks, current, inside = [], [], None
    for line in (ROOT / "README.md").read_text(encoding="utf-8").splitlines():
        if line.startswith("```"):
            if inside is None:
                inside, current = line[3:].strip(), []
            else:
                if inside == lang:
                    blocks.append("\n".join(current) + "\n")
                inside = None
        elif inside is not None:
            current.append(line)
    return blocks


def test_readme_python_examples_run_and_match_the_printed_output(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    code = "\n".join(_blocks("python")).replace('"tests/data/', f'"{ROOT}/tests/data/')
    exec(compile(code, "README.md", "exec"), {})  # noqa: S102 -- the README is ours
    printed = capsys.readouterr().out
    shown = _blocks("")[0]  # the first plain block is the printed result of the tour
    assert printed.strip().splitlines()[: len(shown.strip().splitlines())] == shown.strip().splitlines()
    for ext in ("pdf", "svg", "png"):
        assert (tmp_path / f"cement_leakage.{ext}").stat().st_size > 1000


def test_readme_quick_start_commands_are_the_ones_ci_runs():
    commands = _blocks("bash")
    assert commands[0].strip() == "pip install . && metaanalysis report"
    assert commands[1].strip() == 'pip install ".[test]" && python -m pytest'
    ci = (ROOT / ".ci" / "run").read_text()
    assert "pip install . && metaanalysis report" in ci
    assert 'pip install ".[test]" && python -m pytest' in ci
