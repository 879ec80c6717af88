"""Compile a pipeline into datatrove pipelines and run them (DESIGN section 3).

The plan, for stages `[r1, r2, G1, G2, r3]` (r: per-record, G: global):

    phase 0   (N tasks) read sources -> r1 -> r2 -> write records + signatures of G1, G2
    barrier 0 (1 task)  G1.decide, then G2.decide on what G1 kept -> decisions per shard
    phase 1   (N tasks) read shard + apply decisions -> r3 -> write data/ and rejects/
    finalize  (1 task)  stats.json, manifest.json, card; the staging folder becomes the version

Consecutive per-record stages fuse into one pass; consecutive global stages share one barrier, and
only their small signatures cross it. Rejected records travel in the stream with their reason and
are written to rejects/ by the phase that sees them, so no step can drop a record silently.

Every phase is a datatrove executor (local, Slurm or Ray) with its own logging folder: datatrove's
completion markers make `--resume` skip finished tasks, and each task rewrites its own output
files atomically, so a resumed run produces exactly the files of an uninterrupted one.
"""

from __future__ import annotations

import bisect
import contextlib
import copy
import datetime as dt
import fcntl
import hashlib
import json
import logging
import os
import shutil
import signal
import socket
import sys
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import datatrove.executor.base as dt_executor_base
import datatrove.utils.logging as dt_logging
import multiprocess
import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc
from datatrove.data import Document
from datatrove.executor import LocalPipelineExecutor
from datatrove.pipeline.base import PipelineStep
from datatrove.utils.stats import PipelineStats
from loguru import logger as loguru_logger

from frcorpus import __version__
from frcorpus.batch import Batch, conform, live_mask, reject_counts, with_rejects, work_schema
from frcorpus.config import LoadedPipeline, PipelineConfig
from frcorpus.record import SPLITS, data_schema, intermediate_schema, rejects_schema
from frcorpus.settings import columnar_enabled, datatrove_log_level
from frcorpus.sources.reader import SourceReader, check_readable
from frcorpus.sources.resolve import ResolvedSource, SourceError, resolve_source
from frcorpus.stages import REGISTRY
from frcorpus.stages.base import GlobalStage, Stage, StageStats
from frcorpus.version.card import seal_card, write_card
from frcorpus.version.layout import (
    MANIFEST,
    MANIFEST_HASH,
    PIPELINE,
    RESOLVED,
    RUN_FILES,
    Manifest,
    VersionDir,
    VersionDirError,
    stage_ids,
)
from frcorpus.version.writer import (
    ShardWriter,
    atomic_write_bytes,
    atomic_write_text,
    auto_version,
    dependency_versions,
    file_entries,
    file_entry,
    fingerprint,
    merge_task_stats,
    resolved_yaml,
    sha256_path,
    version_contents,
    write_manifest,
    write_stats,
)

log = logging.getLogger(__name__)


def _task_logger(logging_dir, rank, local_rank=0, node_rank=-1):
    """datatrove sends every task's INFO log to the console; frcorpus keeps them in the task's log
    file and shows its own progress bars and errors instead."""
    loguru_logger.remove()
    logfile = logging_dir.open(f"logs/task_{rank:05d}.log", "w")
    loguru_logger.add(logfile, colorize=False, level="DEBUG", format=_LOG_FORMAT)
    loguru_logger.info(f"Launching pipeline for {rank=}")
    return logfile


def _console_logger():
    loguru_logger.remove()
    loguru_logger.add(sys.stderr, level=datatrove_log_level())


_LOG_FORMAT = "{time:YYYY-MM-DD HH:mm:ss.SSS} | {level: <8} | {name}:{function}:{line} - {message}"
dt_executor_base.add_task_logger = _task_logger
dt_logging.setup_default_logger = _console_logger


class RunError(Exception):
    """A run that cannot start or did not finish (exit code 1)."""


# ----------------------------------------------------------------------------------- the plan


@dataclass
class StageSpec:
    position: int
    id: str
    config: Any

    def build(self) -> Stage:
        return REGISTRY[self.config.type](self.config, self.id)


@dataclass
class PhaseSpec:
    index: int
    record_stages: list[StageSpec]
    global_after: list[StageSpec]  # decided in the barrier after this phase; empty for the last phase

    @property
    def final(self) -> bool:
        return not self.global_after


@dataclass
class Paths:
    """Where a run keeps its work (`work`) and where the finished version goes (`name_dir`)."""

    name_dir: Path
    work: Path

    @property
    def staging(self) -> Path:
        return self.work / "version"

    @property
    def lock(self) -> Path:
        return self.work / "run.lock"

    @property
    def published(self) -> Path:
        # the name of the version this run published, written just before the staging folder becomes it
        return self.work / "published"

    @property
    def run_logs(self) -> Path:
        return self.work / "logs"

    def phase(self, k: int) -> Path:
        return self.work / f"phase{k}"

    def barrier(self, k: int) -> Path:
        return self.work / f"barrier{k}"

    def logs(self, what: str) -> Path:
        return self.run_logs / what

    @property
    def finalize_logs(self) -> Path:
        # outside the work folder, which the finalize job deletes: datatrove writes this job's
        # completion marker after the job returns, and would otherwise recreate the work folder
        return self.name_dir / ".logs" / f"finalize-{self.work.name}"


