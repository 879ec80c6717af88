"""The bytes of a JSON-lines file (`.jsonl`, `.json` holding lines, `.jsonl.gz`) as chunks of whole
lines and as parsed rows. A gzip stream that is not gzip or ends early raises `DamagedFile` after
every whole line before the damage; the readers turn what is lost into one `read.corrupt_file` row.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import orjson

from frcorpus.sources.formats import ReadIssue

RAW_KEEP = 4000  # characters of a malformed row kept in rejects/ to show what was wrong
Row = tuple[str, Any, str | None, ReadIssue | None, bytes | None]  # location, object, raw, issue, line
CHUNK_BYTES = 8 << 20  # JSON lines are read in chunks of whole lines of about this size
GZIP_BLOCK = 1 << 20  # compressed bytes decompressed at a time


class DamagedFile(Exception):
    """A file that cannot be read to its end (a truncated or corrupt gzip stream). `tail` holds the
    bytes after its last whole line that could be read."""

    def __init__(self, detail: str, truncated: bool, tail: bytes = b""):
        super().__init__(detail)
        self.detail = detail
        self.truncated = truncated  # it ends early (else: bytes that are not gzip)
        self.tail = tail


def _plain_chunks(f, end: int | None = None) -> Iterator[bytes]:
    """Chunks of whole lines from the file's position to `end` (a line boundary) or its end."""
    while True:
        size = CHUNK_BYTES if end is None else min(CHUNK_BYTES, end - f.tell())
        chunk = f.read(size) if size > 0 else b""
        if not chunk:
            return
        if not chunk.endswith(b"\n"):
            chunk += f.readline()
        yield chunk


def gunzip_blocks(f) -> Iterator[bytes]:
    """The decompressed bytes of a gzip stream (members one after another, zero padding allowed),
    then DamagedFile if the stream is not gzip or ends early. Written over zlib rather than with
    `gzip.GzipFile`, which loses the bytes it decompressed in the read that finds the damage: this
    keeps every byte up to it."""
    decompressor = zlib.decompressobj(wbits=31)
    started = False  # a member is open
    while True:
        raw = f.read(GZIP_BLOCK)
        if not raw:
            if started:
                raise DamagedFile("the gzip stream ends early (a truncated download or copy?)", truncated=True)
            return
        while raw:
            if not started:
                raw = raw.lstrip(b"\0")
                if not raw:
                    break
                started = True
            try:
                out = decompressor.decompress(raw)
            except zlib.error as e:
                raise DamagedFile(f"not a valid gzip stream ({e})", truncated=False) from None
            if out:
                yield out
            raw = b""
            if decompressor.eof:  # a member ended; another may follow
                raw = decompressor.unused_data
                decompressor = zlib.decompressobj(wbits=31)
                started = False


def _line_chunks_of(blocks: Iterator[bytes]) -> Iterator[bytes]:
    """Chunks of whole lines of at least CHUNK_BYTES (but the last) from blocks of bytes, each byte
    copied once; on DamagedFile, the whole lines before the damage first, then the error with the
    partial last line as its tail."""
    parts: list[bytes | memoryview] = []
    size = 0
    try:
        for block in blocks:
            cut = block.rfind(b"\n") + 1
            if size + cut < CHUNK_BYTES or not cut:
                parts.append(block)
                size += len(block)
                continue
            view = memoryview(block)
            yield b"".join([*parts, view[:cut]])
            parts, size = [view[cut:]], len(block) - cut
    except DamagedFile as e:
        data = b"".join(parts)
        cut = data.rfind(b"\n") + 1
        if cut:
            yield data[:cut]
        e.tail = data[cut:]
        raise
    if size:
        yield b"".join(parts)


