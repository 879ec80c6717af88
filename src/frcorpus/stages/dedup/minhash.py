"""`minhash_dedup`: near-duplicate records by MinHash LSH, on datatrove's MinHash stages.

The signature of a record is datatrove's: its text normalisation (`simplify_text`: lower case,
punctuation and accents removed, numbers folded), word n-grams hashed with its xxhash64, and the
permutations of `MinhashDedupSignature` with the same seed, so a record gets the signature it would
get in datatrove's own pipeline (a test checks it). Words come from a regex tokenizer plugged into
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
no signature, so it could never be found): short prompts that differ only in case or punctuation
are still found. A text with no word at all is not hashed and is kept (counted `not_hashed`).

Which record of a cluster is kept follows `keep` (see `clusters.py`).
"""

from __future__ import annotations

import logging
import re
from typing import Any, ClassVar, Literal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from datatrove.pipeline.dedup.minhash import MinhashConfig, MinhashDedupSignature
from datatrove.utils.hashing import HashConfig
from datatrove.utils.text import simplify_text
from datatrove.utils.word_tokenizers import WordTokenizer
from pydantic import Field, model_validator

from frcorpus.stages.base import Reject
from frcorpus.stages.dedup.clusters import (
    ClusterConfig,
    NearDuplicateStage,
    cluster_rejects,
    keep_ranks,
    present_rows,
    rank_columns,
)
from frcorpus.text.views import View, view_text

logger = logging.getLogger(__name__)

WORD = re.compile(r"\w+")
DEFAULT_BANDS, DEFAULT_ROWS = 14, 8  # datatrove's defaults: a Jaccard threshold of about 0.72
CHUNK_SHINGLES = 32_768  # n-grams per numpy pass: 32k x 112 hashes x 8 bytes = 29 MB


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


