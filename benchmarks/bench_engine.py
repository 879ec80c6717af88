"""Engine overhead: frcorpus read -> normalize -> exact_dedup -> write against plain datatrove.

Generates N conversations (default 100,000; 10% exact duplicates, 1-3 exchanges each) as JSONL
shards, then, in this process and on the same files:
  baseline: datatrove JsonlReader -> ParquetWriter (messages kept as a list of structs)
  frcorpus: the same read and write plus normalize and exact_dedup, with frcorpus's accounting
Both on datatrove's LocalPipelineExecutor with the same tasks and workers, interleaved run after run.
Prints records/s, peak RSS (this process and its workers, sampled) and the time ratio
frcorpus / datatrove, best to best and the median over run pairs (goal: < 1.25).

    python benchmarks/bench_engine.py [--records 100000] [--tasks 4] [--workers 2]
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import statistics
import tempfile
import threading
import time
from pathlib import Path

import psutil
import yaml

WORDS = (
    "la maison le chat une réponse question comment pourquoi faire données modèle langue français "
    "exemple voici simple rapide important toujours jamais peut-être cependant ainsi donc ensuite"
).split()


def sentence(rng: random.Random, n: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(n)).capitalize() + "."


def generate(folder: Path, records: int, shards: int, seed: int = 0) -> None:
    rng = random.Random(seed)
    folder.mkdir(parents=True)
    handles = [open(folder / f"part{i:03d}.jsonl", "w", encoding="utf-8") for i in range(shards)]
    pool: list[list[dict]] = []
    for i in range(records):
        if pool and rng.random() < 0.10:
            messages = rng.choice(pool)  # an exact duplicate
        else:
            messages = []
            for _ in range(rng.randint(1, 3)):
                messages.append({"role": "user", "content": sentence(rng, rng.randint(8, 30))})
                messages.append(
                    {
                        "role": "assistant",
                        "content": " ".join(sentence(rng, rng.randint(10, 25)) for _ in range(rng.randint(2, 8))),
                    }
                )
            if len(pool) < 5000:
                pool.append(messages)
        handles[i % shards].write(json.dumps({"id": f"r{i}", "messages": messages}, ensure_ascii=False) + "\n")
    for h in handles:
        h.close()


class PeakRSS:
    """Samples the RSS of this process and its children every 20 ms."""

    def __enter__(self):
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def _run(self):
        me = psutil.Process()
        while not self._stop.wait(0.02):
            total = me.memory_info().rss
            for child in me.children(recursive=True):
                try:
                    total += child.memory_info().rss
                except psutil.Error:
                    pass
            self.peak = max(self.peak, total)

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()


def run_datatrove(data: Path, out: Path, tasks: int, workers: int) -> None:
    from datatrove.executor import LocalPipelineExecutor
    from datatrove.pipeline.readers import JsonlReader
    from datatrove.pipeline.writers import ParquetWriter

    def read_adapter(self, data, path, id_in_file):
        # datatrove skips documents with empty text: carry the first turn, as frcorpus could
        return {"text": data["messages"][0]["content"], "id": data["id"], "metadata": {"messages": data["messages"]}}

    def write_adapter(self, doc):
        return {"id": doc.id, "messages": doc.metadata["messages"]}

    LocalPipelineExecutor(
        [
            JsonlReader(str(data), adapter=read_adapter, compression=None),
            ParquetWriter(str(out / "data"), adapter=write_adapter, compression="zstd"),  # as frcorpus writes
        ],
        tasks=tasks,
        workers=workers,
        logging_dir=str(out / "logs"),
    ).run()


def run_frcorpus(data: Path, out: Path, tasks: int, workers: int):
    from frcorpus.config import load_pipeline
    from frcorpus.engine.plan import build_plan
    from frcorpus.engine.run import run_plan

    cfg = {
        "name": "bench",
        "version": "1.0.0",
        "sources": [{"name": "gen", "path": str(data), "format": "messages"}],
        "stages": [{"type": "normalize"}, {"type": "exact_dedup"}],
        "executor": {"type": "local", "tasks": tasks, "workers": workers},
        "output": {"dir": str(out)},
    }
    path = out / "pipeline.yaml"
    out.mkdir(parents=True)
    path.write_text(yaml.safe_dump(cfg))
    return run_plan(build_plan(load_pipeline(path)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--tasks", type=int, default=4)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=5, help="runs of each, interleaved")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench_engine_"))
    try:
        data = tmp / "data"
        generate(data, args.records, shards=args.tasks * 2)
        size = sum(p.stat().st_size for p in data.iterdir()) / 1e6
        print(
            f"input: {args.records} conversations, {size:.0f} MB in {args.tasks * 2} JSONL files; "
            f"tasks={args.tasks} workers={args.workers}"
        )
        # the two are interleaved, run after run, so that a slow spell of the machine hits both
        times: dict[str, list[float]] = {"datatrove": [], "frcorpus": []}
        peaks: dict[str, list[int]] = {"datatrove": [], "frcorpus": []}
        for r in range(args.repeats):
            for name, fn in (("datatrove", run_datatrove), ("frcorpus", run_frcorpus)):
                out = tmp / f"{name}{r}"
                with PeakRSS() as rss:
                    start = time.perf_counter()
                    result = fn(data, out, args.tasks, args.workers)
                    times[name].append(time.perf_counter() - start)
                peaks[name].append(rss.peak)
                if name == "frcorpus":
                    totals = result.stats["totals"]
                    assert totals["read"] == totals["kept"] + totals["rejected"] == args.records
                    dup = result.stats["stages"]["exact_dedup"]["rejected"].get("exact_dedup.duplicate", 0)
                shutil.rmtree(out)
        for name in times:
            best = min(times[name])
            print(
                f"{name:>9}: best {best:6.2f} s  median {statistics.median(times[name]):6.2f} s  "
                f"{args.records / best:8.0f} records/s  peak RSS {max(peaks[name]) / 2**20:6.0f} MiB  "
                f"(runs: {', '.join(f'{t:.2f}' for t in times[name])})"
            )
        print(f"frcorpus kept {totals['kept']}, rejected {dup} exact duplicates")
        ratios = [f / d for f, d in zip(times["frcorpus"], times["datatrove"], strict=True)]
        print(
            f"ratio frcorpus / datatrove: {min(times['frcorpus']) / min(times['datatrove']):.2f} best to best, "
            f"{statistics.median(ratios):.2f} median of the run pairs (goal < 1.25)"
        )
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
