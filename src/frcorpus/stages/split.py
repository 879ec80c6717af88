"""`split`: a seeded train/test split, stratified by source or category.

Each stratum's test part is its `test_size` records (or `test_fraction` of them, rounded) with the
smallest hash of (seed, record id): a record's side depends only on its id and its stratum's size,
not on sharding, on the order of the records, or on records of other strata. Test records are kept,
not rejected; the engine writes each split to its own files (`data/train-*.parquet`,
`data/test-*.parquet`) from the `split` annotation.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar, Literal

import numpy as np
import pyarrow as pa
from pydantic import Field, model_validator

from frcorpus.record import SPLITS
from frcorpus.stages.base import Reject, SignatureItem, StageConfig
from frcorpus.stages.mix import (
    MIX_SIGNATURE,
    Categories,
    HashedSignatures,
    items_table,
    signature_columns,
)

TRAIN, TEST = SPLITS


class Split(HashedSignatures):
    """Split the records into train and test, stratified and stable across re-runs; rejects nothing.

    Strata are the sources, or `categories` as in `mix` (`stratify: false` makes one stratum). Each
    stratum's test part is its `test_size` records, or `test_fraction` of them (rounded), with the
    smallest seeded hash of the record id, so that a record keeps its side across re-runs, task counts
    and records added to other strata. The stage annotates `split` (`train` or `test`); the version
    then holds `data/train-*.parquet` and `data/test-*.parquet`, and its card lists both splits.
    `stats.json` counts `train.<stratum>` and `test.<stratum>`.
    """

    name: ClassVar[str] = "split"
    family: ClassVar[str] = "select"
    reasons: ClassVar[tuple[str, ...] | None] = ()
    signature_type: ClassVar[pa.DataType] = MIX_SIGNATURE
    annotations: ClassVar[list[tuple[str, pa.DataType]]] = [("split", pa.string())]
    split_annotation: ClassVar[str | None] = "split"

    class Config(StageConfig):
        type: Literal["split"]
        seed: int = Field(0, description="seed of the hash that orders each stratum")
        test_fraction: float | None = Field(
            None, gt=0, lt=1, description="share of each stratum in the test split (rounded to a record)"
        )
        test_size: int | None = Field(None, ge=0, description="records of each stratum in the test split")
        stratify: bool = Field(True, description="split each source (or category) on its own; false: one stratum")
        categories: Categories = Field(
            default_factory=Categories, description="the strata (default: sources; or categories, or score bins)"
        )

        @model_validator(mode="after")
        def _one_size(self):
            if (self.test_fraction is None) == (self.test_size is None):
                raise ValueError("give test_fraction or test_size (records per stratum), one of them")
            if not self.stratify and self.categories != Categories():
                raise ValueError("categories define strata; drop them or set stratify: true")
            return self

    def _sig_args(self) -> dict[str, Any]:
        return {
            "seed": self.config.seed,
            "salt": b"split\x00",  # not the key of mix or select: the test part is no sample of theirs
            "count": "conversation",
            "rank": None,
            "bin_": self.config.categories.score,
        }

    def decide(self, items: list[SignatureItem]) -> dict[int, Reject]:
        return {}  # a split rejects nothing; `assign_table` says which side each record is on

    def decide_table(self, table: pa.Table) -> dict[int, Reject]:
        return {}

    def assign(self, items: list[SignatureItem]) -> list[str]:
        """`assign_table` over signature items: the split of each, in order."""
        return self.assign_table(items_table(items, self.signature_type))["split"].to_pylist()

    def assign_table(self, table: pa.Table) -> dict[str, pa.Array]:
        cfg = self.config
        out = np.full(table.num_rows, TRAIN, dtype=object)
        if table.num_rows == 0:
            return {"split": pa.array(out, pa.string())}
        sources, keys, _, _, bins = signature_columns(table)
        if cfg.stratify:
            strata = cfg.categories.groups(sources, bins).astype(str)
        else:
            strata = np.full(table.num_rows, "all")
        names, inverse = np.unique(strata, return_inverse=True)
        order = np.lexsort((np.arange(len(keys)), keys, inverse))  # by stratum, then by the seeded key
        bounds = np.searchsorted(inverse[order], np.arange(len(names) + 1))
        for k, stratum in enumerate(names.tolist()):
            rows = order[bounds[k] : bounds[k + 1]]
            n_test = self.test_count(len(rows))
            out[rows[:n_test]] = TEST
            self.count(f"{TEST}.{stratum}", n_test)
            self.count(f"{TRAIN}.{stratum}", len(rows) - n_test)
        n_test = int((out == TEST).sum())
        self.count(TEST, n_test)
        self.count(TRAIN, table.num_rows - n_test)
        return {"split": pa.array(out, pa.string())}

    def test_count(self, n: int) -> int:
        if self.config.test_size is not None:
            return min(self.config.test_size, n)
        return min(n, math.floor(self.config.test_fraction * n + 0.5))
