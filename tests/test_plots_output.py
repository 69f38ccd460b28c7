"""save_figure / use_style: reproducible bytes, journal widths, embedded fonts, atomic writes."""

import matplotlib

matplotlib.use("Agg")

import pytest

import metaanalysis as ma
from metaanalysis.errors import InputError


def _figure():
    res = ma.pool([0.1, 0.3, 0.35, 0.2], [0.01, 0.02, 0.015, 0.01], method="REML",
                  labels=["Alpha 2001", "Beta 2005", "Gamma 2010", "Delta 2019"])
    with ma.use_style():
        return ma.forest(res).figure


def test_two_saves_are_byte_identical(tmp_path):
    fig = _figure()
    a = ma.save_figure(fig, tmp_path / "a" / "forest", dpi=300)
    b = ma.save_figure(fig, tmp_path / "b" / "forest.pdf", dpi=300)
    assert [p.suffix for p in a] == [".pdf", ".svg", ".png"]
    for pa, pb in zip(a, b):
        assert pa.read_bytes() == pb.read_bytes(), pa.suffix
    # a second, separately built figure from the same input gives the same bytes
    c = ma.save_figure(_figure(), tmp_path / "c" / "forest", dpi=300)
    for pa, pc in zip(a, c):
        assert pa.read_bytes() == pc.read_bytes(), pa.suffix


def test_metadata_has_no_timestamps_and_fonts_are_embedded(tmp_path):
    pdf, svg, png = ma.save_figure(_figure(), tmp_path / "f", dpi=300)
    raw = pdf.read_bytes()
    assert b"CreationDate" not in raw and b"ModDate" not in raw
    assert b"/FontFile2" in raw  # TrueType (fonttype 42) embedded
    text = svg.read_text()
    assert "<dc:date>" not in text
    assert "<text" not in text  # glyphs as paths: no font needed to view
    assert b"Software" not in png.read_bytes()[:2000]
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp files


def test_width_presets_and_size_restored(tmp_path):
    fig = _figure()
    size = tuple(fig.get_size_inches())
    (png,) = ma.save_figure(fig, tmp_path / "s", formats="png", width="single", dpi=300)
    assert tuple(fig.get_size_inches()) == size
    w = int.from_bytes(png.read_bytes()[16:20], "big")  # PNG IHDR width in pixels
    assert w == round(89 / 25.4 * 300)
    (png2,) = ma.save_figure(fig, tmp_path / "d", formats=["png"], width="double", dpi=300)
    assert int.from_bytes(png2.read_bytes()[16:20], "big") == round(183 / 25.4 * 300)
    with pytest.raises(InputError, match="width"):
        ma.save_figure(fig, tmp_path / "x", width="triple")
    with pytest.raises(InputError, match="formats"):
        ma.save_figure(fig, tmp_path / "x", formats=["jpg"])


def test_use_style_applies_only_inside_block():
    before = dict(matplotlib.rcParams)
    with ma.use_style("double"):
        assert matplotlib.rcParams["font.size"] == 8
        assert matplotlib.rcParams["pdf.fonttype"] == 42
        assert matplotlib.rcParams["axes.prop_cycle"].by_key()["color"][0].upper() in (
            "#0072B2", "0072B2")
    assert matplotlib.rcParams["font.size"] == before["font.size"]
    assert matplotlib.rcParams["pdf.fonttype"] == before["pdf.fonttype"]
    with pytest.raises(InputError, match="preset"), ma.use_style("poster"):
        pass
