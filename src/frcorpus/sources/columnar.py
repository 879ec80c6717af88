"""The columnar fast path for JSON lines in chat formats (`messages`, `sharegpt`).

Arrow's C++ JSON reader parses a whole chunk of lines at once; every check of the per-row reader
(`SourceReader.record`) is then done with Arrow compute and numpy over all the turns of the chunk.
Rows that fail any check, and rows whose id repeats an earlier one, go through the per-row reader,
so they get exactly its reason and detail; the chunk comes back as one table in row order. It
knows that reader only as a `filestate.RowReader`.

A chunk the fast path cannot vouch for goes to the per-row reader whole: blank lines (they shift
line numbers), bytes that are not UTF-8 (Arrow would replace them), `NaN`/`Infinity`/a BOM (Arrow
accepts them, JSON does not), a parse error, a field whose type differs from row to row, or a
format other than a chat format. Measured on generated chat data (benchmarks/bench_engine.py), the
fast path reads about ten times faster than the per-row reader.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pa_json

from frcorpus.batch import PY_WHITESPACE_CLASS, REJECT_TYPE, ROLES, conform, records_to_table
from frcorpus.record import MESSAGE_TYPE, SOURCE_TYPE
from frcorpus.resources import role_aliases
from frcorpus.sources.filestate import FileState, RowReader
from frcorpus.sources.formats import CHAT_FORMATS, chat_fields
from frcorpus.sources.lines import parse_line

BLANK_LINE = re.compile(rb"\n[ \t\r\x0b\x0c]*\n")  # a literal first byte: Python's re scans for it fast
BLANK = b" \t\r\x0b\x0c"
NOT_JSON = (b"NaN", b"Infinity", b"\xef\xbb\xbf")
ONLY_WHITESPACE = f"^{PY_WHITESPACE_CLASS}*$"


def _first_lines(chunk: bytes, n: int) -> bytes:
    """The first n lines of a chunk."""
    pos = -1
    for _ in range(n):
        pos = chunk.find(b"\n", pos + 1)
        if pos < 0:
            return chunk
    return chunk[: pos + 1]


def _clean_bytes(chunk: bytes) -> bool:
    body = chunk[:-1] if chunk.endswith(b"\n") else chunk
    first_line = body[: body.find(b"\n")] if b"\n" in body else body
    last_line = body[body.rfind(b"\n") + 1 :]
    if not first_line.strip(BLANK) or not last_line.strip(BLANK) or BLANK_LINE.search(body):
        return False
    if any(token in chunk for token in NOT_JSON):
        return False
    # Arrow's UTF-8 validation, twice as fast as bytes.decode and without the copy
    as_text = pa.StringArray.from_buffers(1, pa.py_buffer(np.array([0, len(chunk)], np.int32)), pa.py_buffer(chunk))
    try:
        as_text.validate(full=True)
    except pa.ArrowInvalid:
        return False
    return True


def _role_codes(roles: pa.Array) -> np.ndarray:
    """Role strings to codes 0/1/2 through the role aliases; -1 for unknown or missing roles."""
    aliases = role_aliases()
    encoded = roles.dictionary_encode()
    mapped = [aliases.get(v.strip().lower()) for v in encoded.dictionary.to_pylist()]
    table = np.array([ROLES.index(m) if m in ROLES else -1 for m in mapped] + [-1], dtype=np.int8)
    indices = encoded.indices.fill_null(len(mapped)).to_numpy()
    return table[indices]


@dataclass
class Turns:
    """The turns of a chunk, flattened, and the rows the per-row reader must see."""

    suspicious: np.ndarray  # per row: it would reject the row or change it
    codes: np.ndarray  # per turn: 0 system, 1 user, 2 assistant, -1 unknown
    parent: np.ndarray  # per turn: its row
    lengths: np.ndarray  # per row: its number of turns
    contents: pa.Array  # per turn


def _check_turns(col: pa.ListArray, role_key: str, content_key: str) -> Turns | None:
    """Every check of the per-row reader, over all turns at once; None when the column does not
    have the shape of a chat."""
    if not (pa.types.is_list(col.type) and pa.types.is_struct(col.type.value_type)):
        return None
    turn_type = col.type.value_type
    names = [turn_type.field(i).name for i in range(turn_type.num_fields)]
    for key in (role_key, content_key):
        if key not in names or turn_type.field(key).type != pa.string():
            return None
    rows = len(col)
    offsets = col.offsets.to_numpy()
    offsets = offsets - offsets[0]
    lengths = np.diff(offsets)
    flat = col.flatten()
    parent = np.repeat(np.arange(rows), lengths)
    roles, contents = flat.field(role_key), flat.field(content_key)
    codes = _role_codes(roles)
    bad_turn = (
        flat.is_null().to_numpy(zero_copy_only=False)
        | (codes < 0)
        | pc.fill_null(pc.match_substring_regex(contents, ONLY_WHITESPACE), True).to_numpy(zero_copy_only=False)
    )
    bad = col.is_null().to_numpy(zero_copy_only=False) | (lengths == 0)
    bad |= np.bincount(parent[bad_turn], minlength=rows) > 0
    position = np.arange(len(flat)) - offsets[:-1][parent]
    bad |= np.bincount(parent[(codes == 0) & (position != 0)], minlength=rows) > 0  # system not first
    same = (codes[1:] == codes[:-1]) & (parent[1:] == parent[:-1])
    bad |= np.bincount(parent[1:][same], minlength=rows) > 0  # consecutive turns of one role
    nonempty = lengths > 0
    starts = offsets[:-1][nonempty]
    first = codes[starts]
    second_ok = lengths[nonempty] > 1
    second = np.where(second_ok, codes[np.minimum(starts + 1, len(codes) - 1)], -1)
    opening = np.where((first == 0) & second_ok, second, first)
    bad[np.flatnonzero(nonempty)[opening != 1]] = True  # does not open with a user turn
    bad |= np.bincount(parent[codes == 2], minlength=rows) == 0  # no assistant turn
    return Turns(bad, codes, parent, lengths, contents)


def _ids(table: pa.Table, id_field: str) -> list[str | None]:
    """The source's own ids as strings, None where absent."""
    return table[id_field].cast(pa.string()).to_pylist()


