"""PRISMA flow diagram and risk-of-bias plots, tested by measuring the drawn artists.

Every figure at 89, 120 and 183 mm: the width is exact, every text lies inside
the figure, no two texts overlap, no text is below 6 pt; PRISMA box texts lie
inside their boxes and the arrows join the boxes; the traffic light has one
circle per study and domain with the tool's colour and symbol; summary bars
add up to 100% with the shares computed by hand.
"""

import itertools

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pandas as pd
import pytest
from matplotlib.patches import Circle, FancyArrowPatch, Rectangle

import metaanalysis as ma
from metaanalysis.errors import InputError, PlanError
from metaanalysis.plots.rob import PALETTES, SYMBOLS

WIDTHS = {"single": 89.0, "onehalf": 120.0, "double": 183.0}

COUNTS = {"databases": {"MEDLINE": 412, "Embase": 388}, "registers": {"ClinicalTrials.gov": 6},
          "duplicates_removed": 301, "records_screened": 505, "records_excluded": 471,
          "reports_sought": 34, "reports_not_retrieved": 2, "reports_assessed": 32,
          "reports_excluded": {"Not thermal ablation": 12, "No outcome of interest": 8,
                               "Review or commentary": 2},
          "studies_included": 9, "reports_included": 10}
OTHER = {**COUNTS, "other_methods": {"identified": {"Citation searching": 5},
                                     "reports_sought": 4, "reports_not_retrieved": 1,
                                     "reports_assessed": 3,
                                     "reports_excluded": {"Same cohort": 1}},
         "reports_included": 12, "studies_included": 11}

ROB2 = pd.DataFrame({
    "Study": ["Alpha 2019", "Beta 2021", "Gamma and colleagues 2022", "Delta 2023"],
    "randomisation": ["Low", "High", "Low", "Some concerns"],
    "deviations": ["Low", "Low", "Some concerns", "Low"],
    "missing_data": ["Some concerns", "Low", "Low", "Low"],
    "measurement": ["Low", "Low", "Low", "Low"],
    "reporting": ["Low", "Low", "High", "Low"],
    "Weight": [30.0, 90.0, 40.0, 40.0]})


def _bbox(fig, artist):
    return artist.get_window_extent(fig.canvas.get_renderer())


def _texts(ax):
    return [t for t in ax.texts if t.get_text().strip() and t.get_visible()]


def _check_layout(ax, width_mm):
    fig = ax.figure
    assert fig.get_size_inches()[0] * 25.4 == pytest.approx(width_mm, abs=1e-6)
    fb = fig.bbox
    texts = _texts(ax)
    assert texts
    for t in texts:
        assert t.get_fontsize() >= 6.0, t.get_text()
        b = _bbox(fig, t)
        assert b.x0 >= fb.x0 - 0.5 and b.x1 <= fb.x1 + 0.5, t.get_text()
        assert b.y0 >= fb.y0 - 0.5 and b.y1 <= fb.y1 + 0.5, t.get_text()
    boxes = [(t, _bbox(fig, t)) for t in texts]
    for (t1, b1), (t2, b2) in itertools.combinations(boxes, 2):
        overlap_w = min(b1.x1, b2.x1) - max(b1.x0, b2.x0)
        overlap_h = min(b1.y1, b2.y1) - max(b1.y0, b2.y0)
        assert overlap_w <= 0.5 or overlap_h <= 0.5, (t1.get_text(), t2.get_text())


@pytest.mark.parametrize(("counts", "width"), [(COUNTS, "single"), (COUNTS, "double"),
                                               (OTHER, "single"), (OTHER, "onehalf")],
                         ids=["databases-89", "databases-183", "other-89", "other-120"])
def test_prisma_layout_measured(counts, width):
    if counts is OTHER and width == "single":
        with pytest.raises(InputError, match=r"too narrow .* needs at least \d+ mm"):
            ma.prisma_flow(counts, width=width)
        return
    with ma.use_style(None):
        ax = ma.prisma_flow(counts, width=width)
    _check_layout(ax, WIDTHS[width])
    fig = ax.figure
    # every box text lies inside its box, with the count it states
    patches = {p.get_gid(): p for p in ax.patches if p.get_gid()}
    for t in _texts(ax):
        gid = t.get_gid()
        if not gid.startswith("prisma-text-") or gid == "prisma-text-note":
            continue
        box = patches[gid.replace("prisma-text-", "prisma-box-")]
        tb, bb = _bbox(fig, t), _bbox(fig, box)
        assert bb.x0 <= tb.x0 and tb.x1 <= bb.x1 + 0.5 and bb.y0 <= tb.y0 + 0.5 \
            and tb.y1 <= bb.y1 + 0.5, t.get_text()
    text = " ".join(t.get_text() for t in _texts(ax)).replace("\u00a0", " ")
    for phrase in ("(n = 505)", "(n = 471)", "(n = 301)", "Not thermal ablation (n = 12)",
                   f"(n = {counts['studies_included']})"):
        assert phrase in text


