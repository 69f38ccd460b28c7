"""GOSH (Olkin, Dahabreh & Trikalinos 2012) in blocks, with summaries kept as it goes.

The model of a fitted :class:`~metaanalysis.results.pool_result.PoolResult` is
refitted to subsets of its k studies through the engine's masked path
(:func:`metaanalysis.models.sensitivity.fit_masked`, ``outputs="core"``).  The
2^k − 1 subsets are never listed: they are cut into blocks of
:data:`BLOCK` subsets, numbered by the bits of their position (subset s holds
the studies of the binary digits of s + 1: combinatorial unranking, so block b
generates its own masks).  Random subsets (when 2^k − 1 exceeds ``subsets``)
are drawn per block from ``numpy.random.SeedSequence(seed).spawn``-style child
seeds keyed by the block number, so they do not depend on how blocks are
grouped or where they run.

Each block returns a summary, and summaries are merged: a 2-D histogram of
estimate against I² (also per study, over the subsets that contain it), the
number of subsets containing each study, sums of estimate, I² and τ² with
and without each study (inclusion contrasts), and the most extreme subsets.
Counts add exactly; the float sums of the blocks are added at the end with
``math.fsum`` (exactly rounded), so the summaries do not depend on the
scheduler, the number of workers or the grouping of blocks into tasks.
Per-subset rows are kept only when asked for or small (≤ 2^20 subsets).
Blocks run in this process, or through Dask (``client=``/``scheduler=``;
optional extra ``metaanalysis[dask]``) as tasks merged in a tree.

References
----------
Olkin I, Dahabreh IJ, Trikalinos TA (2012). GOSH - a graphical display of study
heterogeneity. *Research Synthesis Methods* 3:214-223.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from metaanalysis.errors import InputError
from metaanalysis.formatting import method_text, num, pct
from metaanalysis.frozen import FrameField, freeze_arrays
from metaanalysis.models.sensitivity import fit_masked, study_arrays
from metaanalysis.results.display import Display, Displayed, Lines

__all__ = ["BLOCK", "GoshResult", "GoshSummary", "gosh"]

#: subsets per block: the unit of enumeration, random draws, Dask work and partial sums
BLOCK = 2**16
#: per-subset rows are kept (``keep=None``) up to this many subsets
KEEP_ROWS = 2**20
_COLUMNS = ("estimate", "tau2", "i2", "h2", "q", "k")
_SUMMED = ("estimate", "i2", "tau2")  # inclusion contrasts and moments of these
_EXTREMES = (("lowest estimate", "estimate", False), ("highest estimate", "estimate", True),
             ("highest I²", "i2", True))


# ---------------------------------------------------------------------------
# what a block needs, and what it returns
# ---------------------------------------------------------------------------

@dataclass(frozen=True)
class _Spec:
    yi: np.ndarray
    vi: np.ndarray
    method: str
    test: str
    level: float
    n: int
    exhaustive: bool
    entropy: int
    chunk: int
    est_edges: np.ndarray
    i2_edges: np.ndarray
    n_extreme: int
    keep_rows: bool

    @property
    def k(self):
        return self.yi.size

    @property
    def n_blocks(self):
        return -(-self.n // BLOCK)


def _subset_masks(ids: np.ndarray, k: int) -> np.ndarray:
    """Boolean (n, k) inclusion matrix of subsets numbered by the bits of ``ids``."""
    by = np.ascontiguousarray(ids, dtype="<u8").view(np.uint8).reshape(-1, 8)
    return np.unpackbits(by, axis=1, count=k, bitorder="little").view(bool)


def _block_masks(spec: _Spec, b: int) -> np.ndarray:
    start, stop = b * BLOCK, min((b + 1) * BLOCK, spec.n)
    if spec.exhaustive:
        return _subset_masks(np.arange(start + 1, stop + 1, dtype=np.int64), spec.k)
    rng = np.random.default_rng(np.random.SeedSequence(spec.entropy, spawn_key=(b,)))
    inc = rng.random((stop - start, spec.k)) < 0.5
    empty = ~inc.any(axis=1)
    while empty.any():  # as metafor: an empty subset is drawn again
        inc[empty] = rng.random((int(empty.sum()), spec.k)) < 0.5
        empty = ~inc.any(axis=1)
    return inc


class _Res:  # the model choices fit_masked reads from a result
    def __init__(self, spec):
        self.method, self.test, self.level = spec.method, spec.test, spec.level


def _run_block(spec: _Spec, b: int) -> dict:
    """Fit block ``b`` (in engine chunks of ``spec.chunk``) and summarise it."""
    inc = _block_masks(spec, b)
    m, k = inc.shape
    cols = {c: np.empty(m) for c in _COLUMNS}
    conv = np.empty(m, dtype=bool)
    res = _Res(spec)
    for s in range(0, m, spec.chunk):
        e = min(s + spec.chunk, m)
        fits = fit_masked(res, spec.yi, spec.vi, inc[s:e], outputs="core")
        for c in _COLUMNS:
            cols[c][s:e] = fits[c]
        conv[s:e] = fits["converged"]
    ne, ni = spec.est_edges.size - 1, spec.i2_edges.size - 1
    ie = np.searchsorted(spec.est_edges, cols["estimate"], side="right") - 1
    ii = np.searchsorted(spec.i2_edges, cols["i2"], side="right") - 1
    flat = np.clip(ie, 0, ne - 1) * ni + np.clip(ii, 0, ni - 1)
    nb2 = ne * ni
    counts = np.bincount(flat, minlength=nb2).reshape(ne, ni)
    with_ = np.empty((k, ne, ni), dtype=np.intp)
    for j in range(k):
        with_[j] = np.bincount(flat.compress(inc[:, j]), minlength=nb2).reshape(ne, ni)
    x = np.empty((m, 2 * len(_SUMMED)))
    for i, c in enumerate(_SUMMED):
        x[:, 2 * i] = cols[c]
        x[:, 2 * i + 1] = cols[c] * cols[c]
    # totals, then per study (columns: study-major within each quantity)
    sums = list(x.sum(axis=0))
    per = np.einsum("si,sj->ji", inc.astype(float), x)  # (2 × quantities, k), no BLAS
    for i in range(len(_SUMMED)):
        sums += list(per[2 * i]) + list(per[2 * i + 1])
    pos = np.arange(b * BLOCK, b * BLOCK + m, dtype=np.int64)
    part = {
        "n": m, "counts": counts, "with": with_, "n_with": inc.sum(axis=0, dtype=np.int64),
        "not_converged": int(m - np.count_nonzero(conv)),
        "blocks": np.array([b]), "sums": np.array([sums]),
        "lo": {c: float(np.min(cols[c])) for c in ("estimate", "i2")},
        "hi": {c: float(np.max(cols[c])) for c in ("estimate", "i2")},
        "ext": _prune({"pos": pos, "incl": inc, **{c: cols[c] for c in _COLUMNS}},
                      spec.n_extreme),
        "rows": [({c: cols[c] for c in _COLUMNS}, inc)] if spec.keep_rows else [],
        "n_extreme": spec.n_extreme,
    }  # fmt: skip
    return part


def _prune(cand: dict, n_extreme: int) -> dict:
    """Keep the candidates among the ``n_extreme`` most extreme of any kind.

    Ties are broken by subset position, so the set kept is the same however
    the candidates were grouped (the merge is exactly associative)."""
    keep = np.zeros(cand["pos"].size, dtype=bool)
    for _, col, high in _EXTREMES:
        x = -cand[col] if high else cand[col]
        if x.size > n_extreme:  # a threshold in O(n), then sort the few at or below it
            near = np.flatnonzero(x <= np.partition(x, n_extreme - 1)[n_extreme - 1])
        else:
            near = np.arange(x.size)
        keep[near[np.lexsort((cand["pos"][near], x[near]))[:n_extreme]]] = True
    return {key: val[keep] for key, val in cand.items()}


def _merge(parts: list[dict]) -> dict:
    """Merge block summaries (associative and order-independent)."""
    first = parts[0]
    if len(parts) == 1:
        return first
    out = {
        "n": sum(p["n"] for p in parts),
        "counts": sum(p["counts"] for p in parts[1:]) + first["counts"],
        "with": sum(p["with"] for p in parts[1:]) + first["with"],
        "n_with": sum(p["n_with"] for p in parts[1:]) + first["n_with"],
        "not_converged": sum(p["not_converged"] for p in parts),
        "blocks": np.concatenate([p["blocks"] for p in parts]),
        "sums": np.concatenate([p["sums"] for p in parts]),
        "lo": {c: min(p["lo"][c] for p in parts) for c in first["lo"]},
        "hi": {c: max(p["hi"][c] for p in parts) for c in first["hi"]},
        "rows": [r for p in parts for r in p["rows"]],
        "n_extreme": first["n_extreme"],
    }  # fmt: skip
    cand = {key: np.concatenate([p["ext"][key] for p in parts]) for key in first["ext"]}
    out["ext"] = _prune(cand, first["n_extreme"])
    return out


def _run_blocks(spec: _Spec, b0: int, b1: int) -> dict:
    return _merge([_run_block(spec, b) for b in range(b0, b1)])


def _run_dask(spec, client, scheduler, blocks_per_task, fan_in=8):
    """Blocks as Dask tasks (``blocks_per_task`` blocks each), merged in a tree."""
    from metaanalysis.models.distributed import require_dask

    require_dask("gosh(client=/scheduler=)")
    import dask

    run, merge = dask.delayed(_run_blocks, pure=True), dask.delayed(_merge, pure=True)
    tasks = [run(spec, b, min(b + blocks_per_task, spec.n_blocks))
             for b in range(0, spec.n_blocks, blocks_per_task)]
    while len(tasks) > 1:
        tasks = [merge(tasks[i:i + fan_in]) for i in range(0, len(tasks), fan_in)]
    if client is not None:
        return client.compute(tasks[0]).result()
    return tasks[0].compute(scheduler=scheduler)


# ---------------------------------------------------------------------------
# results
# ---------------------------------------------------------------------------

@dataclass(frozen=True, eq=False)
class GoshSummary:
    """Summaries of every fitted subset, accumulated block by block.

    Attributes
    ----------
    n : int
        Number of subsets fitted.
    est_edges, i2_edges : ndarray
        Bin edges of the 2-D histogram (estimate: the range of the study
        effects, which holds every weighted mean; I²: 0–100 %).
    counts : ndarray of int, shape (n_est_bins, n_i2_bins)
        Number of subsets per (estimate, I²) bin.
    counts_with : ndarray of int, shape (k, n_est_bins, n_i2_bins)
        The same over the subsets that contain study i.
    contrasts : DataFrame
        One row per study: ``n_with`` (subsets containing it), and the mean
        ``estimate``, ``i2``, ``tau2`` over subsets with and without it
        (``*_with``, ``*_without``, ``*_diff`` = with − without).
    extremes : DataFrame
        The ``n_extreme`` subsets with the lowest and the highest estimate and
        the highest I²: ``kind, subset, estimate, tau2, i2, h2, q, k, studies``
        (``subset`` is the position in the enumeration).
    moments : DataFrame
        Mean and SD of estimate, I² and τ² over all subsets, min and max of
        estimate and I².
    not_converged : int
        Subsets whose τ² iteration did not converge (their last iterate is used).
    """

    n: int
    labels: tuple
    est_edges: np.ndarray
    i2_edges: np.ndarray
    counts: np.ndarray
    counts_with: np.ndarray
    contrasts: pd.DataFrame = FrameField(required=True)
    extremes: pd.DataFrame = FrameField(required=True)
    moments: pd.DataFrame = FrameField(required=True)
    not_converged: int = 0

    def __post_init__(self):  # read-only arrays, frames copied on access: immutable
        freeze_arrays(self)

    def density(self, study=None, present: bool = True) -> np.ndarray:
        """Counts per (estimate, I²) bin, over all subsets or those with/without ``study``."""
        if study is None:
            return self.counts
        j = _study_index(study, self.labels, "study")
        return self.counts_with[j] if present else self.counts - self.counts_with[j]

    def quantile(self, q: float, what: str = "estimate") -> float:
        """Approximate quantile of ``"estimate"`` or ``"i2"`` (linear within a histogram bin)."""
        axis, edges = (1, self.est_edges) if what == "estimate" else (0, self.i2_edges)
        c = np.cumsum(self.counts.sum(axis=axis))
        return float(np.interp(q * c[-1], np.concatenate([[0], c]), edges))


def _study_index(study, labels, name):
    if isinstance(study, str):
        if study not in labels:
            raise InputError(f"{name}: got {study!r}; expected one of {list(labels)}")
        return list(labels).index(study)
    j = int(study)
    if not 0 <= j < len(labels):
        raise InputError(f"{name}: got {study!r}; expected 0..{len(labels) - 1}")
    return j


def _finish(spec: _Spec, part: dict, labels) -> GoshSummary:
    order = np.argsort(part["blocks"])
    sums = part["sums"][order]
    tot = np.array([math.fsum(sums[:, j]) for j in range(sums.shape[1])])
    n, k = part["n"], spec.k
    nw = part["n_with"].astype(float)
    contrasts = {"n_with": part["n_with"]}
    moments = {}
    with np.errstate(divide="ignore", invalid="ignore"):
        for i, c in enumerate(_SUMMED):
            s, ss = tot[2 * i], tot[2 * i + 1]
            mean = s / n
            var = max(ss / n - mean * mean, 0.0) * n / max(n - 1, 1)
            moments[c] = {"mean": mean, "sd": math.sqrt(var)}
            base = 2 * len(_SUMMED) + 2 * k * i
            sw = tot[base:base + k]
            contrasts[f"{c}_with"] = sw / nw
            contrasts[f"{c}_without"] = (s - sw) / (n - nw)
            contrasts[f"{c}_diff"] = contrasts[f"{c}_with"] - contrasts[f"{c}_without"]
    for c in ("estimate", "i2"):
        moments[c].update(min=part["lo"][c], max=part["hi"][c])
    ext = part["ext"]
    rows = []
    for kind, col, high in _EXTREMES:
        x = -ext[col] if high else ext[col]
        for r in np.lexsort((ext["pos"], x))[:spec.n_extreme]:
            rows.append({"kind": kind, "subset": int(ext["pos"][r]),
                         **{c: float(ext[c][r]) for c in _COLUMNS},
                         "studies": ", ".join(np.asarray(labels)[ext["incl"][r]])})
    extremes = pd.DataFrame(rows)
    if len(extremes):
        extremes["k"] = extremes["k"].astype(int)
    return GoshSummary(
        n=n, labels=tuple(labels), est_edges=spec.est_edges, i2_edges=spec.i2_edges,
        counts=part["counts"], counts_with=part["with"],
        contrasts=pd.DataFrame(contrasts, index=pd.Index(labels, name="study")),
        extremes=extremes, moments=pd.DataFrame(moments).T, not_converged=part["not_converged"],
    )  # fmt: skip


@dataclass(frozen=True, eq=False, repr=False)
class GoshResult(Displayed):
    """Fits to many subsets of the studies (Olkin et al. 2012).

    Attributes
    ----------
    frame : DataFrame or None
        One row per subset: ``estimate, tau2, i2, h2, q, k`` (None when the
        rows were not kept: see ``stats``).
    incl : ndarray of bool, shape (n_subsets, k), or None
        ``incl[s, i]`` is True when study *i* is in subset *s*.
    method, test : str
        Model refitted to every subset (those of the input result).
    exhaustive : bool
        True when every one of the 2^k − 1 non-empty subsets was fitted.
    labels : tuple of str
        Study labels (columns of ``incl``).
    stats : GoshSummary
        Histograms, inclusion contrasts and extreme subsets of all fitted subsets.
    n_subsets : int
        Number of subsets fitted.
    """

    frame: pd.DataFrame | None = FrameField(required=True)
    incl: np.ndarray | None = None
    method: str = ""
    test: str = "z"
    exhaustive: bool = True
    labels: tuple = field(default=())
    stats: GoshSummary | None = None
    n_subsets: int = 0

    def __post_init__(self):
        freeze_arrays(self)

    def __len__(self) -> int:
        return self.n_subsets if self.frame is None else len(self.frame)

    def _frame(self) -> pd.DataFrame:
        if self.frame is None:
            raise InputError(f"to_frame: the {self.n_subsets} per-subset rows were not kept "
                             "(gosh(..., keep=True) keeps them); the summaries are in .stats")
        frame = FrameField.peek(self, "frame")
        inc = pd.DataFrame(self.incl, columns=list(self.labels), index=frame.index)
        return pd.concat([frame, inc], axis=1)

    def to_frame(self) -> pd.DataFrame:
        """The per-subset results with one boolean column per study appended
        (``attrs["description"]``: what was fitted)."""
        return super().to_frame()

    def _display(self) -> Display:
        k = len(self.labels)
        kind = "all" if self.exhaustive else "random"
        methods = [("τ² estimator", method_text(self.method)),
                   ("Subsets", f"every non-empty subset (2^{k} − 1)" if self.exhaustive
                    else "random, each study included with probability 1/2")]
        f = FrameField.peek(self, "frame")
        if f is not None:
            est = (f"median {num(np.nanmedian(f['estimate']))}, "
                   f"range [{num(np.nanmin(f['estimate']))}, {num(np.nanmax(f['estimate']))}]")
            het = (f"median {pct(np.nanmedian(f['i2']))}, "
                   f"range [{pct(np.nanmin(f['i2']))}, {pct(np.nanmax(f['i2']))}]")
        else:
            s, mo = self.stats, self.stats.moments
            est = (f"median ≈ {num(s.quantile(0.5))} (histogram), range "
                   f"[{num(mo.loc['estimate', 'min'])}, {num(mo.loc['estimate', 'max'])}]")
            het = (f"median ≈ {pct(s.quantile(0.5, 'i2'))} (histogram), range "
                   f"[{pct(mo.loc['i2', 'min'])}, {pct(mo.loc['i2', 'max'])}]")
        rows = [("Estimate", est), ("I²", het)]
        if self.stats is not None and k > 1:
            c = FrameField.peek(self.stats, "contrasts")
            j = int(np.nanargmax(np.abs(c["estimate_diff"].to_numpy())))
            rows.append(("Largest inclusion contrast",
                         f"{c.index[j]} (mean estimate {num(c['estimate_with'].iloc[j])} with, "
                         f"{num(c['estimate_without'].iloc[j])} without)"))
        if self.stats is not None and self.stats.not_converged:
            rows.append(("Not converged", f"{self.stats.not_converged} subsets (last iterate used)"))
        return Display(f"GOSH: {len(self)} {kind} subsets of k = {k} studies", tuple(methods),
                       (Lines(tuple(rows)),))


# ---------------------------------------------------------------------------
# the public function
# ---------------------------------------------------------------------------

def _positive_int(value, name):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise InputError(f"{name}: expected a positive integer; got {value!r}")
    return int(value)


def gosh(res, subsets: int | None = None, *, max_exhaustive: int = 2 ** 20, seed=None,
         chunk: int = 2 ** 13, keep: bool | None = None, bins: int = 100, n_extreme: int = 10,
         client=None, scheduler: str | None = None, blocks_per_task: int = 4) -> GoshResult:
    """GOSH data: the model refitted to subsets of the studies.

    As metafor's ``gosh()``: subsets of every size 1..k.  When the number of
    non-empty subsets 2^k − 1 is at most ``subsets`` (default
    ``max_exhaustive``), all of them are fitted; otherwise ``subsets`` random
    subsets, each study included with probability 1/2 (empty draws redrawn).
    Subsets are enumerated and fitted in blocks of :data:`BLOCK` (never all in
    memory) through the engine with the τ² estimator and test of ``res``;
    summaries (:class:`GoshSummary`) are accumulated as the blocks finish.

    Parameters
    ----------
    res : PoolResult
        A fitted model from :func:`metaanalysis.pool`.
    subsets : int, optional
        Number of subsets to fit when not fitting all of them (metafor's
        ``subsets``); ``subsets=2**k - 1`` or more fits all of them.
    max_exhaustive : int
        Default for ``subsets``: fit all subsets when 2^k − 1 ≤ this.
    seed : int or numpy Generator, optional
        For the random subsets (the same seed gives the same subsets however
        the blocks are run).
    chunk : int
        Rows per engine call within a block (memory: about 40 bytes × k ×
        chunk; the default keeps the (chunk, k) arrays of k ≈ 16 within a 2 MB
        L2 cache).
    keep : bool, optional
        Keep the per-subset rows (``frame``, ``incl``).  Default: when at most
        2^20 subsets are fitted.  With ``keep=False`` memory does not grow
        with the number of subsets (k = 25: 33.5 million subsets).
    bins : int
        Bins per axis of the 2-D histograms of estimate against I².
    n_extreme : int
        Number of subsets kept at each extreme (lowest and highest estimate,
        highest I²).
    client : dask.distributed.Client, optional
        Run the blocks on this cluster (optional extra ``metaanalysis[dask]``);
        only the block summaries travel back.
    scheduler : str, optional
        Dask scheduler instead (``"threads"``, ``"processes"``, ``"sync"``).
    blocks_per_task : int
        Blocks of :data:`BLOCK` subsets per Dask task.

    Returns
    -------
    GoshResult
        ``.stats`` (histograms, inclusion contrasts, extremes) and, when kept,
        ``.frame`` (estimate, tau2, i2, h2, q, k per subset) and ``.incl``.
        Exhaustive subsets are numbered by the bits of 1..2^k − 1 (study i
        included when bit i is set).

    Examples
    --------
    >>> import metaanalysis as ma
    >>> res = ma.pool([0.1, 0.3, 0.35, 0.2], [0.01, 0.02, 0.015, 0.01], method="DL")
    >>> g = ma.gosh(res)
    >>> len(g), g.incl.shape, int(g.stats.counts.sum())
    (15, (15, 4), 15)
    >>> g.stats.contrasts["n_with"].tolist()
    [8, 8, 8, 8]
    """
    yi, vi, labels = study_arrays(res)
    k = yi.size
    n_limit = _positive_int(max_exhaustive if subsets is None else subsets, "subsets")
    chunk = _positive_int(chunk, "chunk")
    bins = _positive_int(bins, "bins")
    n_extreme = _positive_int(n_extreme, "n_extreme")
    blocks_per_task = _positive_int(blocks_per_task, "blocks_per_task")
    exhaustive = k <= 62 and (2 ** k - 1) <= n_limit
    n = 2 ** k - 1 if exhaustive else n_limit
    if keep is None:
        keep = n <= KEEP_ROWS
    if isinstance(seed, np.random.Generator):
        entropy = int(seed.integers(2**63))
    else:
        entropy = np.random.SeedSequence(seed).entropy
    lo, hi = float(yi.min()), float(yi.max())  # every subset estimate is a weighted mean
    pad = max(hi - lo, abs(hi), 1.0) * 1e-9
    spec = _Spec(yi=yi, vi=vi, method=res.method, test=getattr(res, "test", "z"),
                 level=getattr(res, "level", 0.95), n=n, exhaustive=exhaustive,
                 entropy=entropy, chunk=chunk,
                 est_edges=np.linspace(lo - pad, hi + pad, bins + 1),
                 i2_edges=np.linspace(0.0, 100.0, bins + 1), n_extreme=n_extreme,
                 keep_rows=bool(keep))  # fmt: skip
    if client is not None or scheduler is not None:
        part = _run_dask(spec, client, scheduler, blocks_per_task)
    else:
        part = None
        for b in range(spec.n_blocks):  # one block summary in memory at a time
            one = _run_block(spec, b)
            part = one if part is None else _merge([part, one])
    frame = incl = None
    if keep:
        rows = part["rows"]
        frame = pd.DataFrame({c: np.concatenate([r[0][c] for r in rows]) for c in _COLUMNS})
        frame["k"] = frame["k"].astype(int)
        frame.attrs.update(analysis="GOSH", method=res.method, test=spec.test)
        incl = np.concatenate([r[1] for r in rows])
    return GoshResult(frame=frame, incl=incl, method=res.method, test=spec.test,
                      exhaustive=exhaustive, labels=tuple(labels),
                      stats=_finish(spec, part, labels), n_subsets=n)
