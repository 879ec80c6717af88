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

from collections.abc import Callable

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


def backend_class(name: str) -> type[Backend]:
    """The class of a backend, without its heavy dependencies (each imports them when built)."""
    if name == "transformers":
        from frcorpus.llm.transformers_backend import TransformersBackend

        return TransformersBackend
    if name == "openai":
        from frcorpus.llm.openai_backend import OpenAIBackend

        return OpenAIBackend
    if name == "vllm":
        from frcorpus.llm.vllm_backend import VLLMBackend

        return VLLMBackend
    raise ValueError(f"unknown backend {name!r}; expected transformers, openai or vllm")


def load_backend(config: LLMConfig, on_status: Callable[[str], None] | None = None) -> Backend:
    """Build the backend that `config.backend` names (loads the model or opens the client). `on_status`
    hears of the long steps (a GGUF converted once) as they start and end."""
    cls = backend_class(config.backend)
    if config.backend == "openai":
        return cls(config)
    return cls(config, on_status=on_status)


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
    "backend_class",
    "cache_key",
    "load_backend",
    "template_hash",
]