@dataclass
class Unit:
    """A piece of reading work: files of one source, read in order, with an optional record budget."""

    source: int
    files: list[int]
    budget: int | None


@dataclass
class Plan:
    loaded: LoadedPipeline
    sources: list[ResolvedSource]
    phases: list[PhaseSpec]
    units: list[Unit]
    paths: Paths
    run_key: str
    stage_inputs: dict[str, list[Path]] = field(default_factory=dict)  # stage id -> files it reads
    started: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.UTC))

    @property
    def config(self) -> PipelineConfig:
        return self.loaded.config

    @property
    def tasks(self) -> int:
        return self.config.executor.tasks

    def annotation_fields(self):
        fields = []
        for phase in self.phases:
            for spec in phase.record_stages + phase.global_after:
                for name, dtype in REGISTRY[spec.config.type].annotations:
                    if name not in [f[0] for f in fields]:
                        fields.append((name, dtype))
        return fields


def build_plan(loaded: LoadedPipeline, cwd: Path | None = None) -> Plan:
    """Resolve sources (hashing every input file) and cut the stages into phases."""
    cfg = loaded.config
    sources: list[ResolvedSource] = []
    problems: list[str] = []
    for i, source_cfg in enumerate(cfg.sources):  # report every broken source at once
        try:
            src = resolve_source(source_cfg, cwd)
            check_readable(src)
            sources.append(src)
        except SourceError as e:
            problems.append(f"{loaded.path}:{loaded.line_of('sources', i, 'path')}: {e}")
    if problems:
        raise SourceError(problems[0], problems)
    phases: list[PhaseSpec] = []
    record: list[StageSpec] = []
    glob: list[StageSpec] = []
    for pos, (stage_id, stage_cfg) in enumerate(zip(cfg.stage_ids(), cfg.stages, strict=True)):
        spec = StageSpec(pos, stage_id, stage_cfg)
        if REGISTRY[stage_cfg.type].is_global:
            glob.append(spec)
            continue
        if glob:  # a per-record stage after global ones closes the phase
            phases.append(PhaseSpec(len(phases), record, glob))
            record, glob = [], []
        record.append(spec)
    if glob:
        phases.append(PhaseSpec(len(phases), record, glob))
        record = []
    phases.append(PhaseSpec(len(phases), record, []))
    units: list[Unit] = []
    for i, src in enumerate(sources):
        if src.config.limit is not None:  # an exact limit needs the source's files read in order by one task
            units.append(Unit(i, list(range(len(src.files))), src.config.limit))
        else:
            units.extend(Unit(i, [j], None) for j in range(len(src.files)))
    # files the stages read besides the sources (benchmarks...): part of the run key and of the manifest
    stage_inputs = {
        spec.id: files
        for phase in phases
        for spec in phase.record_stages + phase.global_after
        if (files := spec.build().input_files())
    }
    key_material = json.dumps(
        {
            "frcorpus": __version__,
            "config": cfg.model_dump(mode="json"),
            # size and mtime identify the inputs for resuming; the sha256s, which read every byte, are
            # computed by the tasks that read each file (for the manifest), not for validate or --dry-run
            "inputs": [{str(p): [p.stat().st_size, p.stat().st_mtime_ns] for p in src.files} for src in sources],
            "stage_inputs": {
                stage_id: {str(p): [p.stat().st_size, p.stat().st_mtime_ns] for p in files}
                for stage_id, files in stage_inputs.items()
            },
        },
        sort_keys=True,
    )
    run_key = hashlib.sha256(key_material.encode()).hexdigest()[:16]
    name_dir = Path(cfg.output.dir) / cfg.name
    if not name_dir.is_absolute():
        name_dir = (cwd or Path.cwd()) / name_dir
    return Plan(loaded, sources, phases, units, Paths(name_dir, name_dir / ".work" / run_key), run_key, stage_inputs)


# ----------------------------------------------------------------------------------- datatrove steps


def _stage_stats_json(stats: StageStats, position: int) -> dict[str, Any]:
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
            batches = reader.read_batches(unit.files, unit.budget, self.schema)
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
            for fi in unit.files:
                self.input_hashes[str(src.files[fi])] = sha256_path(src.files[fi])


IPC_OPTIONS = pa.ipc.IpcWriteOptions(compression="lz4")  # records between phases: fast, a third of the size


def _read_intermediate(path: Path) -> pa.Table:
    with pa.memory_map(str(path)) as source:
        return pa.ipc.open_file(source).read_all()


def _sorted_decisions(decisions: dict[str, list[str]]) -> tuple[list[int], list[list[str]]]:
    """The barrier's decisions for one shard as (rows, verdicts), in row order."""
    rows = sorted(int(k) for k in decisions)
    return rows, [decisions[str(r)] for r in rows]


