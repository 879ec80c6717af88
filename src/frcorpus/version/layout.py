"""The version directory `<out>/<name>/<version>/`: where each of its files is, and its two JSON files as
pydantic models.

    data/                    kept records: <rank>.parquet, or <split>-<rank>.parquet after a `split` stage
    rejects/                 rejected records, with stage, reason and detail: p<phase>-<rank>.parquet
    plots/                   the card's plots (PNG)
    README.md                the dataset card
    stats.json               counts per source and per stage (`Stats`)
    manifest.json            what made the version, and every file's sha256 (`Manifest`)
    manifest.sha256          the sha256 of manifest.json's bytes (`sha256sum` format): it seals the manifest
    pipeline.yaml            the pipeline as written
    pipeline.resolved.yaml   the pipeline with every default filled in

`Stats.to_bytes()` and `Manifest.to_bytes()` are the files' bytes. A key absent from a file stays absent
when it is written back (`counters` of a stage that counted nothing, `rows` of a file that is not Parquet),
and keys this release does not know are kept, so that a version written by another release still reads.
"""

from __future__ import annotations

import json
from collections import Counter
from functools import cached_property
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from frcorpus.record import SPLITS
from frcorpus.yamlconf import resolved_stage_ids

DATA = "data"
REJECTS = "rejects"
PLOTS = "plots"
CARD = "README.md"
STATS = "stats.json"
MANIFEST = "manifest.json"
MANIFEST_HASH = "manifest.sha256"
PIPELINE = "pipeline.yaml"
RESOLVED = "pipeline.resolved.yaml"
RUN_FILES = (STATS, PIPELINE, RESOLVED)  # written by the run's finalize step, before the card
REQUIRED_FILES = (CARD, *RUN_FILES)  # every version's manifest lists them, besides its Parquet files and plots


class VersionDirError(ValueError):
    """A path that is not a version directory, or one whose files do not read (the CLI exits with 2)."""


# ----------------------------------------------------------------------------------- stats.json


class JsonModel(BaseModel):
    """A JSON object of a version's files: unknown keys are kept, absent ones stay absent."""

    model_config = ConfigDict(extra="allow")

    def as_json(self) -> dict[str, Any]:
        """The object as it is written (the keys it was read or made with)."""
        return self.model_dump(mode="json", by_alias=True, exclude_unset=True)


class SourceStats(JsonModel):
    """Records of one source: read = kept + rejected (a run that breaks that publishes nothing)."""

    read: int
    kept: int
    rejected: int
    formats: dict[str, int] = Field(default_factory=dict, description="records kept by the reader, per input format")
    license: str | None = Field(None, description="the licence the pipeline declares for the source")


class StageStats(JsonModel):
    """What one stage did, summed over the tasks of the run."""

    n_in: int = Field(alias="in")
    kept: int
    rejected: dict[str, int] = Field(description="records rejected, per reason (`<stage type>.<reason>`)")
    seconds: float
    counters: dict[str, int | float] = Field(
        default_factory=dict, description="the stage's own counts (absent when it counted nothing)"
    )


class Totals(JsonModel):
    read: int
    kept: int
    rejected: int


class StageLoss(JsonModel):
    """A source that lost most of its records at one stage (the run warns of it)."""

    source: str
    stage: str
    n_in: int = Field(alias="in", description="the source's records that reached the stage")
    rejected: int
    reasons: dict[str, int] = Field(description="the source's rejections at the stage, per reason, most first")
    message: str = Field(description="the warning, as the run prints and logs it")


class Stats(JsonModel):
    """stats.json: sources and stages in the pipeline's order (`read` is the reader, first)."""

    sources: dict[str, SourceStats]
    stages: dict[str, StageStats]
    totals: Totals
    warnings: list[StageLoss] = Field(
        default_factory=list,
        description="each source that lost 90% or more of the records that reached a stage, there (absent when none)",
    )
    fingerprint: str | None = Field(None, description="the data's fingerprint, as in manifest.json")

    def to_bytes(self) -> bytes:
        return (json.dumps(self.as_json(), indent=2) + "\n").encode("utf-8")


