"""What a global stage works from at the barrier, in bounded memory.

The engine hands a stage a `SignatureScan`: its signatures of the records still live, read from the
tasks' files a chunk at a time, each record named by an integer key. A stage that can decide from
sorted or partitioned runs (`GlobalStage.decide_scan`) reads only the signature fields it needs,
partitions what it must sort (`Partitions`, on disk past `SignatureScan.memory`), looks the few rows it
needs again up by key (`lookup`, `ids`: the id a rejection names is fetched when the rejection is
written) and returns its rejections in chunks (`Rejections`). `TableScan` is the same scan over a table
in memory: `decide_table`, and the tests, go through it, so the two paths are one code.

Keys are not in the global order; `order(keys)` gives each key's rank in it (sources in YAML order,
then files, then rows), which breaks every tie.
"""

from __future__ import annotations

import math
import shutil
import tempfile
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa

from frcorpus.settings import barrier_memory

CHUNK_ROWS = 65_536  # records per chunk of a scan: numpy passes long enough to pay, a few MB each
MAX_PARTS = 1024  # files per way of `Partitions`: past MAX_PARTS x the memory bound, a part holds more


@dataclass
class Rejections:
    """Records a global stage rejects: their keys, the reason code (without the stage's prefix; one for
    all, or one per key) and the detail of each."""

    keys: np.ndarray
    reasons: str | list[str]
    details: list[str]


class SignatureScan(ABC):
    """One global stage's signatures of the live records at the barrier, and the means to spill."""

    #: bytes of sort data a stage may hold at once (`FRCORPUS_BARRIER_MEMORY`); past it, it partitions to disk
    memory: int

    @property
    @abstractmethod
    def size(self) -> int:
        """Keys run from 0 to size - 1 (a key of a record no longer live is never scanned)."""

    @property
    @abstractmethod
    def live(self) -> int:
        """How many records the scan holds."""

    @abstractmethod
    def batches(
        self, fields: Sequence[str], rows: int = CHUNK_ROWS
    ) -> Iterator[tuple[np.ndarray, dict[str, pa.Array]]]:
        """(keys, {field: values}) for chunks of about `rows` live records: the named fields of the
        signature (a struct), or "" for a signature that is not one."""

    @abstractmethod
    def order(self, keys: np.ndarray) -> np.ndarray:
        """Each key's position in the global order (int64, distinct; only comparisons mean something)."""

    @abstractmethod
    def lookup(self, field: str, keys: np.ndarray) -> pa.Array:
        """One field of the signature at these keys, in their order."""

    @abstractmethod
    def ids(self, keys: np.ndarray) -> list[str]:
        """The record ids at these keys, in their order."""

    @abstractmethod
    def scratch(self) -> Path:
        """An empty folder for this stage's spilled runs, removed after the stage."""

    @abstractmethod
    def table(self) -> tuple[np.ndarray, pa.Table]:
        """Every live record in the global order: keys, and a table of `id`, `source` and `sig`. Memory
        linear in the records: for the stages whose decision needs every signature at once."""

    @abstractmethod
    def annotate(self, keys: np.ndarray, columns: dict[str, pa.Array]) -> None:
        """Set annotations (columns of `GlobalStage.annotations`) on these records, one value per key."""


class TableScan(SignatureScan):
    """A scan of a table of `id`, `source` and `sig` in the global order (keys are its rows)."""

    def __init__(self, table: pa.Table, memory: int | None = None):
        self._table = table
        self._sig = table["sig"].combine_chunks()
        self.memory = barrier_memory() if memory is None else memory
        self._scratch: Path | None = None
        self.annotations: dict[str, pa.Array] = {}

    @property
    def size(self) -> int:
        return self._table.num_rows

    @property
    def live(self) -> int:
        return self._table.num_rows

    def _field(self, field: str) -> pa.Array:
        return self._sig if field == "" else self._sig.field(field)

    def batches(self, fields, rows=CHUNK_ROWS):
        for start in range(0, self.size, rows):
            stop = min(start + rows, self.size)
            yield np.arange(start, stop), {f: self._field(f).slice(start, stop - start) for f in fields}

    def order(self, keys):
        return np.asarray(keys, dtype=np.int64)

    def lookup(self, field, keys):
        return self._field(field).take(pa.array(keys, pa.int64()))

    def ids(self, keys):
        return self._table["id"].take(pa.array(keys, pa.int64())).to_pylist()

    def scratch(self):
        if self._scratch is None:
            self._scratch = Path(tempfile.mkdtemp(prefix="frcorpus-scan-"))
        return self._scratch

    def table(self):
        return np.arange(self.size), self._table

    def annotate(self, keys, columns):
        self.annotations.update(columns)

    def close(self) -> None:
        if self._scratch is not None:
            shutil.rmtree(self._scratch, ignore_errors=True)
            self._scratch = None


