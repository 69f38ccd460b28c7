"""pool_many through Dask (metaanalysis.models.distributed, distributed_regression).

The claim tested: the Dask path maps the one engine over blocks of rows, and
the engine gives a row the same bits whatever the other rows of its batch
(tests/test_batch_invariance.py), so one unchunked in-process call, the sync
(in-process) scheduler, the threaded scheduler and a distributed cluster give
results identical to the last bit (``np.array_equal`` on every output array),
for every estimator and for batch meta-regression.  The cluster is the
2-worker LocalCluster of conftest.py (one per test module).
"""

import sys

import numpy as np
import pytest

import metaanalysis as ma
from metaanalysis import engine
from metaanalysis.errors import InputError, PerformanceWarning
from metaanalysis.models import distributed
from metaanalysis.models.regression import BatchRegressionResult

da = pytest.importorskip("dask.array")

pytestmark = pytest.mark.filterwarnings("ignore::metaanalysis.errors.PerformanceWarning")

FIELDS = ("k", "estimate", "se", "stat", "p", "ci_lb", "ci_ub", "pi_lb", "pi_ub", "tau2",
          "se_tau2", "tau2_ci_lb", "tau2_ci_ub", "i2", "i2_ci_lb", "i2_ci_ub", "h2", "q",
          "q_df", "q_p", "df", "converged", "weights")

REG_FIELDS = ("k", "coef", "coef_se", "coef_stat", "coef_p", "coef_ci_lb", "coef_ci_ub", "vcov",
              "qm", "qm_df", "qm_df2", "qm_p", "tau2", "se_tau2", "tau2_ci_lb", "tau2_ci_ub", "i2",
              "i2_ci_lb", "i2_ci_ub", "h2", "h2_ci_lb", "h2_ci_ub", "q", "q_df", "q_p", "df",
              "converged")


@pytest.fixture(scope="module")
def batch():
    rng = np.random.default_rng(17)
    B, k = 1200, 6
    v = rng.uniform(0.01, 0.4, (B, k))
    y = rng.normal(0.2, np.sqrt(v + rng.choice([0.0, 0.05, 0.3], (B, 1))))
    absent = rng.random((B, k)) < 0.1  # absent studies (NaN in yi and vi): rows of different k
    y[absent] = v[absent] = np.nan
    return y, v


def _same(a, b):
    for f in FIELDS:
        np.testing.assert_array_equal(getattr(a, f), getattr(b, f), err_msg=f)


def test_sync_threads_and_cluster_identical(batch, dask_client):
    y, v = batch
    kw = dict(method="REML", test="knha", qprofile=True, chunks=300)
    sync = ma.pool_many(y, v, scheduler="sync", **kw)
    threads = ma.pool_many(y, v, scheduler="threads", **kw)
    cluster = ma.pool_many(y, v, client=dask_client, **kw)
    assert isinstance(sync, ma.BatchResult) and len(sync) == 1200
    _same(sync, threads)
    _same(sync, cluster)
    _same(sync, ma.pool_many(y, v, method="REML", test="knha", qprofile=True))  # unchunked


@pytest.mark.parametrize("method", engine.METHODS)
def test_every_estimator_identical_in_process_threaded_and_distributed(batch, dask_client,
                                                                       method):
    y, v = batch[0][:230], batch[1][:230]
    test = {"ML": "adhoc", "PM": "z"}.get(method, "knha")
    kw = dict(method=method, test=test, qprofile=method != "DL")
    whole = ma.pool_many(y, v, **kw)
    _same(ma.pool_many(y, v, chunks=70, scheduler="threads", **kw), whole)  # blocks 70, ..., 20
    # two blocks (150, 80), one per cluster worker: the cluster's cost is per task (about
    # 25 small tasks per block), so more blocks test nothing more and take longer
    _same(ma.pool_many(y, v, chunks=150, client=dask_client, **kw), whole)


@pytest.fixture(scope="module")
def moderators(batch):
    rng = np.random.default_rng(5)
    B, k = batch[0].shape
    return rng.normal(size=(k, 2)), rng.normal(size=(B, k, 1))


def _same_reg(a, b):
    assert a.names == b.names
    for f in REG_FIELDS:
        np.testing.assert_array_equal(getattr(a, f), getattr(b, f), err_msg=f, strict=True)


def test_meta_regression_identical_on_every_path(batch, moderators, dask_client):
    y, v = batch[0][:400], batch[1][:400]
    shared, per_row = moderators[0], moderators[1][:400]
    for mods, kw in ((shared, dict(method="REML", test="knha", qprofile=True)),
                     (per_row, dict(method="PM", test="z", btt=[1]))):
        whole = ma.pool_many(y, v, mods=mods, **kw)
        threads = ma.pool_many(y, v, mods=mods, chunks=150, scheduler="threads", **kw)
        assert isinstance(threads, BatchRegressionResult)
        _same_reg(threads, whole)
        _same_reg(ma.pool_many(y, v, mods=mods, chunks=130, client=dask_client, **kw), whole)


