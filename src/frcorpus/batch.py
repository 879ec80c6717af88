"""Batches of records as they flow through a phase: an Arrow table or a list of record dicts.

Readers emit a clean stretch of a JSONL file as one Arrow table; stages that have a columnar
implementation (`process_table`, `signature_table`) work on it with Arrow compute, and the writer
writes it without any Python work per record. A stage without one gets the batch as dicts, and the
batch converts back when the next consumer wants a table. Both faces carry the same columns:
the record, `_order` (the global order), `_reject` (null while the record is live) and `_raw`.

`FRCORPUS_COLUMNAR=0` (`settings.columnar_enabled`) turns every columnar path off (readers and
stages), which the tests use to check that both paths give byte-identical datasets.
"""

from __future__ import annotations

import itertools
import unicodedata
from functools import cache
from typing import Any

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pa_json

from frcorpus.record import BASE_FIELDS

REJECT_TYPE = pa.struct([("stage", pa.string()), ("reason", pa.string()), ("detail", pa.string())])
ROLES = ("system", "user", "assistant")  # role codes 0, 1, 2 in `chat_layout`

# What Python's str.isspace() (so str.strip() and str.split()) treats as whitespace: Arrow's own
# whitespace sets differ (RE2's \s is ASCII only), so columnar code names the characters.
PY_WHITESPACE = "".join(chr(c) for c in range(0x3001) if chr(c).isspace())
PY_WHITESPACE_CLASS = "[" + "".join(f"\\x{{{ord(c):x}}}" for c in PY_WHITESPACE) + "]"


@cache
def unstable_class(form: str) -> str:
    """An RE2 character class of every character that can change under Unicode normalisation
    `form` (NFC or NFKC): changed alone, a combining mark, or the second half of a canonical pair
    (it composes with what precedes it; Hangul jamo compose by rule). A text without any of them is
    already normalised, so `unicodedata.normalize` would return it unchanged. Built from Python's
    own unicodedata, so it matches the per-record path exactly."""
    unstable = set(range(0x1161, 0x1176)) | set(range(0x11A8, 0x11C3))
    # planes 0-2 and 14: every other code point is unassigned or has no decomposition
    for cp in itertools.chain(range(0x32000), range(0xE0000, 0xE1000)):
        if 0xD800 <= cp < 0xE000:
            continue
        ch = chr(cp)
        if unicodedata.combining(ch) or unicodedata.normalize(form, ch) != ch:
            unstable.add(cp)
        decomposition = unicodedata.decomposition(ch)
        if decomposition and not decomposition.startswith("<") and len(parts := decomposition.split()) == 2:
            unstable.add(int(parts[1], 16))
    ranges: list[list[int]] = []
    for cp in sorted(unstable):
        if ranges and cp == ranges[-1][1] + 1:
            ranges[-1][1] = cp
        else:
            ranges.append([cp, cp])
    return "[" + "".join(f"\\x{{{a:x}}}" + (f"-\\x{{{b:x}}}" if b > a else "") for a, b in ranges) + "]"


def work_schema(annotation_fields: list[tuple[str, pa.DataType]]) -> pa.Schema:
    """Columns of a batch inside a phase: the data columns plus the engine's private ones."""
    return pa.schema(
        BASE_FIELDS
        + annotation_fields
        + [("_order", pa.list_(pa.int64())), ("_reject", REJECT_TYPE), ("_raw", pa.string())]
    )


def records_to_table(records: list[dict[str, Any]], schema: pa.Schema) -> pa.Table:
    """Record dicts to a table of `schema`. orjson + Arrow's JSON reader build it about four times
    faster than `pa.Table.from_pylist` for nested `messages` (measured: 9 vs 37 us per record)."""
    if not records:
        return schema.empty_table()
    # Arrow's JSON reader cannot build map columns (`scores`): those are built from the Python values
    maps = [f for f in schema if pa.types.is_map(f.type)]
    json_schema = pa.schema([f for f in schema if not pa.types.is_map(f.type)]) if maps else schema
    names = json_schema.names
    # one buffer, not a list of lines: each bytes object orjson returns keeps a 16 KiB allocation whatever
    # its length (orjson 3.13), so the 7,407 lines of a batch (11 MiB) held 85 MiB as a list
    data = bytearray()
    longest = 0
    for r in records:
        line = orjson.dumps({k: r.get(k) for k in names}, option=orjson.OPT_SERIALIZE_NUMPY)
        longest = max(longest, len(line))
        data += line
        data += b"\n"
    table = pa_json.read_json(
        pa.BufferReader(data),
        read_options=pa_json.ReadOptions(use_threads=False, block_size=max(1 << 20, len(data) + 1, longest + 1)),
        parse_options=pa_json.ParseOptions(explicit_schema=json_schema, unexpected_field_behavior="ignore"),
    )
    for f in maps:  # a dict or the (key, value) pairs Arrow gives back for a map
        table = table.append_column(f, pa.array([r.get(f.name) for r in records], f.type))
    return table.select(schema.names).cast(schema)


