"""`mix`: the training mixture, by weights, quotas and a record or token budget per source or category.

Like `select`, the choice is seeded by a hash of (seed, record id) and made once over every record
in the barrier, so it does not depend on sharding, workers or task count. Tokens are counted
cheaply: characters / 4, rounded up, over the whole conversation or the assistant turns only.
"""

from __future__ import annotations

import logging
import math
from abc import abstractmethod
from typing import Any, ClassVar, Literal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import xxhash
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from frcorpus.batch import ChatLayout
from frcorpus.record import record_scores
from frcorpus.stages.base import GlobalStage, Reject, SignatureItem, StageConfig

log = logging.getLogger(__name__)

CHARS_PER_TOKEN = 4

#: what `mix` and `split` keep of a record: its sampling key, size, and the scores they rank or bin by
MIX_SIGNATURE = pa.struct([("key", pa.uint64()), ("tokens", pa.int64()), ("rank", pa.float64()), ("bin", pa.float64())])


class Categories(BaseModel):
    """How records are grouped: by source (optionally renamed through `map`) or by score bins."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    by: Literal["source", "score"] = Field("source", description="group records by source name or by a score")
    map: dict[str, str] = Field(
        default_factory=dict, description="by: source: source name -> category (an unlisted source is its own)"
    )
    score: str | None = Field(None, description="by: score: the key in the record's `scores`")
    bins: list[float] = Field(
        default_factory=list,
        description="by: score: ascending thresholds; a score equal to a threshold falls in the bin above it",
    )
    labels: list[str] | None = Field(
        None, description="by: score: one name per bin, len(bins) + 1 (default lt<a>, <a>-<b>, ..., ge<z>)"
    )
    unscored: str = Field("unscored", description="by: score: the category of records without that score")

    @model_validator(mode="after")
    def _consistent(self):
        if self.by == "source":
            if self.score is not None or self.bins or self.labels is not None:
                raise ValueError("score, bins and labels go with `by: score`; `by: source` takes `map`")
            return self
        if self.map:
            raise ValueError("`map` goes with `by: source`; `by: score` takes score, bins and labels")
        if self.score is None or not self.bins:
            raise ValueError("`by: score` needs `score` (a key of `scores`) and `bins` (e.g. [0.5, 0.8])")
        if any(b >= a for a, b in zip(self.bins[1:], self.bins, strict=False)):
            raise ValueError(f"bins must be strictly ascending, got {self.bins}")
        if self.labels is not None and len(self.labels) != len(self.bins) + 1:
            raise ValueError(f"labels must name len(bins) + 1 = {len(self.bins) + 1} bins, got {len(self.labels)}")
        return self

    def label_names(self) -> list[str]:
        if self.labels is not None:
            return list(self.labels)
        b = [f"{x:g}" for x in self.bins]
        return [f"lt{b[0]}", *(f"{lo}-{hi}" for lo, hi in zip(b, b[1:], strict=False)), f"ge{b[-1]}"]

    def groups(self, sources: np.ndarray, scores: np.ndarray) -> np.ndarray:
        """The category of each record (an object array), from source names and `score` (NaN: none)."""
        if self.by == "source":
            names, inverse = np.unique(sources.astype(str), return_inverse=True)
            return np.array([self.map.get(s, s) for s in names], dtype=object)[inverse]
        labels = np.array(self.label_names(), dtype=object)
        out = labels[np.searchsorted(np.asarray(self.bins, dtype=np.float64), scores, side="right")]
        out[np.isnan(scores)] = self.unscored
        return out


def _float32(value: Any) -> float:
    """Scores are float32 in the `scores` column; round a fresh float64 the same way so that the
    per-record and columnar signatures agree."""
    return math.nan if value is None else float(np.float32(value))


def mix_signatures(
    records: list[dict[str, Any]], *, seed: int, salt: bytes, count: str, rank: str | None, bin_: str | None
) -> pa.Array:
    """Per-record path of the signatures (see `mix_signatures_table`)."""
    keys, tokens, ranks, bins = [], [], [], []
    for r in records:
        keys.append(xxhash.xxh3_64_intdigest(salt + r["id"].encode(), seed=seed))
        chars = sum(len(m["content"]) for m in r["messages"] if count == "conversation" or m["role"] == "assistant")
        tokens.append(-(-chars // CHARS_PER_TOKEN))
        scores = record_scores(r)
        ranks.append(_float32(scores.get(rank)) if rank else math.nan)
        bins.append(_float32(scores.get(bin_)) if bin_ else math.nan)
    return _struct(keys, np.array(tokens, dtype=np.int64), np.array(ranks), np.array(bins))


def mix_signatures_table(
    table: pa.Table, *, seed: int, salt: bytes, count: str, rank: str | None, bin_: str | None
) -> pa.Array:
    """(key, tokens, rank score, bin score) per row, with Arrow compute for sizes and scores."""
    keys = [xxhash.xxh3_64_intdigest(salt + i.encode(), seed=seed) for i in table["id"].to_pylist()]
    chat = ChatLayout(table["messages"])
    chars = pc.utf8_length(chat.contents).fill_null(0).to_numpy(zero_copy_only=False).astype(np.int64)
    if count == "assistant":
        chars = np.where(chat.codes == 2, chars, 0)
    per_row = np.bincount(chat.parent, weights=chars, minlength=chat.rows).astype(np.int64)
    tokens = -(-per_row // CHARS_PER_TOKEN)

    def lookup(name: str | None) -> np.ndarray:
        if not name or "scores" not in table.column_names:
            return np.full(table.num_rows, np.nan)
        found = pc.map_lookup(table["scores"], pa.scalar(name), "first").cast(pa.float64())
        return found.to_numpy(zero_copy_only=False).astype(np.float64)

    return _struct(keys, tokens, lookup(rank), lookup(bin_))


def _struct(keys, tokens: np.ndarray, ranks: np.ndarray, bins: np.ndarray) -> pa.Array:
    return pa.StructArray.from_arrays(
        [
            pa.array(keys, pa.uint64()),
            pa.array(tokens, pa.int64()),
            pa.array(ranks, pa.float64(), from_pandas=True),  # NaN -> null: no score
            pa.array(bins, pa.float64(), from_pandas=True),
        ],
        fields=list(MIX_SIGNATURE),
    )


def signature_columns(table: pa.Table) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(sources, keys, tokens, rank scores, bin scores) of a `decide_table` table; NaN for no score."""
    sig = table["sig"].combine_chunks()

    def floats(name: str) -> np.ndarray:
        return sig.field(name).to_numpy(zero_copy_only=False).astype(np.float64)

    sources = np.asarray(table["source"].to_numpy(zero_copy_only=False), dtype=object)
    keys = sig.field("key").to_numpy(zero_copy_only=False).astype(np.uint64)
    return sources, keys, sig.field("tokens").to_numpy(zero_copy_only=False), floats("rank"), floats("bin")