def test_meta_regression_on_dask_arrays_is_lazy(batch, moderators, dask_client):
    from metaanalysis.models.distributed_regression import DaskBatchRegressionResult

    y, v = batch
    yd, vd = da.from_array(y, chunks=(500, 6)), da.from_array(v, chunks=(500, 6))
    md = da.from_array(moderators[1], chunks=(300, 6, 1))  # re-chunked with the rows
    lazy = ma.pool_many(yd, vd, mods=md, method="DL", test="knha")
    assert isinstance(lazy, DaskBatchRegressionResult)
    assert lazy.names == ("intrcpt", "mod") and lazy.nblocks == 3
    assert isinstance(lazy.coef, da.Array) and lazy.coef.chunks == ((500, 500, 200), (2,))
    assert lazy.vcov.shape == (1200, 2, 2) and "lazy" in lazy.summary()
    assert "intrcpt, mod" in lazy.summary()
    res = lazy.compute()
    _same_reg(res, ma.pool_many(y, v, mods=moderators[1], method="DL", test="knha"))
    kept = lazy.persist()
    np.testing.assert_array_equal(kept.qm_p.compute(), res.qm_p)
    frame = ma.pool_many(yd, vd, mods=moderators[0], method="DL", client=dask_client).to_frame()
    assert frame.shape[0] == 1200 and "estimate[mod1]" in frame.columns


def test_meta_regression_bad_arguments_on_the_dask_path(batch, moderators):
    y, v = batch
    with pytest.raises(InputError, match="btt"):
        ma.pool_many(y, v, mods=moderators[0], btt=[5], chunks=600)
    with pytest.raises(InputError, match="mods"):
        ma.pool_many(y, v, mods=moderators[1][:10], chunks=600)
    with pytest.raises(InputError, match="mods"):
        ma.pool_many(da.from_array(y), da.from_array(v), mods=da.zeros((5, 6, 1)))
    with pytest.raises(InputError, match="collinear"):
        ma.pool_many(y, v, mods=np.ones(6), chunks=600)


def test_dask_input_is_lazy_until_computed(batch, dask_client):
    y, v = batch
    yd, vd = da.from_array(y, chunks=(500, 3)), da.from_array(v, chunks=(500, 6))
    lazy = ma.pool_many(yd, vd, method="DL")
    assert isinstance(lazy, distributed.DaskBatchResult)
    assert isinstance(lazy.tau2, da.Array) and lazy.tau2.chunks == ((500, 500, 200),)
    assert lazy.weights.shape == (1200, 6) and lazy.nblocks == 3 and len(lazy) == 1200
    assert "lazy" in lazy.summary() and "DL" in repr(lazy)
    res = lazy.compute(weights=False)
    assert res.weights is None
    np.testing.assert_array_equal(res.tau2, ma.pool_many(y, v, method="DL").tau2)
    # the default client (the module's cluster) runs persist; the result stays lazy
    kept = lazy.persist()
    on = ma.pool_many(yd, vd, method="DL", client=dask_client)
    assert "client inproc://" in on.summary()
    np.testing.assert_array_equal(kept.estimate.compute(), res.estimate)
    assert ma.pool_many(yd, vd, method="DL", compute=True).to_frame().shape[0] == 1200
    assert lazy.to_frame()["tau2"].to_numpy().tolist() == res.tau2.tolist()


def test_chunk_size_warnings_name_the_recommended_size():
    y = da.zeros((50_000, 10), chunks=(1000, 10))
    with pytest.warns(PerformanceWarning, match=r"too small.*100000 rows"):
        ma.pool_many(y, y + 1, compute=False)
    big = da.zeros((2**22, 8), chunks=(2**22, 8))  # 256 MB per block, never computed
    with pytest.warns(PerformanceWarning, match=r"too large.*125000 rows"):
        ma.pool_many(big, big + 1, compute=False)


def test_bad_arguments(batch):
    y, v = batch
    with pytest.raises(InputError, match="chunks"):
        ma.pool_many(y, v, chunks=0)
    with pytest.raises(InputError, match="scheduler"):
        ma.pool_many(y, v, scheduler="gpu")
    with pytest.raises(InputError, match="differ"):
        ma.pool_many(y, v[:, :4], chunks=500)
    with pytest.raises(InputError, match="method"):
        ma.pool_many(y, v, method="XX", chunks=500)
    with pytest.raises(InputError, match="2-D"):
        ma.pool_many(y[0], v[0], chunks=500)


def test_clear_error_without_dask(monkeypatch, batch):
    y, v = batch
    monkeypatch.setitem(sys.modules, "dask.array", None)  # import dask.array fails
    with pytest.raises(ImportError, match=r'pip install "metaanalysis\[dask\]"') as err:
        ma.pool_many(y, v, chunks=500)
    assert isinstance(err.value, ma.MetaAnalysisError)
    res = ma.pool([0.1, 0.3, 0.2], [0.1, 0.1, 0.2], method="DL")
    with pytest.raises(ImportError, match=r"gosh\(client=/scheduler=\) needs Dask"):
        ma.gosh(res, scheduler="threads")
    with pytest.raises(ImportError, match=r"simulate\(client=/scheduler=\) needs Dask"):
        ma.simulate(k=3, tau2=0.1, n_rep=10, scheduler="threads")
    assert len(ma.gosh(res, keep=False)) == 7  # without Dask everything else runs