def _read_values(barrier_dir: Path, rank: int, rows: int) -> pa.Table | None:
    """The annotations the barrier's global stages set on this shard's rows (one row per row), if any."""
    path = barrier_dir / "values" / f"{rank:05d}.arrow"
    if not path.exists():
        return None
    values = _read_intermediate(path)
    if values.num_rows != rows:
        raise RunError(f"{path}: {values.num_rows} rows of annotations for a shard of {rows} records")
    return values


def _decided_table(
    table: pa.Table,
    decided: tuple[list[int], list[list[str]]],
    first_row: int,
    schema,
    values: pa.Table | None = None,
) -> pa.Table:
    """Intermediate rows `first_row`... with the barrier's rejections in `_reject` and its annotations."""
    table = conform(table, schema)
    if values is not None:
        part = values.slice(first_row, table.num_rows)
        for name in part.column_names:
            new, old = part[name].combine_chunks(), table[name].combine_chunks()
            merged = pc.if_else(new.is_valid(), new.cast(old.type), old)
            table = table.set_column(table.schema.get_field_index(name), name, merged)
    rows, verdicts = decided
    lo, hi = bisect.bisect_left(rows, first_row), bisect.bisect_left(rows, first_row + table.num_rows)
    here = verdicts[lo:hi]
    rows_np = np.array(rows[lo:hi], dtype=np.int64) - first_row
    return with_rejects(table, rows_np, [v[0] for v in here], [v[1] for v in here], [v[2] for v in here])


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
        decided = _sorted_decisions(orjson.loads((self.decisions_dir / f"{rank:05d}.json").read_bytes()))
        table = _read_intermediate(self.records_dir / f"{rank:05d}.arrow")
        values = _read_values(self.decisions_dir.parent, rank, table.num_rows)
        for first in range(0, table.num_rows, self.batch_size):
            part = table.slice(first, self.batch_size)
            yield _batch_doc(Batch(self.schema, table=_decided_table(part, decided, first, self.schema, values)))


class ApplyDecisions(PipelineStep):
    """The last phase when no per-record stage follows the barrier: split each intermediate shard into
    data/ and rejects/ with Arrow compute, with no Python work per record."""

    name = "apply decisions"
    type = "frcorpus"

    def __init__(self, plan: Plan, phase: PhaseSpec):
        super().__init__()
        self.paths = plan.paths
        self.phase_index = phase.index
        self.fields = plan.annotation_fields()
        self.output = plan.config.output

    def run(self, data, rank: int = 0, world_size: int = 1) -> Iterator[Document]:
        prev = self.phase_index - 1
        records = self.paths.phase(prev) / "records" / f"{rank:05d}.arrow"
        meta = json.loads(records.with_suffix(".meta.json").read_text())
        table = _read_intermediate(records)
        if table.num_rows != meta["rows"]:
            raise RunError(f"{records}: {table.num_rows} rows read back, {meta['rows']} written")
        decisions = orjson.loads((self.paths.barrier(prev) / "decisions" / f"{rank:05d}.json").read_bytes())
        values = _read_values(self.paths.barrier(prev), rank, table.num_rows)
        table = _decided_table(table, _sorted_decisions(decisions), 0, work_schema(self.fields), values)
        writers = PhaseWriters(self.paths, self.phase_index, rank, self.fields, self.output, final=True)
        writers.write(table)
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

    def __init__(self, spec: StageSpec):
        self.name = spec.id  # before PipelineStep.__init__, which names its stats after it
        super().__init__()
        self.spec = spec
        self.stage: Stage = spec.build()

    def run(self, data, rank: int = 0, world_size: int = 1) -> Iterator[Document]:
        self.stage.setup()
        for doc in data:
            self.stage.run(doc.metadata["batch"])
            yield doc


