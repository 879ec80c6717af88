"""What reading one file carries from row to row (`FileState`), and what the columnar fast path
asks of the per-row reader (`RowReader`, which `SourceReader` is): both readers advance the same
state, so that a file reads the same whichever path each chunk takes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

import pyarrow as pa

from frcorpus.sources.formats import ReadIssue
from frcorpus.sources.resolve import ResolvedSource


@dataclass
class FileState:
    """What reading one file carries from row to row: its format, once known, and the ids seen."""

    file_index: int
    rel: str
    fmt: str
    fields: dict[str, Any]  # the source's `fields:` mapping, with the names detection found
    detected: bool
    rows: int = 0  # rows (non-blank lines) read so far
    seen_ids: set[str] = field(default_factory=set)
    id_type: pa.DataType | None = None  # of the id field, for the columnar reader
    id_prefix: str | None = None  # of the record ids made from the source's own ids


@dataclass(frozen=True)
class FilePart:
    """A part of a big file that one task reads (`sources.split`): lines `start`..`end` in bytes of
    JSON lines (cut at line boundaries), or row groups `start`..`end` of a Parquet file; with the
    state the reader of the whole file would have at its first row, so that the parts together
    give the records that reading the whole file gives."""

    index: int  # among the file's parts
    count: int  # the file's parts
    start: int
    end: int
    first_line: int  # the line number of its first line (JSON lines)
    first_row: int  # rows (non-blank lines, or table rows) before it
    fmt: str
    fields: dict[str, Any]
    detected: bool

    def begin(self, st: FileState) -> FileState:
        """`st`, the state of the file before its first row, moved to the part's first row."""
        st.rows = self.first_row
        st.fmt, st.fields, st.detected = self.fmt, dict(self.fields), self.detected
        return st


class RowReader(Protocol):
    """The per-row reader as the columnar path uses it: the rows it cannot vouch for go to `record`,
    and it makes record ids, detects formats and counts them the same way."""

    src: ResolvedSource
    source_index: int
    formats: dict[str, int]  # records kept, by format

    def detect(self, st: FileState, obj: Any) -> ReadIssue | None: ...

    def record_id(self, st: FileState, row_index: int, orig_id: str | None, payload: bytes) -> str: ...

    def record(
        self, st: FileState, where: str, obj: Any, raw: str | None, issue: ReadIssue | None, line: bytes | None
    ) -> dict[str, Any]: ...
