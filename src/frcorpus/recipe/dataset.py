"""The dataset a recipe trains on: a version directory, the latest version of a dataset folder, or a
version pushed to the Hub (`frcorpus push`), identified by its manifest (name, version, fingerprint)."""

from __future__ import annotations

import logging
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from ..hub_access import hub_unavailable, require_hub
from ..version.layout import MANIFEST, STATS, VersionDir, VersionDirError, check_version_dir
from .config import DatasetRef

logger = logging.getLogger(__name__)


class DatasetError(ValueError):
    """A dataset reference that does not lead to a version with conversations."""


@dataclass(frozen=True)
class DatasetVersion:
    name: str
    version: str
    fingerprint: str | None
    source: str  # the folder, or org/name@revision
    folder: Path
    files: list[Path]
    split: str  # "train" or "all"
    hub: str | None = None
    revision: str | None = None
    counts: dict[str, int] = field(default_factory=dict)
    # a subset of the version chosen by frcorpus (`recipe compare`'s token budget): what it is, and its
    # files instead of the version's; part of what the SFT's key depends on
    selection: dict[str, Any] | None = None

    def describe(self) -> dict[str, Any]:
        """What model cards, results and frcorpus_sft.json record about the data."""
        out = {"name": self.name, "version": self.version, "fingerprint": self.fingerprint, "source": self.source}
        out["split"] = self.split
        if self.hub:
            out["hub"] = self.hub
            out["revision"] = self.revision
        if self.selection is not None:
            out["selection"] = self.selection
        return out


def resolve_dataset(ref: DatasetRef) -> DatasetVersion:
    if ref.hub is not None:
        folder = _hub_snapshot(ref.hub, ref.revision)
        source = f"{ref.hub}@{ref.revision or 'main'}"
    elif ref.pipeline is not None:
        folder = pipeline_version(Path(ref.pipeline))
        source = str(folder)
    else:
        folder = _version_folder(Path(ref.path))
        source = str(folder)
    version = VersionDir(folder)
    if not version.manifest_file.is_file():
        raise DatasetError(f"{folder}: no manifest.json; give a version written by `frcorpus run`")
    try:
        manifest = version.manifest
    except VersionDirError as e:
        raise DatasetError(f"dataset: {e}") from None
    files, split = _data_files(version, ref.split)
    return DatasetVersion(
        name=manifest.name,
        version=manifest.version,
        fingerprint=manifest.fingerprint,
        source=source,
        folder=folder,
        files=files,
        split=split,
        hub=ref.hub,
        revision=ref.revision,
    )


def pipeline_problems(pipeline: Path) -> list[str]:
    """What `frcorpus validate` would say against a dataset's pipeline file, without running it."""
    from ..config import check_pipeline

    _, problems = check_pipeline(pipeline)
    return [f"dataset pipeline {pipeline}: {problem}" for problem in problems]


def pipeline_version(pipeline: Path) -> Path:
    """The version directory that `frcorpus run PIPELINE` writes: an existing version whose manifest has this
    run's key (the same frcorpus, configuration and input files: the engine's own resume key), else a new run."""
    from ..config import check_pipeline
    from ..engine.plan import RunError, VersionExistsError, build_plan
    from ..engine.run import run_plan
    from ..sources.resolve import SourceError

    loaded, problems = check_pipeline(pipeline)
    if problems:
        raise DatasetError(f"dataset pipeline {pipeline}: " + "; ".join(problems))
    try:
        plan = build_plan(loaded)
    except SourceError as e:
        raise DatasetError(f"dataset pipeline {pipeline}: " + "; ".join(e.problems)) from None
    if plan.config.executor.type == "slurm":  # a submission returns before the version exists
        raise DatasetError(
            f"dataset pipeline {pipeline}: its executor is slurm; run it with `frcorpus run`, then give the "
            "version directory as the dataset's path"
        )
    name_dir = plan.paths.name_dir
    for version in _versions(name_dir):
        try:
            made_by_this_run = version.manifest.run_key == plan.run_key
        except VersionDirError:  # a damaged manifest: not a version to reuse
            continue
        if made_by_this_run:
            logger.info("dataset pipeline %s: its version %s is up to date", pipeline, version.path.name)
            return version.path
    logger.info("dataset pipeline %s: running it (no version of %s was made by this run)", pipeline, name_dir)
    try:
        result = run_plan(plan)
    except VersionExistsError as e:
        if not e.same_content:
            raise DatasetError(f"dataset pipeline {pipeline}: {e}") from None
        # the configuration changed but not what it makes (a description, say): that version is this run's
        shutil.rmtree(plan.paths.work, ignore_errors=True)
        logger.info("dataset pipeline %s: it made the same content as %s", pipeline, e.target.name)
        return e.target
    except RunError as e:
        raise DatasetError(f"dataset pipeline {pipeline}: the run failed: {e}") from None
    return result.version_dir


