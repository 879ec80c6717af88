"""The datatrove steps of a phase, each task's share of the records flowing through them as batches:
read the sources (phase 0) or the previous phase's records with the barrier's decisions applied (later
phases), run the per-record stages, then write rejects/, and data/ (last phase) or the records and
global-stage signatures the next barrier reads.

Records cross a barrier as Arrow IPC files, one per task, with the verdicts as JSON keyed by row: a
task of phase k reads the shard its rank wrote in phase k-1, so no record changes task.
"""

from __future__ import annotations

import gc
import json
import os
import time
from collections import Counter, defaultdict
from collections.abc import Iterator
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from datatrove.data import Document
from datatrove.pipeline.base import PipelineStep

from frcorpus.batch import Batch, conform, live_mask, reject_counts, with_rejects, work_schema
from frcorpus.counts import StageStats
from frcorpus.engine.plan import Paths, PhaseSpec, Plan, RunError, StageSpec, Unit
from frcorpus.engine.shard_scan import signature_columns
from frcorpus.record import SPLITS, data_schema, intermediate_schema, rejects_schema
from frcorpus.settings import columnar_enabled
from frcorpus.sources.reader import SourceReader
from frcorpus.sources.resolve import ResolvedSource
from frcorpus.stages.base import GlobalStage, Stage
from frcorpus.stages.progress import StageProgress
from frcorpus.version.layout import VersionDir
from frcorpus.version.writer import ShardWriter, atomic_write_text, sha256_path


def stage_stats_json(stats: StageStats, position: int) -> dict[str, Any]:
    return {**stats.to_json(), "position": position}


def _batch_doc(batch: Batch) -> Document:
    return Document(text="", id="batch", metadata={"batch": batch})


class ReadSources(PipelineStep):
    """Phase 0 input: this task's share of the reading units, as batches of records."""

    name = "read sources"
    type = "frcorpus"

    def __init__(self, sources: list[ResolvedSource], units: list[Unit], schema: pa.Schema):
        super().__init__()
        self.sources = sources
        self.units = units
        self.schema = schema
        self.read_stats = StageStats()
        self.read_counts: dict[str, int] = Counter()
        self.formats: dict[str, Counter] = defaultdict(Counter)
        self.input_hashes: dict[str, str] = {}  # for the manifest, hashed in parallel by the readers

    def run(self, data, rank: int = 0, world_size: int = 1) -> Iterator[Document]:
        for k, unit in enumerate(self.units):
            if k % world_size != rank:
                continue
            src = self.sources[unit.source]
            reader = SourceReader(src, unit.source)
            batches = reader.read_batches(unit.files, unit.budget, self.schema, unit.part)
            while True:
                start = time.perf_counter()  # time the reading only, not the stages downstream
                batch = next(batches, None)
                self.read_stats.seconds += time.perf_counter() - start
                if batch is None:
                    break
                n = len(batch)
                self.read_counts[src.config.name] += n
                self.read_stats.n_in += n
                if batch.is_table:
                    rejected = reject_counts(batch.table())
                else:
                    rejected = Counter(r["_reject"]["reason"] for r in batch.records() if r["_reject"] is not None)
                self.read_stats.rejected.update(rejected)
                self.read_stats.kept += n - sum(rejected.values())
                yield _batch_doc(batch)
            self.formats[src.config.name].update(reader.formats)
            for fi in unit.files if unit.hashes_files else ():
                self.input_hashes[str(src.files[fi])] = sha256_path(src.files[fi])


IPC_OPTIONS = pa.ipc.IpcWriteOptions(compression="lz4")  # records between phases: fast, a third of the size


def read_intermediate(path: Path) -> pa.Table:
    with pa.memory_map(str(path)) as source:
        return pa.ipc.open_file(source).read_all()


