"""`minhash_dedup`: near-duplicate records by MinHash LSH, on datatrove's MinHash stages.

The signature of a record is datatrove's: its text normalisation (`simplify_text`: punctuation
removed, and what `ignore` names folded: datatrove lower-cases, removes accents and folds numbers),
word n-grams hashed with its xxhash64, and the permutations of `MinhashDedupSignature` with the same
seed, so with `ignore: [case, accents, numbers]` a record gets the signature it would get in
datatrove's own pipeline (a test checks it). Words come from a regex tokenizer plugged into
datatrove's `WordTokenizer` interface (datatrove's own tokenizers need spaCy, 8x slower here).

Where the work differs from datatrove's four dependent runs (signatures sorted into bucket files,
buckets merged with a Python heap, clusters by a Python union-find, then a filter pass over the
documents), and why:
- signatures are computed for a whole batch at once (one numpy pass over all the n-grams of the
  batch instead of a few numpy calls per document);
- each band of `rows` hashes is folded into one 64-bit digest (a false band match needs a 64-bit
  collision: about 4e-9 over 100,000 records and 14 bands), so the barrier holds 8 bytes per band
  and record instead of 8 x rows;
- the barrier finds equal bands by sorting each band column with numpy and joins the pairs with
  scipy's connected components: no Python object per record.

A text with fewer words than `n_grams` gets one shingle made of all its words (datatrove gives it
no signature, so it could never be found): short prompts that differ only in punctuation are still
found. A text with no word at all is not hashed and is kept (counted `not_hashed`).

By default nothing is folded: case, accents and numbers count (the measurement is in the class
docstring).

The conversation view and light answers: a conversation whose last answer is a small share of its
words is mostly what comes before it, so two answers to one long prompt ("Oui." and "Non."), or two
OASST branches after a long shared prefix, look alike whatever they say. So a conversation whose last
answer holds less than `answer_share` of its words is a near duplicate of another only if their last
answers are near duplicates too, and the user turns before them when those are under the share as well
(two phrases to classify after one long instruction, both answered "1"). The signature also holds the
bands of this check, whose minhashes are taken from the same n-gram hashes (a turn's n-grams are a
slice of the conversation's: the words of the turns concatenated are those of the joined text), so the
check costs a `reduceat` and no hashing. With two turns checked, each band folds the rows of both, so
that a band matches only where both turns match. The pairs are found in `lsh.py`.

Which record of a cluster is kept follows `keep` (see `clusters.py`).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from itertools import accumulate, chain
from typing import Any, ClassVar, Literal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from datatrove.pipeline.dedup.minhash import MinhashConfig, MinhashDedupSignature
from datatrove.utils.hashing import HashConfig
from datatrove.utils.text import TextNormConfig, simplify_text
from datatrove.utils.word_tokenizers import WordTokenizer
from pydantic import Field, model_validator

from frcorpus.stages.base import Reject
from frcorpus.stages.dedup.clusters import (
    RANK_TYPE,
    KeepConfig,
    NearDuplicateStage,
    UnionFind,
    checked_turns,
    cluster_rejections,
    keep_ranks,
    rank_array,
    rank_columns,
)
from frcorpus.stages.dedup.lsh import band_partitions, chain_pairs, checked_pairs
from frcorpus.stages.signatures import Rejections, SignatureScan
from frcorpus.text.views import View, view_text

logger = logging.getLogger(__name__)

WORD = re.compile(r"\w+")
DEFAULT_BANDS, DEFAULT_ROWS = 14, 8  # datatrove's defaults: half the pairs found at Jaccard 0.68
CHUNK_SHINGLES = 32_768  # n-grams per numpy pass: 32k x 112 hashes x 8 bytes = 29 MB
PRIME = np.uint64((1 << 61) - 1)  # datatrove's Mersenne prime of the permutations
Fold = Literal["case", "accents", "numbers"]
Part = int | tuple[int, int]  # a part of a conversation: one hash of its own, or a slice of its n-gram hashes
DEFAULT_IGNORE: list[Fold] = []


class RegexWordTokenizer(WordTokenizer):
    """Words as `\\w+` runs, for datatrove's MinHash (French and English; no spaCy)."""

    def __init__(self):
        super().__init__("regex")

    def word_tokenize(self, text: str) -> list[str]:
        return WORD.findall(text)

    def sent_tokenize(self, text: str) -> list[str]:
        return [text]

    def span_tokenize(self, text: str) -> list[tuple[int, int]]:
        return [m.span() for m in WORD.finditer(text)]