def _versions(folder: Path) -> list[VersionDir]:
    """The versions in a dataset folder <out>/<name> (its subfolders with a manifest), by name."""
    if not folder.is_dir():
        return []
    return [VersionDir(p) for p in sorted(folder.iterdir()) if p.is_dir() and (p / MANIFEST).is_file()]


def _version_folder(path: Path) -> Path:
    """A version directory as given, or the newest version (by manifest `created`) of a dataset folder."""
    if path.is_dir() and not (path / STATS).is_file():
        versions = _versions(path)
        if versions:
            try:
                newest = max(versions, key=lambda v: (v.manifest.created, v.path.name)).path
            except VersionDirError as e:
                raise DatasetError(f"dataset: {e}") from None
            logger.info("dataset %s: taking its newest version %s", path, newest.name)
            return newest
    try:
        return check_version_dir(path).path
    except VersionDirError as e:
        raise DatasetError(f"dataset: {e}") from None


def _data_files(version: VersionDir, split: str) -> tuple[list[Path], str]:
    folder = version.path
    data, train = version.data_files(), version.data_files("train")
    if split == "train" and not train:
        raise DatasetError(
            f"{folder}: dataset.split is train but the version has no data/train-*.parquet (no split stage); "
            "use split: all, or add a split stage to the pipeline"
        )
    if train and split in ("auto", "train"):
        return train, "train"
    if not data:
        raise DatasetError(f"{folder}: no data/*.parquet; this version kept no records")
    return data, "all"


def _hub_snapshot(repo: str, revision: str | None) -> Path:
    from huggingface_hub import snapshot_download

    fix = "give a local version directory (dataset.path)"
    if hub_unavailable() is not None:  # offline: the snapshot of the local Hugging Face cache, if it holds one
        try:
            return Path(snapshot_download(repo, repo_type="dataset", revision=revision, local_files_only=True))
        except Exception:  # noqa: BLE001 - not cached
            require_hub(f"the dataset {repo}@{revision or 'main'}", fix, DatasetError)
    try:
        return Path(snapshot_download(repo, repo_type="dataset", revision=revision))
    except Exception as e:  # noqa: BLE001 - unknown, gated, cut off: the same advice
        raise DatasetError(
            f"dataset {repo}@{revision or 'main'}: cannot download it from the Hub ({type(e).__name__}: {e}); "
            f"on an offline machine {fix}"
        ) from None


def load_conversations(version: DatasetVersion, max_records: int | None = None):
    """A `datasets.Dataset` with one `messages` column (role and content only), for TRL. Records without an
    assistant turn cannot be trained on with assistant-only loss: they are counted and left out, never
    silently (their ids are logged)."""
    from datasets import Dataset

    records, counts = read_conversations(version, max_records)
    return Dataset.from_list([{"messages": r["messages"]} for r in records]), counts


def read_conversations(
    version: DatasetVersion, max_records: int | None = None, extra: tuple[str, ...] = ()
) -> tuple[list[dict[str, Any]], dict[str, int]]:
    """The records that can be trained on, each with its `id` and `messages` (role and content only) and
    the `extra` columns the files have, and the counts of load_conversations."""
    rows: list[dict[str, Any]] = []
    skipped: list[str] = []
    total = 0
    for path in version.files:
        table = pq.read_table(path, columns=_columns(path, extra))
        for record in table.to_pylist():
            if max_records is not None and total >= max_records:
                break
            total += 1
            messages = [{"role": m["role"], "content": m["content"]} for m in record.get("messages") or []]
            if not any(m["role"] == "assistant" and m["content"] for m in messages):
                skipped.append(str(record.get("id")))
                continue
            rows.append({**record, "messages": messages})
    if skipped:
        logger.warning("%d records have no assistant turn and are not trained on: %s", len(skipped), skipped[:10])
    if not rows:
        raise DatasetError(f"{version.source}: no record with an assistant turn to train on")
    return rows, {"records": total, "trained": len(rows), "skipped_no_assistant": len(skipped)}


def _columns(path: Path, extra: tuple[str, ...] = ()) -> list[str]:
    names = pq.read_schema(path).names
    if "messages" not in names:
        raise DatasetError(f"{path}: no messages column; the recipe trains on frcorpus versions (chat messages)")
    return [c for c in ("id", "messages", *extra) if c in names]
