"""The plan of a run: a pipeline's sources resolved, its stages cut into phases at the global stages,
the reading work cut into units, where the run works and publishes, and its run key; plus what a
dry run estimates the generating stages would cost.

The run key hashes the configuration, the frcorpus version and the size and modification time of
every input file: a run with the same key continues in the same work folder (`--resume`).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa

from frcorpus import __version__
from frcorpus.config import LoadedPipeline, PipelineConfig, resolve_sources
from frcorpus.sources.filestate import FilePart
from frcorpus.sources.reader import SourceReader
from frcorpus.sources.resolve import ResolvedSource, SourceError
from frcorpus.sources.split import split_file
from frcorpus.stages import REGISTRY
from frcorpus.stages.base import Stage
from frcorpus.stages.llm_support import GenerationEstimate


class RunError(Exception):
    """A run that cannot start or did not finish (exit code 1)."""


class VersionExistsError(RunError):
    """The version a run would publish exists already; `same_content`: its name is the auto version of the same
    content fingerprint, so it holds what this run made. Otherwise the pipeline's `version:` names it, a
    configuration error (exit code 2)."""

    def __init__(self, message: str, target: Path, same_content: bool):
        super().__init__(message)
        self.target = target
        self.same_content = same_content


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

    def progress(self, what: str) -> Path:
        """Where the tasks of a job with long stages report their progress (`stages.progress`), kept with
        the job's logs."""
        return self.logs(what) / "progress"

    @property
    def finalize_logs(self) -> Path:
        # outside the work folder, which the finalize job deletes: datatrove writes this job's
        # completion marker after the job returns, and would otherwise recreate the work folder
        return self.name_dir / ".logs" / f"finalize-{self.work.name}"


@dataclass
class Unit:
    """A piece of reading work: files of one source, read in order, with an optional record budget; or
    a part of one file (`split_units`)."""

    source: int
    files: list[int]
    budget: int | None
    part: FilePart | None = None

    @property
    def hashes_files(self) -> bool:
        """Whether the task reading it hashes its files for the manifest: one part of a file does."""
        return self.part is None or self.part.index == 0


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

    def stage_specs(self) -> Iterator[StageSpec]:
        """Every stage of the pipeline, in order."""
        return _stage_specs(self.phases)

    def annotation_fields(self) -> list[tuple[str, pa.DataType]]:
        fields = []
        for spec in self.stage_specs():
            for name, dtype in REGISTRY[spec.config.type].annotations:
                if name not in [f[0] for f in fields]:
                    fields.append((name, dtype))
        return fields

    def split_annotation(self) -> str | None:
        """The annotation that names each kept record's split, when a stage sets one
        (`Stage.split_annotation`): data/ then holds one file per split and task."""
        for spec in self.stage_specs():
            if (name := REGISTRY[spec.config.type].split_annotation) is not None:
                return name
        return None


def _stage_specs(phases: list[PhaseSpec]) -> Iterator[StageSpec]:
    for phase in phases:
        yield from phase.record_stages + phase.global_after


def build_plan(loaded: LoadedPipeline, cwd: Path | None = None) -> Plan:
    """Resolve sources (hashing every input file) and cut the stages into phases."""
    cfg = loaded.config
    if loaded.sources is not None:  # found by check_pipeline already
        sources = list(loaded.sources)
    else:
        sources, problems = resolve_sources(str(loaded.path), loaded.lines, list(enumerate(cfg.sources)), cwd)
        if problems:  # every broken source at once
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
    stage_inputs = {spec.id: files for spec in _stage_specs(phases) if (files := spec.build().input_files())}
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


def split_units(plan: Plan, say: Callable[[str], None]) -> list[Unit]:
    """The plan's reading units, with big files cut into parts when there are fewer files than tasks
    (`executor.split_mb`): each file gets a share of the tasks that follows its share of the bytes, in
    parts of at least `split_mb` MB. Cutting a file reads it once (`sources.split`); `say` hears what
    takes time and why a big file stays whole. The parts of a file go to consecutive tasks."""
    min_bytes = plan.config.executor.split_mb << 20
    splittable = [u for u in plan.units if u.budget is None and u.part is None]
    if not min_bytes or len(plan.units) >= plan.tasks or not splittable:
        return plan.units
    sizes = {id(u): plan.sources[u.source].files[u.files[0]].stat().st_size for u in splittable}
    total = sum(sizes.values()) or 1
    units: list[Unit] = []
    for unit in plan.units:
        size = sizes.get(id(unit), 0)
        parts = min(round(plan.tasks * size / total), size // min_bytes)
        if parts < 2:
            units.append(unit)
            continue
        src = plan.sources[unit.source]
        path = src.files[unit.files[0]]
        start = time.perf_counter()
        split = split_file(path, src.config, parts)
        seconds = time.perf_counter() - start
        if not split.parts:
            say(
                f"source '{src.config.name}': {src.rel(path)} ({size / 1e6:,.0f} MB) is read by one task: "
                + split.why_whole
            )
            units.append(unit)
            continue
        say(
            f"source '{src.config.name}': {src.rel(path)} ({size / 1e6:,.0f} MB) cut into {len(split.parts)} parts "
            f"for {len(split.parts)} tasks (read in {seconds:.1f} s)"
        )
        units.extend(Unit(unit.source, unit.files, None, part) for part in split.parts)
    return units


def generation_estimates(plan: Plan, say: Callable[[str], None] | None = None) -> list[tuple[str, GenerationEstimate]]:
    """For `run --dry-run`: what each generating stage (one with an `estimate` method: translate,
    llm_judge) would cost on the records the sources hold, measured on this machine (the generation
    cache's history of the model, else a first batch of requests generated in full and kept in the
    cache); `say` hears what takes time. An upper bound: the stages before it, which may reject
    records, are not run."""
    estimating = [spec for spec in plan.stage_specs() if hasattr(REGISTRY[spec.config.type], "estimate")]
    if not estimating:
        return []
    records = [
        r
        for i, src in enumerate(plan.sources)
        for r in SourceReader(src, i).read_files(list(range(len(src.files))), src.config.limit)
        if r["_reject"] is None
    ]
    return [(spec.id, spec.build().estimate(records, say)) for spec in estimating]