class PhaseWriters:
    """The files one task of a phase writes: rejects/, and data/ (last phase) or the records that go
    on to the next phase (Arrow IPC) with their global-stage signatures (JSON lines)."""

    def __init__(self, paths: Paths, phase_index: int, rank: int, fields, output, final: bool, globals_=()):
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
        # one data file per task, or one per split when a `split` stage annotated the records
        self.splits = SPLITS if any(name == "split" for name, _ in fields) else (None,)
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
            self.sigs_schema = pa.schema(
                [("id", pa.string()), ("source", pa.string()), ("_order", pa.list_(pa.int64()))]
                + [(f"sig{g}", stage.signature_type) for g, stage in enumerate(self.globals)]
            )
            self.sigs_out = pa.ipc.new_file(str(self.sigs_tmp), self.sigs_schema)

    def write(self, table: pa.Table, records: list[dict[str, Any]] | None = None) -> None:
        """Write a batch: `records` are the same rows as dicts when the batch already has them."""
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
            split = table["split"]
            unknown = pc.invert(pc.is_in(split, pa.array(SPLITS))).fill_null(True)
            if pc.any(unknown).as_py():
                raise RunError(f"records reached data/ with split {pc.filter(split, unknown)[0]}, not one of {SPLITS}")
            for name in SPLITS:
                self.kept[name].add_table(table.filter(pc.equal(split, name)))
            return
        sigs = []
        for g, stage in enumerate(self.globals):
            start = time.perf_counter()
            if records is not None:
                sigs.append(stage.signature_records(records))
            else:
                sigs.append(
                    stage.signature_table(table) if columnar_enabled() else stage.signature_records(table.to_pylist())
                )
            self.sig_seconds[g] += time.perf_counter() - start
        # id, source, global order and one column per global stage: Decide sorts and reads them as columns
        columns = {
            "id": table["id"],
            "source": pc.struct_field(table["source"], "name"),
            "_order": table["_order"],
        }
        for g, (stage, values) in enumerate(zip(self.globals, sigs, strict=True)):
            columns[f"sig{g}"] = values if isinstance(values, pa.Array) else pa.array(values, stage.signature_type)
        self.sigs_out.write_table(pa.table(columns).cast(self.sigs_schema))
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

    def __init__(self, plan: Plan, phase: PhaseSpec, reader: ReadSources | None, stage_steps: list[RunStage]):
        super().__init__()
        self.paths = plan.paths
        self.phase_index = phase.index
        self.final = phase.final
        self.global_specs = phase.global_after
        self.reader = reader
        self.stage_steps = stage_steps
        self.fields = plan.annotation_fields()
        self.output = plan.config.output

    def run(self, data, rank: int = 0, world_size: int = 1) -> Iterator[Document]:
        globals_ = [spec.build() for spec in self.global_specs]
        for stage in globals_:  # signatures may need a model or parameters
            stage.setup()
        writers = PhaseWriters(self.paths, self.phase_index, rank, self.fields, self.output, self.final, globals_)
        for doc in data:
            batch: Batch = doc.metadata["batch"]
            records = None if batch.is_table else batch.records()
            writers.write(batch.table(), records)
        writers.close()
        stats: dict[str, Any] = {"sources": {}, "stages": {}, "formats": {}}
        counts = writers.counts
        if self.reader is not None:
            for name, n in self.reader.read_counts.items():
                counts[name]["read"] += n
            stats["stages"]["read"] = _stage_stats_json(self.reader.read_stats, -1)
            stats["formats"] = {k: dict(v) for k, v in self.reader.formats.items()}
            stats["inputs"] = self.reader.input_hashes
        stats["sources"] = writers.source_counts()
        for step in self.stage_steps:
            stats["stages"][step.spec.id] = _stage_stats_json(step.stage.stats, step.spec.position)
        for spec, seconds in zip(self.global_specs, writers.sig_seconds, strict=True):
            stats["stages"][spec.id] = _stage_stats_json(StageStats(seconds=seconds), spec.position)
        atomic_write_text(self.paths.phase(self.phase_index) / "stats" / f"{rank:05d}.json", json.dumps(stats))
        return
        yield  # a datatrove step is a generator; this one consumes the stream and yields nothing


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
            table = _read_intermediate(sig_dir / f"{shard:05d}.arrow")
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
            stats["stages"][stage.id] = _stage_stats_json(stage.stats, spec.position)
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


@dataclass
class RunResult:
    version_dir: Path
    version: str
    stats: dict[str, Any]  # stats.json's body
    fingerprint: str


def manifest_models(config: dict[str, Any]) -> list[dict[str, Any]]:
    """The models the stages of a resolved pipeline configuration use, for manifest.json (the card lists
    them from there): (stage, role, model, revision), as each stage describes them (`Stage.models`)."""
    stages = config.get("stages") or []
    return [
        {"stage": stage_id, **model}
        for stage_id, cfg in zip(stage_ids(stages), stages, strict=True)
        for model in REGISTRY[cfg["type"]].models(cfg)
    ]