def test_prisma_arrows_join_boxes():
    ax = ma.prisma_flow(COUNTS, width="double")
    boxes = {p.get_gid(): p for p in ax.patches if isinstance(p, Rectangle)}
    arrows = [p for p in ax.patches if isinstance(p, FancyArrowPatch)]
    assert len(arrows) == 4 + 4  # four steps down, four steps aside
    down = [a for a in arrows if a.get_gid().count("-") == 3]
    for a in down:  # from the bottom of one main box to the top of the next
        (x0, y0), (x1, y1) = a._posA_posB
        r = int(a.get_gid().split("-")[2])
        above, below = boxes[f"prisma-box-{r}-0"], boxes[f"prisma-box-{r + 1}-0"]
        assert y0 == pytest.approx(above.get_y() + above.get_height())
        assert y1 == pytest.approx(below.get_y())
        assert x0 == pytest.approx(above.get_x() + above.get_width() / 2)


def test_prisma_illustrative_note_and_vector_output(tmp_path):
    ax = ma.prisma_flow({**COUNTS, "illustrative": True}, width="double")
    notes = [t for t in ax.texts if t.get_gid() == "prisma-text-note"]
    assert notes and "Illustrative counts" in notes[0].get_text()
    pdf, svg = ma.save_figure(ax.figure, tmp_path / "prisma", formats=("pdf", "svg"))
    assert b"/Subtype /Image" not in pdf.read_bytes()  # vector only
    assert "<image" not in svg.read_text()


def test_prisma_counts_that_do_not_add_up_are_named():
    bad = {**COUNTS, "records_screened": 500}
    with pytest.raises(PlanError) as err:
        ma.prisma_flow(bad)
    msg = str(err.value)
    assert "prisma/records_screened: 500 does not add up" in msg
    assert "records identified 806 − duplicates removed 301 = 505" in msg
    bad = {**COUNTS, "reports_included": 11}
    with pytest.raises(PlanError, match=r"reports_included: 11 does not add up: reports "
                       r"assessed 32 − reports excluded 22 = 10"):
        ma.prisma_counts(bad)
    with pytest.raises(PlanError, match="studies_included: 9 does not match the study folder, "
                       "which holds 3 studies"):
        ma.prisma_counts(COUNTS, studies=[1, 2, 3])
    with pytest.raises(PlanError, match="reports_sought: missing"):
        ma.prisma_counts({k: v for k, v in COUNTS.items() if k != "reports_sought"})
    with pytest.raises(PlanError, match=r"duplicates_removed: got -1"):
        ma.prisma_counts({**COUNTS, "duplicates_removed": -1})


@pytest.mark.parametrize("width", ["single", "double"])
def test_traffic_light_layout_measured(width):
    with ma.use_style(None):
        ax = ma.rob_traffic_light(ROB2, "rob2", width=width)
    _check_layout(ax, WIDTHS[width])
    circles = [p for p in ax.patches if isinstance(p, Circle)
               and p.get_gid().startswith("rob-cell")]
    assert len(circles) == 4 * 6  # 4 studies x (5 domains + overall)


def test_traffic_light_colours_and_symbols_follow_the_tool():
    ax = ma.rob_traffic_light(ROB2, "rob2")
    pal = PALETTES["cochrane"]
    cells = [p for p in ax.patches if isinstance(p, Circle) and p.get_gid() == "rob-cell-"
             "randomisation-circle"]
    assert [matplotlib.colors.to_hex(c.get_facecolor()) for c in cells] == [
        pal["low"].lower(), pal["high"].lower(), pal["low"].lower(),
        pal["some concerns"].lower()]
    overall = [t.get_text() for t in ax.texts if t.get_gid() == "rob-cell-Overall-symbol"]
    # RoB 2 algorithm: any high -> high; else any some concerns -> some concerns
    assert overall == [SYMBOLS["some concerns"], SYMBOLS["high"], SYMBOLS["high"],
                       SYMBOLS["some concerns"]]
    legend = " ".join(" ".join(t.get_text() for t in ax.texts
                               if t.get_gid() == "rob-domains").split())
    assert "D1: Bias arising from the randomisation process" in legend


def test_traffic_light_too_narrow_is_refused():
    wide = pd.DataFrame({"Study": ["A very long study label that will not fit, 2020"],
                         **{d: [2] for d in ma.review.rob_tools.TOOLS["minors"].domain_keys}})
    with pytest.raises(InputError, match="cannot hold 12 domain columns"):
        ma.rob_traffic_light(wide, "minors", width=40)


