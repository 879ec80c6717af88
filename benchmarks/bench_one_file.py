"""One big file: frcorpus reading a single JSONL file against datatrove reading the same records.

Generates N conversations from real French and English sentences (benchmarks/bench_dedup.py's
generator: 5% exact and 10% near copies) as ONE JSONL file, and the same records as `--tasks` files
for datatrove, which shards its work by file (from one file it uses one task). Then, for three jobs,
runs datatrove on the files and frcorpus on the one file, with the same tasks and workers, each run in
a fresh subprocess (so that memory is its own), interleaved `--repeats` times:
  read/write  datatrove JsonlReader -> ParquetWriter; frcorpus with no stage
  langid      datatrove LanguageFilter(fr) with fastText lid.176 (the same model file as frcorpus);
              frcorpus `langid` (per turn and sentence, keep fr)
  minhash     datatrove's MinHash pipeline (signature, buckets, cluster, filter); frcorpus
              `minhash_dedup`, both at 5-grams, 14 x 8, as bench_dedup.py runs them
Prints, per job: the best wall time of each, the peak memory of each run's process tree (the sum of
its processes' PSS, sampled every 0.1 s, so that pages shared by forked workers count once), and the
ratios frcorpus / datatrove (goals of issue 22: time <= 1.2, memory <= 1.5).

    python benchmarks/bench_one_file.py [--records 100000] [--tasks 4] [--workers 2] [--repeats 3]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil
import yaml

HERE = Path(__file__).resolve().parent
JOBS = ("read/write", "langid", "minhash")


class PeakPSS:
    """The peak, over samples every `every` seconds, of the summed PSS of a process and its children."""

    def __init__(self, pid: int, every: float = 0.1):
        self.root = psutil.Process(pid)
        self.every = every
        self.peak = 0

    def __enter__(self):
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def _run(self):
        while not self._stop.wait(self.every):
            total = 0
            try:
                procs = [self.root, *self.root.children(recursive=True)]
            except psutil.Error:
                continue
            for proc in procs:
                try:
                    total += proc.memory_full_info().pss
                except psutil.Error:
                    pass
            self.peak = max(self.peak, total)

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()


def lid_model() -> Path:
    from frcorpus.resources import bundled_model

    return bundled_model("lid.176.ftz")


def run_datatrove(job: str, files: Path, out: Path, tasks: int, workers: int) -> None:
    from datatrove.executor import LocalPipelineExecutor
    from datatrove.pipeline.filters import LanguageFilter
    from datatrove.pipeline.readers import JsonlReader
    from datatrove.pipeline.writers import ParquetWriter
    from datatrove.utils.lid import FT176LID

    if job == "minhash":
        sys.path.insert(0, str(HERE))
        from bench_dedup import run_datatrove as minhash

        minhash(files, out, tasks, workers)
        return

    class LocalFT176(FT176LID):
        """lid.176 from the file frcorpus ships (the benchmark runs offline)."""

        @property
        def model(self):
            if self._model is None:
                from fasttext.FastText import _FastText

                self._model = _FastText(str(lid_model()))
            return self._model

    def read_adapter(self, data, path, id_in_file):
        text = "\n".join(m["content"] for m in data["messages"])
        return {"text": text, "id": data["id"], "metadata": {"messages": data["messages"]}}

    def write_adapter(self, doc):
        return {"id": doc.id, "messages": doc.metadata["messages"]}

    steps = [JsonlReader(str(files), adapter=read_adapter, compression=None)]
    if job == "langid":
        language = LanguageFilter(languages=["fr"])
        language.model = LocalFT176(["fr"])
        steps.append(language)
    steps.append(ParquetWriter(str(out / "data"), adapter=write_adapter, compression="zstd"))
    LocalPipelineExecutor(steps, tasks=tasks, workers=workers, logging_dir=str(out / "logs")).run()


def run_frcorpus(job: str, one_file: Path, out: Path, tasks: int, workers: int) -> None:
    from frcorpus.config import load_pipeline
    from frcorpus.engine.plan import build_plan
    from frcorpus.engine.run import run_plan

    sys.path.insert(0, str(HERE))
    from bench_dedup import BANDS, N_GRAMS, ROWS, SEED

    stages = {
        "read/write": [],
        "langid": [{"type": "langid", "keep": ["fr"]}],
        "minhash": [
            {
                "type": "minhash_dedup",
                "n_grams": N_GRAMS,
                "bands": BANDS,
                "rows": ROWS,
                "seed": SEED,
                "ignore": ["case", "accents", "numbers"],
            }
        ],
    }[job]
    cfg = {
        "name": "bench",
        "version": "1.0.0",
        "sources": [{"name": "gen", "path": str(one_file), "format": "messages"}],
        "stages": stages,
        "executor": {"type": "local", "tasks": tasks, "workers": workers},
        "output": {"dir": str(out)},
    }
    out.mkdir(parents=True)
    (out / "pipeline.yaml").write_text(yaml.safe_dump(cfg))
    run_plan(build_plan(load_pipeline(out / "pipeline.yaml")))


def measured(tool: str, job: str, data: Path, out: Path, tasks: int, workers: int) -> tuple[float, int]:
    """(seconds, peak PSS in bytes) of one run in a fresh subprocess."""
    shutil.rmtree(out, ignore_errors=True)
    argv = [sys.executable, __file__, "--one", tool, job, str(data), str(out), str(tasks), str(workers)]
    log = out.with_name(f"{out.name}.log")
    start = time.perf_counter()
    with open(log, "wb") as sink:  # datatrove prints its stats; kept for a failure
        proc = subprocess.Popen(argv, stdout=sink, stderr=subprocess.STDOUT)
        with PeakPSS(proc.pid) as peak:
            code = proc.wait()
    seconds = time.perf_counter() - start
    if code:
        raise SystemExit(f"{tool} {job} failed with exit code {code}:\n{log.read_text()[-3000:]}")
    shutil.rmtree(out, ignore_errors=True)
    return seconds, peak.peak


def main() -> None:
    default = Path(os.environ.get("FRCORPUS_SHARED_DATA", HERE.parent.parent / "shared" / "data"))
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--tasks", type=int, default=4)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--jobs", nargs="+", default=list(JOBS), choices=JOBS)
    parser.add_argument("--data", type=Path, default=default)
    parser.add_argument("--one", nargs=6, help=argparse.SUPPRESS)  # a single run, in the subprocess
    args = parser.parse_args()
    if args.one:
        tool, job, data, out, tasks, workers = args.one
        run = run_frcorpus if tool == "frcorpus" else run_datatrove
        run(job, Path(data), Path(out), int(tasks), int(workers))
        return

    sys.path.insert(0, str(HERE))
    from bench_dedup import generate

    with tempfile.TemporaryDirectory(prefix="bench_one_file_") as tmp:
        root = Path(tmp)
        generate(root / "one", args.records, 1, args.data)
        generate(root / "files", args.records, args.tasks, args.data)  # the same records, dealt into files
        one_file = root / "one" / "part000.jsonl"
        print(
            f"{args.records:,} conversations, {one_file.stat().st_size / 1e6:,.0f} MB in one file; "
            f"tasks {args.tasks}, workers {args.workers}, {args.repeats} interleaved runs each"
        )
        results: dict[tuple[str, str], list[tuple[float, int]]] = {}
        for _ in range(args.repeats):
            for job in args.jobs:
                for tool, data in (("datatrove", root / "files"), ("frcorpus", one_file)):
                    got = measured(tool, job, data, root / "out", args.tasks, args.workers)
                    results.setdefault((tool, job), []).append(got)
                    print(f"  {job:<10} {tool:<9} {got[0]:6.1f} s  {got[1] / 2**20:6.0f} MiB", flush=True)
        print(f"\n| job | datatrove ({args.tasks} files) | frcorpus (1 file) | time ratio | memory ratio |")
        print("|---|---|---|---|---|")
        for job in args.jobs:
            dt_runs, fr_runs = results[("datatrove", job)], results[("frcorpus", job)]
            dt_time, fr_time = min(t for t, _ in dt_runs), min(t for t, _ in fr_runs)
            dt_mem, fr_mem = max(m for _, m in dt_runs), max(m for _, m in fr_runs)
            print(
                f"| {job} | {dt_time:.1f} s, {dt_mem / 2**20:.0f} MiB | {fr_time:.1f} s, {fr_mem / 2**20:.0f} MiB "
                f"| {fr_time / dt_time:.2f} | {fr_mem / dt_mem:.2f} |"
            )


if __name__ == "__main__":
    main()
