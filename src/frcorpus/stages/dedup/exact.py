"""`exact_dedup`: hash of a normalised view of the conversation; of each group of copies one record is
kept by the `keep` rule (see `clusters.py`; ties go to the first in the global order: sources in YAML
order, then files, then rows) and every other copy is rejected with `dup_of=<kept id>`. What counts as
a difference is configurable (`ignore`): whitespace (by default), case, punctuation, accents."""

from __future__ import annotations

import unicodedata
from collections.abc import Iterator
from typing import Any, ClassVar, Literal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import xxhash
from datatrove.utils.text import PUNCTUATION_SET
from pydantic import Field

from frcorpus.batch import PY_WHITESPACE, ChatLayout, unstable_class
from frcorpus.stages.base import Reject
from frcorpus.stages.dedup.clusters import (
    ANSWER_LENGTH,
    RANK_TYPE,
    KeepChoice,
    KeepConfig,
    NearDuplicateStage,
    answer_length,
    keep_ranks,
    rank_array,
    rank_columns,
    ranks_of,
)
from frcorpus.stages.signatures import Partitions, Rejections, SignatureScan
from frcorpus.text.views import View, view_turns

Ignore = Literal["whitespace", "case", "punctuation", "accents"]
# datatrove's punctuation list (what its MinHash normalisation removes), deleted rather than spaced
PUNCTUATION_DELETE = str.maketrans("", "", "".join(PUNCTUATION_SET))


def collapse_ascii_whitespace(text: str) -> str:
    """`" ".join(text.split())` for a text whose only whitespace is ASCII (tab, newline, vertical tab,
    form feed, carriage return, space): C-level replaces instead of one object per word, twice as
    fast on chat turns (measured)."""
    for ch in "\n\t\r\x0b\x0c":
        if ch in text:
            text = text.replace(ch, " ")
    while "  " in text:
        text = text.replace("  ", " ")
    return text.strip(" ")


# Whitespace that str.split() knows and `collapse_ascii_whitespace` does not.
OTHER_WHITESPACE = "[" + "".join(f"\\x{{{ord(c):x}}}" for c in PY_WHITESPACE if c not in "\t\n\x0b\x0c\r ") + "]"


def strip_accents(text: str) -> str:
    return unicodedata.normalize(
        "NFC", "".join(c for c in unicodedata.normalize("NFD", text) if not unicodedata.combining(c))
    )


def normalise_for_hash(text: str, ignore: frozenset[str]) -> str:
    """NFC, then what `ignore` names: accents, punctuation, runs of whitespace, case."""
    text = unicodedata.normalize("NFC", text)
    if "accents" in ignore:
        text = strip_accents(text)
    if "punctuation" in ignore:
        text = text.translate(PUNCTUATION_DELETE)
    if "whitespace" in ignore:
        # str.split() splits on the same Unicode whitespace as \s+, several times faster than re.sub
        text = " ".join(text.split())
    return text.lower() if "case" in ignore else text