def detection_probability(similarity: float, bands: int, rows: int) -> float:
    """The chance that MinHash LSH makes a candidate of a pair of this Jaccard similarity: all the rows
    of at least one band agree (the S-curve 1 - (1 - s^rows)^bands)."""
    return 1.0 - (1.0 - similarity**rows) ** bands


def half_point(bands: int, rows: int) -> float:
    """The Jaccard similarity at which a pair is found half the time: what `threshold` means."""
    return (1.0 - 0.5 ** (1.0 / bands)) ** (1.0 / rows)


def bands_rows_for(threshold: float, num_perm: int) -> tuple[int, int]:
    """The bands x rows (at most num_perm hashes) whose S-curve crosses one half nearest `threshold`;
    each number of rows takes as many bands as fit (the steepest curve it can have), and of two equally
    near, the one with more hashes wins. (datasketch's rule, the least false positive and negative
    area around the threshold, puts the half point above it: 0.7 gave 9 x 12, half at 0.77.)"""
    best, best_key = (1, 1), (float("inf"), 0)
    for rows in range(1, num_perm + 1):
        bands = num_perm // rows
        key = (round(abs(half_point(bands, rows) - threshold), 9), -bands * rows)
        if key < best_key:
            best, best_key = (bands, rows), key
    return best


S_CURVE_POINTS = (0.5, 0.6, 0.7, 0.8, 0.9)


def s_curve_note(bands: int, rows: int) -> str:
    """The detection probability at a few Jaccard similarities, as `frcorpus validate` prints it."""
    points = ", ".join(f"{s:.1f}: {detection_probability(s, bands, rows):.0%}" for s in S_CURVE_POINTS)
    return (
        f"{bands} bands x {rows} rows find a pair half the time at Jaccard {half_point(bands, rows):.2f}; "
        f"chance to find a pair by its Jaccard similarity: {points}"
    )


def splitmix64_finish(h: np.ndarray) -> np.ndarray:
    """splitmix64's finalizer on uint64 words, in place (wrapping multiplication)."""
    h ^= h >> np.uint64(30)
    h *= np.uint64(0xBF58476D1CE4E5B9)
    h ^= h >> np.uint64(27)
    h *= np.uint64(0x94D049BB133111EB)
    h ^= h >> np.uint64(31)
    return h


def fold_bands(sigs: np.ndarray, bands: int, rows: int) -> np.ndarray:
    """(n, bands x rows) minhashes -> (n, bands) 64-bit digests (splitmix64 mixing, wrapping uint64)."""
    cube = sigs.reshape(len(sigs), bands, rows)
    h = np.full((len(sigs), bands), 0x9E3779B97F4A7C15, dtype=np.uint64)
    for j in range(rows):
        h ^= cube[:, :, j]
        splitmix64_finish(h)
    return h