class Finalize(PipelineStep):
    """Merge stats, check the accounting, write manifest and card, publish the version folder."""

    name = "finalize"
    type = "frcorpus"

    def __init__(self, plan: Plan):
        super().__init__()
        self.paths = plan.paths
        self.phases = len(plan.phases)
        self.name_ = plan.config.name
        self.requested_version = plan.config.version
        self.pipeline_text = plan.loaded.text
        self.resolved = resolved_yaml(plan.config.model_dump(mode="json"))
        self.config_json = plan.config.model_dump(mode="json")
        self.sources = [
            {
                "name": s.config.name,
                "uri": s.uri,
                "revision": s.revision,
                "license": s.config.license,
                "language": s.config.language,
                "files": [{"path": str(p), "bytes": p.stat().st_size} for p in s.files],
            }
            for s in plan.sources
        ]
        self.run_key = plan.run_key
        self.started = plan.started
        self.stage_inputs = plan.stage_inputs

    def run(self, data, rank: int = 0, world_size: int = 1) -> Iterator[Document]:
        self.finalize()
        return
        yield

    def stat_files(self) -> list[Path]:
        files = []
        for k in range(self.phases):
            files.extend(sorted((self.paths.phase(k) / "stats").glob("*.json")))
            barrier = self.paths.barrier(k) / "stats.json"
            if barrier.exists():
                files.append(barrier)
        return files

    def finalize(self) -> RunResult:
        if (done := _finish_published(self.paths, self.run_key)) is not None:
            return done  # run again after a kill that followed the publishing (a requeued Slurm job): cleanup only
        staging = self.paths.staging
        stats = merge_task_stats(self.stat_files(), [src["name"] for src in self.sources])
        data_files = file_entries(staging, "data")
        reject_files = file_entries(staging, "rejects")
        data_rows = sum(f.rows for f in data_files.values())
        reject_rows = sum(f.rows for f in reject_files.values())
        problems = [
            f"source {name}: read {s.read} != kept {s.kept} + rejected {s.rejected}"
            for name, s in stats.sources.items()
            if s.read != s.kept + s.rejected
        ]
        if data_rows != stats.totals.kept:
            problems.append(f"data/ holds {data_rows} rows but stats count {stats.totals.kept} kept")
        if reject_rows != stats.totals.rejected:
            problems.append(f"rejects/ holds {reject_rows} rows but stats count {stats.totals.rejected}")
        if problems:  # a bug in a stage or the engine: never publish a version that lost records
            raise RunError("accounting check failed: " + "; ".join(problems))
        files = {**data_files, **reject_files}
        hashes: dict[str, str] = {}
        for path in (self.paths.phase(0) / "stats").glob("*.json"):
            hashes.update(json.loads(path.read_text()).get("inputs", {}))
        inputs = [
            {**src, "files": [{**f, "sha256": hashes.get(f["path"])} for f in src["files"]]} for src in self.sources
        ]
        fp = fingerprint({rel: entry.sha256 for rel, entry in files.items()})
        version = auto_version(self.started, fp) if self.requested_version == "auto" else self.requested_version
        target = self.paths.name_dir / version
        if target.exists():
            same = (
                "the same content was already published"
                if self.requested_version == "auto"
                else ("change `version:` in the pipeline")
            )
            raise RunError(
                f"version {version} already exists at {target}; versions are immutable ({same}); "
                f"delete {self.paths.work} to discard this run"
            )
        for src in self.sources:
            stats.sources[src["name"]].license = src["license"]
        stats.fingerprint = fp
        write_stats(staging, stats)
        atomic_write_text(staging / PIPELINE, self.pipeline_text)
        atomic_write_text(staging / RESOLVED, self.resolved)
        manifest = Manifest(
            name=self.name_,
            version=version,
            created=self.started.isoformat(timespec="seconds"),
            frcorpus=__version__,
            dependencies=dependency_versions(),
            run_key=self.run_key,
            executor=self.config_json["executor"],
            inputs=inputs,
            stage_inputs=[
                {"stage": stage_id, "path": str(p), "bytes": p.stat().st_size, "sha256": sha256_path(p)}
                for stage_id, files in self.stage_inputs.items()
                for p in files
            ],
            models=manifest_models(self.config_json),
            rows={"data": data_rows, "rejects": reject_rows},
            # every file of the version: the Parquet files, these three, then the card's (seal_card)
            files={**files, **{name: file_entry(staging / name) for name in RUN_FILES}},
            fingerprint=fp,
        )
        write_manifest(staging, manifest)  # the card reads it
        # README.md and plots/, from the files above (as `frcorpus card` does), listed in the manifest
        manifest = seal_card(staging, write_card(staging))
        contents, others = version_contents(staging)
        unlisted = sorted({*contents, *others} - {*manifest.files, MANIFEST, MANIFEST_HASH})
        if unlisted:  # a leftover of a killed task: the published version would not pass `frcorpus verify`
            raise RunError(f"{staging} holds files that are not part of the version: {', '.join(unlisted)}")
        target.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(self.paths.published, version)
        os.replace(staging, target)
        _clean_up(self.paths, version)
        return RunResult(target, version, stats.as_json(), fp)


def _published_version(paths: Paths, run_key: str) -> str | None:
    """The version this run published before it was killed, its cleanup left undone; None otherwise."""
    if not paths.published.exists() or paths.staging.exists():  # staging still there: not renamed yet
        return None
    version = paths.published.read_text(encoding="utf-8")
    published = VersionDir(paths.name_dir / version)
    if published.manifest_file.exists() and published.manifest.run_key == run_key:
        return version
    return None


def _finish_published(paths: Paths, run_key: str) -> RunResult | None:
    """Do the cleanup of a run killed after it published its version; None if it was not."""
    version = _published_version(paths, run_key)
    if version is None:
        return None
    _clean_up(paths, version)
    return _version_result(paths.name_dir / version)


