"""Hostile study folders: `metaanalysis check` ends with exit 2 and one clear line, quickly.

Bounded work (aliases refused, size, depth and number caps, closed-form
denominator and GRIM searches), identity checks (ids stripped and validated,
duplicates after normalisation, files that are not regular files) and typos at
every level of a record.  Each case is a tiny folder built in tmp_path.
"""

import os
import time

import pytest
import yaml
from hostile_cases import leak, study, write_studies

from metaanalysis.cli import main
from metaanalysis.records.checks import (
    candidate_denominators,
    compact,
    grim_alternatives,
    matching_counts,
    percent_matches,
)


def _check(folder, capsys) -> tuple[int, list[str]]:
    rc = main(["check", str(folder)])
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return rc, [line for line in err.splitlines() if not line.endswith("[warning]")]


def _raw(tmp_path, text: str, name: str = "x2020.yaml"):
    folder = tmp_path / "s"
    folder.mkdir(exist_ok=True)
    (folder / name).write_text(text, encoding="utf-8")
    return folder


GOOD = yaml.safe_dump(study("x2020", [leak(3, 40)]), sort_keys=False)


@pytest.mark.parametrize("text, expected", [
    # bounded work
    ('a: &a ["x","x","x","x","x","x","x","x","x"]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]\n'
     'c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]\n' + GOOD, "alias *a is not allowed"),
    ("x: " + "[" * 5000 + "]" * 5000 + "\n" + GOOD, "nest"),
    ("x: " + "{a: " * 40 + "1" + "}" * 40 + "\n" + GOOD, "nested deeper than 32 levels"),
    ("? [a, b]\n: 1\n" + GOOD, "a key must be a plain value"),
    (GOOD.replace("events: 3", "events: " + "7" * 400), "a number written with 400 characters"),
    (GOOD.replace("events: 3", "percent: 7." + "5" * 400), "a number written with 402 characters"),
    (GOOD.replace("events: 3", "percent: 7.1234567"), "written with 7 decimals; expected at most 6"),
    (GOOD.replace("lesions: 50", "lesions: 1000000000"), "expected a count from 0 to 1,000,000"),
    (GOOD.replace("events: 3", "mean: 1.0e+300"), "no larger than 1e+12"),
    (GOOD.replace("time: procedure", "time: " + "9" * 50 + " years"), "more than 100 years"),
    (GOOD + "x: !!python/object/apply:os.system [echo]\n", "tag tag:yaml.org,2002:python/"),
    (GOOD + "--- {}\n", "more than one YAML document"),
    (GOOD.replace("citation:", "x: 1\nx: 2\ncitation:"), "duplicate key 'x'"),
    # identity
    (GOOD.replace("id: x2020", "id: ../../etc"), "id: got '../../etc'; expected a name of"),
    (GOOD.replace("id: x2020", "id: CON/NUL"), "id: got 'CON/NUL'"),
    (GOOD.replace("id: x2020", f"id: {'a' * 300}"), "at most 64 characters"),
    (GOOD.replace("outcome: leak", "outcome: Leak Rate"), "outcome: got 'Leak Rate'"),
    (GOOD.replace("outcome: leak", 'outcome: "le\\u0000ak"'), "outcome: got 'le\\x00ak'"),
    # typos at every level
    (GOOD.replace("citation:", "citaton:"), "citaton: unknown key; did you mean citation?"),
    (GOOD.replace("events: 3", "evnts: 3"), "outcomes[0].evnts: unknown key; did you mean events?"),
    (GOOD + "arms: {a1: {patiens: 3}}\n", "arms.a1.patiens: unknown key; did you mean patients?"),
])
def test_bad_study_files_exit_2_with_one_clear_line(tmp_path, capsys, text, expected):
    t0 = time.perf_counter()
    rc, lines = _check(_raw(tmp_path, text), capsys)
    assert rc == 2
    assert any(expected in line for line in lines), lines
    assert all(line.startswith(str(tmp_path / "s")) for line in lines)
    assert time.perf_counter() - t0 < 5


