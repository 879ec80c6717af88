"""Scale: N generated conversations through normalize -> exact_dedup -> minhash_dedup, and datatrove's
exact dedup + MinHash on the same files; wall time and peak memory of each run's whole process tree.

The corpus (written once to `--data-dir`, reused when its marker says it holds the same records): one
user turn (a real sentence: lingua, STS-B, GSM8K under ../shared/data) and an answer of 1-3 of them
(`--answer`); 5% of the records are exact copies of a recent original and 10% near copies (1-3 words
replaced, case, punctuation and whitespace noise), as benchmarks/bench_dedup.py plants them, drawn from
the last 50,000 originals so that the generator's memory stays flat. `--files` JSONL files (default 8;
`--files 1`: one big file).

Each arm runs in a subprocess, sampled every 0.2 s for the RSS and every second for the PSS (proportional
set size, from /proc/<pid>/smaps_rollup: pages shared by forked workers counted once) of the process and
all its descendants:
  frcorpus   `frcorpus run -q` of normalize -> exact_dedup -> minhash_dedup (defaults), executor local,
             `--tasks` tasks and `--workers` workers
  datatrove  JsonlReader -> ExactDedupSignature; ExactFindDedups; JsonlReader -> ExactDedupFilter ->
             MinhashDedupSignature; MinhashDedupBuckets (14 tasks); MinhashDedupCluster; JsonlReader ->
             ExactDedupFilter -> MinhashDedupFilter -> ParquetWriter (zstd), with the removed records written
             too; LocalPipelineExecutor, the same tasks and workers, 5-grams, 14 bands x 8 rows, the same regex
             tokenizer
Prints a table: wall time, CPU time (user + system of every process of the tree, as last sampled),
records/s, peak PSS and RSS of the tree, records removed.

    python benchmarks/bench_scale.py --records 1000000 [--data-dir /work/scale_data] [--arms frcorpus,datatrove]
    python benchmarks/bench_scale.py --records 1000000 --arms before,frcorpus,datatrove --before-src OTHER/src
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import psutil
import yaml

N_GRAMS, BANDS, ROWS, SEED = 5, 14, 8, 1
RECENT = 50_000  # originals the copies are drawn from


def generate(folder: Path, records: int, files: int, data: Path, answer: tuple[int, int], seed: int = 0) -> None:
    """`records` conversations in `files` JSONL files (record i in file i % files), answers of `answer`
    sentences, written to a temporary folder first: a folder with its marker is complete."""
    from bench_dedup import edit, sentence_pool

    rng = random.Random(seed)
    pool = sentence_pool(data)
    words = sorted({w for s in pool[:5000] for w in s.split()})
    tmp = folder.with_name(folder.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    handles = [open(tmp / f"part{i:03d}.jsonl", "w", encoding="utf-8") for i in range(files)]
    recent: list[list[dict]] = []
    copies = 0
    for i in range(records):
        roll = rng.random()
        if recent and roll < 0.05:
            messages = rng.choice(recent)
            copies += 1
        elif recent and roll < 0.15:
            base = rng.choice(recent)
            messages = [base[0], {"role": "assistant", "content": edit(rng, base[1]["content"], words)}]
            copies += 1
        else:
            text = " ".join(rng.sample(pool, rng.randint(*answer)))
            messages = [{"role": "user", "content": rng.choice(pool)}, {"role": "assistant", "content": text}]
            if len(recent) < RECENT:
                recent.append(messages)
            else:
                recent[rng.randrange(RECENT)] = messages
        handles[i % files].write(json.dumps({"id": f"r{i}", "messages": messages}, ensure_ascii=False) + "\n")
    for h in handles:
        h.close()
    (tmp / "marker.json").write_text(json.dumps({"records": records, "files": files, "seed": seed, "copies": copies}))
    shutil.rmtree(folder, ignore_errors=True)
    tmp.rename(folder)


def corpus(root: Path, records: int, files: int, data: Path, answer: tuple[int, int]) -> Path:
    folder = root / f"{records}x{files}-answer{answer[0]}-{answer[1]}"
    marker = folder / "marker.json"
    if not marker.exists() or json.loads(marker.read_text())["records"] != records:
        start = time.perf_counter()
        generate(folder, records, files, data, answer)
        print(f"generated {records} conversations in {files} files in {time.perf_counter() - start:.0f} s")
    return folder


class TreeMemory:
    """Samples the RSS of a process and its descendants every `interval` seconds, and their PSS every
    `pss_every` samples (reading smaps_rollup costs about 25 ms for a run's processes: every 0.2 s it
    would take a tenth of a core from the run it measures); keeps the peaks, and the CPU time (user +
    system) each process had when last seen: their sum is the run's CPU time, which other work on the
    machine disturbs far less than its wall time."""

    def __init__(self, pid: int, interval: float = 0.2, pss_every: int = 5, min_available: int = 0):
        self.root = psutil.Process(pid)
        self.interval = interval
        self.pss_every = pss_every
        self.min_available = min_available  # the tree is killed when the machine has less memory left
        self.killed = False
        self.peak_rss = self.peak_pss = 0
        self.at_peak: list[tuple[int, int]] = []  # (pid, RSS) of each process when the tree's RSS peaked
        self.timeline: list[tuple[float, int]] = []  # (seconds, RSS of the tree) every second
        self.cpu: dict[int, float] = {}  # pid -> CPU seconds when last seen
        self._start = time.perf_counter()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self):
        self._thread.start()
        return self

    def _run(self) -> None:
        tick = 0
        while not self._stop.wait(self.interval):
            tick += 1
            try:
                procs = [self.root, *self.root.children(recursive=True)]
            except psutil.Error:
                continue
            rss = pss = 0
            each = []
            for proc in procs:
                try:
                    times = proc.cpu_times()
                    self.cpu[proc.pid] = times.user + times.system
                    each.append((proc.pid, proc.memory_info().rss))
                    pss += _pss(proc.pid) if tick % self.pss_every == 0 else 0
                except (psutil.Error, OSError):
                    pass
            rss = sum(r for _, r in each)
            if rss > self.peak_rss:
                self.peak_rss, self.at_peak = rss, each
            self.peak_pss = max(self.peak_pss, pss)
            if tick % self.pss_every == 0:
                self.timeline.append((time.perf_counter() - self._start, rss))
            if psutil.virtual_memory().available < self.min_available:
                self.killed = True
                for proc in reversed(procs):
                    try:
                        proc.kill()
                    except psutil.Error:
                        pass

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


def _pss(pid: int) -> int:
    with open(f"/proc/{pid}/smaps_rollup") as f:
        for line in f:
            if line.startswith("Pss:"):
                return int(line.split()[1]) * 1024
    return 0


def measured(cmd: list[str], env: dict[str, str], log: Path, min_available: int) -> tuple[float, float, int, int, bool]:
    """(seconds, CPU seconds, peak RSS, peak PSS, killed) of a command's process tree, killed when the
    machine has less than `min_available` bytes of memory left; its output goes to `log`."""
    with open(log, "w") as out:
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env)
        with TreeMemory(proc.pid, min_available=min_available) as memory:
            code = proc.wait()
        seconds = time.perf_counter() - start
    with open(log, "a") as out:  # where the memory went: each process at the peak, the tree over time
        out.write(
            f"\nat the peak RSS of the tree: {', '.join(f'{pid}: {rss >> 20} MiB' for pid, rss in memory.at_peak)}\n"
        )
        out.write("RSS of the tree over time (s, MiB): ")
        out.write(" ".join(f"{t:.0f}:{rss >> 20}" for t, rss in memory.timeline) + "\n")
    cpu = sum(memory.cpu.values())
    if memory.killed:
        return seconds, cpu, memory.peak_rss, memory.peak_pss, True
    if code:
        raise SystemExit(f"{' '.join(cmd)} failed ({code}); see {log}")
    return seconds, cpu, memory.peak_rss, memory.peak_pss, False


def frcorpus_arm(data: Path, out: Path, tasks: int, workers: int, src: Path | None) -> tuple[list[str], dict]:
    cfg = {
        "name": "scale",
        "version": "1.0.0",
        "sources": [{"name": "gen", "path": str(data), "format": "messages"}],
        "stages": [{"type": "normalize"}, {"type": "exact_dedup"}, {"type": "minhash_dedup"}],
        "executor": {"type": "local", "tasks": tasks, "workers": workers},
        "output": {"dir": str(out / "out")},
    }
    out.mkdir(parents=True)
    (out / "pipeline.yaml").write_text(yaml.safe_dump(cfg))
    env = dict(os.environ)
    if src is not None:  # another checkout's package first on the path
        env["PYTHONPATH"] = f"{src}{os.pathsep}{env['PYTHONPATH']}" if env.get("PYTHONPATH") else str(src)
    return [sys.executable, "-m", "frcorpus.cli", "run", "-q", str(out / "pipeline.yaml")], env


def frcorpus_removed(out: Path) -> tuple[int, str]:
    (stats_path,) = (out / "out" / "scale").glob("*/stats.json")
    stats = json.loads(stats_path.read_text())
    stages = stats["stages"]
    exact = sum(stages["exact_dedup"]["rejected"].values())
    near = sum(stages["minhash_dedup"]["rejected"].values())
    return exact + near, f"exact {exact}, near {near}"


def run_datatrove(data: Path, out: Path, tasks: int, workers: int) -> None:
    """datatrove's exact dedup then MinHash, as a datatrove user would chain them (see the docstring)."""
    from datatrove.data import Document
    from datatrove.executor import LocalPipelineExecutor
    from datatrove.pipeline.dedup.exact_dedup import (
        ExactDedupConfig,
        ExactDedupFilter,
        ExactDedupSignature,
        ExactFindDedups,
    )
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

    def content(doc: Document) -> str:
        return doc.text

    exact = ExactDedupConfig(content_getter=content)
    minhash = MinhashConfig(
        n_grams=N_GRAMS, num_buckets=BANDS, hashes_per_bucket=ROWS, seed=SEED, hash_config=HashConfig(64, "xxhash")
    )

    def read_adapter(self, data, path, id_in_file):
        text = "\n".join(m["content"] for m in data["messages"])
        return {"text": text, "id": data["id"], "metadata": {"messages": data["messages"]}}

    def write_adapter(self, doc):
        return {"id": doc.id, "messages": doc.metadata["messages"]}

    def reader():
        return JsonlReader(str(data), adapter=read_adapter, compression=None, glob_pattern="*.jsonl")

    def removed(name: str) -> ParquetWriter:
        return ParquetWriter(str(out / "removed" / name), adapter=write_adapter, compression="zstd")

    stages = [
        ([reader(), ExactDedupSignature(str(out / "exact_sigs"), exact)], tasks),
        ([ExactFindDedups(str(out / "exact_sigs"), str(out / "exact_dups"), exact)], 1),
        (
            [
                reader(),
                ExactDedupFilter(str(out / "exact_dups"), exact),
                MinhashDedupSignature(str(out / "sigs"), minhash, language=RegexWordTokenizer()),
            ],
            tasks,
        ),
        ([MinhashDedupBuckets(str(out / "sigs"), str(out / "buckets"), config=minhash)], BANDS),
        ([MinhashDedupCluster(str(out / "buckets"), str(out / "remove_ids"), config=minhash)], 1),
        (
            [
                reader(),
                ExactDedupFilter(str(out / "exact_dups"), exact, exclusion_writer=removed("exact")),
                MinhashDedupFilter(str(out / "remove_ids"), exclusion_writer=removed("near")),
                ParquetWriter(str(out / "data"), adapter=write_adapter, compression="zstd"),
            ],
            tasks,
        ),
    ]
    for k, (pipeline, n) in enumerate(stages):
        LocalPipelineExecutor(pipeline, tasks=n, workers=workers, logging_dir=str(out / "logs" / str(k))).run()


