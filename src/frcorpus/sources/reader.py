"""The per-row reader: the files of a source as batches of canonical records, each malformed row a
rejected record with reason `read.<what>` and its location (`file:line` for text files, `file[row N]`
for tabular ones). Clean stretches of JSON lines in a chat format take the columnar fast path
(`columnar.read_chunk`), which hands back to this reader every row it cannot vouch for.

Also the checks made before a run: `check_readable` (cheap, every run) and `find_damage`,
`peek_format` and `SourceReader.sample` (for `frcorpus validate`).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.parquet as pq
import xxhash

from frcorpus.batch import Batch, work_schema
from frcorpus.record import new_record, reject_record
from frcorpus.settings import columnar_enabled
from frcorpus.sources import columnar
from frcorpus.sources.filestate import FilePart, FileState
from frcorpus.sources.formats import ReadIssue, detect_format, to_messages
from frcorpus.sources.lines import (
    RAW_KEEP,
    DamagedFile,
    Row,
    chunk_rows,
    damaged_row,
    gunzip_blocks,
    head_rows,
    is_json_lines,
    json_line_chunks,
    jsonl_rows,
)
from frcorpus.sources.resolve import ResolvedSource, SourceError

log = logging.getLogger(__name__)


def _error_line(error: Exception) -> str:
    """An error's text on one line (Arrow's span several)."""
    return " ".join(str(error).split())


def _json_rows(path: Path) -> Iterator[Row]:
    """Rows of a `.json` file: a JSON array (parsed whole), or JSON lines."""
    if is_json_lines(path):  # a .json file holding JSON lines
        yield from jsonl_rows(path)
        return
    try:
        rows = orjson.loads(path.read_bytes())
    except orjson.JSONDecodeError as e:
        raise SourceError(f"{path}: not a valid JSON array ({e}); fix the file or convert it to JSON lines") from None
    for i, obj in enumerate(rows):
        yield f"[{i}]", obj, None, None, None


def _table_parts(path: Path, groups: FilePart | None = None) -> Iterator[tuple[pa.RecordBatch | None, str, int]]:
    """The record batches of a Parquet file (row group by row group; only the row groups of `groups`
    when given) or of an Arrow stream, decoded but not converted; for a part that cannot be decoded (a
    corrupt page), `(None, what is wrong, the rejects that stand for it)`: the rows of the Parquet row
    group not yet read, or 1 for the rest of a stream (whose length is unknown). The other parts are
    read."""
    if path.suffix == ".parquet":
        parquet = pq.ParquetFile(path)
        start = 0 if groups is None else groups.first_row
        span = range(parquet.num_row_groups) if groups is None else range(groups.start, groups.end)
        for group in span:
            rows = parquet.metadata.row_group(group).num_rows
            read = 0
            try:
                for batch in parquet.iter_batches(batch_size=2048, row_groups=[group]):
                    read += batch.num_rows
                    yield batch, "", 0
            except (OSError, pa.ArrowException) as e:
                detail = f"row group {group} (rows {start}-{start + rows - 1}) cannot be decoded: {_error_line(e)}"
                yield None, detail, rows - read
            start += rows
        return
    read = 0
    try:
        for batch in pa.ipc.open_stream(pa.memory_map(str(path))):
            read += batch.num_rows
            yield batch, "", 0
    except (OSError, pa.ArrowException) as e:
        yield (
            None,
            f"the Arrow stream cannot be read past row {read}: {_error_line(e)}; the rest of {path.name} is lost",
            1,
        )


def _table_rows(path: Path, groups: FilePart | None = None) -> Iterator[Row]:
    """Rows of a Parquet file (of the row groups of `groups`, when given) or an Arrow stream; a part
    that cannot be decoded gives its rejects, each `read.corrupt_file` with the error."""
    i = 0 if groups is None else groups.first_row
    for batch, detail, lost in _table_parts(path, groups):
        for obj in batch.to_pylist() if batch is not None else ():
            yield f"[{i}]", obj, None, None, None
            i += 1
        for _ in range(lost):
            yield f"[{i}]", None, None, ReadIssue("corrupt_file", detail), None
            i += 1


def file_rows(path: Path) -> Iterator[Row]:
    """The rows of a data file of any kind, in order, each parsed or with its `ReadIssue`."""
    if path.suffix in (".parquet", ".arrow"):
        return _table_rows(path)
    if path.suffix == ".json":
        return _json_rows(path)
    return jsonl_rows(path)


ID_SEPARATORS = re.compile(r"[%:#]")
HASH_ID = re.compile(r"[0-9a-f]{16}")  # the shape of a hashed id (xxh3_64 in hex)


def id_part(text: str) -> str:
    """A file name or a source's own id as a part of a record id: `%`, `:` (between parts) and `#`
    (before the row number of a rejected row) percent-encoded, and the first character of a text
    that looks like a hashed id too, so that it never equals one. Unchanged in the usual case."""
    if ID_SEPARATORS.search(text):
        text = ID_SEPARATORS.sub(lambda m: f"%{ord(m.group()):02X}", text)
    if HASH_ID.fullmatch(text):
        text = f"%{ord(text[0]):02X}{text[1:]}"
    return text


@dataclass
class SourceReader:
    """Reads the files of one source into batches of records; counts what it detected."""

    src: ResolvedSource
    source_index: int
    formats: dict[str, int] = field(default_factory=dict)
    batch_size: int = 1024

    def read_files(self, file_indices: list[int], budget: int | None) -> Iterator[dict[str, Any]]:
        """Records of these files in order, as dicts; at most `budget` rows in all."""
        for batch in self.read_batches(file_indices, budget, work_schema([])):
            yield from batch.records()

    def read_batches(
        self, file_indices: list[int], budget: int | None, schema: pa.Schema, part: FilePart | None = None
    ) -> Iterator[Batch]:
        """Batches of these files' records in order; at most `budget` rows in all (the source's `limit`);
        only `part` of the one file when given (`sources.split`). Clean stretches of JSON lines come as
        Arrow tables (`columnar.read_chunk`), the rest as dicts."""
        if part is not None and (len(file_indices) != 1 or budget is not None):
            raise ValueError("a part of a file is read alone, without a limit")
        for fi in file_indices:
            if budget is not None and budget <= 0:
                return
            for batch in self._file_batches(fi, budget, schema, part):
                if budget is not None:
                    budget -= len(batch)
                yield batch

    def file_state(self, file_index: int) -> FileState:
        """The state of a file before its first row."""
        cfg = self.src.config
        rel = self.src.rel(self.src.files[file_index])
        return FileState(file_index, rel, cfg.format, cfg.fields.model_dump(), cfg.format != "auto")

    def sample(self, file_index: int, max_rows: int, max_bytes: int) -> tuple[FileState, list[Any], list[dict]]:
        """The first rows of a file (at most `max_rows`; of JSON lines, those in its first `max_bytes`):
        the file's state after them (its format, once detected), the rows as parsed (None where they do
        not parse), and their records as the run makes them."""
        st = self.file_state(file_index)
        path = self.src.files[file_index]
        rows = list(islice(head_rows(path, max_bytes) if is_json_lines(path) else file_rows(path), max_rows))
        return st, [row[1] for row in rows], [self.record(st, *row) for row in rows]

    def _file_batches(
        self, file_index: int, budget: int | None, schema: pa.Schema, part: FilePart | None
    ) -> Iterator[Batch]:
        path = self.src.files[file_index]
        st = self.file_state(file_index)
        if part is not None:
            part.begin(st)
        if not is_json_lines(path):
            rows = file_rows(path) if part is None else _table_rows(path, part)
            yield from self._record_batches(st, rows, budget, schema)
            return
        lineno = 1 if part is None else part.first_line
        with json_line_chunks(path, None if part is None else (part.start, part.end)) as chunks:
            try:
                for chunk in chunks:
                    left = None if budget is None else budget - st.rows
                    if left is not None and left <= 0:
                        return
                    table = columnar.read_chunk(self, st, chunk, lineno, left, schema) if columnar_enabled() else None
                    if table is not None:
                        yield Batch(schema, table=table)
                    else:
                        yield from self._record_batches(st, chunk_rows(chunk, lineno), left, schema)
                    lineno += chunk.count(b"\n")
            except DamagedFile as e:
                left = None if budget is None else budget - st.rows
                yield from self._record_batches(st, iter([damaged_row(path, lineno, e)]), left, schema)

    def _record_batches(self, st: FileState, rows: Iterator[Row], budget: int | None, schema) -> Iterator[Batch]:
        batch: list[dict[str, Any]] = []
        n = 0
        for where, obj, raw, issue, line in rows:
            if budget is not None and n >= budget:
                break
            n += 1
            batch.append(self.record(st, where, obj, raw, issue, line))
            if len(batch) >= self.batch_size:
                yield Batch(schema, records=batch)
                batch = []
        if batch:
            yield Batch(schema, records=batch)

    def detect(self, st: FileState, obj: Any) -> ReadIssue | None:
        """Detect the file's format on its first readable row (format: auto)."""
        try:
            st.fmt, st.fields = detect_format(obj, self.src.config)
        except ReadIssue as e:
            return e
        st.detected = True
        log.info("source '%s': %s: detected format '%s'", self.src.config.name, st.rel, st.fmt)
        return None

    def record_id(self, st: FileState, row_index: int, orig_id: str | None, payload: bytes) -> str:
        """`<source>:<its id>` (`<source>:<file>:<its id>` when the source has several files), or
        `<source>:<hash of the row>`; the file and the id escaped (`id_part`), so that no two rows
        share an id whatever their ids and file names hold."""
        cfg = self.src.config
        if orig_id is not None:
            if st.id_prefix is None:
                several = len(self.src.files) > 1
                st.id_prefix = f"{cfg.name}:{id_part(st.rel)}:" if several else f"{cfg.name}:"
            return st.id_prefix + id_part(orig_id)
        digest = xxhash.xxh3_64_hexdigest(f"{st.rel}\x00{row_index}\x00".encode() + payload)
        return f"{cfg.name}:{digest}"

    def record(self, st: FileState, where: str, obj: Any, raw: str | None, issue, line: bytes | None) -> dict:
        """One row as a record dict: canonical messages, or a `read.*` rejection with its location."""
        cfg = self.src.config
        row_index = st.rows
        st.rows += 1
        location = f"{st.rel}:{where}" if not where.startswith("[") else f"{st.rel}{where}"
        order = (self.source_index, st.file_index, row_index)
        if issue is None and not st.detected and isinstance(obj, dict):
            issue = self.detect(st, obj)
        if issue is None:
            try:
                messages = to_messages(obj, st.fmt, st.fields)
            except ReadIssue as e:
                issue = e
        orig_id = obj.get(cfg.id_field) if isinstance(obj, dict) else None
        orig_id = None if orig_id is None else str(orig_id)
        # the line itself identifies a JSON line; a row of an array or a table, its JSON
        payload = line if line is not None else orjson.dumps(obj, default=str)
        record_id = self.record_id(st, row_index, orig_id, payload)
        source = self.source_info(location, orig_id)
        if issue is None and orig_id is not None:
            if orig_id in st.seen_ids:
                issue = ReadIssue("duplicate_id", f"id {orig_id!r} already appeared earlier in {st.rel}")
            st.seen_ids.add(orig_id)
        if issue is not None:
            if raw is None and obj is not None:
                raw = orjson.dumps(obj).decode()[:RAW_KEEP]
            return reject_record(
                # the source's id may belong to a kept row too (a repeated id, or a broken row whose
                # id comes back later): the row number keeps every record id unique
                record_id=record_id if orig_id is None else f"{record_id}#{row_index}",
                source=source,
                order=order,
                stage="read",
                reason=f"read.{issue.reason}",
                detail=f"{location}: {issue.detail}",
                raw=raw,
            )
        self.formats[st.fmt] = self.formats.get(st.fmt, 0) + 1
        return new_record(record_id=record_id, messages=messages, source=source, order=order)

    def source_info(self, location: str, record_id: str | None) -> dict[str, Any]:
        cfg = self.src.config
        return {
            "name": cfg.name,
            "uri": self.src.uri,
            "revision": self.src.revision,
            "license": cfg.license,
            "language": cfg.language,
            "location": location,
            "record_id": record_id,
        }