def _clean_up(paths: Paths, version: str) -> None:
    """Keep the run's logs for inspection and drop its intermediate records; safe to repeat after a kill."""
    logs_dir = paths.name_dir / ".logs" / version
    if paths.run_logs.exists():
        shutil.rmtree(logs_dir, ignore_errors=True)
        logs_dir.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(str(paths.run_logs), logs_dir)
    # renamed away first: a kill during the deletion leaves no half-deleted work folder for a resume to trip on
    trash = paths.work.with_name(f".deleting-{paths.work.name}")
    shutil.rmtree(trash, ignore_errors=True)
    os.replace(paths.work, trash)
    shutil.rmtree(trash)


def _version_result(version_dir: Path) -> RunResult:
    version = VersionDir(version_dir)
    return RunResult(version_dir, version.manifest.version, version.stats.as_json(), version.manifest.fingerprint)


# ----------------------------------------------------------------------------------- executors


@dataclass
class Job:
    """One datatrove pipeline of the plan, with its task count and logging folder."""

    label: str
    steps: list[PipelineStep]
    tasks: int
    logging_dir: Path


def build_jobs(plan: Plan) -> list[Job]:
    jobs = []
    for phase in plan.phases:
        if phase.index > 0 and phase.final and not phase.record_stages:
            jobs.append(
                Job(
                    f"phase {phase.index}: apply decisions -> write data",
                    [ApplyDecisions(plan, phase)],
                    plan.tasks,
                    plan.paths.logs(f"phase{phase.index}"),
                )
            )
            continue
        schema = work_schema(plan.annotation_fields())
        reader = ReadSources(plan.sources, plan.units, schema) if phase.index == 0 else None
        first: PipelineStep = reader or ReadShard(
            plan.paths.phase(phase.index - 1) / "records", plan.paths.barrier(phase.index - 1) / "decisions", schema
        )
        stage_steps = [RunStage(spec) for spec in phase.record_stages]
        writer = WritePhase(plan, phase, reader, stage_steps)
        names = [("read" if phase.index == 0 else "apply decisions")] + [s.id for s in phase.record_stages]
        names.append("write data" if phase.final else "signatures(" + ", ".join(s.id for s in phase.global_after) + ")")
        jobs.append(
            Job(
                f"phase {phase.index}: " + " -> ".join(names),
                [first, *stage_steps, writer],
                plan.tasks,
                plan.paths.logs(f"phase{phase.index}"),
            )
        )
        if not phase.final:
            jobs.append(
                Job(
                    f"barrier {phase.index}: decide " + ", ".join(s.id for s in phase.global_after),
                    [Decide(plan, phase)],
                    1,
                    plan.paths.logs(f"barrier{phase.index}"),
                )
            )
    jobs.append(Job("finalize: stats, manifest, card, publish", [Finalize(plan)], 1, plan.paths.finalize_logs))
    return jobs


class PooledLocalExecutor(LocalPipelineExecutor):
    """datatrove's local executor, running its tasks in a worker pool that every job of the run
    shares: datatrove starts a pool (forkserver, imports) and a Manager per job, about a second
    each time (measured), which a four-job plan would pay four times."""

    def __init__(self, *args, pool=None, **kwargs):
        super().__init__(*args, **kwargs)
        self._pool = pool

    def __getstate__(self):
        state = self.__dict__.copy()
        state["_pool"] = None  # a pool does not travel to its own workers
        return state

    def _run_pooled(self, rank: int) -> PipelineStats:
        return self._run_for_rank(rank)

    def run(self):
        if self._pool is None and self.workers != 1:
            return super().run()
        self._launched = True
        ranks = self.get_incomplete_ranks(range(self.tasks))
        if not ranks:
            return None
        self.save_executor_as_json()
        if self.workers == 1:  # in this process, without the Manager process datatrove starts
            stats = PipelineStats()
            pipeline = self.pipeline
            for rank in ranks:
                self.pipeline = copy.deepcopy(pipeline)
                stats += self._run_for_rank(rank)
            self.pipeline = pipeline
        else:
            stats = sum(self._pool.imap_unordered(self._run_pooled, ranks), start=PipelineStats())
        with self.logging_dir.open("stats.json", "wt") as statsfile:
            stats.save_to_disk(statsfile)
        return stats