# ----------------------------------------------------------------------------------- manifest.json


class InputFile(JsonModel):
    path: str
    bytes: int
    sha256: str | None = Field(description="null for a file no task read")


class Input(JsonModel):
    """A source of the pipeline and the files it read."""

    name: str
    uri: str
    revision: str | None = Field(description="the Hub commit of a Hub source")
    license: str | None
    language: str | None
    files: list[InputFile]


class StageInput(JsonModel):
    """A file a stage reads besides the sources (a benchmark, a scorer)."""

    stage: str
    path: str
    bytes: int
    sha256: str


class ModelUse(JsonModel):
    """A model a stage was configured with."""

    stage: str
    role: str
    model: str | None
    revision: str | None


class Rows(JsonModel):
    data: int
    rejects: int


class FileEntry(JsonModel):
    """A file of the version."""

    sha256: str
    bytes: int
    rows: int | None = Field(None, description="Parquet files only")


class Manifest(JsonModel):
    """manifest.json: what made the version, and every file of it (besides manifest.json and
    manifest.sha256) with its sha256, in name order."""

    name: str
    version: str
    created: str = Field(description="when the run started (ISO 8601, seconds)")
    frcorpus: str
    dependencies: dict[str, str] = Field(description="python and the versions of the main libraries")
    run_key: str
    executor: dict[str, Any]
    inputs: list[Input]
    stage_inputs: list[StageInput]
    models: list[ModelUse]
    rows: Rows
    files: dict[str, FileEntry]
    fingerprint: str = Field(description="sha256 over the Parquet files' names and sha256s: the data's identity")

    def to_bytes(self) -> bytes:
        body = {**self.as_json(), "files": {rel: self.files[rel].as_json() for rel in sorted(self.files)}}
        return (json.dumps(body, indent=2, ensure_ascii=False) + "\n").encode("utf-8")


# ----------------------------------------------------------------------------------- names in data/


def data_file_name(rank: int, split: str | None = None) -> str:
    """One task's data file: <rank>.parquet, or <split>-<rank>.parquet when a `split` stage separates the
    splits (the names the Hub reads splits from)."""
    return f"{rank:05d}.parquet" if split is None else f"{split}-{rank:05d}.parquet"


def split_of(name: str) -> str:
    """The split a data file belongs to, from its name: `train` for a version without splits."""
    prefix = name.split("-", 1)[0]
    return prefix if "-" in name and prefix in SPLITS else "train"


def split_files(version_dir: Path) -> dict[str, str]:
    """The splits of a version and the glob of each, relative to the version directory, for the dataset
    card's `configs: data_files`: {"train": "data/train-*.parquet", "test": "data/test-*.parquet"} after
    a `split` stage, else {"train": "data/*.parquet"}."""
    names = {p.name.split("-", 1)[0] for p in (Path(version_dir) / DATA).glob("*-*.parquet")}
    found = [s for s in SPLITS if s in names]
    return {s: f"{DATA}/{s}-*.parquet" for s in found} if found else {"train": f"{DATA}/*.parquet"}


def is_parquet(rel: str) -> bool:
    """A data or rejects file: what the fingerprint covers."""
    return rel.startswith((f"{DATA}/", f"{REJECTS}/")) and rel.endswith(".parquet")


# ----------------------------------------------------------------------------------- the directory