def optimal_bands_rows(threshold: float, num_perm: int) -> tuple[int, int]:
    """The (bands, rows) with bands x rows <= num_perm that minimise the mean of the false positive
    and false negative areas of the LSH S-curve around `threshold` (datasketch's rule)."""
    s = np.linspace(0.0, 1.0, 2001)
    below, above = s <= threshold, s >= threshold
    best, best_error = (1, 1), float("inf")
    for b in range(1, num_perm + 1):
        for r in range(1, num_perm // b + 1):
            p = 1.0 - (1.0 - s**r) ** b  # probability that a pair of similarity s shares a band
            error = np.trapezoid(p[below], s[below]) + np.trapezoid(1.0 - p[above], s[above])
            if error < best_error:
                best, best_error = (b, r), error
    return best


def fold_bands(sigs: np.ndarray, bands: int, rows: int) -> np.ndarray:
    """(n, bands x rows) minhashes -> (n, bands) 64-bit digests (splitmix64 mixing, wrapping uint64)."""
    cube = sigs.reshape(len(sigs), bands, rows)
    h = np.full((len(sigs), bands), 0x9E3779B97F4A7C15, dtype=np.uint64)
    for j in range(rows):
        h ^= cube[:, :, j]
        h ^= h >> np.uint64(30)
        h *= np.uint64(0xBF58476D1CE4E5B9)
        h ^= h >> np.uint64(27)
        h *= np.uint64(0x94D049BB133111EB)
        h ^= h >> np.uint64(31)
    return h


class MinhashDedup(NearDuplicateStage):
    """Reject near duplicates found by MinHash LSH, with datatrove's signatures.

    The signatures are datatrove's, with its normalisation (case, punctuation, accents and numbers
    folded) over word n-grams (`n_grams`, 5 by default) from a regex tokenizer. `bands` x `rows` (14 x 8
    by default, a Jaccard threshold of about 0.72) set the LSH, or a target `threshold` picks them.
    `view` chooses the text compared: `prompt`, `response` or `conversation`. The record kept of each
    cluster follows `keep`: `first`, `longest_answer`, `score` or `source_priority`. Rejections carry
    `dup_of=<kept id> cluster=<first id> size=<n>`; `stats.json` counts the cluster sizes
    (`cluster_size.<n>`, `clusters`, `largest_cluster`).
    """

    name: ClassVar[str] = "minhash_dedup"
    family: ClassVar[str] = "dedup"
    reasons: ClassVar[tuple[str, ...]] = ("near_duplicate",)

    class Config(ClusterConfig):
        type: Literal["minhash_dedup"]
        view: View = Field(
            "conversation", description="prompt (first user turn) | response (last answer) | conversation"
        )
        n_grams: int = Field(5, ge=1, le=64, description="words per shingle")
        bands: int | None = Field(None, ge=1, le=1024, description="LSH bands (with rows; default 14)")
        rows: int | None = Field(None, ge=1, le=64, description="hashes per band (with bands; default 8)")
        threshold: float | None = Field(
            None, gt=0, lt=1, description="target Jaccard similarity: picks bands and rows (instead of giving them)"
        )
        num_perm: int = Field(112, ge=2, le=4096, description="hashes available when choosing bands x rows")
        seed: int = Field(1, description="seed of the permutations (datatrove's default)")

        @model_validator(mode="after")
        def _consistent(self):
            if (self.bands is None) != (self.rows is None):
                raise ValueError("give both bands and rows, or neither (or a threshold instead)")
            if self.threshold is not None and self.bands is not None:
                raise ValueError("give either a threshold or bands and rows, not both")
            return self

    def __init__(self, config, stage_id):
        super().__init__(config, stage_id)
        if config.bands is not None:
            self.bands, self.rows = config.bands, config.rows
        elif config.threshold is not None:
            self.bands, self.rows = optimal_bands_rows(config.threshold, config.num_perm)
        else:
            self.bands, self.rows = DEFAULT_BANDS, DEFAULT_ROWS
        self.signature_type = pa.struct([("bands", pa.list_(pa.uint64(), self.bands)), ("rank", pa.float64())])
        self.minhash = MinhashConfig(
            n_grams=config.n_grams,
            num_buckets=self.bands,
            hashes_per_bucket=self.rows,
            seed=config.seed,
            hash_config=HashConfig(precision=64, hash_fc="xxhash"),
        )
        self.datatrove = None

    def setup(self) -> None:
        # datatrove's signature step, for its normalisation, hash function and permutation parameters;
        # its output folder is never written to (only `run` writes)
        self.datatrove = MinhashDedupSignature(
            output_folder="/nonexistent-frcorpus-minhash", config=self.minhash, language=RegexWordTokenizer()
        )
        a, b = self.datatrove.parameters
        self.a, self.b = a, b
        logger.info(
            "%s: %d bands x %d rows (Jaccard threshold about %.2f)",
            self.id,
            self.bands,
            self.rows,
            (1 / self.bands) ** (1 / self.rows),
        )

    # ------------------------------------------------------------------ signatures (parallel phase)

    def shingles(self, text: str) -> list[int]:
        """datatrove's `get_shingles`, plus one shingle for a text shorter than n_grams."""
        words = WORD.findall(simplify_text(text, self.minhash.norm_config))
        n = self.config.n_grams
        h = self.datatrove._hash_func
        # UTF-8 bytes: what xxhash 3 hashes for a str (datatrove passes str), and all that xxhash 4 takes
        if len(words) >= n:
            return [h(" ".join(words[i : i + n]).encode()) for i in range(len(words) - n + 1)]
        return [h(" ".join(words).encode())] if words else []

    def minhashes(self, texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
        """(n, bands x rows) minhash signatures of the texts (what datatrove's `get_signature` gives,
        one batch at a time) and the mask of texts that had words."""
        per_text = [self.shingles(t) for t in texts]
        counts = np.fromiter(map(len, per_text), dtype=np.int64, count=len(per_text))
        valid = counts > 0
        out = np.zeros((len(texts), self.bands * self.rows), dtype=np.uint64)
        prime = np.uint64((1 << 61) - 1)
        start = 0
        rows = np.flatnonzero(valid)
        while start < len(rows):
            # a slice of texts whose n-grams fit one numpy pass (at least one text)
            stop, total = start, 0
            while stop < len(rows) and (stop == start or total + counts[rows[stop]] <= CHUNK_SHINGLES):
                total += counts[rows[stop]]
                stop += 1
            chunk = rows[start:stop]
            flat = np.fromiter(
                (h for i in chunk for h in per_text[i]), dtype=np.uint64, count=int(counts[chunk].sum())
            ).reshape(-1, 1)
            phv = (flat * self.a + self.b) % prime
            offsets = np.concatenate([[0], np.cumsum(counts[chunk])[:-1]])
            out[chunk] = np.minimum.reduceat(phv, offsets, axis=0)
            start = stop
        return out, valid

    def signature_records(self, records: list[dict[str, Any]]) -> pa.Array:
        sigs, valid = self.minhashes([view_text(r["messages"], self.config.view) for r in records])
        digests = fold_bands(sigs, self.bands, self.rows)
        bands = pa.FixedSizeListArray.from_arrays(pa.array(digests.reshape(-1), pa.uint64()), self.bands)
        bands = pc.if_else(pa.array(valid), bands, pa.scalar(None, bands.type))
        return pa.StructArray.from_arrays(
            [bands, pa.array(keep_ranks(records, self.config, self.id))], fields=list(self.signature_type)
        )

    def signature_table(self, table: pa.Table) -> pa.Array:
        return self.signature_records(
            table.select(["id", "messages", "source", *rank_columns(self.config)]).to_pylist()
        )

    # ------------------------------------------------------------------ the barrier

    def decide_table(self, table: pa.Table) -> dict[int, Reject]:
        sig = table["sig"].combine_chunks()
        bands_col = sig.field("bands")
        hashed = present_rows(bands_col, self.count, "not_hashed")
        if len(hashed) < 2:
            return {}
        digests = bands_col.take(pa.array(hashed)).flatten().to_numpy().reshape(-1, self.bands)
        src, dst = [], []
        for band in range(self.bands):
            column = digests[:, band]
            order = np.argsort(column, kind="stable")
            same = column[order[1:]] == column[order[:-1]]
            src.append(order[1:][same])
            dst.append(order[:-1][same])
        src, dst = np.concatenate(src), np.concatenate(dst)
        rank = sig.field("rank").to_numpy(zero_copy_only=False)[hashed]
        return cluster_rejects(src, dst, hashed, rank, table["id"].to_pylist(), "near_duplicate", self.count)
