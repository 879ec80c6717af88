"""Writing a version directory: atomic writes, Parquet shards, stats.json, the manifest and its seal, and
the check of a version against its manifest.

Writes go to a temporary name and are renamed into place, so that a task killed mid-write leaves
nothing that a resumed run could mistake for finished output.

manifest.json lists every file of a version with its sha256 and size, and manifest.sha256 beside it
(`sha256sum` format) holds the sha256 of manifest.json's bytes, so that an edit anywhere in the version,
the manifest included, is found by `check_version` (`frcorpus verify`, `push`, `card`). `fingerprint`
stays the fingerprint of the data (the Parquet files only): it names `version: auto` versions.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import platform
import re
import stat
from collections import Counter
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import yaml
from pydantic import ValidationError

from frcorpus.counts import StageStats
from frcorpus.resources import package_version
from frcorpus.version.layout import (
    MANIFEST,
    MANIFEST_HASH,
    REQUIRED_FILES,
    STATS,
    FileEntry,
    Manifest,
    Stats,
    is_parquet,
    model_problems,
)

DEPENDENCIES = ("datatrove", "pyarrow", "polars", "pydantic", "datasets", "orjson", "xxhash", "huggingface_hub")


def atomic_write_bytes(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def write_if_changed(path: Path, data: bytes) -> None:
    """An atomic write that leaves a file holding these bytes already as it is (its mtime too)."""
    if not (path.is_file() and path.read_bytes() == data):
        atomic_write_bytes(path, data)


def parquet_codec(compression: str) -> str | None:
    """The pipeline's `output.compression` as pyarrow takes it."""
    return None if compression == "none" else compression


class ShardWriter:
    """Writes tables of a fixed schema to one Parquet file, atomically on close. Row groups hold
    exactly `row_group_size` rows (the last fewer) however the tables were cut, so the file's bytes
    do not depend on batch boundaries."""

    def __init__(self, path: Path, schema: pa.Schema, compression: str, row_group_size: int, write_empty: bool):
        self.path = path
        self.schema = schema
        self.compression = parquet_codec(compression)
        self.row_group_size = row_group_size
        self.write_empty = write_empty
        self.pending: list[pa.Table] = []
        self.pending_rows = 0
        self.count = 0
        self._writer: pq.ParquetWriter | None = None
        self._tmp = path.with_name(f".{path.name}.tmp")

    def add_table(self, table: pa.Table) -> None:
        if table.num_rows == 0:
            return
        self.pending.append(table.select(self.schema.names).cast(self.schema))
        self.pending_rows += table.num_rows
        self.count += table.num_rows
        if self.pending_rows >= self.row_group_size:
            self._flush(final=False)

    def _flush(self, final: bool) -> None:
        if self._writer is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._writer = pq.ParquetWriter(self._tmp, self.schema, compression=self.compression)
        table = pa.concat_tables(self.pending) if self.pending else self.schema.empty_table()
        cut = table.num_rows if final else table.num_rows - table.num_rows % self.row_group_size
        if cut:
            self._writer.write_table(table.slice(0, cut), row_group_size=self.row_group_size)
        rest = table.slice(cut)
        self.pending = [rest] if rest.num_rows else []
        self.pending_rows = rest.num_rows

    def close(self) -> int:
        if self.count or self.write_empty:
            self._flush(final=True)
        if self._writer is not None:
            self._writer.close()
            os.replace(self._tmp, self.path)
        return self.count