def test_a_big_file_is_refused_by_size_before_it_is_parsed(tmp_path, capsys):
    folder = _raw(tmp_path, GOOD + "note: |\n" + ("  " + "x" * 78 + "\n") * 13000)
    t0 = time.perf_counter()
    rc, lines = _check(folder, capsys)
    assert rc == 2 and "YAML input is limited to 524288 bytes" in lines[0]
    assert time.perf_counter() - t0 < 2


def test_ids_are_stripped_and_duplicates_after_normalisation_are_errors(tmp_path, capsys):
    folder = write_studies(tmp_path / "s", [study("chen2022", [leak(3, 40)])])
    (folder / "chen2022b.yaml").write_text(GOOD.replace("id: x2020", 'id: "chen2022\\n"'))
    (folder / "chen2022c.yaml").write_text(GOOD.replace("id: x2020", "id: Chen2022"))
    rc, lines = _check(folder, capsys)
    assert rc == 2 and len(lines) == 2
    assert "chen2022b.yaml: chen2022/id: duplicate id 'chen2022', also used in" in lines[0]
    assert "ids differ only in case" in lines[1]


@pytest.mark.parametrize("kind", ["directory", "fifo", "broken_symlink", "device_link"])
def test_a_yaml_name_that_is_not_a_regular_file_is_an_error(tmp_path, capsys, kind):
    folder = write_studies(tmp_path / "s", [study("a2020", [leak(3, 40)])])
    target = folder / "b2021.yaml"
    if kind == "directory":
        target.mkdir()
    elif kind == "fifo":
        if not hasattr(os, "mkfifo"):
            pytest.skip("no FIFOs here")
        os.mkfifo(target)
    elif kind == "broken_symlink":
        target.symlink_to(tmp_path / "nowhere.yaml")
    else:
        target.symlink_to("/dev/zero")
    t0 = time.perf_counter()
    rc, lines = _check(folder, capsys)
    assert rc == 2 and len(lines) == 1 and lines[0].startswith(f"{target}: -: ")
    assert any(w in lines[0] for w in ("folder", "FIFO", "does not exist"))
    assert time.perf_counter() - t0 < 5


def test_hidden_files_and_plans_are_not_studies(tmp_path, capsys):
    folder = write_studies(tmp_path / "s", [study("a2020", [leak(3, 40)])])
    (folder / ".#a2020.yaml").symlink_to("user@host.1234")  # an editor's lock file
    (folder / "plan.yaml").write_text("outcomes: [{name: leak, measure: PLO}]\n")
    rc, _ = _check(folder, capsys)
    assert rc == 0


def test_the_studies_argument_may_not_be_a_fifo(tmp_path, capsys):
    fifo = tmp_path / "studies"
    os.mkfifo(fifo)
    rc, lines = _check(fifo, capsys)
    assert rc == 2 and "not a regular file" in lines[0]


# ------------------------------------------------------------ bounded loops

def _brute_denominators(percent, decimals, upper, events=None):
    out = []
    for t in range(1, upper + 1):
        if events is not None:
            if events <= t and percent_matches(events, t, percent, decimals):
                out.append(t)
        elif matching_counts(percent, decimals, t):
            out.append(t)
    return out


@pytest.mark.parametrize("percent, decimals, upper, events", [
    (94.8, 1, 140, None), (30.30, 2, 400, 10), (0, 0, 50, None), (100, 0, 50, None),
    (100, 1, 50, 20), (0.0, 1, 60, 0), (33.33, 2, 300, None), (7.14, 2, 200, 2),
    (50, 0, 1, None), (12.5, 1, 0, None), (99.95, 2, 300, None),
])
def test_closed_form_denominators_equal_the_loop(percent, decimals, upper, events):
    assert candidate_denominators(percent, decimals, upper, events) == \
        _brute_denominators(percent, decimals, upper, events)


