"""Text generation for the LLM stages (translation, judging): one interface over three backends.

- `base`: ChatRequest, Generation, SamplingConfig, LLMConfig, Backend, BackendError, template_hash;
- `models`: `model:` -> a local folder and its revision (`smollm2`, GGUF files converted once, folders,
  Hub ids);
- `transformers_backend`, `openai_backend`, `vllm_backend`: the backends, each importing its heavy
  dependencies only when built (`load_backend`);
- `cache` and `generator`: the SQLite generation cache and the Generator that puts it in front of a
  backend.
"""

from __future__ import annotations

from frcorpus.llm.base import (
    Backend,
    BackendError,
    ChatRequest,
    Generation,
    GenerationStats,
    LLMConfig,
    SamplingConfig,
    template_hash,
)
from frcorpus.llm.cache import GenerationCache, cache_key
from frcorpus.llm.generator import Generator


def load_backend(config: LLMConfig) -> Backend:
    """Build the backend that `config.backend` names (loads the model or opens the client)."""
    if config.backend == "transformers":
        from frcorpus.llm.transformers_backend import TransformersBackend

        return TransformersBackend(config)
    if config.backend == "openai":
        from frcorpus.llm.openai_backend import OpenAIBackend

        return OpenAIBackend(config)
    if config.backend == "vllm":
        from frcorpus.llm.vllm_backend import VLLMBackend

        return VLLMBackend(config)
    raise ValueError(f"unknown backend {config.backend!r}; expected transformers, openai or vllm")


__all__ = [
    "Backend",
    "BackendError",
    "ChatRequest",
    "Generation",
    "GenerationCache",
    "GenerationStats",
    "Generator",
    "LLMConfig",
    "SamplingConfig",
    "cache_key",
    "load_backend",
    "template_hash",
]
