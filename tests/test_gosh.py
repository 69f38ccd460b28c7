"""GOSH in blocks (metaanalysis.models.gosh): summaries accumulated block by block.

Reference values: the per-subset rows of the same call (keep=True), themselves
checked against metafor's gosh() in test_sensitivity.py; the summaries must
equal what is computed from those rows, and must not depend on where the
blocks run (in process, Dask threads, the session's LocalCluster).
"""

import numpy as np
import pytest

import metaanalysis as ma
from metaanalysis.errors import InputError
from metaanalysis.models.gosh import BLOCK


@pytest.fixture(scope="module")
def res17():
    rng = np.random.default_rng(5)
    v = rng.uniform(0.01, 0.2, 17)
    y = rng.normal(0.3, np.sqrt(v + 0.04))
    y[3] += 3.0  # one outlying study: a clear inclusion contrast
    return ma.pool(y, v, method="DL", labels=[f"S{i}" for i in range(17)])


@pytest.fixture(scope="module")
def res8():
    rng = np.random.default_rng(8)
    v = rng.uniform(0.01, 0.2, 8)
    return ma.pool(rng.normal(0.3, np.sqrt(v + 0.04)), v, method="REML",
                   labels=[f"T{i}" for i in range(8)])


@pytest.fixture(scope="module")
def res20():
    rng = np.random.default_rng(20)
    v = rng.uniform(0.01, 0.2, 20)
    return ma.pool(rng.normal(0.3, np.sqrt(v + 0.04)), v, method="DL")


@pytest.fixture(scope="module")
def kept(res17):
    return ma.gosh(res17, subsets=2**17, keep=True)  # 131,071 subsets: 2 blocks + 1 row


def test_summaries_equal_what_the_rows_give(kept):
    g, s, f = kept, kept.stats, kept.frame
    n = 2**17 - 1
    assert g.exhaustive and len(g) == n == s.n and s.counts.sum() == n
    assert g.n_subsets == n and n > BLOCK
    np.testing.assert_array_equal(s.contrasts["n_with"], np.full(17, 2**16))
    np.testing.assert_array_equal(s.counts_with.sum(axis=(1, 2)), g.incl.sum(axis=0))
    # histogram counts against numpy's histogram2d of the rows
    h, _, _ = np.histogram2d(f["estimate"], f["i2"], bins=(s.est_edges, s.i2_edges))
    np.testing.assert_array_equal(s.counts, h)
    j = 3
    hj, _, _ = np.histogram2d(f["estimate"][g.incl[:, j]], f["i2"][g.incl[:, j]],
                              bins=(s.est_edges, s.i2_edges))
    np.testing.assert_array_equal(s.density(j), hj)
    np.testing.assert_array_equal(s.density("S3", present=False), h - hj)
    for c in ("estimate", "i2", "tau2"):
        x = f[c].to_numpy()
        with_ = x[g.incl[:, j]].mean()
        without = x[~g.incl[:, j]].mean()
        assert s.contrasts[f"{c}_with"].iloc[j] == pytest.approx(with_, rel=1e-12)
        assert s.contrasts[f"{c}_without"].iloc[j] == pytest.approx(without, rel=1e-12)
        assert s.moments.loc[c, "mean"] == pytest.approx(x.mean(), rel=1e-12)
        assert s.moments.loc[c, "sd"] == pytest.approx(x.std(ddof=1), rel=1e-9)
    assert s.moments.loc["estimate", "max"] == f["estimate"].max()
    # the outlier drives the contrast, and the summary says so
    assert np.argmax(np.abs(s.contrasts["estimate_diff"].to_numpy())) == 3
    assert "Largest inclusion contrast: S3" in g.summary()
    # extremes: the 10 lowest / highest estimates and highest I² of all rows
    ext = s.extremes
    low = ext[ext["kind"] == "lowest estimate"]
    np.testing.assert_array_equal(low["estimate"], np.sort(f["estimate"])[:10])
    high = ext[ext["kind"] == "highest I²"]
    np.testing.assert_array_equal(high["i2"], np.sort(f["i2"])[::-1][:10])
    row = int(low["subset"].iloc[0])
    assert low["studies"].iloc[0] == ", ".join(np.array(g.labels)[g.incl[row]])
    assert abs(s.quantile(0.5) - f["estimate"].median()) < np.diff(s.est_edges)[0]


def test_same_summaries_wherever_the_blocks_run(res20, dask_client):
    pytest.importorskip("dask")
    n = BLOCK + 700  # random subsets: two blocks
    kw = dict(subsets=n, seed=9, keep=False)
    local = ma.gosh(res20, **kw)
    threads = ma.gosh(res20, scheduler="threads", blocks_per_task=1, **kw)
    cluster = ma.gosh(res20, client=dask_client, blocks_per_task=1, **kw)
    rows = ma.gosh(res20, subsets=n, seed=9, keep=True)
    assert local.frame is None and local.incl is None and len(local) == n
    with pytest.raises(InputError, match="not kept"):
        local.to_frame()
    for g in (threads, cluster, rows):
        a, b = g.stats, local.stats
        np.testing.assert_array_equal(a.counts_with, b.counts_with)
        assert a.contrasts.equals(b.contrasts) and a.moments.equals(b.moments)
        assert a.extremes.equals(b.extremes)
    assert local.summary() == cluster.summary()
    # the same random subsets whatever the engine chunk or the task grouping
    again = ma.gosh(res20, subsets=n, seed=9, keep=True, chunk=1000, scheduler="sync",
                    blocks_per_task=2)
    np.testing.assert_array_equal(again.incl, rows.incl)
    np.testing.assert_array_equal(again.frame["estimate"], rows.frame["estimate"])
    assert rows.incl.any(axis=1).all() and not rows.exhaustive
    other = ma.gosh(res20, subsets=500, seed=10, keep=True)
    assert not np.array_equal(other.incl, rows.incl[:500])


def test_gosh_plot_draws_the_density_of_a_summary_only_result(res8):
    pytest.importorskip("matplotlib")
    g = ma.gosh(res8, keep=False, bins=40)
    ax = ma.gosh_plot(g)
    (mesh,) = [a for a in ax.collections if a.get_gid() == "gosh-density"]
    assert np.asarray(mesh.get_array()).size == 40 * 40
    assert ax.get_xlim()[0] <= g.stats.est_edges[0] + 1e-12
    ax = ma.gosh_plot(g, highlight="T3")
    assert [a for a in ax.collections if a.get_gid() == "gosh-highlight"]
    assert ax.get_legend() is not None


def test_bad_arguments(res17):
    for kw in ({"bins": 0}, {"n_extreme": 0}, {"blocks_per_task": 0}):
        with pytest.raises(InputError, match=next(iter(kw))):
            ma.gosh(res17, **kw)
