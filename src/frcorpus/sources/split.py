"""One big file read by several tasks: its parts (`filestate.FilePart`), cut at line boundaries of
plain JSON lines or between row groups of Parquet, each with the state the reader of the whole file
would have at its first row. The parts together give exactly the records one task reading the whole
file gives: the same ids, order, locations and rejections.

Finding that state reads the file once before the run (`split_file`): it counts the lines, and the
blank ones, before each cut; finds the row where `format: auto` detects the format; and checks that
no id repeats, since only the reader that saw an id's first occurrence can reject the next as
`read.duplicate_id`. Such a file is read whole by one task, as are gzip streams (they cannot be read
from the middle), JSON arrays (parsed whole anyway) and Arrow streams.
"""

from __future__ import annotations

import re
from array import array
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import xxhash

from frcorpus.sources.config import SourceConfig
from frcorpus.sources.filestate import FilePart
from frcorpus.sources.formats import ReadIssue, detect_format
from frcorpus.sources.lines import is_json_lines, json_line_chunks, parse_line

# a line break followed by a blank line (only ASCII whitespace, as bytes.strip() removes): the reader
# skips blank lines, so they count as lines but not as rows; a literal first byte lets `re` scan fast
BEFORE_BLANK_LINE = re.compile(rb"\n(?=[ \t\r\x0b\x0c]*\n)")


@dataclass(frozen=True)
class Split:
    """A file's parts, or no parts and why it is read whole."""

    parts: list[FilePart]
    why_whole: str | None = None


def split_file(path: Path, cfg: SourceConfig, parts: int) -> Split:
    """`path`, a file of a source configured by `cfg`, cut into at most `parts` parts of about equal
    size. Reads the whole file once (for Parquet, its id column)."""
    if path.name.endswith(".gz"):
        return Split([], "a gzip stream cannot be read from the middle")
    if path.suffix == ".parquet":
        return _split_parquet(path, cfg, parts)
    if path.suffix == ".arrow":
        return Split([], "an Arrow stream is read from its start")
    if not is_json_lines(path):
        return Split([], "a JSON array is parsed whole")
    return _split_lines(path, cfg, parts)


def _fixed_format(cfg: SourceConfig) -> tuple[str, dict, bool]:
    return cfg.format, cfg.fields.model_dump(), cfg.format != "auto"


def _detects(obj, cfg: SourceConfig) -> tuple[str, dict] | None:
    """The format the reader detects on this row (a dict that parsed), or None if it detects none."""
    try:
        return detect_format(obj, cfg)
    except ReadIssue:
        return None


def _parts(bounds: list[int], starts: list[tuple[int, int]], state: tuple[str, dict, bool], cfg: SourceConfig) -> Split:
    """The parts between `bounds`, each with its (first line, first row); the first starts in the state
    of the file's start, the others in `state` (format, fields, detected)."""
    n = len(bounds) - 1
    first = FilePart(0, n, 0, bounds[1], *starts[0], *_fixed_format(cfg))
    rest = [FilePart(i, n, bounds[i], bounds[i + 1], *starts[i], *state) for i in range(1, n)]
    return Split([first, *rest])


# ---------------------------------------------------------------------------------------- JSON lines


