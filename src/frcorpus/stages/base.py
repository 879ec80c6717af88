"""The stage contract.

A stage is a class with a `name` (the YAML `type:`), a nested pydantic `Config`, `setup()` for
models and clients, and one method to write:

- `Transformer.process(records)`: change records in a batch (may reject via `self.reject`);
- `Filter.keep(record) -> True | Reject`: decide about one record;
- `GlobalStage.signature(record)` + `GlobalStage.decide(items)`: stages that need every record
  (dedup, sampling). The engine computes signatures in parallel, runs `decide` once over all of
  them in the global record order, and applies the rejections in the next parallel pass. A global
  stage whose decision can work from sorted or partitioned runs overrides `decide_scan` instead
  (see `frcorpus.stages.signatures`): its memory at the barrier then does not grow with the corpus.

A stage may also implement the columnar twin of its method, `Transformer.process_table(table)`
or `GlobalStage.signature_table(table)`, over an Arrow table of the same records (see
`frcorpus.batch`); the engine uses it when the batch is a table, and the twin must give exactly
what the per-record method gives (a test runs every pipeline both ways).

The base classes count records in / kept / rejected by reason, time the work, and keep the
annotate-only switch, so a stage never does its own bookkeeping. Stages are plain Python over
lists of record dicts, testable without datatrove; `frcorpus.engine` adapts them to datatrove steps.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pyarrow as pa
from pydantic import BaseModel, ConfigDict, Field

from frcorpus.batch import Batch, live_mask, reject_counts
from frcorpus.counts import StageStats
from frcorpus.settings import columnar_enabled
from frcorpus.stages.signatures import Rejections, SignatureScan, TableScan


@dataclass(slots=True, unsafe_hash=True)
class Reject:
    """A decision against a record: `reason` is a stable code, `detail` is free text. Not frozen (a
    filter may make one per record, and a frozen dataclass takes 2.5x as long to make: 1.0 us), but
    hashable by value as if it were."""

    reason: str
    detail: str = ""


class StageConfig(BaseModel):
    """Options common to every stage. Subclasses add theirs and fix `type` with a Literal."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    type: str
    id: str | None = Field(
        None,
        pattern=r"^[A-Za-z0-9_.-]+$",
        description="key of this stage in stats.json and in rejects' `stage` column "
        "(default: the type, numbered when a type appears twice)",
    )


class FilterConfig(StageConfig):
    annotate_only: bool = Field(False, description="annotate and count, but reject nothing")


class Stage(ABC):
    name: ClassVar[str]
    family: ClassVar[str]
    Config: ClassVar[type[StageConfig]]
    is_global: ClassVar[bool] = False
    #: optional dependencies: importable module -> pip install hint
    requires: ClassVar[dict[str, str]] = {}
    #: extra output columns this stage writes on records, with their Arrow types
    annotations: ClassVar[list[tuple[str, pa.DataType]]] = []
    #: the reasons this stage rejects with, without the `<name>.` prefix (`<lang>` stands for a value),
    #: () for a stage that rejects nothing; docs/stages.md lists them after the class docstring
    reasons: ClassVar[tuple[str, ...] | None] = None
    #: the annotation (one of `annotations`) that names each kept record's split, one of record.SPLITS:
    #: the engine then writes each split to its own data files; None for a stage that splits nothing
    split_annotation: ClassVar[str | None] = None

    def __init__(self, config: StageConfig, stage_id: str):
        self.config = config
        self.id = stage_id
        self.stats = StageStats()

    @classmethod
    def requirements(cls, config: StageConfig) -> dict[str, str]:
        """Optional modules this configuration of the stage imports (module -> install hint); the class's
        `requires` unless the config chooses among backends."""
        return cls.requires

    @classmethod
    def models(cls, config: dict[str, Any]) -> list[dict[str, Any]]:
        """The models this configuration of the stage uses, as `{role, model, revision}` (revision None
        when unknown), from its resolved options as the manifest records them (`config`, JSON); the
        engine writes them into manifest.json, where the card lists them. None for most stages."""
        return []

    @classmethod
    def notes(cls, config: StageConfig) -> list[str]:
        """What `frcorpus validate` says of this configuration on this machine (a mode that depends on what
        is installed); none for most stages."""
        return []

    def setup(self) -> None:  # noqa: B027 - an optional hook, not an abstract method
        """Load models, open clients: called once per worker, never in __init__."""

    def input_files(self) -> list[Path]:
        """Files the stage reads besides the sources (benchmark files...): they are part of the run
        key, so that changing one starts a new run, and their sha256 goes into the manifest."""
        return []

    def count(self, key: str, n: int = 1) -> None:
        """A stage-specific counter, reported in stats.json under the stage."""
        self.stats.counters[key] += n

    def reject(self, record: dict[str, Any], reason: str, detail: str = "") -> None:
        record["_reject"] = {"stage": self.id, "reason": f"{self.name}.{reason}", "detail": detail}

    @abstractmethod
    def run_batch(self, records: list[dict[str, Any]]) -> None:
        """Process a list of record dicts in place."""

    def run_table(self, table: pa.Table) -> pa.Table | None:
        """The columnar twin of `run_batch`, or None where the stage has none (for this config)."""
        return None

    def run(self, batch: Batch) -> None:
        """The engine's entry point for per-record stages: columnar when both sides can."""
        if batch.is_table and columnar_enabled():
            table = self.run_table(batch.table())
            if table is not None:
                batch.set_table(table)
                return
        self.run_batch(batch.records())


