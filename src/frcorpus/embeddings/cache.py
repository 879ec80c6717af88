"""The on-disk embedding cache: vectors keyed by (model key, xxh3-128 of the exact text).

It lives under `$FRCORPUS_CACHE_DIR/embeddings` (default `~/.cache/frcorpus/embeddings`), one folder
per model key. Each write is one Arrow IPC shard, written under a dot-name and renamed into place, and
never changed after, so any number of processes (a datatrove process pool, Slurm jobs on a shared
file system) can write at once; readers index every shard and memory-map the vectors they need.
`compact` merges small shards (automatically past MAX_SHARDS) and deletes a shard only once its rows
are in a merged shard that has been renamed into place: a concurrent reader or compactor can at
worst see a row twice, never lose one (a reader whose shard vanished indexes the folder again).
"""

from __future__ import annotations

import json
import logging
import os
import re
import socket
import time
import uuid
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from frcorpus.settings import cache_root

logger = logging.getLogger(__name__)

MAX_SHARDS = 128  # past this many shards in a model's cache folder, a writer merges the small ones
COMPACT_ROWS = 131072  # rows per merged shard (256 MiB at 512-d float32)


def text_keys(texts: Sequence[str]) -> np.ndarray:
    """xxh3-128 of each text's UTF-8 bytes, as (n, 2) little-endian uint64 (the cache key)."""
    from xxhash import xxh3_128_digest

    digests = b"".join(xxh3_128_digest(t.encode("utf-8", "surrogatepass")) for t in texts)
    return np.frombuffer(digests, dtype="<u8").reshape(-1, 2)


def _vectors(table) -> np.ndarray:
    """The `vector` column of a shard as an (n, dim) float32 matrix (a view when in one chunk)."""
    column = table.column("vector")
    array = column.chunk(0) if column.num_chunks == 1 else column.combine_chunks()
    return array.flatten().to_numpy().reshape(-1, array.type.list_size)