def peek_format(src: ResolvedSource) -> str:
    """The format of a source as the reader will see it (first parsable row of the first file)."""
    cfg = src.config
    if cfg.format != "auto":
        return cfg.format
    for path in src.files:
        for _, obj, _, issue, _ in file_rows(path):
            if issue is None and isinstance(obj, dict):
                try:
                    return f"{detect_format(obj, cfg)[0]} (detected)"
                except ReadIssue:
                    return "unknown (no format matches the first row)"
    return "unknown (no readable row)"


def check_readable(src: ResolvedSource) -> None:
    """Open every file once (cheap checks only) so that a broken file fails before any work."""
    for path in src.files:
        try:
            if path.suffix == ".parquet":
                pq.read_metadata(path)
            elif path.suffix == ".arrow":
                with pa.memory_map(str(path)) as f:
                    pa.ipc.open_stream(f).schema  # noqa: B018 - reading the schema is the check
            elif path.suffix == ".json":
                # a JSON array is parsed whole anyway: a broken one fails here, before any work
                for _ in _json_rows(path):
                    break
            elif path.name.endswith(".gz"):
                with open(path, "rb") as f:
                    next(gunzip_blocks(f), None)
            else:
                with open(path, "rb") as f:
                    f.read(1)
        except DamagedFile as e:
            if not e.truncated:  # not gzip at all; an end that comes early is the readers' (rejects)
                raise SourceError(
                    f"source '{src.config.name}': cannot read {path}: {e.detail}; if it holds plain JSON lines, "
                    "rename it to .jsonl"
                ) from None
        except (OSError, pa.ArrowInvalid) as e:
            raise SourceError(f"source '{src.config.name}': cannot read {path}: {e}") from None


def find_damage(path: Path) -> str | None:
    """What a run would reject as `read.corrupt_file` in a file, found by reading it to its end (gzip
    streams, Parquet pages, Arrow streams; other files cannot be damaged below the row level), or
    None. For `frcorpus validate`: it costs a full read of the file."""
    if path.name.endswith(".gz"):
        lines = 0
        try:
            with json_line_chunks(path) as chunks:
                for chunk in chunks:
                    lines += chunk.count(b"\n")
        except DamagedFile as e:
            return f"{e.detail}; a run keeps its first {lines} lines and rejects the rest as read.corrupt_file"
    elif path.suffix in (".parquet", ".arrow"):
        broken = [(detail, lost) for batch, detail, lost in _table_parts(path) if batch is None]
        if broken:
            rejects = sum(lost for _, lost in broken)
            return f"{broken[0][0]}; a run rejects these {rejects} rows as read.corrupt_file and reads the others"
    return None
