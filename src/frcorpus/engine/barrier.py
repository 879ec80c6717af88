"""The barrier between two phases: one task reads every signature the phase wrote and lets each
global stage of the segment decide, in the global record order, on what the stages before it kept.

It writes, per shard of the next phase, the rejections by row (JSON) and the annotations the stages
set (Arrow, one row per record of the shard), and the stages' stats.
"""

from __future__ import annotations

import json
import time
from collections import defaultdict
from collections.abc import Iterator
from typing import Any

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc
from datatrove.data import Document
from datatrove.pipeline.base import PipelineStep

from frcorpus.engine.plan import PhaseSpec, Plan
from frcorpus.engine.steps import IPC_OPTIONS, read_intermediate, stage_stats_json
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
        sig_dir = self.paths.phase(self.phase_index) / "sigs"
        tables = []
        for shard in range(self.tasks):  # empty shards too: they give the columns when no record is left
            table = read_intermediate(sig_dir / f"{shard:05d}.arrow")
            shard_col = pa.array(np.full(table.num_rows, shard, dtype=np.int64))
            row_col = pa.array(np.arange(table.num_rows, dtype=np.int64))
            tables.append(table.append_column("shard", shard_col).append_column("row", row_col))
        table = pa.concat_tables(tables)
        order = table["_order"].combine_chunks().flatten().to_numpy().reshape(-1, 3)
        table = table.take(pa.array(np.lexsort((order[:, 2], order[:, 1], order[:, 0]))))
        shards = table["shard"].to_numpy()
        shard_rows = table["row"].to_numpy()
        live = np.arange(table.num_rows)
        decisions: dict[int, dict[str, list[str]]] = defaultdict(dict)
        values: dict[str, pa.Array] = {}  # annotations set by global stages, over the rows of `table`
        stats: dict[str, Any] = {"stages": {}}
        for g, spec in enumerate(self.specs):
            stage = spec.build()
            stage.setup()
            start = time.perf_counter()
            view = table if len(live) == table.num_rows else table.take(pa.array(live))
            verdicts = stage.decide_table(
                pa.table({"id": view["id"], "source": view["source"], "sig": view[f"sig{g}"]})
            )
            stage.stats.n_in = len(live)
            rejected = np.zeros(len(live), dtype=bool)
            for j, verdict in verdicts.items():
                rejected[j] = True
                reason = f"{stage.name}.{verdict.reason}"
                stage.stats.rejected[reason] += 1
                i = live[j]
                decisions[int(shards[i])][str(int(shard_rows[i]))] = [stage.id, reason, verdict.detail]
            if stage.annotations:
                kept = view.filter(pa.array(~rejected))
                assigned = stage.assign_table(
                    pa.table({"id": kept["id"], "source": kept["source"], "sig": kept[f"sig{g}"]})
                )
                for name, column in assigned.items():
                    values[name] = _scatter(values.get(name), live[~rejected], column, table.num_rows)
            stage.stats.seconds += time.perf_counter() - start
            live = live[~rejected]
            stage.stats.kept = len(live)
            stats["stages"][stage.id] = stage_stats_json(stage.stats, spec.position)
        out = self.paths.barrier(self.phase_index)
        for shard in range(self.tasks):
            if values:  # one row per row of the shard's records, in their order
                mine = np.flatnonzero(shards == shard)
                mine = mine[np.argsort(shard_rows[mine])]
                part = pa.table({name: column.take(pa.array(mine)) for name, column in values.items()})
                sink = pa.BufferOutputStream()
                with pa.ipc.new_file(sink, part.schema, options=IPC_OPTIONS) as writer:
                    writer.write_table(part)
                atomic_write_bytes(out / "values" / f"{shard:05d}.arrow", sink.getvalue().to_pybytes())
            atomic_write_bytes(out / "decisions" / f"{shard:05d}.json", orjson.dumps(decisions.get(shard, {})))
        atomic_write_text(out / "stats.json", json.dumps(stats))
        return
        yield


def _scatter(previous: pa.Array | None, rows: np.ndarray, column: pa.Array, n: int) -> pa.Array:
    """`column`'s values at `rows` of an array of `n` (null elsewhere), over an earlier stage's values."""
    index = np.full(n, -1, dtype=np.int64)
    index[rows] = np.arange(len(rows))
    spread = column.take(pa.array(index, mask=index < 0))
    return spread if previous is None else pc.if_else(spread.is_valid(), spread, previous)
