"""The barrier alone: `exact_dedup` then `minhash_dedup` (defaults) over synthetic signature files of N
records, as the parallel pass would write them; wall time, CPU time and peak RSS of the deciding process.

The signatures are made with numpy rather than from text, so that 10M or 30M records take a minute to
make, not an hour of MinHash: 5% of the records are exact copies of an earlier one (every band, the
answer and the exact hash shared), 10% near copies (10 of 14 bands shared, and the answer; 1 in 20 of
them another answer), 15% light answers of their own to one of 40,000 prompts (12 of 14 bands of the
prompt shared: groups that grow with the corpus, where the answer check cuts most links, as the prompts
bench_scale.py draws from 40,000 sentences make them), 40% of the rest have a light answer (`checked`),
and `best`'s ranks carry an answer length.
Each shard is one task's file, in the columns `PhaseWriters` writes.

    python benchmarks/bench_barrier.py --records 10000000 [--tasks 4] [--memory 256M] [--dir /tmp/x]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import yaml

BANDS = 14
BATCH = 20_000
PROMPTS = 40_000  # as many as the sentences bench_scale.py draws prompts from


def mix(values: np.ndarray, salt: int) -> np.ndarray:
    """splitmix64 of (value, salt): a random-looking 64-bit word per value, the same for the same value."""
    from frcorpus.stages.dedup.minhash import splitmix64_finish

    with np.errstate(over="ignore"):
        h = values.astype(np.uint64) * np.uint64(0x9E3779B97F4A7C15) + np.uint64(salt * 0xBF58476D1CE4E5B9 % 2**64)
        return splitmix64_finish(h)


def make_plan(folder: Path, tasks: int):
    from frcorpus.config import load_pipeline
    from frcorpus.engine.plan import build_plan

    if not (folder / "in.jsonl").exists():  # its mtime is part of the run key: the decide step finds the same folder
        (folder / "in.jsonl").write_text('{"messages": [{"role": "user", "content": "x"}]}\n')
    cfg = {
        "name": "barrier",
        "version": "1.0.0",
        "sources": [{"name": "gen", "path": str(folder / "in.jsonl"), "format": "messages"}],
        "stages": [{"type": "exact_dedup"}, {"type": "minhash_dedup"}],
        "executor": {"type": "local", "tasks": tasks, "workers": 1},
        "output": {"dir": str(folder / "out")},
    }
    (folder / "pipeline.yaml").write_text(yaml.safe_dump(cfg))
    return build_plan(load_pipeline(folder / "pipeline.yaml"))


def make_signatures(folder: Path, records: int, tasks: int) -> None:
    """Shard s holds records s, s + tasks, s + 2 tasks... (global index i), each derived from its base: itself
    for an original, an earlier record's base for a copy."""
    from frcorpus.engine.steps import PhaseWriters
    from frcorpus.stages.dedup import ExactDedup, MinhashDedup

    plan = make_plan(folder, tasks)
    stages = [ExactDedup(ExactDedup.Config(type="exact_dedup"), "exact_dedup")]
    stages.append(MinhashDedup(MinhashDedup.Config(type="minhash_dedup"), "minhash_dedup"))
    rng = np.random.default_rng(0)
    roll = rng.random(records)
    earlier = (rng.random(records) * np.arange(records)).astype(np.int64)
    base = np.arange(records)
    copied = roll < 0.15
    base[copied] = earlier[copied]
    while True:  # an earlier record may be a copy itself: follow to its original
        deeper = base[base]
        if np.array_equal(deeper, base):
            break
        base = deeper
    near = (roll >= 0.05) & (roll < 0.15)
    other_answer = near & (rng.random(records) < 0.05)
    asked = (roll >= 0.15) & (roll < 0.30)  # another answer to one of PROMPTS prompts
    prompt = rng.integers(0, PROMPTS, records)
    del roll, earlier, copied
    for shard in range(tasks):
        writers = PhaseWriters(plan.paths, 0, shard, plan.annotation_fields(), plan.config.output, False, None, stages)
        for first in range(shard, records, BATCH * tasks):
            i = np.arange(first, min(first + BATCH * tasks, records), tasks)
            b, n = base[i], len(i)
            digests = np.stack([mix(b, band) for band in range(BANDS)], axis=1)
            digests[near[i], :4] = np.stack([mix(i[near[i]], 100 + band) for band in range(4)], axis=1)
            on_prompt = asked[i]  # the prompt's bands but two, and an answer of its own, light
            digests[on_prompt] = np.stack([mix(prompt[i][on_prompt], 600 + band) for band in range(BANDS)], axis=1)
            digests[on_prompt, :2] = np.stack([mix(i[on_prompt], 700 + band) for band in range(2)], axis=1)
            answer = np.where(other_answer[i], i + records, b)
            check = np.stack([mix(answer, 200 + band) for band in range(BANDS)], axis=1)
            exact = np.where(near[i], i + 2 * records, b)
            words = np.stack([mix(exact, 300), mix(exact, 301)], axis=1)
            length = (mix(answer, 400) % np.uint64(2000)).astype(np.float64)
            ranks = np.column_stack([np.full(n, np.nan), np.full(n, np.nan), length])
            rank_list = pa.ListArray.from_arrays(
                pa.array(np.arange(n + 1, dtype=np.int32) * 3), pa.array(ranks.reshape(-1), from_pandas=True)
            )
            bands = pa.FixedSizeListArray.from_arrays(pa.array(digests.reshape(-1), pa.uint64()), BANDS)
            checks = pa.FixedSizeListArray.from_arrays(pa.array(check.reshape(-1), pa.uint64()), BANDS)
            table = pa.table(
                {
                    "id": pa.array([f"r{k}" for k in i.tolist()]),
                    "source": pa.array(["gen"] * n),
                    "_order": pa.ListArray.from_arrays(
                        pa.array(np.arange(n + 1, dtype=np.int32) * 3),
                        pa.array(np.column_stack([np.zeros(n, np.int64), np.zeros(n, np.int64), i]).reshape(-1)),
                    ),
                    "sig0": pa.StructArray.from_arrays(
                        [
                            pa.FixedSizeBinaryArray.from_buffers(
                                pa.binary(16), n, [None, pa.py_buffer(words.tobytes())]
                            ),
                            rank_list,
                        ],
                        fields=list(stages[0].signature_type),
                    ),
                    "sig1": pa.StructArray.from_arrays(
                        [bands, checks, pa.array(((mix(b, 500) % np.uint64(10)) < 4) | on_prompt), rank_list],
                        fields=list(stages[1].signature_type),
                    ),
                }
            )
            writers.sigs_out.write_table(_flat(table, writers.sigs_schema))
            writers.rows += n
        writers.close()