def intermediate_slices(path: Path, size: int) -> Iterator[tuple[int, pa.Table]]:
    """(first row, rows) of an intermediate file, `size` rows at a time (the last fewer): one record batch
    decompressed at a time, read rather than mapped, so that a task holds a slice, not its shard."""
    reader = pa.ipc.open_file(pa.OSFile(str(path)))
    pending: list[pa.RecordBatch] = []
    held = first = 0
    for i in range(reader.num_record_batches):
        batch = reader.get_batch(i)
        pending.append(batch)
        held += batch.num_rows
        while held >= size:
            table = pa.Table.from_batches(pending, reader.schema)
            yield first, table.slice(0, size)
            rest = table.slice(size)
            pending, held, first = rest.to_batches(), held - size, first + size
    if held:
        yield first, pa.Table.from_batches(pending, reader.schema)


#: the barrier's rejections for one shard (`decisions/<shard>.arrow`), sorted by row
DECISIONS_SCHEMA = pa.schema(
    [("row", pa.int64()), ("stage", pa.string()), ("reason", pa.string()), ("detail", pa.string())]
)


def read_decisions(path: Path) -> pa.Table:
    return read_intermediate(path).combine_chunks()


def sorted_decisions(decisions: dict[str, list[str]]) -> pa.Table:
    """Decisions given as {row: [stage, reason, detail]}, as the barrier writes them: a table in row order."""
    rows = sorted(int(k) for k in decisions)
    verdicts = [decisions[str(r)] for r in rows]
    columns = [rows, *([v[i] for v in verdicts] for i in range(3))]
    return pa.Table.from_arrays(
        [pa.array(c, f.type) for c, f in zip(columns, DECISIONS_SCHEMA, strict=True)], schema=DECISIONS_SCHEMA
    )


def _read_values(barrier_dir: Path, rank: int, rows: int) -> pa.Table | None:
    """The annotations the barrier's global stages set on this shard's rows (one row per row), if any."""
    path = barrier_dir / "values" / f"{rank:05d}.arrow"
    if not path.exists():
        return None
    values = read_intermediate(path)
    if values.num_rows != rows:
        raise RunError(f"{path}: {values.num_rows} rows of annotations for a shard of {rows} records")
    return values


def decided_table(
    table: pa.Table,
    decided: pa.Table,
    first_row: int,
    schema,
    values: pa.Table | None = None,
) -> pa.Table:
    """Intermediate rows `first_row`... with the barrier's rejections (`decided`, a table of
    DECISIONS_SCHEMA in row order) in `_reject` and its annotations."""
    table = conform(table, schema)
    if values is not None:
        part = values.slice(first_row, table.num_rows)
        for name in part.column_names:
            new, old = part[name].combine_chunks(), table[name].combine_chunks()
            merged = pc.if_else(new.is_valid(), new.cast(old.type), old)
            table = table.set_column(table.schema.get_field_index(name), name, merged)
    rows = decided["row"].to_numpy()
    lo, hi = np.searchsorted(rows, [first_row, first_row + table.num_rows])
    here = decided.slice(lo, hi - lo)
    stages, reasons, details = (here[c].to_pylist() for c in ("stage", "reason", "detail"))
    return with_rejects(table, rows[lo:hi] - first_row, stages, reasons, details)


def _meta_rows(records: Path) -> int:
    return json.loads(records.with_suffix(".meta.json").read_text())["rows"]


class ReadShard(PipelineStep):
    """Phase k>0 input: the records this task's rank wrote in phase k-1, with the barrier's decisions."""

    name = "read shard"
    type = "frcorpus"

    def __init__(self, records_dir: Path, decisions_dir: Path, schema: pa.Schema, batch_size: int = 4096):
        super().__init__()
        self.records_dir = records_dir
        self.decisions_dir = decisions_dir
        self.schema = schema
        self.batch_size = batch_size

    def run(self, data, rank: int = 0, world_size: int = 1) -> Iterator[Document]:
        decided = read_decisions(self.decisions_dir / f"{rank:05d}.arrow")
        records = self.records_dir / f"{rank:05d}.arrow"
        values = _read_values(self.decisions_dir.parent, rank, _meta_rows(records))
        for first, part in intermediate_slices(records, self.batch_size):
            yield _batch_doc(Batch(self.schema, table=decided_table(part, decided, first, self.schema, values)))


