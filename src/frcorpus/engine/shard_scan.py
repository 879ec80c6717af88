"""The barrier's reading of the signature files the tasks of a phase wrote (`sigs/<shard>.arrow`, one
column per field of each global stage's signature: see `PhaseWriters`), a chunk at a time.

A record's key is its row in the shards taken one after the other (shard 0's rows, then shard 1's...),
so a key names its shard and row with no table. What stays in memory for the whole barrier is linear in
the records with a small constant: each key's position in the global order (8 bytes, int64) and
whether it is still live (1 byte). Positions come from `_order` (source, file, row): each (source, file)
gets a base, the rows its files span before it, so position = base + row keeps the order of the triples
without sorting them.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import pyarrow as pa

from frcorpus.stages.signatures import CHUNK_ROWS, SignatureScan


class ShardFiles:
    """The signature files of one phase: chunks of live rows, lookups by key, each key's position."""

    def __init__(self, sig_dir: Path, tasks: int):
        self.paths = [sig_dir / f"{shard:05d}.arrow" for shard in range(tasks)]
        self.schema = pa.ipc.open_file(pa.OSFile(str(self.paths[0]))).schema
        self.batch_starts: list[np.ndarray] = []  # per shard, the first row of each record batch
        spans: dict[int, int] = {}  # (source << 32 | file) -> rows up to its last row
        for path in self.paths:
            sizes = []
            for batch in self._batches(path, ["_order"]):
                source_file, row = _order_columns(batch.column(0))
                sizes.append(len(row))
                if len(row):
                    by_file = np.argsort(source_file, kind="stable")
                    grouped = source_file[by_file]
                    firsts = np.flatnonzero(np.concatenate([[True], grouped[1:] != grouped[:-1]]))
                    ends = np.maximum.reduceat(row[by_file], firsts) + 1
                    for key, end in zip(grouped[firsts].tolist(), ends.tolist(), strict=True):
                        spans[key] = max(spans.get(key, 0), end)
            self.batch_starts.append(np.concatenate([[0], np.cumsum(sizes, dtype=np.int64)]))
        self.starts = np.concatenate([[0], np.cumsum([b[-1] for b in self.batch_starts], dtype=np.int64)])
        self.size = int(self.starts[-1])
        files = np.array(sorted(spans), dtype=np.int64)
        bases = np.concatenate([[0], np.cumsum([spans[k] for k in files.tolist()], dtype=np.int64)])
        self.position = np.empty(self.size, dtype=np.int64)  # 8 bytes a record
        for shard, path in enumerate(self.paths):
            start = self.starts[shard]
            for batch in self._batches(path, ["_order"]):
                source_file, row = _order_columns(batch.column(0))
                self.position[start : start + len(row)] = bases[np.searchsorted(files, source_file)] + row
                start += len(row)
        self.alive = np.ones(self.size, dtype=bool)  # 1 byte a record

    def _batches(self, path: Path, columns: Sequence[str]) -> Iterator[pa.RecordBatch]:
        reader = self._reader(path, columns)
        for i in range(reader.num_record_batches):
            yield reader.get_batch(i)

    def _reader(self, path: Path, columns: Sequence[str]) -> pa.ipc.RecordBatchFileReader:
        """A reader of only these columns (read from the file as they are needed, not mapped)."""
        fields = [self.schema.get_field_index(c) for c in columns]
        return pa.ipc.open_file(pa.OSFile(str(path)), options=pa.ipc.IpcReadOptions(included_fields=fields))

    def chunks(self, columns: Sequence[str], rows: int = CHUNK_ROWS) -> Iterator[tuple[np.ndarray, list[pa.Array]]]:
        """(keys, columns) of the live rows, in chunks of about `rows`, shard after shard."""
        keys: list[np.ndarray] = []
        pieces: list[list[pa.Array]] = [[] for _ in columns]
        held = 0
        for shard, path in enumerate(self.paths):
            first = self.starts[shard]
            for i, batch in enumerate(self._batches(path, columns)):
                batch_keys = first + self.batch_starts[shard][i] + np.arange(batch.num_rows)
                live = self.alive[batch_keys]
                if not live.all():
                    batch = batch.filter(pa.array(live))
                    batch_keys = batch_keys[live]
                keys.append(batch_keys)
                for column, piece in zip(pieces, batch.columns, strict=True):
                    column.append(piece)
                held += len(batch_keys)
                if held >= rows:
                    yield _joined(keys, pieces)
                    keys, pieces, held = [], [[] for _ in columns], 0
        if held:
            yield _joined(keys, pieces)

    def read(self, columns: Sequence[str]) -> tuple[np.ndarray, list[pa.Array]]:
        """(keys, columns) of every live row at once."""
        chunks = list(self.chunks(columns))
        if not chunks:
            return np.zeros(0, dtype=np.int64), [pa.array([], self.schema.field(c).type) for c in columns]
        keys = np.concatenate([keys for keys, _ in chunks])
        return keys, [pa.concat_arrays([arrays[i] for _, arrays in chunks]) for i in range(len(columns))]

    def take(self, column: str, keys: np.ndarray) -> pa.Array:
        """One column at these keys, in their order: the record batches that hold them, read again."""
        keys = np.asarray(keys, dtype=np.int64)
        order = np.argsort(keys, kind="stable")
        ordered = keys[order]
        shard_of = np.searchsorted(self.starts, ordered, side="right") - 1
        pieces = [pa.array([], self.schema.field(column).type)]
        for shard in np.unique(shard_of).tolist():
            lo, hi = np.searchsorted(shard_of, [shard, shard + 1])
            rows = ordered[lo:hi] - self.starts[shard]
            batch_of = np.searchsorted(self.batch_starts[shard], rows, side="right") - 1
            reader = self._reader(self.paths[shard], [column])
            for batch in np.unique(batch_of).tolist():
                a, b = np.searchsorted(batch_of, [batch, batch + 1])
                within = rows[a:b] - self.batch_starts[shard][batch]
                pieces.append(reader.get_batch(batch).column(0).take(pa.array(within)))
        values = pa.concat_arrays(pieces)
        back = np.empty(len(order), dtype=np.int64)
        back[order] = np.arange(len(order))
        return values.take(pa.array(back))


