"""The last job of a run: merge the tasks' stats, check that every record read is in data/ or
rejects/, write stats.json, manifest.json and the card, and publish the staging folder as the version.

Publishing is one rename, after the version's name is written to the work folder; the cleanup that
follows (logs kept, intermediate records deleted) is safe to repeat, so a run killed after the rename
finishes with the cleanup alone when run again.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from datatrove.data import Document
from datatrove.pipeline.base import PipelineStep

from frcorpus import __version__
from frcorpus.engine.losses import warn_of_losses
from frcorpus.engine.plan import Paths, Plan, RunError, VersionExistsError
from frcorpus.stages import REGISTRY
from frcorpus.version.card import seal_card, write_card
from frcorpus.version.layout import (
    MANIFEST,
    MANIFEST_HASH,
    PIPELINE,
    RESOLVED,
    RUN_FILES,
    Manifest,
    VersionDir,
)
from frcorpus.version.writer import (
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
from frcorpus.yamlconf import resolved_stage_ids


@dataclass
class RunResult:
    """The version a run published."""

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
        for stage_id, cfg in zip(resolved_stage_ids(stages), stages, strict=True)
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
        if (done := finish_published(self.paths, self.run_key)) is not None:
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
            raise VersionExistsError(
                f"version {version} already exists at {target}; versions are immutable ({same}); "
                f"delete {self.paths.work} to discard this run",
                target,
                same_content=self.requested_version == "auto",
            )
        for src in self.sources:
            stats.sources[src["name"]].license = src["license"]
        stats.fingerprint = fp
        warn_of_losses(staging, stats)
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


def published_version(paths: Paths, run_key: str) -> str | None:
    """The version this run published before it was killed, its cleanup left undone; None otherwise."""
    if not paths.published.exists() or paths.staging.exists():  # staging still there: not renamed yet
        return None
    version = paths.published.read_text(encoding="utf-8")
    published = VersionDir(paths.name_dir / version)
    if published.manifest_file.exists() and published.manifest.run_key == run_key:
        return version
    return None


def finish_published(paths: Paths, run_key: str) -> RunResult | None:
    """Do the cleanup of a run killed after it published its version; None if it was not."""
    version = published_version(paths, run_key)
    if version is None:
        return None
    _clean_up(paths, version)
    return version_result(paths.name_dir / version)


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


def version_result(version_dir: Path) -> RunResult:
    version = VersionDir(version_dir)
    return RunResult(version_dir, version.manifest.version, version.stats.as_json(), version.manifest.fingerprint)