def items_table(items: list[SignatureItem], sig_type: pa.DataType) -> pa.Table:
    return pa.table(
        {
            "id": pa.array([i.id for i in items], pa.string()),
            "source": pa.array([i.source for i in items], pa.string()),
            "sig": pa.array([i.sig for i in items], sig_type),
        }
    )


def water_fill(available: dict[str, float], weights: dict[str, float], budget: float | None) -> dict[str, float]:
    """Each group's part of `budget`: its weight's share, or all it has when that is less, the rest
    going to the others in proportion to their weights. Without a budget, the largest total whose
    shares every group can meet (groups with nothing are left out)."""
    active = sorted(g for g in weights if available[g] > 0)
    if budget is None:
        total = sum(weights[g] for g in active)
        budget = min((available[g] * total / weights[g] for g in active), default=0.0)
    alloc = {g: 0.0 for g in weights}
    remaining = budget
    while active:
        total = sum(weights[g] for g in active)
        lacking = [g for g in active if available[g] < remaining * weights[g] / total]
        if not lacking:
            for g in active:
                alloc[g] = remaining * weights[g] / total
            break
        for g in lacking:
            alloc[g] = available[g]
            remaining -= available[g]
            active.remove(g)
    return alloc


def whole_records(alloc: dict[str, float], available: dict[str, int]) -> dict[str, int]:
    """Round record allocations to integers that sum to the rounded-down total (largest remainders)."""
    total = math.floor(sum(alloc.values()) + 1e-6)
    out = {g: min(math.floor(a + 1e-9), available[g]) for g, a in alloc.items()}
    rest = total - sum(out.values())
    for g in sorted(alloc, key=lambda g: (-(alloc[g] - out[g]), g)):
        if rest <= 0:
            break
        if out[g] < available[g]:
            out[g] += 1
            rest -= 1
    return out


class HashedSignatures(GlobalStage):
    """Signatures from `mix_signatures` (hash key, group, tokens, score) with the stage's `_sig_args()`:
    shared by `mix` and `split`."""

    @abstractmethod
    def _sig_args(self) -> dict[str, Any]:
        """The keyword arguments of `mix_signatures` for this stage's configuration."""

    def signature_records(self, records: list[dict[str, Any]]) -> pa.Array:
        return mix_signatures(records, **self._sig_args())

    def signature(self, record: dict[str, Any]) -> dict[str, Any]:
        return self.signature_records([record]).to_pylist()[0]

    def signature_table(self, table: pa.Table) -> pa.Array:
        return mix_signatures_table(table, **self._sig_args())