class MinhashDedup(NearDuplicateStage):
    """Reject near duplicates found by MinHash LSH, with datatrove's signatures.

    Word n-grams (`n_grams`, 5 by default, from a regex tokenizer) of the compared text (`view`:
    `prompt`, `response` or `conversation`) are hashed as datatrove does; `bands` x `rows` (14 x 8 by
    default: a pair is found half the time at Jaccard 0.68, 92% of the time at 0.80) set the LSH, or
    `threshold` picks those that find a pair of that Jaccard half the time (`frcorpus validate` prints
    the chance at 0.5 to 0.9). With `verify_jaccard`, every pair of records that share a band is joined
    only when the Jaccard similarity of their shingles, computed exactly, reaches it: a low `threshold`
    (0.5) then finds near copies at Jaccard 0.7-0.8 (recall 0.998 against datatrove's 0.913 in
    benchmarks/bench_dedup.py --near-jaccard 0.7-0.8) and joins no distinct records that share 0.40-0.55
    of their shingles (precision 1.000 against 0.974), at the cost of the shingles in the signatures.
    Punctuation and whitespace never count; `ignore` adds what else does not: `case`, `accents`,
    `numbers` (datatrove ignores all three: `ignore: [case, accents, numbers]` gives its signatures
    exactly). By default all three count: on the M-IFEval answers of 17 models and vigogne OASST, every
    pair of answers to one prompt that folding joined was two different answers (case: 20 pairs, "oui."
    and "Oui." where the prompt asks for lower case, which `verify_instructions` rates alike since
    M-IFEval's option check wants "Oui."; accents: 42, an accent-restoration task answered with and
    without them; numbers: 1, "100" and "1100" to 11+1 in binary). What folding would find besides, a
    copy re-typed in capitals, is rare in chat data, and an answer of its own where a prompt asks for
    capitals.

    With `view: conversation`, a conversation whose last answer holds less than `answer_share` (0.5) of
    its words is a near duplicate of another only if their last answers are near duplicates too (and
    the user turns before them, when those are under the share as well): two answers to one long
    prompt, or two OASST branches after a long shared prefix, are no longer joined by what they share;
    copies, whose final turns match, still are. The record kept of each cluster follows `keep`
    (`best` by default: the quality score, then `instructions_pass_rate`, then the longest last answer;
    or `first`, `longest_answer`, `score`, `source_priority`). Rejections carry `dup_of=<kept id>
    cluster=<first id> size=<n>`, and `kept_by=<criterion>:<kept value>><its value>` when a criterion
    chose the kept record; `stats.json` counts the cluster sizes (`cluster_size.<n>`, `clusters`,
    `largest_cluster`) and `pairs_with_different_answers`, the candidate pairs the check cut, and records
    the bands and rows used (`lsh_bands`, `lsh_rows`), which the card states.
    """

    name: ClassVar[str] = "minhash_dedup"
    family: ClassVar[str] = "dedup"
    reasons: ClassVar[tuple[str, ...]] = ("near_duplicate",)

    class Config(KeepConfig):
        type: Literal["minhash_dedup"]
        view: View = Field(
            "conversation", description="prompt (first user turn) | response (last answer) | conversation"
        )
        n_grams: int = Field(5, ge=1, le=64, description="words per shingle")
        bands: int | None = Field(None, ge=1, le=1024, description="LSH bands (with rows; default 14)")
        rows: int | None = Field(None, ge=1, le=64, description="hashes per band (with bands; default 8)")
        threshold: float | None = Field(
            None,
            gt=0,
            lt=1,
            description="the Jaccard similarity at which a pair is found half the time: picks bands and rows "
            "(instead of giving them); `frcorpus validate` prints the chance at 0.5 to 0.9",
        )
        num_perm: int = Field(112, ge=2, le=4096, description="hashes available when choosing bands x rows")
        verify_jaccard: float | None = Field(
            None,
            gt=0,
            le=1,
            description="join a candidate pair only when the Jaccard similarity of its shingles, computed "
            "exactly, reaches this: with a lower `threshold`, more near copies are found and pairs that share "
            "a band by chance are not joined (the signatures then hold every record's shingles: 4 bytes each)",
        )
        seed: int = Field(1, description="seed of the permutations (datatrove's default)")
        ignore: list[Fold] = Field(
            DEFAULT_IGNORE,
            description="differences that do not count besides punctuation and whitespace: case, accents "
            '("deja" = "déjà"), numbers (every number is 0); datatrove folds all three',
        )
        answer_share: float = Field(
            0.5,
            ge=0,
            le=1,
            description="view: conversation: a conversation whose last answer holds less than this share of its "
            "words is a near duplicate only if its last answer is one too (and the user turn before it, when "
            "that is under the share too); 0: never checked",
        )

        @model_validator(mode="after")
        def _consistent(self):
            if (self.bands is None) != (self.rows is None):
                raise ValueError("give both bands and rows, or neither (or a threshold instead)")
            if self.threshold is not None and self.bands is not None:
                raise ValueError("give either a threshold or bands and rows, not both")
            return self

    def __init__(self, config, stage_id):
        super().__init__(config, stage_id)
        self.bands, self.rows = self.lsh_shape(config)
        band_type = pa.list_(pa.uint64(), self.bands)
        fields = [("bands", band_type), ("check", band_type), ("checked", pa.bool_()), ("rank", RANK_TYPE)]
        if config.verify_jaccard is not None:  # the shingles, to compute a candidate pair's Jaccard
            fields.append(("shingles", pa.list_(pa.uint32())))
        self.signature_type = pa.struct(fields)
        # the final exchange is checked only where the conversation is compared
        self.check = config.view == "conversation" and config.answer_share > 0
        self.light_cut = config.answer_share
        ignore = set(config.ignore)
        self.minhash = MinhashConfig(
            n_grams=config.n_grams,
            num_buckets=self.bands,
            hashes_per_bucket=self.rows,
            seed=config.seed,
            hash_config=HashConfig(precision=64, hash_fc="xxhash"),
            norm_config=TextNormConfig(
                lowercase="case" in ignore,
                norm_unicode_diacritics="accents" in ignore,
                norm_numbers="numbers" in ignore,
            ),
        )
        self.datatrove = None

    @staticmethod
    def lsh_shape(config: Config) -> tuple[int, int]:
        """The bands and rows of a configuration: given, resolved from `threshold`, or the defaults."""
        if config.bands is not None:
            return config.bands, config.rows
        if config.threshold is not None:
            return bands_rows_for(config.threshold, config.num_perm)
        return DEFAULT_BANDS, DEFAULT_ROWS

    @classmethod
    def notes(cls, config: Config) -> list[str]:
        return [s_curve_note(*cls.lsh_shape(config))]

    def setup(self) -> None:
        # datatrove's signature step, for its normalisation, hash function and permutation parameters;
        # its output folder is never written to (only `run` writes)
        self.datatrove = MinhashDedupSignature(
            output_folder="/nonexistent-frcorpus-minhash", config=self.minhash, language=RegexWordTokenizer()
        )
        a, b = self.datatrove.parameters
        self.a, self.b = a, b
        logger.info(
            "%s: %d bands x %d rows (half the pairs found at Jaccard %.2f), folding %s; %s",
            self.id,
            self.bands,
            self.rows,
            half_point(self.bands, self.rows),
            ", ".join(self.config.ignore) or "nothing",
            f"answers under {self.light_cut:g} of a conversation checked" if self.check else "no answer check",
        )

    # ------------------------------------------------------------------ signatures (parallel phase)

    def words(self, text: str) -> list[str]:
        return WORD.findall(simplify_text(text, self.minhash.norm_config))

    def hashes(self, words: list[str]) -> np.ndarray:
        """datatrove's `get_shingles` hashed, plus one shingle for a text shorter than n_grams; as uint64 (a
        batch's hashes as lists of Python ints took 47 MiB of a worker, 8 bytes each as arrays)."""
        n = self.config.n_grams
        h = self.datatrove._hash_func
        # UTF-8 bytes: what xxhash 3 hashes for a str (datatrove passes str), and all that xxhash 4 takes
        if len(words) >= n:
            count = len(words) - n + 1
            return np.fromiter((h(" ".join(words[i : i + n]).encode()) for i in range(count)), np.uint64, count)
        return np.array([h(" ".join(words).encode())] if words else [], dtype=np.uint64)

    def shingles(self, text: str) -> np.ndarray:
        return self.hashes(self.words(text))

    def conversation_shingles(self, messages: list[dict[str, str]]) -> tuple[np.ndarray, list[Part], bool]:
        """The conversation's n-gram hashes; the parts its check compares (its last answer, and the user turn
        before it when both are under `answer_share` of its words), each a (start, stop) slice of the
        hashes or one hash of its own (fewer words than n_grams: of its words, or of its stripped text when
        it has none); and whether the answer is light (the pairs of such a record are checked)."""
        contents = [m["content"] for m in messages]
        # the words of each turn: concatenated, those of the joined text (simplify_text works per character
        # but for numbers, which a line break ends), so the conversation's hashes are datatrove's
        per_turn = [self.words(c) for c in contents]
        sizes = [len(w) for w in per_turn]
        starts = [0, *accumulate(sizes)]  # not numpy: a few turns per record
        words = list(chain.from_iterable(per_turn))
        checked, question, answer = checked_turns([m["role"] for m in messages], sizes, self.light_cut)
        hashes = self.hashes(words)
        n = self.config.n_grams
        parts = []
        for turn in [answer] if question is None else [question, answer]:
            if turn is None:  # no answer at all: nothing, the same for every such record
                parts.append(self.datatrove._hash_func(b""))
            elif len(per_turn[turn]) >= n:  # the n-grams that start and end inside the turn
                parts.append((starts[turn], starts[turn + 1] - n + 1))
            elif per_turn[turn]:
                parts.append(int(self.hashes(per_turn[turn])[0]))
            else:
                parts.append(self.datatrove._hash_func(contents[turn].strip().encode()))
        return hashes, parts, checked

    def minhashes(self, texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
        """(n, bands x rows) minhash signatures of the texts (what datatrove's `get_signature` gives,
        one batch at a time) and the mask of texts that had words."""
        sigs, _, valid = self.minhash_lists([self.shingles(t) for t in texts])
        return sigs, valid

    def minhash_lists(
        self, per_text: list[np.ndarray], parts: list[list[Part]] | None = None
    ) -> tuple[np.ndarray, np.ndarray | None, np.ndarray]:
        """Minhash signatures of hash lists, (n, bands x rows), zeros where a list is empty; with `parts`,
        also the signature of each text's check, (n, bands x rows x 2): its first part's, then its second's
        (zeros where there is none); and the mask of the lists that are not empty."""
        counts = np.fromiter(map(len, per_text), dtype=np.int64, count=len(per_text))
        valid = counts > 0
        width = self.bands * self.rows
        out = np.zeros((len(per_text), width), dtype=np.uint64)
        part_out = None if parts is None else np.zeros((len(per_text), 2, width), dtype=np.uint64)
        start = 0
        rows = np.flatnonzero(valid)
        while start < len(rows):
            # a slice of texts whose n-grams fit one numpy pass (at least one text)
            stop, total = start, 0
            while stop < len(rows) and (stop == start or total + counts[rows[stop]] <= CHUNK_SHINGLES):
                total += counts[rows[stop]]
                stop += 1
            chunk = rows[start:stop]
            flat = np.concatenate([np.asarray(per_text[i], dtype=np.uint64) for i in chunk]).reshape(-1, 1)
            phv = flat * self.a  # in place from here: one (n-grams x bands x rows) array, not three
            phv += self.b
            phv %= PRIME
            offsets = np.concatenate([[0], np.cumsum(counts[chunk])[:-1]])
            if parts is None:
                out[chunk] = np.minimum.reduceat(phv, offsets, axis=0)
            else:
                out[chunk], part_out[chunk] = self._with_parts(phv, offsets, [parts[i] for i in chunk])
            start = stop
        return out, part_out, valid

    def _with_parts(
        self, phv: np.ndarray, offsets: np.ndarray, parts: list[list[Part]]
    ) -> tuple[np.ndarray, np.ndarray]:
        """The conversations' and their parts' signatures from one pass over their permuted hashes (`phv`,
        each conversation's rows from `offsets`): the rows are cut where a conversation or a sliced part
        starts and where a part stops (parts are disjoint: the user turn comes before the answer), the min
        of each piece is taken once, a conversation's is the min of its pieces, a sliced part's is its
        piece's; a part of its own hash is that hash permuted."""
        ends = np.append(offsets[1:], len(phv))
        cuts, sliced = [offsets], []
        for k, record_parts in enumerate(parts):
            for slot, spec in enumerate(record_parts):
                if isinstance(spec, tuple):
                    first, stop = offsets[k] + spec[0], offsets[k] + spec[1]
                    sliced.append((k, slot, first))
                    cuts.append([first] + ([stop] if stop < ends[k] else []))
        starts = np.unique(np.concatenate([np.asarray(c, dtype=np.int64) for c in cuts]))
        pieces = np.minimum.reduceat(phv, starts, axis=0)
        conversations = np.minimum.reduceat(pieces, np.searchsorted(starts, offsets), axis=0)
        part_out = np.zeros((len(parts), 2, phv.shape[1]), dtype=np.uint64)
        if sliced:
            k, slot, first = zip(*sliced, strict=True)
            part_out[list(k), list(slot)] = pieces[np.searchsorted(starts, np.array(first))]
        own = [
            (k, slot, spec) for k, specs in enumerate(parts) for slot, spec in enumerate(specs) if isinstance(spec, int)
        ]
        if own:
            k, slot, hashes = zip(*own, strict=True)
            part_out[list(k), list(slot)] = (np.array(hashes, dtype=np.uint64).reshape(-1, 1) * self.a + self.b) % PRIME
        return conversations, part_out

    def signature_records(self, records: list[dict[str, Any]]) -> pa.Array:
        if self.check:
            found = [self.conversation_shingles(r["messages"]) for r in records]
            per_text = [f[0] for f in found]
            sigs, part_sigs, valid = self.minhash_lists(per_text, [f[1] for f in found])
            checked = pa.array([f[2] for f in found], pa.bool_())
            # the check's bands fold the rows of both parts (the second part's rows are zeros when there is one
            # part), so that a band matches only where each checked turn matches
            cube = part_sigs.reshape(len(records), 2, self.bands, self.rows).transpose(0, 2, 1, 3)
            check_sigs = cube.reshape(len(records), self.bands * 2 * self.rows)
        else:
            texts = [view_text(r["messages"], self.config.view) for r in records]
            per_text = [self.shingles(t) for t in texts]
            sigs, _, valid = self.minhash_lists(per_text)
            checked = pa.nulls(len(records), pa.bool_())
        valid = pa.array(valid)
        bands = self._bands(sigs, valid, self.rows)
        check = self._bands(check_sigs, valid, 2 * self.rows) if self.check else pa.nulls(len(records), bands.type)
        ranks = rank_array(keep_ranks(records, self.config, self.id))
        columns = [bands, check, checked, ranks]
        if self.config.verify_jaccard is not None:
            # the record's shingles, as the sorted distinct low 32 bits of their hashes (two shingles of a
            # pair share them by chance about once in 4 billion): the pair's Jaccard is computed exactly
            sets = [np.unique(np.asarray(h, dtype=np.uint64).astype(np.uint32)) for h in per_text]
            offsets = np.concatenate([[0], np.cumsum([len(x) for x in sets])]).astype(np.int32)
            flat = np.concatenate(sets) if sets else np.zeros(0, dtype=np.uint32)
            columns.append(pa.ListArray.from_arrays(pa.array(offsets), pa.array(flat, pa.uint32())))
        return pa.StructArray.from_arrays(columns, fields=list(self.signature_type))

    def _bands(self, sigs: np.ndarray, valid: pa.Array, rows: int) -> pa.Array:
        digests = fold_bands(sigs, self.bands, rows)
        bands = pa.FixedSizeListArray.from_arrays(pa.array(digests.reshape(-1), pa.uint64()), self.bands)
        return pc.if_else(valid, bands, pa.scalar(None, bands.type))

    def signature_table(self, table: pa.Table) -> pa.Array:
        columns = ["id", "messages", "source", *rank_columns(self.config, table.column_names, self.id)]
        return self.signature_records(table.select(list(dict.fromkeys(columns))).to_pylist())

    # ------------------------------------------------------------------ the barrier

    def decide_table(self, table: pa.Table) -> dict[int, Reject]:
        return self.scan_table(table)

    def decide_scan(self, scan: SignatureScan) -> Iterator[Rejections]:
        """One band at a time, as datatrove's buckets: each band's (digest, key) rows are partitioned by
        digest (16 bytes a record and band, on disk past `scan.memory`) and sorted part by part (`lsh.py`);
        the pairs join a `UnionFind` (8 bytes a record, with the answer check 1 more), and the clusters are
        decided a chunk at a time. What else stays in memory grows with the duplicates, not the corpus: the
        links that wait for the answer check, the candidate pairs and their shingles with `verify_jaccard`,
        the members of clusters."""
        # the LSH the run used, bands and rows resolved from a threshold included: stats.json, and the card, say it
        self.count("lsh_bands", self.bands)
        self.count("lsh_rows", self.rows)
        bands, checked, hashed = band_partitions(scan, self.bands, self.check)
        try:
            if hashed < scan.live:
                self.count("not_hashed", scan.live - hashed)
            if hashed < 2:
                return
            components = UnionFind(scan.size)
            if self.config.verify_jaccard is None:
                split = chain_pairs(scan, bands, self.bands, components, checked)
            else:
                split, dissimilar = checked_pairs(
                    scan, bands, self.bands, components, self.config.verify_jaccard, checked
                )
                if dissimilar:
                    self.count("pairs_below_verify_jaccard", dissimilar)
            if split:
                self.count("pairs_with_different_answers", split)
        finally:
            bands.close()
        yield from cluster_rejections(scan, components, self.config, "near_duplicate", self.count)