def make_executor(plan: Plan, job: Job, depends=None, slurm_logs: Path | None = None, pool=None):
    ex = plan.config.executor
    workers = 1 if job.tasks == 1 else ex.workers
    if ex.type == "local":
        return PooledLocalExecutor(
            job.steps,
            tasks=job.tasks,
            workers=min(workers, job.tasks),
            logging_dir=str(job.logging_dir),
            pool=pool,
        )
    if ex.type == "ray":
        from datatrove.executor import RayPipelineExecutor

        return RayPipelineExecutor(
            job.steps,
            tasks=job.tasks,
            workers=workers,
            logging_dir=str(job.logging_dir),
            cpus_per_task=ex.cpus_per_task,
            mem_per_cpu_gb=ex.mem_per_cpu_gb,
            gpus_per_task=ex.gpus_per_task,
            depends=depends,
        )
    from datatrove.executor import SlurmPipelineExecutor

    return SlurmPipelineExecutor(
        job.steps,
        tasks=job.tasks,
        time=ex.time,
        partition=ex.partition,
        cpus_per_task=ex.cpus_per_task,
        mem_per_cpu_gb=ex.mem_per_cpu_gb,
        gpus_per_task=ex.gpus_per_task,
        workers=workers,
        job_name=f"{ex.job_name}-{job.logging_dir.name}",
        qos=ex.qos,
        venv_path=ex.venv_path,
        env_command=ex.env_command,
        sbatch_args=dict(ex.sbatch_args),
        logging_dir=str(job.logging_dir),
        depends=depends,
        slurm_logs_folder=str(slurm_logs or job.logging_dir / "slurm_logs"),
    )


def slurm_scripts(plan: Plan, tmp: Path) -> list[tuple[str, str]]:
    """The sbatch scripts a Slurm run would submit, without submitting anything."""
    scripts = []
    for job in build_jobs(plan):
        ex = make_executor(plan, job, slurm_logs=tmp / job.logging_dir.name)
        array = min(job.tasks, ex.max_array_size)
        pickled = job.logging_dir / "executor.pik"
        scripts.append(
            (
                job.label,
                ex.get_launch_file_contents(
                    ex.get_sbatch_args(array), f"srun -l -n 1 launch_pickled_pipeline {pickled}"
                ),
            )
        )
    return scripts


# ----------------------------------------------------------------------------------- the run's lock

ORPHANS_GRACE_S = 5.0  # how long a new run waits for the workers of a killed run to die with it


class RunLock:
    """An exclusive flock on the work folder's run.lock, which names its holder (pid, host, start time).
    flock belongs to the open file, which every pool worker of the run shares (`_join_run`): the lock is
    free once the main process and all its workers are gone, however they ended."""

    def __init__(self, paths: Paths):
        self.path = paths.lock
        self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            self._lock_or_refuse(paths.work)
        except BaseException:
            os.close(self.fd)
            raise
        since = dt.datetime.now().astimezone().isoformat(timespec="seconds")
        os.ftruncate(self.fd, 0)
        os.pwrite(self.fd, json.dumps({"pid": os.getpid(), "host": socket.gethostname(), "since": since}).encode(), 0)

    def _lock_or_refuse(self, work: Path) -> None:
        deadline = time.monotonic() + ORPHANS_GRACE_S
        while True:
            try:
                fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return
            except BlockingIOError:
                holder = self._holder()
            running = f"a run of this pipeline is running (pid {holder['pid']}) since {holder['since']} in {work}"
            if _alive(holder):
                raise RunError(f"{running}; wait for it to finish or stop it")
            if time.monotonic() > deadline:  # its main process died, but not every process that holds the lock
                raise RunError(
                    f"{running}: pid {holder['pid']} has exited but processes it started still hold {self.path}; "
                    f"wait for them to finish or stop them (`fuser -v {self.path}` lists them)"
                )
            time.sleep(0.1)

    def _holder(self) -> dict[str, Any]:
        try:
            return json.loads(os.pread(self.fd, 4096, 0))
        except ValueError:  # the holder has the lock but has not written its name yet
            return {"pid": "?", "host": None, "since": "?"}

    def release(self) -> None:
        os.close(self.fd)  # not LOCK_UN, which would free the lock under workers that still run

    def __enter__(self) -> RunLock:
        return self

    def __exit__(self, *exc) -> None:
        self.release()


