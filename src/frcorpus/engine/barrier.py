"""The barrier between two phases: one task reads the signatures the phase wrote and lets each global
stage of the segment decide, in the global record order, on what the stages before it kept.

Each stage gets a scan of its own signature fields (`StageScan`): `exact_dedup` and `minhash_dedup`
decide from partitions they sort one at a time, in memory bounded by `FRCORPUS_BARRIER_MEMORY`; the
other global stages load their signatures at once (`GlobalStage.decide_scan`'s default). What the
barrier itself holds grows with the records by 9 bytes each (`ShardFiles`), and with the rejections of
one shard when it sorts them (`DecisionSpool`).

It writes, per shard of the next phase, the rejections by row (`decisions/<shard>.arrow`: row, stage,
reason, detail, sorted by row) and the annotations the stages set (`values/<shard>.arrow`, one row per
record of the shard), and the stages' stats.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from datatrove.data import Document
from datatrove.pipeline.base import PipelineStep

from frcorpus.engine.plan import PhaseSpec, Plan
from frcorpus.engine.shard_scan import ShardFiles, StageScan
from frcorpus.engine.steps import DECISIONS_SCHEMA, IPC_OPTIONS, read_intermediate, stage_stats_json
from frcorpus.settings import barrier_memory
from frcorpus.version.writer import atomic_write_bytes, atomic_write_text


class Decide(PipelineStep):
    """The barrier: every global stage of the segment decides over all signatures, in global order."""

    name = "decide"
    type = "frcorpus"

    def __init__(self, plan: Plan, phase: PhaseSpec):
        super().__init__()
        self.paths = plan.paths
        self.phase_index = phase.index
        self.tasks = plan.tasks
        self.specs = phase.global_after

    def run(self, data, rank: int = 0, world_size: int = 1) -> Iterator[Document]:
        out = self.paths.barrier(self.phase_index)
        scratch = out / "scratch"
        shutil.rmtree(scratch, ignore_errors=True)  # a barrier resumed after a crash starts its runs afresh
        files = ShardFiles(self.paths.phase(self.phase_index) / "sigs", self.tasks)
        memory = barrier_memory()
        spool = DecisionSpool(scratch / "decisions", files.starts, memory)
        values: dict[str, pa.Array] = {}  # annotations set by global stages, one value per key
        stats: dict[str, Any] = {"stages": {}}
        for g, spec in enumerate(self.specs):
            stage = spec.build()
            stage.setup()
            start = time.perf_counter()
            scan = StageScan(files, g, stage.signature_type, scratch / f"stage{g}", memory)
            rejected = []
            try:
                for chunk in stage.decide_scan(scan):
                    if isinstance(chunk.reasons, str):
                        reasons: str | list[str] = f"{stage.name}.{chunk.reasons}"
                        stage.stats.rejected[reasons] += len(chunk.keys)
                    else:
                        reasons = [f"{stage.name}.{reason}" for reason in chunk.reasons]
                        stage.stats.rejected.update(reasons)
                    spool.add(chunk.keys, stage.id, reasons, chunk.details)
                    rejected.append(chunk.keys)
            finally:
                scan.close()
            gone = np.concatenate(rejected) if rejected else np.zeros(0, dtype=np.int64)
            if len(np.unique(gone)) != len(gone):
                raise RuntimeError(f"{stage.id}: a record rejected twice by one global stage (a bug of the stage)")
            for keys, columns in scan.annotations:
                for name, column in columns.items():
                    values[name] = _scatter(values.get(name), keys, column, files.size)
            files.alive[gone] = False
            stage.stats.n_in = scan.live
            stage.stats.kept = scan.live - len(gone)
            stage.stats.seconds += time.perf_counter() - start
            stats["stages"][stage.id] = stage_stats_json(stage.stats, spec.position)
        for shard in range(self.tasks):
            if values:  # one row per row of the shard's records, in their order
                first, stop = files.starts[shard], files.starts[shard + 1]
                part = pa.table({name: column.slice(first, stop - first) for name, column in values.items()})
                atomic_write_bytes(out / "values" / f"{shard:05d}.arrow", ipc_bytes(part))
        spool.write(out / "decisions", self.tasks)
        atomic_write_text(out / "stats.json", json.dumps(stats))
        shutil.rmtree(scratch, ignore_errors=True)
        pa.default_memory_pool().release_unused()  # the local executor's next jobs run in this process
        return
        yield


def ipc_bytes(table: pa.Table) -> bytes:
    sink = pa.BufferOutputStream()
    with pa.ipc.new_file(sink, table.schema, options=IPC_OPTIONS) as writer:
        writer.write_table(table)
    return sink.getvalue().to_pybytes()


def _scatter(previous: pa.Array | None, keys: np.ndarray, column: pa.Array, n: int) -> pa.Array:
    """`column`'s values at `keys` of an array of `n` (null elsewhere), over an earlier stage's values."""
    index = np.full(n, -1, dtype=np.int64)
    index[keys] = np.arange(len(keys))
    spread = column.take(pa.array(index, mask=index < 0))
    return spread if previous is None else pc.if_else(spread.is_valid(), spread, previous)


class DecisionSpool:
    """The barrier's rejections, for the shards of the next phase: buffered, spilled to Arrow files once
    they would take about `memory` bytes, and sorted by row one shard at a time at the end (memory: one
    shard's rejections)."""

    ROW_BYTES = 128  # about what a rejection takes in Arrow: row, stage, reason, and a detail of ~80 bytes

    def __init__(self, folder: Path, starts: np.ndarray, memory: int):
        self.folder = folder
        self.starts = starts
        self.spill_rows = max(1, memory // self.ROW_BYTES)
        self.pending: list[pa.Table] = []
        self.pending_rows = 0
        self.spills = 0

    def add(self, keys: np.ndarray, stage_id: str, reasons: str | list[str], details: list[str]) -> None:
        n = len(keys)
        if n == 0:
            return
        shard = np.searchsorted(self.starts, keys, side="right") - 1
        self.pending.append(
            pa.table(
                {
                    "shard": pa.array(shard, pa.int64()),
                    "row": pa.array(keys - self.starts[shard], pa.int64()),
                    "stage": pa.array([stage_id] * n, pa.string()),
                    "reason": pa.array([reasons] * n if isinstance(reasons, str) else reasons, pa.string()),
                    "detail": pa.array(details, pa.string()),
                }
            )
        )
        self.pending_rows += n
        if self.pending_rows >= self.spill_rows:
            self._spill()

    def _spill(self) -> None:
        if not self.pending:
            return
        table = pa.concat_tables(self.pending)
        self.pending, self.pending_rows = [], 0
        table = table.take(pc.sort_indices(table, [("shard", "ascending")]))
        shards = table["shard"].to_numpy()
        self.folder.mkdir(parents=True, exist_ok=True)
        for shard in np.unique(shards).tolist():
            lo, hi = np.searchsorted(shards, [shard, shard + 1])
            path = self.folder / f"{shard:05d}-{self.spills:04d}.arrow"
            with pa.ipc.new_file(str(path), DECISIONS_SCHEMA) as writer:
                writer.write_table(table.slice(lo, hi - lo).drop_columns(["shard"]))
        self.spills += 1

    def write(self, out: Path, tasks: int) -> None:
        """`out/<shard>.arrow` for every shard, its rejections sorted by row (empty for a shard without)."""
        self._spill()
        for shard in range(tasks):
            pieces = [read_intermediate(p) for p in sorted(self.folder.glob(f"{shard:05d}-*.arrow"))]
            table = pa.concat_tables(pieces) if pieces else DECISIONS_SCHEMA.empty_table()
            table = table.take(pc.sort_indices(table, [("row", "ascending")]))
            atomic_write_bytes(out / f"{shard:05d}.arrow", ipc_bytes(table))
