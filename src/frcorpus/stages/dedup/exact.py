"""`exact_dedup`: hash of a normalised view of the conversation; of each group of copies one record is
kept by the `keep` rule (see `clusters.py`; ties go to the first in the global order: sources in YAML
order, then files, then rows) and every other copy is rejected with `dup_of=<kept id>`. What counts as
a difference is configurable (`ignore`): whitespace (by default), case, punctuation, accents."""

from __future__ import annotations

import unicodedata
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

    signature_type: ClassVar[pa.DataType] = pa.struct([("hash", pa.string()), ("rank", RANK_TYPE)])

    def __init__(self, config, stage_id):
        super().__init__(config, stage_id)
        self.ignore = frozenset(config.ignore)
        # whitespace and case only: the columnar path may take the fast route for plain turns
        self.fast = "whitespace" in self.ignore and self.ignore <= {"whitespace", "case"}

    def signature_records(self, records: list[dict[str, Any]]) -> pa.Array:
        turns = [[(m["role"], m["content"]) for m in r["messages"]] for r in records]
        lengths = [answer_length(t) for t in turns] if ANSWER_LENGTH in self.config.criteria() else None
        return self._signatures([self._hash(t) for t in turns], keep_ranks(records, self.config, self.id, lengths))

    def _signatures(self, hashes: list[str], ranks: np.ndarray) -> pa.Array:
        return pa.StructArray.from_arrays(
            [pa.array(hashes, pa.string()), rank_array(ranks)], fields=list(self.signature_type)
        )

    def _hash(self, turns: list[tuple[str, str]], plain: bool = False) -> str:
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
        return xxhash.xxh3_128_hexdigest(view.encode("utf-8", "surrogatepass"))

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
        sig = table["sig"].combine_chunks()
        hashes = sig.field("hash").dictionary_encode()
        labels = hashes.indices.to_numpy(zero_copy_only=False).astype(np.int64)
        n_groups = len(hashes.dictionary)
        self.count("distinct", n_groups)
        choice = KeepChoice(self.config, ranks_of(sig.field("rank"), len(self.config.criteria())))
        kept = choice.kept(labels, n_groups)
        ids = table["id"].to_pylist()
        return {
            j: Reject("duplicate", f"dup_of={ids[kept[label]]}{choice.why(int(kept[label]), j)}")
            for j, label in enumerate(labels.tolist())
            if kept[label] != j
        }