def test_denominator_and_grim_searches_are_bounded(tmp_path, capsys):
    t0 = time.perf_counter()
    assert len(candidate_denominators(94.8, 1, 1_000_000)) == 999_500
    assert len(candidate_denominators(94.8, 1, 1_000_000, events=948)) == 1
    assert len(grim_alternatives(5.123457, 6, 1_000_000)) == 3
    assert grim_alternatives(5.19, 2, 28, scan=0) == []
    assert time.perf_counter() - t0 < 3
    folder = write_studies(tmp_path / "s", [study("a2020", [
        {"outcome": "local_control", "time": "6 months", "unit": "lesions", "percent": 100},
        {"outcome": "pain_vas", "time": "1 month", "unit": "patients", "mean": 5.123457,
         "sd": 1.0, "n": 150_001, "assumed": ["n"]}], patients=1_000_000, lesions=1_000_000)])
    t0 = time.perf_counter()
    rc = main(["check", str(folder)])
    err = capsys.readouterr().err
    assert rc == 0 and time.perf_counter() - t0 < 5
    assert "consistent with it: 1-1000000;" in err
    assert compact(range(0, 10**6, 2)).endswith("... and 499960 more (500000 in all)")


def test_record_and_file_counts_are_capped(tmp_path, capsys, monkeypatch):
    import metaanalysis.records.studies as st

    many = [leak(1, 40, time=f"{d} days") for d in range(1, 302)]
    rc, lines = _check(write_studies(tmp_path / "a", [study("a2020", many)]), capsys)
    assert rc == 2 and "outcomes: 301 outcome records; a study holds at most 300" in lines[0]
    monkeypatch.setattr(st, "MAX_RECORDS", 5)
    rc, lines = _check(write_studies(tmp_path / "b", [study(f"b{i}2020", [leak(1, 40), leak(2, 40)])
                                                      for i in range(3)]), capsys)
    assert rc == 2 and "6 outcome records in all; a folder holds at most 5" in lines[0]
    monkeypatch.setattr(st, "MAX_STUDY_FILES", 2)
    rc, lines = _check(tmp_path / "b", capsys)
    assert rc == 2 and "3 study files; at most 2 are read" in lines[0]


NAMES = ["..", "../../etc/x", "/abs/path", "C:\\x", "a\x00b", "a\nb", "CON", "x" * 300,
         "über", "東京"]


@pytest.mark.parametrize("value", NAMES)
@pytest.mark.parametrize("field", ["id", "outcome", "arm", "unit"])
def test_hostile_names_in_path_fields_are_refused(tmp_path, capsys, field, value):
    rec = leak(3, 40)
    extra = {}
    if field == "outcome":
        rec["outcome"] = value
    elif field == "unit":
        rec["unit"] = value
    elif field == "arm":
        extra = {"arms": {value: {"patients": 40, "lesions": 40}}}
        rec["arm"] = value
    s = study("a2020", [rec], **extra)
    if field == "id":
        s["id"] = value
    folder = tmp_path / "s"
    folder.mkdir()
    (folder / "a2020.yaml").write_text(yaml.safe_dump(s, allow_unicode=True), encoding="utf-8")
    t0 = time.perf_counter()
    rc, lines = _check(folder, capsys)
    if value == "CON" and field in ("id", "arm"):  # a valid name; slugged where it is a path
        assert rc == 0
        return
    assert rc == 2 and any(field in line for line in lines), lines
    assert all("\n" not in line and "\x00" not in line for line in lines)
    assert time.perf_counter() - t0 < 5


# ------------------------------------------------------------ property tests

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

YAML_ALPHABET = st.sampled_from(list("ab:-[]{},&*!?|>'\"#%@` \n\t.0123456789eE+~<=\\\x00\u00e9"))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(YAML_ALPHABET, max_size=80))
def test_the_yaml_reader_only_ever_raises_its_own_errors(text):
    from metaanalysis.records.yamlsafe import YAMLInputError, parse_yaml

    try:
        parse_yaml(text)
    except (YAMLInputError, yaml.YAMLError):
        pass


@settings(max_examples=60, deadline=None)
@given(st.text(max_size=120))
def test_any_text_as_a_study_file_is_exit_0_or_2(tmp_path_factory, text):
    from metaanalysis.records.studies import read_studies

    folder = tmp_path_factory.getbasetemp() / "any_text"
    folder.mkdir(exist_ok=True)
    (folder / "x.yaml").write_text(text, encoding="utf-8", errors="surrogatepass")
    studies, problems = read_studies(folder)
    assert studies or problems
    assert all("\n" not in str(p) for p in problems)