def _alive(holder: dict[str, Any]) -> bool:
    if holder["host"] != socket.gethostname():
        return holder["host"] is not None  # a process on another machine sharing the folder: assume it runs
    try:
        os.kill(holder["pid"], 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


class _InheritedFd:
    """An open file descriptor sent to pool workers: forkserver children inherit none."""

    def __init__(self, fd: int):
        self.fd = fd

    def __reduce__(self):
        return _rebuild_fd, (multiprocess.reduction.DupFd(self.fd),)


def _rebuild_fd(dup) -> _InheritedFd:
    return _InheritedFd(dup.detach())


def _join_run(lock: _InheritedFd) -> None:
    """Start of a pool worker. It keeps `lock` open, so the run's lock stays held while it lives, and it
    dies with the main process: a run killed with kill -9 leaves no worker writing into its work folder
    (the forkserver, their parent, outlives the main process as long as they do)."""
    main = multiprocess.parent_process()
    threading.Thread(target=_kill_self_after, args=(main,), daemon=True).start()


def _kill_self_after(process) -> None:
    process.join()
    os.kill(os.getpid(), signal.SIGKILL)


def prepare_run(plan: Plan, resume: bool) -> RunLock:
    """Take the run's lock, and refuse to overwrite a version or to silently continue an interrupted run."""
    cfg, paths = plan.config, plan.paths
    interrupted = paths.work.exists()
    # the lock before any check: the work folder may be a live run's (one publishing its version among them)
    lock = RunLock(paths) if interrupted else None
    try:
        own_version = _published_version(paths, plan.run_key) == cfg.version  # killed before its cleanup
        if cfg.version != "auto" and (paths.name_dir / cfg.version).exists() and not own_version:
            raise RunError(
                f"version {cfg.version} already exists at {paths.name_dir / cfg.version}; versions are "
                "immutable: change `version:` (or use version: auto)"
            )
        if interrupted and not resume:
            raise RunError(
                f"an interrupted run of this pipeline exists at {paths.work}; continue it with "
                "`frcorpus run --resume`, or delete that folder to start over"
            )
        if not resume:  # a finished run of the same pipeline and inputs left its finalize marker here
            shutil.rmtree(paths.finalize_logs, ignore_errors=True)
        paths.work.mkdir(parents=True, exist_ok=True)
        lock = lock or RunLock(paths)
        (paths.work / "pipeline.yaml").write_text(plan.loaded.text, encoding="utf-8")
    except BaseException:
        if lock is not None:
            lock.release()
        raise
    return lock


def run_plan(plan: Plan, resume: bool = False, progress=None) -> RunResult | list[str]:
    """Run every job in order, holding the run's lock. Local and Ray block until done; Slurm submits a
    dependent chain of jobs and returns their labels (the lock covers the submission only)."""
    with prepare_run(plan, resume) as lock:
        if (done := _finish_published(plan.paths, plan.run_key)) is not None:
            return done
        _console_logger()
        jobs = build_jobs(plan)
        ex_type = plan.config.executor.type
        if ex_type == "slurm":
            previous = None
            for job in jobs:
                previous = make_executor(plan, job, depends=previous)
            previous.run()  # launches the whole chain through `depends`
            return [job.label for job in jobs]
        if ex_type == "ray":
            import ray

            if not ray.is_initialized():
                ex = plan.config.executor
                # a local instance gets as many CPUs as the tasks need, so that small machines can run it too
                local = {} if ex.address else {"num_cpus": max(os.cpu_count() or 1, ex.cpus_per_task)}
                ray.init(address=ex.address, include_dashboard=False, log_to_driver=False, **local)
        with _worker_pool(plan, lock) as pool:
            for job in jobs:
                _run_job(plan, job, pool, progress)
        return load_result(plan)


@contextlib.contextmanager
def _worker_pool(plan: Plan, lock: RunLock):
    """One process pool for every multi-task job of a local run; its workers hold the run's lock too."""
    ex = plan.config.executor
    workers = min(ex.workers, plan.tasks)
    if ex.type != "local" or workers <= 1:
        yield None
        return
    context = multiprocess.get_context("forkserver")
    with context.Pool(workers, initializer=_join_run, initargs=(_InheritedFd(lock.fd),)) as pool:
        yield pool


def _run_job(plan: Plan, job: Job, pool, progress) -> None:
    executor = make_executor(plan, job, pool=pool)
    if progress is not None:
        progress.start_job(job)
    try:
        executor.run()
    finally:
        if progress is not None:
            progress.end_job(job)
    incomplete = executor.get_incomplete_ranks(skip_completed=True)
    if incomplete:
        raise RunError(
            f"{job.label}: tasks {incomplete} failed; see the logs in {job.logging_dir / 'logs'}; "
            "fix the cause and continue with `frcorpus run --resume`"
        )


def load_result(plan: Plan) -> RunResult:
    """Find the version the finalize job published (it may run in a worker, so read it back from disk)."""
    candidates = []
    for manifest_file in plan.paths.name_dir.glob(f"*/{MANIFEST}"):
        try:
            manifest = VersionDir(manifest_file.parent).manifest
        except VersionDirError:  # a version another release wrote: not this run's
            continue
        if manifest.run_key == plan.run_key:
            candidates.append((manifest.created, manifest_file.parent))
    if not candidates:
        raise RunError(
            f"the run finished but no version with run key {plan.run_key} is in {plan.paths.name_dir} "
            f"(logs: {plan.paths.name_dir / '.logs'})"
        )
    return _version_result(max(candidates)[1])


def generation_estimates(plan: Plan) -> list[tuple[str, dict[str, float]]]:
    """For `run --dry-run`: what each generating stage (one with an `estimate` method: translate)
    would cost on the records the sources hold. An upper bound: the stages before it, which may
    reject records, are not run."""
    estimating = [
        (stage_id, stage_cfg)
        for stage_id, stage_cfg in zip(plan.config.stage_ids(), plan.config.stages, strict=True)
        if hasattr(REGISTRY[stage_cfg.type], "estimate")
    ]
    if not estimating:
        return []
    records = [
        r
        for i, src in enumerate(plan.sources)
        for r in SourceReader(src, i).read_files(list(range(len(src.files))), src.config.limit)
        if r["_reject"] is None
    ]
    return [(stage_id, REGISTRY[cfg.type](cfg, stage_id).estimate(records)) for stage_id, cfg in estimating]