@contextmanager
def json_line_chunks(path: Path, byte_range: tuple[int, int] | None = None) -> Iterator[Iterator[bytes]]:
    """The chunks of whole lines of a JSON-lines file (`.gz` decompressed), or of the lines between two
    line boundaries of a plain one (`byte_range`: start, end); may raise DamagedFile."""
    with open(path, "rb") as f:
        if path.name.endswith(".gz"):
            if byte_range is not None:
                raise ValueError(f"{path}: a gzip stream cannot be read from the middle")
            yield _line_chunks_of(gunzip_blocks(f))
            return
        if byte_range is None:
            yield _plain_chunks(f)
            return
        f.seek(byte_range[0])
        yield _plain_chunks(f, byte_range[1])


def damaged_row(path: Path, lineno: int, error: DamagedFile) -> Row:
    """The rejected row that stands for what a damaged file no longer holds, at the line where it stops."""
    detail = f"{error.detail}; the lines before line {lineno} were read, the rest of {path.name} is lost"
    raw = error.tail.decode("utf-8", "replace")[:RAW_KEEP] if error.tail else None
    return str(lineno), None, raw, ReadIssue("corrupt_file", detail), error.tail


def parse_line(line: bytes) -> tuple[Any, str | None, ReadIssue | None]:
    """(object, raw text if malformed, issue) for one line without its newline."""
    try:
        text = line.decode("utf-8")
    except UnicodeDecodeError as e:
        raw = line.decode("utf-8", "replace")[:RAW_KEEP]
        return None, raw, ReadIssue("invalid_utf8", f"invalid UTF-8 at byte {e.start}")
    try:
        return orjson.loads(text), None, None
    except orjson.JSONDecodeError as e:
        return None, text[:RAW_KEEP], ReadIssue("invalid_json", str(e))


def chunk_rows(chunk: bytes, first_lineno: int) -> Iterator[Row]:
    """Rows of the non-blank lines of a chunk whose first line is `first_lineno`."""
    lines = chunk.split(b"\n")
    if chunk.endswith(b"\n"):
        lines.pop()
    for lineno, line in enumerate(lines, first_lineno):
        if line.strip():
            yield (str(lineno), *parse_line(line), line)


def jsonl_rows(path: Path) -> Iterator[Row]:
    """The rows of a JSON-lines file; what a damaged one no longer holds, as one last rejected row."""
    lineno = 1
    with json_line_chunks(path) as chunks:
        try:
            for chunk in chunks:
                yield from chunk_rows(chunk, lineno)
                lineno += chunk.count(b"\n")
        except DamagedFile as e:
            yield damaged_row(path, lineno, e)


def head_rows(path: Path, max_bytes: int) -> Iterator[Row]:
    """The rows of the whole lines in the first `max_bytes` of a JSON-lines file (`.gz`: of its
    decompressed bytes; at least its first line, however long), without reading the rest."""
    data = bytearray()
    with open(path, "rb") as f:
        blocks = gunzip_blocks(f) if path.name.endswith(".gz") else iter(lambda: f.read(1 << 16), b"")
        try:
            for block in blocks:
                data += block
                if len(data) >= max_bytes and b"\n" in data:
                    break
            else:  # the whole file is in `data`
                yield from chunk_rows(bytes(data), 1)
                return
        except DamagedFile as e:  # reached before the bound: its rows, then the reject that stands for the rest
            whole = data.rfind(b"\n") + 1
            e.tail = bytes(data[whole:])
            yield from chunk_rows(bytes(data[:whole]), 1)
            yield damaged_row(path, data.count(b"\n") + 1, e)
            return
    end = data.rfind(b"\n", 0, max_bytes) + 1 or data.find(b"\n") + 1
    yield from chunk_rows(bytes(data[:end]), 1)


def is_json_lines(path: Path) -> bool:
    """Whether a file holds JSON lines: not a table, and for `.json`, not a JSON array."""
    if path.suffix != ".json":
        return path.suffix not in (".parquet", ".arrow")
    with open(path, "rb") as f:
        return f.read(4096).lstrip()[:1] != b"["