class Transformer(Stage):
    @abstractmethod
    def process(self, records: list[dict[str, Any]]) -> None:
        """Change the records of a batch in place; call `self.reject` to reject one."""

    def process_table(self, table: pa.Table) -> pa.Table | None:
        """Optional columnar `process` over live records: the same rows in the same order, rejections
        set in `_reject` (see `frcorpus.batch.with_rejects`); None when it does not apply."""
        return None

    def run_table(self, table: pa.Table) -> pa.Table | None:
        live = live_mask(table)
        rows = np.flatnonzero(live)
        start = time.perf_counter()
        result = self.process_table(table if live.all() else table.take(pa.array(rows)))
        if result is None:
            return None
        self.stats.seconds += time.perf_counter() - start
        self.stats.n_in += len(rows)
        self.stats.rejected.update(reject_counts(result))
        self.stats.kept += int(live_mask(result).sum())
        if live.all():
            return result
        dead = np.flatnonzero(~live)
        merged = pa.concat_tables([result, table.take(pa.array(dead))])
        return merged.take(pa.array(np.argsort(np.concatenate([rows, dead]), kind="stable")))

    def run_batch(self, records: list[dict[str, Any]]) -> None:
        live = [r for r in records if r["_reject"] is None]
        start = time.perf_counter()
        self.process(live)
        self.stats.seconds += time.perf_counter() - start
        self.stats.n_in += len(live)
        reasons = [r["_reject"]["reason"] for r in live if r["_reject"] is not None]
        self.stats.kept += len(live) - len(reasons)
        self.stats.rejected.update(reasons)  # counted in C


class Filter(Stage):
    """A stage that keeps or rejects each record (and may annotate it). Override `keep` to judge one
    record at a time, or `keep_batch` to judge a batch at once (a model that runs on batches: language
    id, embeddings, an LLM). With `annotate_only` the base rejects nothing and counts what it would
    have rejected as `would_reject.<stage>.<reason>`; no filter handles that itself."""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        # one of the two hooks is the filter: a class with neither is refused where it is defined
        super().__init_subclass__(**kwargs)
        if cls.keep_batch is Filter.keep_batch and not callable(getattr(cls, "keep", None)):
            raise TypeError(f"{cls.__name__} is a Filter with neither keep(record) nor keep_batch(records)")

    def keep_batch(self, records: list[dict[str, Any]]) -> list[bool | Reject]:
        """A verdict per live record of a batch, in order: True to keep it, or a `Reject` with the reason
        code (without the stage prefix). By default the filter's `keep(record)`, which gives one
        verdict (datatrove's `filter_batch` is the same idea)."""
        return [self.keep(r) for r in records]

    @cached_property
    def _prefixed_reasons(self) -> dict[str, str]:
        """Each reason code with the stage's name before it, made once: a filter may reject most of a batch
        (language id on a corpus in many languages)."""
        return {}

    def run_batch(self, records: list[dict[str, Any]]) -> None:
        annotate_only = getattr(self.config, "annotate_only", False)
        start = time.perf_counter()
        live = [r for r in records if r["_reject"] is None]
        verdicts = self.keep_batch(live)
        self.stats.n_in += len(live)
        stage_id, prefixed = self.id, self._prefixed_reasons
        reasons = []
        for r, verdict in zip(live, verdicts, strict=True):
            if verdict is True or annotate_only:
                if verdict is not True:
                    self.count(f"would_reject.{self.name}.{verdict.reason}")
                continue
            reason = prefixed.get(verdict.reason)
            if reason is None:
                reason = prefixed[verdict.reason] = f"{self.name}.{verdict.reason}"
            r["_reject"] = {"stage": stage_id, "reason": reason, "detail": verdict.detail}
            reasons.append(reason)
        self.stats.kept += len(live) - len(reasons)
        self.stats.rejected.update(reasons)  # counted in C
        self.stats.seconds += time.perf_counter() - start