def read_chunk(
    reader: RowReader, st: FileState, chunk: bytes, first_lineno: int, budget: int | None, schema: pa.Schema
) -> pa.Table | None:
    """The records of a chunk of whole lines as a table of `schema`, or None to read it row by row.
    Advances `st` (rows read, ids seen, format detected) exactly as the per-row reader would."""
    if budget is not None:
        chunk = _first_lines(chunk, budget)
    if not _clean_bytes(chunk):
        return None
    id_field = reader.src.config.id_field
    if not st.detected or st.id_type is None:
        obj, _, issue = parse_line(chunk[: chunk.find(b"\n")] if b"\n" in chunk else chunk)
        if issue is not None or not isinstance(obj, dict):
            return None
        if not st.detected and reader.detect(st, obj) is not None:
            return None
        # ids convert exactly as str() does only from strings and integers
        value = obj.get(id_field)
        if value is None or isinstance(value, str):
            st.id_type = pa.string()
        elif isinstance(value, int) and not isinstance(value, bool):
            st.id_type = pa.int64()
        else:
            return None
    if st.fmt not in CHAT_FORMATS:
        return None
    n = chunk.count(b"\n") + (0 if chunk.endswith(b"\n") else 1)
    chat_keys, role_key, content_key = chat_fields(st.fmt, st.fields)
    if id_field in chat_keys or role_key == content_key:  # one column cannot be read as two
        return None
    # an explicit schema: Arrow's type inference would cost four times the parsing
    turn = pa.list_(pa.struct([(role_key, pa.string()), (content_key, pa.string())]))
    schema_in = pa.schema([(key, turn) for key in chat_keys] + [(id_field, st.id_type)])
    try:
        table = pa_json.read_json(
            pa.BufferReader(chunk),
            read_options=pa_json.ReadOptions(use_threads=False, block_size=len(chunk) + 1),
            parse_options=pa_json.ParseOptions(explicit_schema=schema_in, unexpected_field_behavior="ignore"),
        )
    except pa.ArrowInvalid:  # a row that does not fit the schema (or is not JSON): row by row
        return None
    keys = [k for k in chat_keys if table[k].null_count < table.num_rows]
    if table.num_rows != n or len(keys) != 1:
        return None
    col = table[keys[0]].combine_chunks()
    turns = _check_turns(col, role_key, content_key)
    if turns is None:
        return None
    ids = _ids(table, id_field)
    return _assemble(reader, st, chunk, first_lineno, turns, ids, schema)