class VersionDir:
    """The files of one version directory. The JSON and YAML files are read once, on first use, and
    checked against their models: a VersionDir is one look at a version (take a new one after a file
    is rewritten)."""

    def __init__(self, path: Path | str):
        self.path = Path(path)

    def __repr__(self) -> str:
        return f"VersionDir({str(self.path)!r})"

    @property
    def data(self) -> Path:
        return self.path / DATA

    @property
    def rejects(self) -> Path:
        return self.path / REJECTS

    @property
    def plots(self) -> Path:
        return self.path / PLOTS

    @property
    def card_file(self) -> Path:
        return self.path / CARD

    @property
    def stats_file(self) -> Path:
        return self.path / STATS

    @property
    def manifest_file(self) -> Path:
        return self.path / MANIFEST

    @property
    def seal_file(self) -> Path:
        return self.path / MANIFEST_HASH

    def parquet_files(self, folder: str) -> list[Path]:
        """`data/*.parquet` or `rejects/*.parquet` in name order (empty when the folder has none)."""
        return sorted((self.path / folder).glob("*.parquet"))

    def data_files(self, split: str | None = None) -> list[Path]:
        """The kept records' files, or those of one split (none when the version has no such split)."""
        files = self.parquet_files(DATA)
        if split is None:
            return files
        return [p for p in files if p.name.startswith(f"{split}-")]

    def reject_files(self) -> list[Path]:
        return self.parquet_files(REJECTS)

    def data_file(self, rank: int, split: str | None = None) -> Path:
        return self.data / data_file_name(rank, split)

    def reject_file(self, phase: int, rank: int) -> Path:
        """The rejects of one task of one phase."""
        return self.rejects / f"p{phase}-{rank:05d}.parquet"

    @cached_property
    def stats(self) -> Stats:
        return self._read(Stats, STATS)

    @cached_property
    def manifest(self) -> Manifest:
        return self._read(Manifest, MANIFEST)

    def _read(self, model: type[JsonModel], name: str) -> Any:
        path = self.path / name
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise VersionDirError(f"{path}: missing; is {self.path} a version directory?") from None
        except (ValueError, UnicodeDecodeError) as e:
            raise VersionDirError(f"{path}: not valid JSON ({e})") from None
        try:
            return model.model_validate(data)
        except ValidationError as e:
            problems = "\n  ".join(model_problems(e, name))
            raise VersionDirError(f"{path} is not as frcorpus writes it:\n  {problems}") from None

    @cached_property
    def pipeline_text(self) -> str:
        """pipeline.yaml as written."""
        return (self.path / PIPELINE).read_text(encoding="utf-8")

    @cached_property
    def config(self) -> dict[str, Any]:
        """pipeline.resolved.yaml, as plain data."""
        return yaml.safe_load((self.path / RESOLVED).read_text(encoding="utf-8")) or {}

    @cached_property
    def stage_configs(self) -> dict[str, dict[str, Any]]:
        """Stage id -> its resolved configuration, in the pipeline's order."""
        stages = self.config.get("stages") or []
        return dict(zip(resolved_stage_ids(stages), stages, strict=True))

    def stage_type(self, stage_id: str) -> str:
        """The type of a stage (the reader, `read`, has none: its id)."""
        return self.stage_configs.get(stage_id, {}).get("type", stage_id)

    def split_rows(self) -> Counter:
        """Rows per split, from the manifest's file list."""
        rows = Counter()
        for rel, entry in self.manifest.files.items():
            if rel.startswith(f"{DATA}/"):
                rows[split_of(Path(rel).name)] += entry.rows or 0
        return rows


def model_problems(error: ValidationError, name: str) -> list[str]:
    """A model's validation errors as lines naming the file and the key."""
    return [f"{name}: {'.'.join(str(p) for p in e['loc']) or '(top)'}: {e['msg']}" for e in error.errors()]


def check_version_dir(path: Path | str) -> VersionDir:
    """The version at `path`, if it holds one (`stats.json` and `data/`); otherwise an error that says what
    is there instead, and lists the versions when the path is the folder of a dataset's versions."""
    path = Path(path)
    if not path.exists():
        raise VersionDirError(f"{path}: no such folder; give a version directory <out>/<name>/<version>")
    if not path.is_dir():
        raise VersionDirError(f"{path} is a file, not a version directory; give <out>/<name>/<version>")
    missing = [n for n in (STATS, f"{DATA}/") if not _present(path, n)]
    if not missing:
        return VersionDir(path)
    message = f"{path} is not a version directory (no {' and no '.join(missing)}); give <out>/<name>/<version>"
    versions = sorted(p.name for p in path.iterdir() if p.is_dir() and (p / STATS).is_file())
    if versions:
        message += f"; this folder holds the versions: {', '.join(versions[-5:])}"
    raise VersionDirError(message)


def _present(path: Path, name: str) -> bool:
    return (path / name).is_dir() if name.endswith("/") else (path / name).is_file()