def test_bad_judgement_in_a_table_names_study_and_domain():
    bad = ROB2.copy()
    bad.loc[1, "deviations"] = "Probably fine"
    with pytest.raises(InputError, match="Beta 2021: deviations: judgement 'Probably fine' is "
                       "not allowed by RoB 2"):
        ma.rob_traffic_light(bad, "rob2")


@pytest.mark.parametrize("width", ["single", "double"])
def test_summary_layout_and_weighted_shares(width):
    with ma.use_style(None):
        ax = ma.rob_summary(ROB2, "rob2", width=width)
    _check_layout(ax, WIDTHS[width])
    bars = [p for p in ax.patches if p.get_gid().startswith("rob-summary-bar")]
    axis = [ln for ln in ax.lines if ln.get_gid() == "rob-summary-axis"][0]
    x0, x1 = axis.get_xdata()
    full = x1 - x0
    # D1 randomisation: low 30 + 40, high 90, some concerns 40 of 200
    ys = sorted({round(b.get_y(), 6) for b in bars})
    first = [b for b in bars if round(b.get_y(), 6) == ys[0]]
    shares = {b.get_gid().removeprefix("rob-summary-bar-"): b.get_width() / full for b in first}
    assert shares == pytest.approx({"low": 0.35, "some concerns": 0.2, "high": 0.45})
    # every bar adds up to the full axis
    for y in ys:
        assert sum(b.get_width() for b in bars if round(b.get_y(), 6) == y) == \
            pytest.approx(full)
    assert any(t.get_text() == "Share of the weight (%)" for t in ax.texts)


def test_summary_unweighted_counts_studies():
    ax = ma.rob_summary(ROB2.drop(columns="Weight"), "rob2")
    bars = [p for p in ax.patches if p.get_gid().startswith("rob-summary-bar")]
    widths = np.array([b.get_width() for b in bars])
    full = max(widths)  # D4: all low
    assert sorted(np.round(widths / full, 4))[:2] == [0.25, 0.25]
    assert any(t.get_text() == "Share of studies (%)" for t in ax.texts)


def test_plots_draw_only_on_the_given_axes():
    import matplotlib.pyplot as plt

    fig, (a1, a2) = plt.subplots(1, 2, figsize=(7, 4))
    out = ma.rob_summary(ROB2, "rob2", ax=a2)
    assert out is a2 and not a1.patches and not a1.texts
    out = ma.prisma_flow(COUNTS, ax=a1)
    assert out is a1 and len(a1.patches) > 10


def test_prisma_without_a_search_draws_the_other_methods_column_only():
    counts = {"other_methods": {"identified": {"Abstracts listed in the notes": 16},
                                "reports_sought": 16, "reports_not_retrieved": 0,
                                "reports_assessed": 16,
                                "reports_excluded": {"Pooled analysis": 2, "Commentary": 1}},
              "studies_included": 12, "reports_included": 13}
    c = ma.prisma_counts(counts)
    assert not c.searched and c.records_screened == 0
    assert list(c.to_frame()["box"])[0] == "Records identified (other methods)"
    with ma.use_style(None):
        ax = ma.prisma_flow(c, width="single")
    _check_layout(ax, 89.0)
    headers = [t.get_text() for t in ax.texts if t.get_gid() == "prisma-text-header0"]
    assert " ".join(headers) == "Identification of studies via other methods"
    assert not [p for p in ax.patches if p.get_gid() == "prisma-box-2-0"]  # no screening box
    text = " ".join(t.get_text() for t in ax.texts).replace("\u00a0", " ")
    assert "Reports excluded:" in text and "Commentary (n = 1)" in text
    with pytest.raises(PlanError, match=r"reports_included: 12 does not add up: reports "
                       r"assessed 0 − reports excluded 0 \+ other methods: reports assessed 16"):
        ma.prisma_counts({**counts, "reports_included": 12})


def test_score_tools_name_the_overall_levels_in_their_own_legend_row():
    keys = ma.review.rob_tools.TOOLS["minors"].domains_for(False)
    t = pd.DataFrame({"Study": ["A 2020", "B 2021"],
                      **{d.key: [2, 0] if i < 4 else [2, 1] for i, d in enumerate(keys)}})
    ax = ma.rob_traffic_light(t, "minors", width="double")
    titles = [x.get_text() for x in ax.texts if x.get_gid() == "rob-key-title"]
    assert titles == ["Judgement:", "Overall:"]
    keys_text = [x.get_text() for x in ax.texts if x.get_gid() == "rob-key"]
    # A: 16 of 16 -> low; B: 4 of 16 -> high
    assert keys_text[-2:] == ["Low risk", "High risk"]
    assert "2: reported and adequate" in keys_text