class ApplyDecisions(PipelineStep):
    """The last phase when no per-record stage follows the barrier: split each intermediate shard into
    data/ and rejects/ with Arrow compute, with no Python work per record, a slice at a time."""

    name = "apply decisions"
    type = "frcorpus"
    SLICE_ROWS = 65_536

    def __init__(self, plan: Plan, phase: PhaseSpec):
        super().__init__()
        self.paths = plan.paths
        self.phase_index = phase.index
        self.fields = plan.annotation_fields()
        self.split_by = plan.split_annotation()
        self.output = plan.config.output

    def run(self, data, rank: int = 0, world_size: int = 1) -> Iterator[Document]:
        prev = self.phase_index - 1
        records = self.paths.phase(prev) / "records" / f"{rank:05d}.arrow"
        expected = _meta_rows(records)
        decided = read_decisions(self.paths.barrier(prev) / "decisions" / f"{rank:05d}.arrow")
        values = _read_values(self.paths.barrier(prev), rank, expected)
        writers = PhaseWriters(
            self.paths, self.phase_index, rank, self.fields, self.output, final=True, split_by=self.split_by
        )
        schema, read = work_schema(self.fields), 0
        for first, part in intermediate_slices(records, self.SLICE_ROWS):
            writers.write(decided_table(part, decided, first, schema, values))
            read += part.num_rows
        if read != expected:
            raise RunError(f"{records}: {read} rows read back, {expected} written")
        writers.close()
        stats = {"sources": writers.source_counts(), "stages": {}, "formats": {}}
        atomic_write_text(self.paths.phase(self.phase_index) / "stats" / f"{rank:05d}.json", json.dumps(stats))
        return
        yield


def _count_by_source(table: pa.Table) -> dict[str, int]:
    if table.num_rows == 0:
        return {}
    counts = pc.value_counts(pc.struct_field(table["source"], "name"))
    return {item["values"].as_py(): item["counts"].as_py() for item in counts}


class RunStage(PipelineStep):
    """Adapter: a frcorpus per-record stage as a datatrove step, fed batch by batch."""

    type = "frcorpus stage"

    def __init__(self, spec: StageSpec, progress_dir: Path | None = None):
        self.name = spec.id  # before PipelineStep.__init__, which names its stats after it
        super().__init__()
        self.spec = spec
        self.stage: Stage = spec.build()
        self.progress_dir = progress_dir  # where a long stage reports its progress (`stages.progress`)

    def run(self, data, rank: int = 0, world_size: int = 1) -> Iterator[Document]:
        progress = None
        if getattr(self.stage, "reports_progress", False):
            progress = StageProgress(self.progress_dir, self.spec.id, rank)
            self.stage.attach_progress(progress)
        self.stage.setup()
        # What is alive after set-up (modules, models, lexicons) lives as long as the task: out of the
        # collector's generations, a full collection no longer walks it all again every few batches of
        # records (langid on lingua_sentences: 2 such collections per 74k records, 3-6% of its time)
        gc.freeze()
        for doc in data:
            batch = doc.metadata["batch"]
            with progress.batch(len(batch)) if progress is not None else nullcontext():
                self.stage.run(batch)
            yield doc
        if progress is not None:
            progress.finish()


