"""The version directory (DESIGN section 4, point 7): Parquet shards, stats, manifest, card.

Writes go to a temporary name and are renamed into place, so that a task killed mid-write leaves
nothing that a resumed run could mistake for finished output.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import platform
from collections import Counter
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import yaml

from frcorpus.record import SPLITS
from frcorpus.resources import package_version
from frcorpus.stages.base import StageStats

DEPENDENCIES = ("datatrove", "pyarrow", "polars", "pydantic", "datasets", "orjson", "xxhash", "huggingface_hub")


def atomic_write_bytes(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


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


def merge_task_stats(stat_files: list[Path], source_names: list[str]) -> dict[str, Any]:
    """Sum the per-task stats files of every phase and barrier into one stats.json body. Every source
    gets a row, in the pipeline's order: one that held no record, a row of zeros."""
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
            stats = StageStats.from_json(body)
            if stage_id in stages:
                stages[stage_id] += stats
            else:
                stages[stage_id] = stats
        for name, counts in data.get("formats", {}).items():
            formats.setdefault(name, Counter()).update(counts)
    ordered = sorted(stages, key=lambda s: stage_order[s])
    source_json = {
        name: {"read": c["read"], "kept": c["kept"], "rejected": c["rejected"], "formats": dict(formats.get(name, {}))}
        for name, c in sources.items()
    }
    totals = {k: sum(s[k] for s in source_json.values()) for k in ("read", "kept", "rejected")}
    return {
        "sources": source_json,
        "stages": {s: stages[s].to_json() for s in ordered},
        "totals": totals,
    }


def dependency_versions() -> dict[str, str]:
    versions = {name: package_version(name) for name in DEPENDENCIES}
    return {"python": platform.python_version(), **{k: v for k, v in versions.items() if v is not None}}


def file_entries(version_dir: Path, folder: str) -> dict[str, dict[str, Any]]:
    entries = {}
    for path in sorted((version_dir / folder).glob("*.parquet")):
        rel = path.relative_to(version_dir).as_posix()
        entries[rel] = {
            "sha256": sha256_path(path),
            "bytes": path.stat().st_size,
            "rows": pq.read_metadata(path).num_rows,
        }
    return entries


def data_file(version_dir: Path, rank: int, split: str | None = None) -> Path:
    """One task's data file: data/<rank>.parquet, or data/<split>-<rank>.parquet when a `split` stage
    separates the splits (the names the Hub reads splits from)."""
    return version_dir / "data" / (f"{rank:05d}.parquet" if split is None else f"{split}-{rank:05d}.parquet")


def split_files(version_dir: Path) -> dict[str, str]:
    """The splits of a version and the glob of each, relative to the version directory, for the dataset
    card's `configs: data_files`: {"train": "data/train-*.parquet", "test": "data/test-*.parquet"} after
    a `split` stage, else {"train": "data/*.parquet"}."""
    names = {p.name.split("-", 1)[0] for p in (version_dir / "data").glob("*-*.parquet")}
    found = [s for s in SPLITS if s in names]
    return {s: f"data/{s}-*.parquet" for s in found} if found else {"train": "data/*.parquet"}


def fingerprint(files: dict[str, dict[str, Any]]) -> str:
    """Content fingerprint of a version: hash of every output file's name and sha256, in name order."""
    h = hashlib.sha256()
    for rel in sorted(files):
        h.update(f"{rel}\x00{files[rel]['sha256']}\n".encode())
    return h.hexdigest()


def auto_version(when: dt.datetime, fp: str) -> str:
    return f"{when:%Y.%m.%d}-{fp[:10]}"


def resolved_yaml(config_dump: dict[str, Any]) -> str:
    return yaml.safe_dump(config_dump, sort_keys=False, allow_unicode=True)


def write_manifest(version_dir: Path, manifest: dict[str, Any]) -> None:
    atomic_write_text(version_dir / "manifest.json", json.dumps(manifest, indent=2, ensure_ascii=False) + "\n")