def _flat(table: pa.Table, schema: pa.Schema) -> pa.Table:
    columns = [table["id"], table["source"], table["_order"]]
    for name in ("sig0", "sig1"):
        columns += table[name].combine_chunks().flatten()
    return pa.Table.from_arrays(columns, schema=schema)


def traced(owner, name: str) -> None:
    """Print the time and this process's RSS when `owner.name` starts and ends (where the memory goes)."""
    import functools
    import inspect

    import psutil

    inner = getattr(owner, name)
    me = psutil.Process()

    def say(what: str) -> None:
        print(f"{time.perf_counter() - T0:7.1f} s {me.memory_info().rss >> 20:6d} MiB  {name} {what}", flush=True)

    if inspect.isgeneratorfunction(inner):

        @functools.wraps(inner)
        def wrapper(*args, **kwargs):
            say("starts")
            yield from inner(*args, **kwargs)
            say("ends")
    else:

        @functools.wraps(inner)
        def wrapper(*args, **kwargs):
            say("starts")
            try:
                return inner(*args, **kwargs)
            finally:
                say("ends")

    setattr(owner, name, staticmethod(wrapper) if isinstance(owner.__dict__.get(name), staticmethod) else wrapper)


T0 = time.perf_counter()


def decide(folder: Path, tasks: int) -> None:
    from frcorpus.engine import barrier, shard_scan
    from frcorpus.engine.barrier import Decide
    from frcorpus.stages.dedup import clusters, exact, lsh, minhash

    traced(shard_scan.ShardFiles, "__init__")
    traced(exact.ExactDedup, "decide_scan")
    traced(minhash.MinhashDedup, "decide_scan")
    for name in ("band_partitions", "chain_pairs", "checked_pairs"):
        traced(lsh, name)
    minhash.band_partitions, minhash.chain_pairs, minhash.checked_pairs = (
        lsh.band_partitions,
        lsh.chain_pairs,
        lsh.checked_pairs,
    )
    traced(clusters, "cluster_rejections")
    minhash.cluster_rejections = clusters.cluster_rejections
    traced(barrier.DecisionSpool, "write")
    plan = make_plan(folder, tasks)
    start = time.perf_counter()
    list(Decide(plan, plan.phases[0]).run(None))
    stats = (plan.paths.barrier(0) / "stats.json").read_text()
    print(f"decided in {time.perf_counter() - start:.1f} s: {stats}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=10_000_000)
    parser.add_argument("--tasks", type=int, default=4)
    parser.add_argument("--memory", default=None, help="FRCORPUS_BARRIER_MEMORY for the run (default: its own)")
    parser.add_argument("--dir", type=Path, default=None, help="where the signatures go (default: a temp folder)")
    parser.add_argument("--step", choices=["make", "decide"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.step == "make":
        make_signatures(args.dir, args.records, args.tasks)
        return
    if args.step == "decide":
        decide(args.dir, args.tasks)
        return
    from bench_scale import measured

    folder = args.dir or Path(tempfile.mkdtemp(prefix="bench_barrier_"))
    folder.mkdir(parents=True, exist_ok=True)
    try:
        env = dict(os.environ)
        if args.memory:
            env["FRCORPUS_BARRIER_MEMORY"] = args.memory
        common = [sys.executable, __file__, "--dir", str(folder), "--records", str(args.records)]
        common += ["--tasks", str(args.tasks)]
        start = time.perf_counter()
        subprocess.run([*common, "--step", "make"], check=True, env=env)
        print(f"{args.records} records' signatures made in {time.perf_counter() - start:.0f} s")
        seconds, cpu, rss, _, _ = measured([*common, "--step", "decide"], env, folder / "decide.log", 0)
        print("\n".join(line[:200] for line in (folder / "decide.log").read_text().splitlines()[:-3]))
        print(f"barrier: {seconds:.1f} s ({cpu:.0f} s of CPU), peak RSS {rss / 2**30:.2f} GiB")
        print((folder / "decide.log").read_text().splitlines()[-1][:4000])
    finally:
        if args.dir is None:
            shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