class Mix(HashedSignatures):
    """Make the training mixture: shares per source or category, quotas and a budget.

    `weights` are relative shares of the output: of its records, or of its tokens with `max_tokens`
    (groups not listed are left out). `quotas` caps the records of a group, and `max_records` or
    `max_tokens` the total; tokens are characters / 4, rounded up, over the conversation or, with
    `count: assistant`, the assistant turns. The groups are sources, or `categories`
    (`{by: source, map: {src: category}}`, or `{by: score, score: judge, bins: [3, 4.5]}`, named `lt3`,
    `3-4.5` and `ge4.5` unless `labels` names them). Records are taken in an order seeded by a hash of
    the record id (the same records whatever the tasks), or best `scores[score]` first with
    `prefer: score`. A group too small for its weight gives all it has and the others share the rest
    by weight (a `short.<group>` counter and a warning); weights without a budget give the largest
    mixture that meets every share. `stats.json` counts `records.<group>`, `tokens.<group>` and
    `share.<group>`; `detail` gives the quota and what was taken.
    """

    name: ClassVar[str] = "mix"
    family: ClassVar[str] = "select"
    reasons: ClassVar[tuple[str, ...]] = ("over_quota(<group>)", "over_budget")
    signature_type: ClassVar[pa.DataType] = MIX_SIGNATURE

    class Config(StageConfig):
        type: Literal["mix"]
        seed: int = Field(0, description="seed of the sampling hash")
        weights: dict[str, float] = Field(
            default_factory=dict,
            description="relative share of the output per source (or category): of the records, or of the tokens "
            "with max_tokens; sources (categories) not listed are left out",
        )
        quotas: dict[str, int] = Field(
            default_factory=dict, description="at most this many records per source (or category)"
        )
        max_records: int | None = Field(None, ge=1, description="records in the mixture")
        max_tokens: int | None = Field(None, ge=1, description="tokens in the mixture (characters / 4)")
        count: Literal["conversation", "assistant"] = Field(
            "conversation", description="the text whose tokens count: the whole conversation or assistant turns"
        )
        categories: Categories = Field(
            default_factory=Categories, description="the groups that weights and quotas name (default: sources)"
        )
        prefer: Literal["random", "score"] = Field(
            "random", description="take records in seeded random order, or highest `score` first"
        )
        score: str | None = Field(
            None, description="prefer: score: the key in `scores` (default: the categories' score)"
        )

        @field_validator("weights")
        @classmethod
        def _positive_weights(cls, weights: dict[str, float]) -> dict[str, float]:
            bad = {k: v for k, v in weights.items() if not v > 0}
            if bad:
                raise ValueError(f"weights must be > 0 (leave a source out to exclude it), got {bad}")
            return weights

        @field_validator("quotas")
        @classmethod
        def _non_negative_quotas(cls, quotas: dict[str, int]) -> dict[str, int]:
            bad = {k: v for k, v in quotas.items() if v < 0}
            if bad:
                raise ValueError(f"quotas are record counts >= 0, got {bad}")
            return quotas

        @model_validator(mode="after")
        def _consistent(self):
            if self.max_records is not None and self.max_tokens is not None:
                raise ValueError("give max_records or max_tokens, not both")
            if self.prefer == "score" and self.rank_score is None:
                raise ValueError("prefer: score needs `score` (a key of the records' `scores`)")
            return self

        @property
        def rank_score(self) -> str | None:
            if self.prefer != "score":
                return None
            return self.score or self.categories.score

    def _sig_args(self) -> dict[str, Any]:
        cfg = self.config
        return {
            "seed": cfg.seed,
            "salt": b"",  # the key `select` uses: the same seed ranks records alike
            "count": cfg.count,
            "rank": cfg.rank_score,
            "bin_": cfg.categories.score,
        }

    def decide(self, items: list[SignatureItem]) -> dict[int, Reject]:
        return self.decide_table(items_table(items, self.signature_type))

    def decide_table(self, table: pa.Table) -> dict[int, Reject]:
        cfg = self.config
        if table.num_rows == 0:
            return {}
        sources, keys, tokens, ranks, bins = signature_columns(table)
        n = len(keys)
        groups = cfg.categories.groups(sources, bins)
        # preference order over all records: best score first (no score last), then the seeded key
        primary = -np.nan_to_num(ranks, nan=-np.inf) if cfg.rank_score else np.zeros(n)
        order = np.lexsort((np.arange(n), keys, primary))
        names, inverse = np.unique(groups.astype(str), return_inverse=True)
        by_group = order[np.argsort(inverse[order], kind="stable")]  # grouped, each in preference order
        bounds = np.searchsorted(inverse[by_group], np.arange(len(names) + 1))
        candidates = {str(g): by_group[bounds[k] : bounds[k + 1]] for k, g in enumerate(names)}
        rejects: dict[int, Reject] = {}

        def cut(rows: np.ndarray, reason: str, detail: str) -> None:
            verdict = Reject(reason, detail)
            for i in rows.tolist():
                rejects[i] = verdict

        for g, quota in sorted(cfg.quotas.items()):
            rows = candidates.get(g)
            if rows is not None and len(rows) > quota:
                cut(rows[quota:], f"over_quota({g})", f"quota {quota} records, took {quota} of {len(rows)}")
                candidates[g] = rows[:quota]
        unit = "tokens" if cfg.max_tokens is not None else "records"
        size = tokens if unit == "tokens" else np.ones(n, dtype=np.int64)
        if cfg.weights:
            self._weighted(candidates, size, unit, cut)
        elif cfg.max_records is not None or cfg.max_tokens is not None:
            pool = np.concatenate([np.empty(0, dtype=np.int64), *candidates.values()])
            rank = np.empty(n, dtype=np.int64)
            rank[order] = np.arange(n)
            pool = pool[np.argsort(rank[pool])]  # back to one preference order over every group
            budget = cfg.max_records if unit == "records" else cfg.max_tokens
            took = int(np.searchsorted(np.cumsum(size[pool]), budget, side="right"))
            if took < len(pool):
                got = int(size[pool[:took]].sum())
                detail = f"max_{unit} {budget}, " + (
                    f"took {got} tokens ({took} records) of {len(pool)} records"
                    if unit == "tokens"
                    else f"took {took} of {len(pool)}"
                )
                cut(pool[took:], "over_budget", detail)
        self._count(groups, tokens, rejects, unit)
        return rejects

    def _weighted(self, candidates: dict[str, np.ndarray], size: np.ndarray, unit: str, cut) -> None:
        cfg = self.config
        for g in sorted(set(candidates) - set(cfg.weights)):
            cut(candidates.pop(g), f"over_quota({g})", f"{g} has no weight: left out of the mixture")
        available = {g: int(size[candidates[g]].sum()) if g in candidates else 0 for g in cfg.weights}
        budget = cfg.max_records if unit == "records" else cfg.max_tokens
        alloc = water_fill(available, dict(cfg.weights), budget)
        if unit == "records":
            alloc = whole_records(alloc, available)
        total_weight = sum(cfg.weights.values())
        target_total = budget if budget is not None else sum(alloc.values())
        for g, weight in sorted(cfg.weights.items()):
            rows = candidates.get(g, np.empty(0, dtype=np.int64))
            target = target_total * weight / total_weight
            lacking = math.floor(target + 1e-6) - available[g]
            if lacking > 0:  # this group cannot meet its weight: the others got the rest
                self.count(f"short.{g}", lacking)
                log.warning(
                    "%s: %s holds %d %s, fewer than its share (weight %g of %g: %d of %d %s); took all of it and "
                    "gave the other %d to the rest of the mixture in proportion to their weights",
                    self.id,
                    g,
                    available[g],
                    unit,
                    weight,
                    total_weight,
                    math.floor(target + 1e-6),
                    target_total,
                    unit,
                    lacking,
                )
            took = int(np.searchsorted(np.cumsum(size[rows]), math.floor(alloc[g] + 1e-6), side="right"))
            if took < len(rows):
                got = int(size[rows[:took]].sum())
                detail = (
                    f"weight {weight:g} of {total_weight:g}: {math.floor(alloc[g] + 1e-6)} of {target_total} {unit}, "
                )
                detail += (
                    f"took {got} tokens ({took} records) of {len(rows)} records"
                    if unit == "tokens"
                    else (f"took {took} of {len(rows)}")
                )
                cut(rows[took:], f"over_quota({g})", detail)

    def _count(self, groups: np.ndarray, tokens: np.ndarray, rejects: dict[int, Reject], unit: str) -> None:
        """What the mixture holds per group: records, tokens and the share of the output (in `unit`)."""
        kept = np.ones(len(groups), dtype=bool)
        kept[list(rejects)] = False
        total_records, total_tokens = int(kept.sum()), int(tokens[kept].sum())
        self.count("records", total_records)
        self.count("tokens", total_tokens)
        for g in sorted(set(groups[kept].tolist()) | set(self.config.weights)):
            mask = kept & (groups == g)
            records, toks = int(mask.sum()), int(tokens[mask].sum())
            self.count(f"records.{g}", records)
            self.count(f"tokens.{g}", toks)
            whole = total_tokens if unit == "tokens" else total_records
            self.count(f"share.{g}", round((toks if unit == "tokens" else records) / whole, 4) if whole else 0.0)