def sha256_path(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def merge_task_stats(stat_files: list[Path], source_names: list[str]) -> Stats:
    """Sum the per-task stats files of every phase and barrier into stats.json's body (without the
    licences and the fingerprint, which finalize adds). Every source gets a row, in the pipeline's order:
    one that held no record, a row of zeros. Stages keep the order of their `position` in the task files."""
    sources: dict[str, Counter] = {name: Counter(read=0, kept=0, rejected=0) for name in source_names}
    stages: dict[str, StageStats] = {}
    stage_order: dict[str, int] = {}
    formats: dict[str, Counter] = {}
    for path in stat_files:
        data = json.loads(path.read_text())
        for name, counts in data.get("sources", {}).items():
            sources.setdefault(name, Counter()).update(counts)
        for stage_id, body in data.get("stages", {}).items():
            stage_order.setdefault(stage_id, body.get("position", len(stage_order)))
            summed = stages.setdefault(stage_id, StageStats())
            summed += StageStats.from_json(body)
        for name, counts in data.get("formats", {}).items():
            formats.setdefault(name, Counter()).update(counts)
    source_json = {
        name: {"read": c["read"], "kept": c["kept"], "rejected": c["rejected"], "formats": dict(formats.get(name, {}))}
        for name, c in sources.items()
    }
    return Stats.model_validate(
        {
            "sources": source_json,
            "stages": {s: stages[s].to_json() for s in sorted(stages, key=lambda s: stage_order[s])},
            "totals": {k: sum(s[k] for s in source_json.values()) for k in ("read", "kept", "rejected")},
        }
    )


def dependency_versions() -> dict[str, str]:
    versions = {name: package_version(name) for name in DEPENDENCIES}
    return {"python": platform.python_version(), **{k: v for k, v in versions.items() if v is not None}}


def file_entry(path: Path) -> FileEntry:
    """A file's entry in the manifest's `files`."""
    return FileEntry(sha256=sha256_path(path), bytes=path.stat().st_size)


def file_entries(version_dir: Path, folder: str) -> dict[str, FileEntry]:
    """The manifest entries of the Parquet files in `folder`, with their row counts."""
    return {
        path.relative_to(version_dir).as_posix(): FileEntry(
            sha256=sha256_path(path), bytes=path.stat().st_size, rows=pq.read_metadata(path).num_rows
        )
        for path in sorted((version_dir / folder).glob("*.parquet"))
    }


def fingerprint(sha256s: dict[str, str]) -> str:
    """Content fingerprint of a version's data, from its files' sha256s (path -> sha256): the hash of every
    Parquet file's name and sha256, in name order. The manifest's other files (stats, card...) stay out,
    so that it identifies the records alone."""
    h = hashlib.sha256()
    for rel in sorted(r for r in sha256s if is_parquet(r)):
        h.update(f"{rel}\x00{sha256s[rel]}\n".encode())
    return h.hexdigest()


def auto_version(when: dt.datetime, fp: str) -> str:
    return f"{when:%Y.%m.%d}-{fp[:10]}"


def resolved_yaml(config_dump: dict[str, Any]) -> str:
    return yaml.safe_dump(config_dump, sort_keys=False, allow_unicode=True)


def write_stats(version_dir: Path, stats: Stats) -> None:
    atomic_write_bytes(version_dir / STATS, stats.to_bytes())


def write_manifest(version_dir: Path, manifest: Manifest) -> None:
    """manifest.json (its `files` in name order), then manifest.sha256, which seals it: `sha256sum -c
    manifest.sha256` in the version directory checks it without frcorpus."""
    data = manifest.to_bytes()
    atomic_write_bytes(version_dir / MANIFEST, data)
    atomic_write_text(version_dir / MANIFEST_HASH, f"{hashlib.sha256(data).hexdigest()}  {MANIFEST}\n")


# ----------------------------------------------------------------------------------- checking a version


class VersionCheckError(ValueError):
    """A version directory that does not match its manifest (the CLI exits with 2)."""

    def __init__(self, version_dir: Path, problems: list[str]):
        self.version_dir = version_dir
        self.problems = problems
        if not version_dir.is_dir():
            what = "no such folder" if not version_dir.exists() else "not a folder"
            super().__init__(f"{version_dir}: {what}; give a version directory <out>/<name>/<version>")
            return
        super().__init__(
            f"{version_dir} does not match its manifest (a version directory is immutable: run the pipeline "
            "again to make a new version):\n  " + "\n  ".join(problems)
        )


def version_contents(version_dir: Path) -> tuple[list[str], list[str]]:
    """The plain files under `version_dir`, hidden ones included (a temporary file left by a crash is not
    part of the version), and the entries that are neither plain files nor folders (links, FIFOs), which a
    version never holds: both as sorted paths relative to `version_dir`."""
    files, others = [], []
    for root, folders, names in os.walk(version_dir):  # does not follow links to folders
        for name in folders + names:
            path = Path(root, name)
            mode = path.lstat().st_mode
            if stat.S_ISREG(mode):
                files.append(path.relative_to(version_dir).as_posix())
            elif not stat.S_ISDIR(mode):
                others.append(path.relative_to(version_dir).as_posix())
    return sorted(files), sorted(others)


def _sealed_manifest(version_dir: Path) -> tuple[dict[str, Any], list[str]]:
    """manifest.json, and a problem if manifest.sha256 is missing or does not match its bytes."""
    path, seal = version_dir / MANIFEST, version_dir / MANIFEST_HASH
    if not path.is_file():
        raise VersionCheckError(
            version_dir, [f"{MANIFEST}: missing (is {version_dir} a version directory <out>/<name>/<version>?)"]
        )
    data = path.read_bytes()
    actual = hashlib.sha256(data).hexdigest()
    problems = []
    if not seal.is_file():
        problems.append(f"{MANIFEST_HASH}: missing (the sha256 of {MANIFEST}'s bytes, which seals it)")
    else:
        # `sha256sum` format: "<sha256>  manifest.json" ("*manifest.json" in its binary mode)
        found = re.fullmatch(rf"([0-9a-f]{{64}}) [ *]{re.escape(MANIFEST)}\n?", seal.read_text("ascii", "replace"))
        if found is None:
            problems.append(f"{MANIFEST_HASH}: not `<sha256>  {MANIFEST}`")
        elif found[1] != actual:
            problems.append(f"{MANIFEST}: edited (sha256 {actual}, {MANIFEST_HASH} says {found[1]})")
    try:
        manifest = json.loads(data)
    except (ValueError, UnicodeDecodeError) as e:
        raise VersionCheckError(version_dir, [*problems, f"{MANIFEST}: not valid JSON ({e})"]) from None
    if not isinstance(manifest, dict) or not isinstance(manifest.get("files"), dict):
        raise VersionCheckError(version_dir, [*problems, f"{MANIFEST}: no `files` mapping"])
    return manifest, problems


def check_version(version_dir: Path) -> Manifest:
    """Check a version directory against its manifest and return the manifest: manifest.sha256 holds the
    sha256 of manifest.json, the files under the directory (besides those two) are exactly those the
    manifest lists, each with its sha256, and the manifest has every key frcorpus writes. Raises
    VersionCheckError naming every problem. The one check of `frcorpus verify`, `push` and `card`."""
    version_dir = Path(version_dir)
    if not version_dir.is_dir():
        raise VersionCheckError(version_dir, [])
    manifest, problems = _sealed_manifest(version_dir)
    listed: dict[str, Any] = manifest["files"]
    files, others = version_contents(version_dir)
    present = set(files) - {MANIFEST, MANIFEST_HASH}
    for rel in sorted(present | set(others) | set(listed)):
        expected = listed[rel].get("sha256") if isinstance(listed.get(rel), dict) else None
        if rel in others:
            problems.append(f"{rel}: not a plain file (a link or a special file; a version holds plain files)")
        elif rel not in listed:
            problems.append(f"{rel}: not in the manifest (sha256 {sha256_path(version_dir / rel)})")
        elif rel not in present:
            problems.append(f"{rel}: missing (the manifest lists it with sha256 {expected})")
        elif (actual := sha256_path(version_dir / rel)) != expected:
            problems.append(f"{rel}: modified (sha256 {actual}, the manifest says {expected})")
    problems += [
        f"{name}: missing (every version has one)" for name in REQUIRED_FILES if name not in present | set(listed)
    ]
    problems += [f"{MANIFEST}: no `{key}`" for key in ("name", "version", "fingerprint") if key not in manifest]
    # entries without a sha256 are reported above; the data they describe gives no fingerprint
    hashed = {rel: e["sha256"] for rel, e in listed.items() if isinstance(e, dict) and "sha256" in e}
    if "fingerprint" in manifest and fingerprint(hashed) != manifest["fingerprint"]:
        problems.append(
            f"{MANIFEST}: its Parquet files give fingerprint {fingerprint(hashed)}, it says {manifest['fingerprint']}"
        )
    if problems:
        raise VersionCheckError(version_dir, problems)
    try:
        return Manifest.model_validate(manifest)
    except ValidationError as e:  # keys missing or of another type: not a manifest frcorpus wrote
        raise VersionCheckError(version_dir, model_problems(e, MANIFEST)) from None
