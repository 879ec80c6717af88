"""`select`: seeded sampling and caps per source and overall.

Sampling is by a hash of (seed, record id), so a record's fate does not depend on how the data
was sharded or ordered: the same seed selects the same records on every executor.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any, ClassVar, Literal

import pyarrow as pa
import xxhash
from pydantic import Field

from frcorpus.stages.base import GlobalStage, Reject, SignatureItem, StageConfig


class Select(GlobalStage):
    """Sample records and cap them per source and overall, seeded and independent of sharding.

    `fraction` keeps about that share of each source, chosen by a seeded hash of the record id;
    `max_per_source` and `per_source` cap each source, and `max_records` the total.
    """

    name: ClassVar[str] = "select"
    family: ClassVar[str] = "select"
    reasons: ClassVar[tuple[str, ...]] = ("sampled_out", "over_source_cap", "over_total_cap")
    signature_type: ClassVar[pa.DataType] = pa.uint64()

    class Config(StageConfig):
        type: Literal["select"]
        seed: int = Field(0, description="seed of the sampling hash")
        fraction: float | None = Field(
            None, gt=0, le=1, description="keep about this share of each source (hash-based)"
        )
        max_per_source: int | None = Field(
            None, ge=1, description="keep at most this many records per source (a seeded random subset)"
        )
        per_source: dict[str, int] = Field(
            default_factory=dict, description="caps for named sources, overriding max_per_source"
        )
        max_records: int | None = Field(None, ge=1, description="cap on the total, after the per-source caps")

    def signature(self, record: dict[str, Any]) -> int:
        # 64-bit sampling key; JSON keeps ints exactly, and ordering by it is a seeded shuffle.
        return xxhash.xxh3_64_intdigest(record["id"].encode(), seed=self.config.seed)

    def signature_table(self, table) -> list[int]:
        seed = self.config.seed
        return [xxhash.xxh3_64_intdigest(i.encode(), seed=seed) for i in table["id"].to_pylist()]

    def decide(self, items: list[SignatureItem]) -> dict[int, Reject]:
        cfg = self.config
        rejects: dict[int, Reject] = {}
        threshold = None if cfg.fraction is None else int(cfg.fraction * 2**64)
        by_source: dict[str, list[int]] = defaultdict(list)
        for i, item in enumerate(items):
            if threshold is not None and item.sig >= threshold:
                rejects[i] = Reject("sampled_out", f"fraction={cfg.fraction}, seed={cfg.seed}")
            else:
                by_source[item.source].append(i)
        survivors: list[int] = []
        for source, idx in by_source.items():
            cap = cfg.per_source.get(source, cfg.max_per_source)
            if cap is not None and len(idx) > cap:
                ranked = sorted(idx, key=lambda i: items[i].sig)
                for i in ranked[cap:]:
                    rejects[i] = Reject("over_source_cap", f"source {source} capped at {cap}")
                idx = ranked[:cap]
            survivors.extend(idx)
        if cfg.max_records is not None and len(survivors) > cfg.max_records:
            for i in sorted(survivors, key=lambda i: items[i].sig)[cfg.max_records :]:
                rejects[i] = Reject("over_total_cap", f"total capped at {cfg.max_records}")
        return rejects