class Partitions:
    """Fixed-width rows (a numpy dtype) in `ways` separate sets (a MinHash band each), each split by a
    64-bit hash into parts that fit `scan.memory`, so that a stage sorts one part at a time: equal hashes
    land in one part, so a part holds whole groups. All stays in memory when every way fits at once;
    otherwise each part is a file under the scan's scratch folder, appended to as rows come (at most
    half the memory bound is buffered) and read back whole. A part may exceed the bound only by the
    size of one group of equal hashes."""

    def __init__(self, scan: SignatureScan, dtype: np.dtype, ways: int = 1, rows: int | None = None):
        self.dtype = np.dtype(dtype)
        per_way = (scan.live if rows is None else rows) * self.dtype.itemsize
        self.on_disk = per_way * ways > scan.memory
        self.n_parts = min(MAX_PARTS, max(1, math.ceil(per_way / scan.memory))) if self.on_disk else 1
        self.ways = ways
        self.flush_bytes = max(scan.memory // 2, 1)
        self.pending: list[list[list[np.ndarray]]] = [[[] for _ in range(self.n_parts)] for _ in range(ways)]
        self.pending_bytes = 0
        self.folder = scan.scratch() / f"partitions-{id(self):x}" if self.on_disk else None
        if self.folder is not None:
            self.folder.mkdir(parents=True)

    def add(self, way: int, hashes: np.ndarray, rows: np.ndarray) -> None:
        """Rows of one way, each with the 64-bit hash that picks its part."""
        if len(rows) == 0:
            return
        parts = self.pending[way]
        if self.n_parts == 1:
            parts[0].append(rows)
        else:
            part = (hashes % np.uint64(self.n_parts)).astype(np.int64)
            order = np.argsort(part, kind="stable")
            bounds = np.searchsorted(part[order], np.arange(self.n_parts + 1))
            ordered = rows[order]
            for p in range(self.n_parts):
                if bounds[p + 1] > bounds[p]:
                    parts[p].append(ordered[bounds[p] : bounds[p + 1]])
        self.pending_bytes += rows.nbytes
        if self.on_disk and self.pending_bytes >= self.flush_bytes:
            self._flush()

    def _path(self, way: int, part: int) -> Path:
        return self.folder / f"{way:04d}-{part:05d}.bin"

    def _flush(self) -> None:
        for way, parts in enumerate(self.pending):
            for p, chunks in enumerate(parts):
                if chunks:
                    with open(self._path(way, p), "ab") as f:
                        for chunk in chunks:
                            f.write(chunk.tobytes())
                    chunks.clear()
        self.pending_bytes = 0

    def parts(self, way: int) -> Iterator[np.ndarray]:
        """The parts of one way, each as one array (again on each call)."""
        if not self.on_disk:
            chunks = self.pending[way][0]
            if len(chunks) > 1:  # once, so that a second pass does not copy again
                chunks[:] = [np.concatenate(chunks)]
            yield chunks[0] if chunks else np.zeros(0, self.dtype)
            return
        self._flush()
        for p in range(self.n_parts):
            path = self._path(way, p)
            yield np.fromfile(path, dtype=self.dtype) if path.exists() else np.zeros(0, self.dtype)

    def close(self) -> None:
        self.pending = []
        if self.folder is not None:
            shutil.rmtree(self.folder, ignore_errors=True)