def _order_columns(order: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """`_order` (source, file, row) lists as (source << 32 | file, row)."""
    triples = order.flatten().to_numpy().reshape(-1, 3)
    return (triples[:, 0] << 32) | triples[:, 1], triples[:, 2]


def _joined(keys: list[np.ndarray], pieces: list[list[pa.Array]]) -> tuple[np.ndarray, list[pa.Array]]:
    return np.concatenate(keys), [pa.concat_arrays(column) for column in pieces]


def signature_columns(index: int, signature_type: pa.DataType) -> dict[str, str]:
    """The columns of the signature files that hold global stage `index`'s signatures, by field: one per
    field of a struct signature (`sig<index>.<field>`), else one (`sig<index>`, field "")."""
    if pa.types.is_struct(signature_type):
        return {field.name: f"sig{index}.{field.name}" for field in signature_type}
    return {"": f"sig{index}"}


class StageScan(SignatureScan):
    """What one global stage of the barrier reads: its columns of the shard files, the live rows."""

    def __init__(self, files: ShardFiles, index: int, signature_type: pa.DataType, scratch: Path, memory: int):
        self.files = files
        self.columns = signature_columns(index, signature_type)
        self.signature_type = signature_type
        self.memory = memory
        self._scratch = scratch
        self.live_count = int(files.alive.sum())
        self.annotations: list[tuple[np.ndarray, dict[str, pa.Array]]] = []

    @property
    def size(self) -> int:
        return self.files.size

    @property
    def live(self) -> int:
        return self.live_count

    def batches(self, fields, rows=CHUNK_ROWS):
        for keys, arrays in self.files.chunks([self.columns[f] for f in fields], rows):
            yield keys, dict(zip(fields, arrays, strict=True))

    def order(self, keys):
        return self.files.position[keys]

    def lookup(self, field, keys):
        return self.files.take(self.columns[field], keys)

    def ids(self, keys):
        return self.files.take("id", keys).to_pylist()

    def scratch(self):
        if not self._scratch.exists():
            self._scratch.mkdir(parents=True)
        return self._scratch

    def table(self):
        keys, (ids, sources, *sig_fields) = self.files.read(["id", "source", *self.columns.values()])
        if pa.types.is_struct(self.signature_type):
            sig = pa.StructArray.from_arrays(sig_fields, fields=list(self.signature_type))
        else:
            (sig,) = sig_fields
        table = pa.table({"id": ids, "source": sources, "sig": sig})
        order = np.argsort(self.files.position[keys], kind="stable")
        return keys[order], table.take(pa.array(order))

    def annotate(self, keys, columns):
        self.annotations.append((keys, columns))

    def close(self) -> None:
        shutil.rmtree(self._scratch, ignore_errors=True)