def datatrove_removed(out: Path) -> tuple[int, str]:
    import pyarrow.parquet as pq

    counts = {
        name: sum(pq.read_metadata(p).num_rows for p in (out / "removed" / name).glob("*.parquet"))
        for name in ("exact", "near")
    }
    return sum(counts.values()), f"exact {counts['exact']}, near {counts['near']}"


def main() -> None:
    default = Path(os.environ.get("FRCORPUS_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--files", type=int, default=8, help="JSONL files of the corpus")
    parser.add_argument("--answer", default="1-3", help="sentences of an answer, LOW-HIGH (6-12: ~1.1 KB records)")
    parser.add_argument("--tasks", type=int, default=4)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--data", type=Path, default=default, help="the shared data (sentences)")
    parser.add_argument("--data-dir", type=Path, default=Path("/work/scale_data"), help="where the corpus is kept")
    parser.add_argument("--work-dir", type=Path, default=None, help="where the runs write (default: a temp folder)")
    parser.add_argument(
        "--arms", default="frcorpus,datatrove", help="comma-separated: frcorpus, datatrove, before (--before-src)"
    )
    parser.add_argument("--frcorpus-src", type=Path, default=None, help="run frcorpus from this src/ folder")
    parser.add_argument("--before-src", type=Path, default=None, help="the `before` arm: frcorpus from this src/")
    parser.add_argument("--keep", action="store_true", help="keep the runs' output")
    parser.add_argument(
        "--min-available-gb", type=float, default=2.0, help="kill a run when the machine has less memory left"
    )
    parser.add_argument("--datatrove-arm", nargs=4, metavar=("DATA", "OUT", "TASKS", "WORKERS"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.datatrove_arm:  # the datatrove arm, in its own process
        data, out, tasks, workers = args.datatrove_arm
        run_datatrove(Path(data), Path(out), int(tasks), int(workers))
        return
    answer = tuple(map(int, args.answer.split("-")))
    data = corpus(args.data_dir, args.records, args.files, args.data, answer)
    size = sum(p.stat().st_size for p in data.glob("*.jsonl"))
    copies = json.loads((data / "marker.json").read_text())["copies"]
    print(
        f"input: {args.records} conversations ({copies} planted copies), {size / 1e9:.2f} GB in {args.files} JSONL "
        f"files; tasks={args.tasks} workers={args.workers}"
    )
    work = args.work_dir or Path(os.environ.get("TMPDIR", "/tmp")) / f"bench_scale_{os.getpid()}"
    work.mkdir(parents=True, exist_ok=True)
    rows = []
    for arm in args.arms.split(","):
        out = work / arm
        shutil.rmtree(out, ignore_errors=True)
        if arm in ("frcorpus", "before"):
            src = args.frcorpus_src if arm == "frcorpus" else args.before_src
            if arm == "before" and src is None:
                raise SystemExit("the `before` arm runs the src/ folder given by --before-src")
            cmd, env = frcorpus_arm(data, out, args.tasks, args.workers, src)
            count = frcorpus_removed
        elif arm == "datatrove":
            out.mkdir(parents=True)
            cmd = [sys.executable, __file__, "--datatrove-arm", str(data), str(out), str(args.tasks), str(args.workers)]
            env, count = dict(os.environ), datatrove_removed
        else:
            raise SystemExit(f"unknown arm {arm!r}: frcorpus, datatrove or before")
        seconds, cpu, rss, pss, killed = measured(cmd, env, work / f"{arm}.log", int(args.min_available_gb * 2**30))
        removed, detail = (
            (0, f"killed after {seconds:.0f} s: under {args.min_available_gb} GB left") if killed else count(out)
        )
        rows.append((arm, seconds, cpu, rss, pss, removed, detail))
        print(
            f"{arm}: {seconds:.1f} s ({cpu:.0f} s of CPU), peak PSS {pss / 2**30:.2f} GiB, RSS {rss / 2**30:.2f} GiB "
            f"({detail})",
            flush=True,
        )
        if not args.keep:
            shutil.rmtree(out, ignore_errors=True)
    print(f"\n| {args.records:,} records | time | CPU time | records/s | peak PSS (tree) | peak RSS (tree) | removed |")
    print("|---|--:|--:|--:|--:|--:|--:|")
    for arm, seconds, cpu, rss, pss, removed, detail in rows:
        print(
            f"| {arm} | {seconds:.1f} s | {cpu:.0f} s | {args.records / seconds:,.0f} | {pss / 2**30:.2f} GiB "
            f"| {rss / 2**30:.2f} GiB | {removed:,} ({detail}) |"
        )
    times, cpus = {r[0]: r[1] for r in rows}, {r[0]: r[2] for r in rows}
    for arm in ("frcorpus", "before"):
        if arm in times and "datatrove" in times:
            print(
                f"ratio {arm} / datatrove: time {times[arm] / times['datatrove']:.2f}, "
                f"CPU time {cpus[arm] / cpus['datatrove']:.2f}"
            )
    if not args.keep and args.work_dir is None:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