def _line_cuts(path: Path, parts: int) -> list[int]:
    """Byte offsets of the line starts at or after each k/parts of the file, without repeats."""
    size = path.stat().st_size
    cuts: list[int] = []
    with open(path, "rb") as f:
        for k in range(1, parts):
            f.seek(max(0, size * k // parts - 1))
            f.readline()  # to the end of the line holding the byte before the k-th share
            cut = f.tell()
            if 0 < cut < size and (not cuts or cut > cuts[-1]):
                cuts.append(cut)
    return cuts


def _detection_end(path: Path, cfg: SourceConfig, limit: int) -> tuple[int, str, dict] | None:
    """Where the line on which `format: auto` detects the format ends, and what it detects; None when no
    line ending by `limit` bytes gives one (the reader's rule: the first row that parses to an object
    whose format is known)."""
    end = 0
    with open(path, "rb") as f:
        for line in f:
            end += len(line)
            if end > limit:
                return None
            body = line.rstrip(b"\n")
            if not body.strip():
                continue
            obj, _, issue = parse_line(body)
            if issue is None and isinstance(obj, dict) and (found := _detects(obj, cfg)) is not None:
                return end, *found
    return None


def _blank_lines(chunk: bytes) -> int:
    """The blank lines of a chunk of whole lines."""
    first = chunk.find(b"\n")
    blank_first = not (chunk if first < 0 else chunk[:first]).strip()
    return blank_first + len(BEFORE_BLANK_LINE.findall(chunk))


def _id_hashes(chunk: bytes, id_field: str, key: bytes, out: array) -> None:
    """Append the hash of the id of every line of the chunk that has one (as the reader reads it:
    str() of the field of a row that parses to an object). Only lines that hold the quoted field name,
    or an escape that could spell it, are parsed."""
    if key not in chunk and b"\\u" not in chunk:
        return
    for line in chunk.split(b"\n"):
        if key in line or b"\\u" in line:
            obj, _, issue = parse_line(line)
            if issue is None and isinstance(obj, dict) and (value := obj.get(id_field)) is not None:
                out.append(xxhash.xxh3_64_intdigest(str(value).encode("utf-8", "surrogatepass")))


def _repeats(hashes: array | np.ndarray) -> bool:
    values = np.asarray(hashes, dtype=np.uint64)
    return len(np.unique(values)) < len(values)  # a hash collision only keeps the file whole


def _split_lines(path: Path, cfg: SourceConfig, parts: int) -> Split:
    cuts = _line_cuts(path, parts)
    fmt, fields, detected = _fixed_format(cfg)
    if cuts and not detected:
        found = _detection_end(path, cfg, cuts[-1])
        if found is None:
            return Split([], "no row before its last part detects a format")
        end, fmt, fields = found
        cuts = [cut for cut in cuts if cut >= end]  # the parts after the detection know the format
        detected = True
    if not cuts:
        return Split([], "its lines cannot be cut into parts")
    bounds = [0, *cuts, path.stat().st_size]
    starts: list[tuple[int, int]] = []  # (first line, first row) of each part
    newlines = blanks = 0
    hashes = array("Q")
    key = orjson.dumps(cfg.id_field)
    for start, end in zip(bounds, bounds[1:], strict=False):
        starts.append((newlines + 1, newlines - blanks))
        with json_line_chunks(path, (start, end)) as chunks:
            for chunk in chunks:
                newlines += chunk.count(b"\n")
                blanks += _blank_lines(chunk)
                _id_hashes(chunk, cfg.id_field, key, hashes)
    if _repeats(hashes):
        return Split([], f"an id (field '{cfg.id_field}') repeats in it")
    return _parts(bounds, starts, (fmt, fields, detected), cfg)


# ------------------------------------------------------------------------------------------- Parquet


def _group_cuts(rows: list[int], parts: int) -> list[int]:
    """The row groups that start each part, for parts of about equal rows."""
    before = np.concatenate([[0], np.cumsum(rows)[:-1]])
    total = sum(rows)
    cuts = sorted({int(np.searchsorted(before, total * k / parts)) for k in range(1, parts)})
    return [g for g in cuts if 0 < g < len(rows)]


def _table_detection(parquet: pq.ParquetFile, cfg: SourceConfig, groups: int) -> tuple[int, str, dict] | None:
    """The row group where `format: auto` detects the format (on its first row that has one) among the
    first `groups`, and what it detects."""
    for group in range(groups):
        for batch in parquet.iter_batches(batch_size=256, row_groups=[group]):
            for obj in batch.to_pylist():
                if (found := _detects(obj, cfg)) is not None:
                    return group, *found
    return None


def _split_parquet(path: Path, cfg: SourceConfig, parts: int) -> Split:
    try:
        parquet = pq.ParquetFile(path)
        rows = [parquet.metadata.row_group(g).num_rows for g in range(parquet.num_row_groups)]
        cuts = _group_cuts(rows, parts)
        fmt, fields, detected = _fixed_format(cfg)
        if cuts and not detected:
            found = _table_detection(parquet, cfg, cuts[-1])
            if found is None:
                return Split([], "no row before its last part detects a format")
            group, fmt, fields = found
            cuts = [g for g in cuts if g > group]
            detected = True
        if not cuts:
            return Split([], "its row groups cannot be cut into parts")
        if cfg.id_field in parquet.schema_arrow.names:
            ids = parquet.read(columns=[cfg.id_field]).column(0).combine_chunks()
            if not (pa.types.is_string(ids.type) or pa.types.is_integer(ids.type)):
                return Split([], f"its ids (field '{cfg.id_field}') are neither strings nor integers")
            ids = pc.cast(ids, pa.string()).drop_null()
            if pc.count_distinct(ids).as_py() < len(ids):
                return Split([], f"an id (field '{cfg.id_field}') repeats in it")
    except (OSError, pa.ArrowException) as e:
        return Split([], f"it cannot be read whole ({' '.join(str(e).split())})")
    bounds = [0, *cuts, len(rows)]
    return _parts(bounds, [(0, sum(rows[: bounds[i]])) for i in range(len(bounds) - 1)], (fmt, fields, detected), cfg)