def _safe_name(key: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", key)


def _read_table(path: Path):
    import pyarrow as pa

    with pa.memory_map(str(path)) as source:
        return pa.ipc.open_file(source).read_all()


class EmbeddingCache:
    """Vectors of one model on disk: Arrow IPC shards `<time>-<host>-<pid>-<rand>.arrow` with columns
    `hi`, `lo` (the two halves of the xxh3-128 key) and `vector` (fixed-size list of float32).

    Safe for concurrent writers: a shard is written to a dot-file and renamed into place, and is
    never changed after; `compact` merges shards into new ones before deleting them. An in-memory
    index of (key -> shard, row), sorted by key, is refreshed from the folder on every lookup."""

    def __init__(self, key: str, root: Path | None = None):
        self.key = key
        self.dir = (root if root is not None else cache_root() / "embeddings") / _safe_name(key)
        self._reset()

    def _reset(self) -> None:
        self._shards: list[Path] = []
        self._known: set[str] = set()
        self._index = np.empty((0, 2), dtype="<u8")  # sorted keys
        self._where = np.empty((0, 2), dtype=np.int64)  # (shard number, row) of each key

    def __len__(self) -> int:
        self.refresh()
        return len(self._index)

    def shard_paths(self) -> list[Path]:
        try:
            return sorted(p for p in self.dir.glob("*.arrow") if not p.name.startswith("."))
        except FileNotFoundError:
            return []

    def refresh(self) -> None:
        """Index the shards written since the last look (by this or any other process)."""
        new = [p for p in self.shard_paths() if p.name not in self._known]
        keys, where = [self._index], [self._where]
        for path in new:
            self._known.add(path.name)
            try:
                table = _read_table(path)
                hi = table.column("hi").to_numpy()
                lo = table.column("lo").to_numpy()
            except FileNotFoundError:  # merged away meanwhile: its rows are in a newer shard
                continue
            except Exception as e:  # noqa: BLE001 - a damaged shard is skipped, its texts recomputed
                logger.warning("embedding cache: skipping unreadable shard %s (%s)", path, e)
                continue
            self._shards.append(path)
            keys.append(np.stack([hi, lo], axis=1))
            where.append(np.stack([np.full(len(hi), len(self._shards) - 1), np.arange(len(hi))], axis=1))
        if len(keys) > 1:
            self._add(np.concatenate(keys), np.concatenate(where))

    def _add(self, keys: np.ndarray, where: np.ndarray) -> None:
        order = np.lexsort((keys[:, 1], keys[:, 0]))  # stable: the first indexed copy of a key wins
        keys, where = keys[order], where[order]
        if len(keys) > 1:
            first = np.ones(len(keys), dtype=bool)
            first[1:] = np.any(keys[1:] != keys[:-1], axis=1)
            keys, where = keys[first], where[first]
        self._index, self._where = keys, where

    def _find(self, keys: np.ndarray) -> np.ndarray:
        """Position of each key in the index, -1 when absent."""
        index = self._index
        found = np.full(len(keys), -1, dtype=np.int64)
        if not len(index) or not len(keys):
            return found
        left = np.searchsorted(index[:, 0], keys[:, 0], side="left")
        right = np.searchsorted(index[:, 0], keys[:, 0], side="right")
        single = (right - left == 1) & (index[np.minimum(left, len(index) - 1), 1] == keys[:, 1])
        found[single] = left[single]
        for i in np.flatnonzero(right - left > 1):  # two texts whose first 64 bits collide: ~never
            run = np.flatnonzero(index[left[i] : right[i], 1] == keys[i, 1])
            if len(run):
                found[i] = left[i] + run[0]
        return found

    def get(self, keys: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """(hit mask, vectors of the hits in order) for (n, 2) keys; vectors is None without hits."""
        for _attempt in range(3):
            self.refresh()
            pos = self._find(keys)
            hit = pos >= 0
            if not hit.any():
                return hit, None
            try:
                return hit, self._gather(self._where[pos[hit]])
            except FileNotFoundError:  # a shard was merged away under us: index the folder again
                self._reset()
        return np.zeros(len(keys), dtype=bool), None

    def _gather(self, where: np.ndarray) -> np.ndarray:
        out: np.ndarray | None = None
        order = np.argsort(where[:, 0], kind="stable")
        shard_ids, starts = np.unique(where[order, 0], return_index=True)
        for shard, lo, hi in zip(shard_ids, starts, [*starts[1:], len(order)], strict=True):
            rows = order[lo:hi]
            matrix = _vectors(_read_table(self._shards[shard]))
            dim = matrix.shape[1]
            if out is None:
                out = np.empty((len(where), dim), dtype=np.float32)
            out[rows] = matrix[where[rows, 1]]
        return out

    def put(self, keys: np.ndarray, vectors: np.ndarray) -> Path | None:
        """Write one shard (atomically) and index it; merge small shards past MAX_SHARDS."""
        if not len(keys):
            return None
        path = self._write(keys, np.ascontiguousarray(vectors, dtype=np.float32))
        self._known.add(path.name)
        self._shards.append(path)
        where = np.stack([np.full(len(keys), len(self._shards) - 1), np.arange(len(keys))], axis=1)
        self._add(np.concatenate([self._index, keys]), np.concatenate([self._where, where]))
        if len(self._shards) > MAX_SHARDS:
            try:
                self.compact()
            except OSError as e:  # merging is housekeeping: the rows are already safe in their shards
                logger.warning("embedding cache: could not merge the shards of %s (%s)", self.dir, e)
        return path

    def _write(self, keys: np.ndarray, vectors: np.ndarray) -> Path:
        import pyarrow as pa

        self.dir.mkdir(parents=True, exist_ok=True)
        info = self.dir / "model.json"
        if not info.exists():
            _atomic_write_bytes(info, json.dumps({"model_key": self.key, "dim": vectors.shape[1]}).encode())
        host = _safe_name(socket.gethostname())[:40]
        name = f"{time.time_ns():020d}-{host}-{os.getpid()}-{uuid.uuid4().hex[:8]}.arrow"
        flat = pa.array(vectors.reshape(-1), type=pa.float32())
        table = pa.table(
            {
                "hi": pa.array(keys[:, 0], type=pa.uint64()),
                "lo": pa.array(keys[:, 1], type=pa.uint64()),
                "vector": pa.FixedSizeListArray.from_arrays(flat, vectors.shape[1]),
            }
        ).replace_schema_metadata({"model_key": self.key})
        tmp = self.dir / f".tmp-{name}"
        with pa.OSFile(str(tmp), "wb") as sink, pa.ipc.new_file(sink, table.schema) as writer:
            writer.write_table(table, max_chunksize=len(table))
        _fsync(tmp)
        os.replace(tmp, self.dir / name)
        return self.dir / name

    def compact(self, max_rows: int = COMPACT_ROWS) -> int:
        """Merge shards smaller than `max_rows` into shards of up to `max_rows` distinct keys;
        returns how many shards were merged. Safe beside readers, writers and other compactors."""
        lock = self.dir / ".compact.lock"
        try:
            fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        except FileExistsError:
            if time.time() - _mtime(lock) < 3600:
                return 0  # another process is merging (a lock older than an hour is stale)
            lock.unlink(missing_ok=True)
            return self.compact(max_rows)
        except FileNotFoundError:
            return 0
        os.close(fd)
        merged = 0
        try:
            for tmp in self.dir.glob(".tmp-*"):  # left by writers that died more than a day ago
                if time.time() - _mtime(tmp) > 86400:
                    tmp.unlink(missing_ok=True)
            small = []
            for path in self.shard_paths():
                try:
                    rows = _read_table(path).num_rows
                except Exception:  # noqa: BLE001 - merged away meanwhile, or damaged: left as it is
                    continue
                if rows < max_rows:
                    small.append((path, rows))
            group: list[Path] = []
            total = 0
            for path, rows in small:
                if group and total + rows > max_rows:
                    merged += self._merge(group)
                    group, total = [], 0
                group.append(path)
                total += rows
            if len(group) > 1:
                merged += self._merge(group)
        finally:
            lock.unlink(missing_ok=True)
        self._reset()
        return merged

    def _merge(self, paths: list[Path]) -> int:
        keys, vectors = [], []
        for path in paths:
            try:
                table = _read_table(path)
            except FileNotFoundError:  # merged by another process: its rows are in that shard
                continue
            except Exception:  # noqa: BLE001 - damaged since it was listed: leave it alone
                paths = [p for p in paths if p != path]
                continue
            keys.append(np.stack([table.column("hi").to_numpy(), table.column("lo").to_numpy()], axis=1))
            vectors.append(_vectors(table))
        if not keys:
            return 0
        keys_all, vectors_all = np.concatenate(keys), np.concatenate(vectors)
        _, first = np.unique(keys_all.view("V16").ravel(), return_index=True)
        first.sort()
        self._write(keys_all[first], vectors_all[first])
        for path in paths:  # only now: every row is in the new shard
            path.unlink(missing_ok=True)
        return len(paths)


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except FileNotFoundError:
        return time.time()


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _atomic_write_bytes(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".tmp-{uuid.uuid4().hex[:8]}-{path.name}")
    tmp.write_bytes(data)
    os.replace(tmp, path)