class PhaseWriters:
    """The files one task of a phase writes: rejects/, and data/ (last phase) or the records that go
    on to the next phase (Arrow IPC) with their global-stage signatures (JSON lines)."""

    def __init__(
        self,
        paths: Paths,
        phase_index: int,
        rank: int,
        fields,
        output,
        final: bool,
        split_by: str | None = None,
        globals_=(),
    ):
        self.fields = fields
        self.final = final
        self.globals: list[GlobalStage] = list(globals_)
        self.sig_seconds = [0.0] * len(self.globals)
        self.counts: dict[str, Counter] = defaultdict(Counter)
        staging = VersionDir(paths.staging)
        self.rejects = ShardWriter(
            staging.reject_file(phase_index, rank),
            rejects_schema(fields),
            output.compression,
            output.row_group_size,
            write_empty=False,
        )
        # one data file per task, or one per split when a stage annotates each record's split (`split_by`)
        self.split_by = split_by
        self.splits = SPLITS if split_by is not None else (None,)
        self.kept = {
            split: ShardWriter(
                staging.data_file(rank, split),
                data_schema(fields),
                output.compression,
                output.row_group_size,
                write_empty=True,
            )
            for split in (self.splits if final else ())
        }
        self.phase_dir = paths.phase(phase_index)
        self.rank = rank
        self.rows = 0
        if not final:
            for folder in ("records", "sigs"):
                (self.phase_dir / folder).mkdir(parents=True, exist_ok=True)
            self.records_tmp = self.phase_dir / "records" / f".{rank:05d}.arrow.tmp"
            self.records_out = pa.ipc.new_file(str(self.records_tmp), intermediate_schema(fields), options=IPC_OPTIONS)
            self.sigs_tmp = self.phase_dir / "sigs" / f".{rank:05d}.arrow.tmp"
            # one column per field of a struct signature, so that the barrier reads only the fields it needs
            sig_fields = []
            for g, stage in enumerate(self.globals):
                types = stage.signature_type if pa.types.is_struct(stage.signature_type) else [stage.signature_type]
                names = signature_columns(g, stage.signature_type).values()
                sig_fields += [(name, getattr(t, "type", t)) for name, t in zip(names, types, strict=True)]
            self.sigs_schema = pa.schema(
                [("id", pa.string()), ("source", pa.string()), ("_order", pa.list_(pa.int64()))] + sig_fields
            )
            self.sigs_out = pa.ipc.new_file(str(self.sigs_tmp), self.sigs_schema)

    def write(self, table: pa.Table, records: list[dict[str, Any]] | None = None) -> None:
        """Write a batch: `records` are the same rows as dicts when the batch already has them."""
        rows = table.num_rows  # a long global stage's progress counts the batch's rows, rejected ones too
        live = live_mask(table)
        if not live.all():
            dead = table.filter(pa.array(~live))
            reject = dead["_reject"].combine_chunks()
            rejected = dead.drop_columns(["_reject", "_raw"])
            for column in ("stage", "reason", "detail"):
                rejected = rejected.append_column(column, reject.field(column))
            rejected = rejected.append_column("raw", dead["_raw"])
            self.rejects.add_table(rejected)
            for name, n in _count_by_source(rejected).items():
                self.counts[name]["rejected"] += n
            table = table.filter(pa.array(live))
            if records is not None:
                records = [r for r in records if r["_reject"] is None]
        if self.final:  # live records of an earlier phase are counted when the last phase keeps them
            for name, n in _count_by_source(table).items():
                self.counts[name]["kept"] += n
            if self.splits == (None,):
                self.kept[None].add_table(table)
                return
            split = table[self.split_by]
            unknown = pc.invert(pc.is_in(split, pa.array(SPLITS))).fill_null(True)
            if pc.any(unknown).as_py():
                raise RunError(f"records reached data/ with split {pc.filter(split, unknown)[0]}, not one of {SPLITS}")
            for name in SPLITS:
                self.kept[name].add_table(table.filter(pc.equal(split, name)))
            return
        sigs = []
        for g, stage in enumerate(self.globals):
            start = time.perf_counter()
            progress = getattr(stage, "progress", None)
            with progress.batch(rows) if progress is not None else nullcontext():
                if records is not None:
                    sigs.append(stage.signature_records(records))
                elif columnar_enabled():
                    sigs.append(stage.signature_table(table))
                else:
                    sigs.append(stage.signature_records(table.to_pylist()))
            self.sig_seconds[g] += time.perf_counter() - start
        # id, source, global order and the fields of each global stage's signatures: Decide reads them as columns
        columns = [table["id"], pc.struct_field(table["source"], "name"), table["_order"]]
        for stage, values in zip(self.globals, sigs, strict=True):
            values = values if isinstance(values, pa.Array) else pa.array(values, stage.signature_type)
            columns += values.flatten() if pa.types.is_struct(values.type) else [values]
        self.sigs_out.write_table(pa.Table.from_arrays(columns, names=self.sigs_schema.names).cast(self.sigs_schema))
        self.records_out.write_table(table.select(intermediate_schema(self.fields).names))
        self.rows += table.num_rows

    def close(self) -> None:
        self.rejects.close()
        if self.final:
            for writer in self.kept.values():
                writer.close()
            return
        self.records_out.close()
        self.sigs_out.close()
        os.replace(self.records_tmp, self.phase_dir / "records" / f"{self.rank:05d}.arrow")
        os.replace(self.sigs_tmp, self.phase_dir / "sigs" / f"{self.rank:05d}.arrow")
        meta = {"rows": self.rows}
        atomic_write_text(self.phase_dir / "records" / f"{self.rank:05d}.meta.json", json.dumps(meta))

    def source_counts(self) -> dict[str, dict[str, int]]:
        return {k: dict(v) for k, v in self.counts.items()}