class ExactDedup(NearDuplicateStage):
    """Reject exact copies: the same conversation, first user turn or last answer.

    Records are compared by a hash of an NFC view (`view`): the conversation, the first user turn
    (`prompt`) or the last answer (`response`). `ignore` lists the differences that do not count:
    `whitespace` (the default), `case`, `punctuation`, `accents`. Of each group of copies, `keep`
    chooses the record kept, as in `minhash_dedup`: `best` by default (the quality score, then
    `instructions_pass_rate`, then the longest last answer; with `view: prompt`, the best answer to each
    prompt), ties to the first in source order. The others are rejected with `dup_of=<kept id>` in
    `detail`, and `kept_by=<criterion>:<kept value>><its value>` when a criterion chose the kept one.
    """

    name: ClassVar[str] = "exact_dedup"
    family: ClassVar[str] = "dedup"
    reasons: ClassVar[tuple[str, ...]] = ("duplicate",)

    class Config(KeepConfig):
        type: Literal["exact_dedup"]
        view: View = Field("conversation", description="prompt | response | conversation")
        ignore: list[Ignore] = Field(
            ["whitespace"],
            description="differences that do not count: whitespace (runs of spaces and line breaks, leading "
            "and trailing), case, punctuation, accents; [] compares the NFC text exactly",
        )

    # the 128-bit hash as 16 bytes: the barrier reads it as two 64-bit words
    signature_type: ClassVar[pa.DataType] = pa.struct([("hash", pa.binary(16)), ("rank", RANK_TYPE)])

    def __init__(self, config, stage_id):
        super().__init__(config, stage_id)
        self.ignore = frozenset(config.ignore)
        # whitespace and case only: the columnar path may take the fast route for plain turns
        self.fast = "whitespace" in self.ignore and self.ignore <= {"whitespace", "case"}

    def signature_records(self, records: list[dict[str, Any]]) -> pa.Array:
        turns = [[(m["role"], m["content"]) for m in r["messages"]] for r in records]
        lengths = [answer_length(t) for t in turns] if ANSWER_LENGTH in self.config.criteria() else None
        return self._signatures([self._hash(t) for t in turns], keep_ranks(records, self.config, self.id, lengths))

    def _signatures(self, hashes: list[bytes], ranks: np.ndarray) -> pa.Array:
        return pa.StructArray.from_arrays(
            [pa.array(hashes, pa.binary(16)), rank_array(ranks)], fields=list(self.signature_type)
        )

    def _hash(self, turns: list[tuple[str, str]], plain: bool = False) -> bytes:
        """`plain`: the turns are known to be stable under NFC and to hold only ASCII whitespace."""
        # One string per record, then one normalisation pass and one hash: per-turn calls cost twice as
        # much. The separators are whitespace-delimited tokens, so that splitting on whitespace keeps them
        # apart from the text around them.
        view = " \x00 ".join(f"{role} \x01 {content}" for role, content in view_turns(turns, self.config.view))
        if plain:
            view = collapse_ascii_whitespace(view)
            view = view.lower() if "case" in self.ignore else view
        else:
            view = normalise_for_hash(view, self.ignore)
        return xxhash.xxh3_128_digest(view.encode("utf-8", "surrogatepass"))

    def signature_table(self, table: pa.Table) -> pa.Array:
        # Arrow's whitespace regex runs at a fifth of the speed of str.split (measured), so the
        # normalisation stays in Python; only the turns come straight from the columns
        turns = ChatLayout(table["messages"])
        if self.fast:
            special = pc.match_substring_regex(turns.contents, f"{OTHER_WHITESPACE}|{unstable_class('NFC')}")
            plain = ~turns.per_row_any(special.to_numpy(zero_copy_only=False))
        else:
            plain = [False] * turns.rows
        pairs = list(zip(turns.roles.to_pylist(), turns.contents.to_pylist(), strict=True))
        bounds = turns.offsets.tolist()
        hashes = [self._hash(pairs[bounds[i] : bounds[i + 1]], plain[i]) for i in range(turns.rows)]
        criteria = self.config.criteria()
        lengths = None
        if ANSWER_LENGTH in criteria:  # from the turns already in hand, not from the records
            lengths = [answer_length(pairs[bounds[i] : bounds[i + 1]]) for i in range(turns.rows)]
        light = table.select(rank_columns(self.config, table.column_names, self.id)).to_pylist() if criteria else []
        ranks = keep_ranks(light, self.config, self.id, lengths) if criteria else np.zeros((turns.rows, 0))
        return self._signatures(hashes, ranks)

    def decide_table(self, table: pa.Table) -> dict[int, Reject]:
        return self.scan_table(table)

    def decide_scan(self, scan: SignatureScan) -> Iterator[Rejections]:
        """Copies are found by sorting (hash, global position) one part at a time: the records are split
        into parts by hash (`Partitions`), so a group of copies is never cut, and each part holds 24 bytes
        a record plus the keep rule's values (8 bytes a criterion)."""
        criteria = len(self.config.criteria())
        fields = [("hi", np.uint64), ("lo", np.uint64), ("key", np.int64)]
        dtype = np.dtype(fields + ([("rank", np.float64, (criteria,))] if criteria else []))
        parts = Partitions(scan, dtype)
        for keys, columns in scan.batches(["hash", "rank"] if criteria else ["hash"]):
            rows = np.empty(len(keys), dtype)
            words = hash_words(columns["hash"])
            rows["hi"], rows["lo"], rows["key"] = words[:, 0], words[:, 1], keys
            if criteria:
                rows["rank"] = ranks_of(columns["rank"], criteria)
            parts.add(0, rows["hi"], rows)
        distinct = 0
        try:
            for part in parts.parts(0):
                part = part[np.lexsort((scan.order(part["key"]), part["lo"], part["hi"]))]
                change = (part["hi"][1:] != part["hi"][:-1]) | (part["lo"][1:] != part["lo"][:-1])
                labels = np.concatenate([[0], np.cumsum(change)]) if len(part) else np.zeros(0, np.int64)
                n_groups = int(labels[-1]) + 1 if len(part) else 0
                distinct += n_groups
                # within a group the rows are in the global order: KeepChoice breaks ties by row
                choice = KeepChoice(self.config, part["rank"] if criteria else np.zeros((len(part), 0)))
                kept = choice.kept(labels, n_groups)
                rejected = np.flatnonzero(kept[labels] != np.arange(len(part)))
                if len(rejected) == 0:
                    continue
                keepers = kept[labels[rejected]]
                named = np.unique(keepers)
                ids = dict(zip(named.tolist(), scan.ids(part["key"][named]), strict=True))
                pairs = zip(rejected.tolist(), keepers.tolist(), strict=True)
                details = [f"dup_of={ids[k]}{choice.why(k, j)}" for j, k in pairs]
                yield Rejections(part["key"][rejected], "duplicate", details)
        finally:
            parts.close()
        self.count("distinct", distinct)


def hash_words(column: pa.Array) -> np.ndarray:
    """(n, 2) uint64: the two 64-bit words of each 16-byte hash of a fixed-size binary column."""
    if len(column) == 0:
        return np.zeros((0, 2), dtype=np.uint64)
    data = np.frombuffer(column.buffers()[1], dtype=np.uint8)
    start = column.offset * 16
    return data[start : start + 16 * len(column)].view(np.uint64).reshape(-1, 2)