@dataclass(slots=True)
class SignatureItem:
    """What a global stage sees of one record in `decide`: small, so that millions fit in memory."""

    id: str
    source: str
    sig: Any


class GlobalStage(Stage):
    is_global: ClassVar[bool] = True
    #: Arrow type of the signatures, as the engine stores them between the phases and the barrier
    signature_type: ClassVar[pa.DataType] = pa.string()

    @abstractmethod
    def signature(self, record: dict[str, Any]) -> Any:
        """A small JSON-serialisable summary of the record (a hash, a sampling key, ...)."""

    def signature_records(self, records: list[dict[str, Any]]) -> list[Any] | pa.Array:
        """Signatures of a batch of live records (a list, or an Arrow array of `signature_type`).
        Override where a batch is cheaper than one record at a time."""
        return [self.signature(r) for r in records]

    def signature_table(self, table: pa.Table) -> list[Any] | pa.Array:
        """Signatures of the rows of a table of live records. Override with a columnar version where
        it pays; it must return exactly what `signature` returns."""
        return self.signature_records(table.to_pylist())

    @abstractmethod
    def decide(self, items: list[SignatureItem]) -> dict[int, Reject]:
        """Given every live record's signature in global order, return rejections by index."""

    def decide_scan(self, scan: SignatureScan) -> Iterator[Rejections]:
        """What the engine calls at the barrier: the rejections, in chunks, from the scan of this stage's
        signatures. By default every live record's signature is loaded at once (`scan.table()`, memory
        linear in the corpus) and `decide_table` decides, then `assign_table` annotates what it kept.
        Override it to decide from partitioned or sorted runs (`Partitions`) in bounded memory, and let
        `decide_table` return `self.scan_table(table)`, so that both are one code."""
        keys, table = scan.table()
        verdicts = self.decide_table(table)
        if verdicts:
            rows = np.fromiter(verdicts, dtype=np.int64, count=len(verdicts))
            chosen = list(verdicts.values())
            yield Rejections(keys[rows], [v.reason for v in chosen], [v.detail for v in chosen])
        if self.annotations:
            kept = np.ones(len(keys), dtype=bool)
            kept[list(verdicts)] = False
            scan.annotate(keys[kept], self.assign_table(table.filter(pa.array(kept))))

    def scan_table(self, table: pa.Table, memory: int | None = None) -> dict[int, Reject]:
        """`decide_scan` over a table in memory (`TableScan`), as `decide_table` returns rejections."""
        scan = TableScan(table, memory)
        out = {}
        try:
            for chunk in self.decide_scan(scan):
                reasons = [chunk.reasons] * len(chunk.keys) if isinstance(chunk.reasons, str) else chunk.reasons
                for key, reason, detail in zip(chunk.keys.tolist(), reasons, chunk.details, strict=True):
                    out[key] = Reject(reason, detail)
        finally:
            scan.close()
        return out

    def decide_table(self, table: pa.Table) -> dict[int, Reject]:
        """`decide` over a table of columns `id`, `source` and `sig` (this stage's signatures) in the
        global order. Override to work on the columns directly (numpy) where building one Python object
        per record would cost more than the decision."""
        items = [
            SignatureItem(i, s, sig)
            for i, s, sig in zip(
                table["id"].to_pylist(), table["source"].to_pylist(), table["sig"].to_pylist(), strict=True
            )
        ]
        return self.decide(items)

    def assign_table(self, table: pa.Table) -> dict[str, pa.Array]:
        """Annotations for the records this stage kept: column (one of `annotations`) -> one value per
        row of `table` (columns as in `decide_table`, the kept rows in global order). The engine writes
        them on the records after the barrier; called only for stages that declare `annotations`."""
        return {}

    def run_batch(self, records: list[dict[str, Any]]) -> None:  # global stages are not batched
        raise TypeError(f"{self.name} is a global stage; the engine runs it through decide()")