def _assemble(
    reader: RowReader,
    st: FileState,
    chunk: bytes,
    first_lineno: int,
    turns: Turns,
    ids: list[str | None],
    schema: pa.Schema,
) -> pa.Table:
    first_row = st.rows
    suspicious = turns.suspicious
    lines: list[bytes] | None = None
    slow_records: list[dict[str, Any]] = []
    slow_rows: list[int] = []
    fast_rows: list[int] = []
    record_ids: list[str] = []
    for i, orig_id in enumerate(ids):
        if suspicious[i] or (orig_id is not None and orig_id in st.seen_ids):
            if lines is None:
                lines = chunk.split(b"\n")
            st.rows = first_row + i
            obj, raw, issue = parse_line(lines[i])
            slow_records.append(reader.record(st, str(first_lineno + i), obj, raw, issue, lines[i]))
            slow_rows.append(i)
            continue
        if orig_id is None:
            if lines is None:
                lines = chunk.split(b"\n")
            record_ids.append(reader.record_id(st, first_row + i, None, lines[i]))
        else:
            st.seen_ids.add(orig_id)
            record_ids.append(reader.record_id(st, first_row + i, orig_id, b""))
        fast_rows.append(i)
    st.rows = first_row + len(ids)
    if fast_rows:  # the per-row reader counts a format only for a record it keeps
        reader.formats[st.fmt] = reader.formats.get(st.fmt, 0) + len(fast_rows)

    fast = np.array(fast_rows, dtype=np.int64)
    n = len(fast)
    row_is_fast = np.zeros(len(ids), dtype=bool)
    row_is_fast[fast] = True
    turn_is_fast = row_is_fast[turns.parent]
    roles = pa.array(ROLES).take(pa.array(turns.codes[turn_is_fast]))
    struct = pa.StructArray.from_arrays(
        [roles, turns.contents.filter(pa.array(turn_is_fast))], fields=list(MESSAGE_TYPE)
    )
    offsets = np.concatenate([[0], np.cumsum(turns.lengths[fast])])
    messages = pa.ListArray.from_arrays(pa.array(offsets, pa.int32()), struct)
    cfg = reader.src.config
    rows = fast + first_row
    constant = {
        "name": cfg.name,
        "uri": reader.src.uri,
        "revision": reader.src.revision,
        "license": cfg.license,
        "language": cfg.language,
    }
    source_fields = [pa.array([v] * n, pa.string()) for v in constant.values()]
    source_fields.append(pa.array([f"{st.rel}:{first_lineno + i}" for i in fast_rows], pa.string()))
    source_fields.append(pa.array([ids[i] for i in fast_rows], pa.string()))
    source = pa.StructArray.from_arrays(source_fields, fields=list(SOURCE_TYPE))
    order = np.column_stack([np.full(n, reader.source_index), np.full(n, st.file_index), rows]).ravel()
    table = pa.table(
        {
            "id": pa.array(record_ids, pa.string()),
            "messages": messages,
            "source": source,
            "_order": pa.ListArray.from_arrays(pa.array(np.arange(0, 3 * n + 1, 3), pa.int32()), pa.array(order)),
            "_reject": pa.nulls(n, REJECT_TYPE),
            "_raw": pa.nulls(n, pa.string()),
        }
    )
    table = conform(table, schema)
    if not slow_records:
        return table
    slow = records_to_table(slow_records, schema)
    position = np.concatenate([fast, np.array(slow_rows, dtype=np.int64)])
    return pa.concat_tables([table, slow]).take(pa.array(np.argsort(position, kind="stable")))