class WritePhase(PipelineStep):
    """End of a phase: rejects to rejects/, live records to data/ (last phase) or to the next phase's
    input with their global-stage signatures; then this task's stats."""

    name = "write"
    type = "frcorpus"

    def __init__(
        self,
        plan: Plan,
        phase: PhaseSpec,
        reader: ReadSources | None,
        stage_steps: list[RunStage],
        progress_dir: Path | None = None,
    ):
        super().__init__()
        self.progress_dir = progress_dir  # where a global stage that embeds reports its signatures' progress
        self.paths = plan.paths
        self.phase_index = phase.index
        self.final = phase.final
        self.global_specs = phase.global_after
        self.reader = reader
        self.stage_steps = stage_steps
        self.fields = plan.annotation_fields()
        self.split_by = plan.split_annotation()
        self.output = plan.config.output

    def run(self, data, rank: int = 0, world_size: int = 1) -> Iterator[Document]:
        globals_ = [spec.build() for spec in self.global_specs]
        progress = {}
        for spec, stage in zip(self.global_specs, globals_, strict=True):
            if getattr(stage, "reports_progress", False) and self.progress_dir is not None:
                progress[spec.id] = StageProgress(self.progress_dir, spec.id, rank)
                stage.attach_progress(progress[spec.id])
            stage.setup()  # signatures may need a model or parameters
        writers = PhaseWriters(
            self.paths, self.phase_index, rank, self.fields, self.output, self.final, self.split_by, globals_
        )
        for doc in data:
            batch: Batch = doc.metadata["batch"]
            records = None if batch.is_table else batch.records()
            writers.write(batch.table(), records)
        writers.close()
        for reporter in progress.values():
            reporter.finish()
        stats: dict[str, Any] = {"sources": {}, "stages": {}, "formats": {}}
        counts = writers.counts
        if self.reader is not None:
            for name, n in self.reader.read_counts.items():
                counts[name]["read"] += n
            stats["stages"]["read"] = stage_stats_json(self.reader.read_stats, -1)
            stats["formats"] = {k: dict(v) for k, v in self.reader.formats.items()}
            stats["inputs"] = self.reader.input_hashes
        stats["sources"] = writers.source_counts()
        for step in self.stage_steps:
            stats["stages"][step.spec.id] = stage_stats_json(step.stage.stats, step.spec.position)
        for spec, seconds in zip(self.global_specs, writers.sig_seconds, strict=True):
            stats["stages"][spec.id] = stage_stats_json(StageStats(seconds=seconds), spec.position)
        atomic_write_text(self.paths.phase(self.phase_index) / "stats" / f"{rank:05d}.json", json.dumps(stats))
        return
        yield  # a datatrove step is a generator; this one consumes the stream and yields nothing