def conform(table: pa.Table, schema: pa.Schema) -> pa.Table:
    """Add missing columns of `schema` as nulls, order them as `schema` does, cast."""
    columns = [table[f.name] if f.name in table.column_names else pa.nulls(table.num_rows, f.type) for f in schema]
    return pa.Table.from_arrays(columns, schema=schema)


class Batch:
    """One chunk of the stream, held as a table or as dicts; converts on demand.

    A stage that changes dicts in place must have asked for `records()`, which drops the table;
    `table()` drops the dicts. So the two faces are never both live and out of step."""

    __slots__ = ("_records", "_table", "schema")

    def __init__(
        self,
        schema: pa.Schema,
        *,
        table: pa.Table | None = None,
        records: list[dict[str, Any]] | None = None,
    ):
        self.schema = schema
        self._table = None if table is None else conform(table, schema)
        self._records = records

    @property
    def is_table(self) -> bool:
        return self._table is not None

    def __len__(self) -> int:
        return self._table.num_rows if self._table is not None else len(self._records or [])

    def records(self) -> list[dict[str, Any]]:
        if self._records is None:
            self._records = self._table.to_pylist()
            self._table = None
        return self._records

    def table(self) -> pa.Table:
        if self._table is None:
            self._table = records_to_table(self._records or [], self.schema)
            self._records = None
        return self._table

    def set_table(self, table: pa.Table) -> None:
        self._table, self._records = table, None


def live_mask(table: pa.Table) -> np.ndarray:
    """True for rows no stage has rejected."""
    return table["_reject"].is_null().to_numpy(zero_copy_only=False)


def reject_counts(table: pa.Table) -> dict[str, int]:
    """Rejected rows of a table by reason."""
    reasons = pc.struct_field(table["_reject"], "reason").drop_null()
    if len(reasons) == 0:
        return {}
    return {item["values"].as_py(): item["counts"].as_py() for item in pc.value_counts(reasons)}


def with_rejects(
    table: pa.Table, rows: np.ndarray, stage: str | list[str], reasons: list[str], details: list[str]
) -> pa.Table:
    """Set `_reject` on `rows` (indices, in the order of `reasons` and `details`; `stage` is one
    stage id for all or one per row)."""
    if len(rows) == 0:
        return table
    stage_of = [stage] * len(rows) if isinstance(stage, str) else stage
    stages = [None] * table.num_rows
    reason_col = [None] * table.num_rows
    detail_col = [None] * table.num_rows
    for i, s, r, d in zip(rows.tolist(), stage_of, reasons, details, strict=True):
        stages[i], reason_col[i], detail_col[i] = s, r, d
    new = pa.StructArray.from_arrays(
        [pa.array(stages, pa.string()), pa.array(reason_col, pa.string()), pa.array(detail_col, pa.string())],
        fields=list(REJECT_TYPE),
        mask=pa.array([s is None for s in stages]),
    )
    merged = pc.if_else(table["_reject"].is_null(), new, table["_reject"].combine_chunks())
    return table.set_column(table.schema.get_field_index("_reject"), "_reject", merged)


class ChatLayout:
    """The turns of a `messages` column, flattened: role codes (0 system, 1 user, 2 assistant),
    the row of each turn and the list offsets, for vectorised checks over whole batches."""

    def __init__(self, messages: pa.Array | pa.ChunkedArray):
        if isinstance(messages, pa.ChunkedArray):
            messages = messages.combine_chunks()
        self.messages = messages
        self.rows = len(messages)
        offsets = messages.offsets.to_numpy()
        self.offsets = offsets - offsets[0]
        self.lengths = np.diff(self.offsets)
        flat = messages.flatten()
        self.roles = flat.field("role")
        self.contents = flat.field("content")
        self.parent = np.repeat(np.arange(self.rows), self.lengths)
        self.position = np.arange(len(flat)) - self.offsets[:-1][self.parent]
        index = pc.index_in(self.roles, value_set=pa.array(ROLES))
        self.codes = index.fill_null(-1).to_numpy().astype(np.int8)

    def per_row_any(self, turn_mask: np.ndarray) -> np.ndarray:
        return np.bincount(self.parent[turn_mask], minlength=self.rows) > 0

    def rebuild(self, keep_turns: np.ndarray | None = None, contents: pa.Array | None = None) -> pa.Array:
        """A `messages` array with some turns dropped and/or new contents."""
        roles, contents = self.roles, self.contents if contents is None else contents
        offsets = self.offsets
        if keep_turns is not None and not keep_turns.all():
            roles = roles.filter(pa.array(keep_turns))
            contents = contents.filter(pa.array(keep_turns))
            offsets = np.concatenate([[0], np.cumsum(np.bincount(self.parent[keep_turns], minlength=self.rows))])
        struct = pa.StructArray.from_arrays([roles, contents], names=["role", "content"])
        return pa.ListArray.from_arrays(pa.array(offsets, pa.int32()), struct)
